// Package dpkg is the built-in step plugin that installs a .deb artifact,
// or removes or purges a package, with Debian's dpkg under the step's
// root directory.
//
// Under the running host's root ("/") dpkg runs as usual. Under any other
// root (a sandbox) it runs with --root=ROOT, which makes ROOT the
// installation directory and ROOT/var/lib/dpkg the database; maintainer
// scripts then run without chroot(2) (--force-script-chrootless, with
// DPKG_ROOT set by dpkg), because a sandbox is not a system a script can
// chroot into, so only packages whose scripts honour DPKG_ROOT, or that
// have none, belong in a sandbox. The first install into a sandbox that
// has no dpkg database creates an empty one. dpkg always runs with
// /usr/sbin and /sbin on PATH (it refuses to work without ldconfig and
// start-stop-daemon), the C locale and no prompts (--force-confdef,
// --force-confold: locally changed configuration files are kept).
//
// Package operations of this plugin never overlap on one root: each holds
// an flock(2) on ROOT/var/lib/dpkg/cairn.lock for its whole duration,
// waiting for it until the step's deadline; dpkg's own lock applies as
// well. Before changing anything, an operation runs `dpkg --configure -a`
// when `dpkg --audit` reports an interrupted state, and logs it.
//
// Install copies the .deb into the step's cache directory as
// PACKAGE_VERSION_ARCH.deb. Rollback of an install reinstalls the
// version that was installed before when its .deb is in the cache, and
// removes the package otherwise (also when it was not installed before);
// rollback of a remove or purge reinstalls the removed version from the
// cache, and fails with ErrNotCached when it is not there.
package dpkg

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

// Name and Version are what Describe reports.
const (
	Name    = "dpkg"
	Version = "1.0.0"
)

// Plugin is the dpkg step plugin. It keeps no state between calls.
type Plugin struct{}

var _ sdk.Plugin = (*Plugin)(nil)

// New returns the dpkg plugin.
func New() sdk.Plugin { return &Plugin{} }

// Describe implements sdk.Plugin.
func (*Plugin) Describe(context.Context) (*sdk.Description, error) {
	return &sdk.Description{
		Name:       Name,
		Version:    Version,
		Idempotent: true,
		Params:     paramSpecs,
		Summary:    "install a .deb artifact, or remove or purge a package, with dpkg under the step's root",
	}, nil
}

// Validate implements sdk.Plugin.
func (*Plugin) Validate(_ context.Context, sc *sdk.StepContext) ([]*sdk.FieldError, error) {
	_, errs := decode(sc)
	return errs, nil
}

// record is the rollback record Apply returns, as JSON.
type record struct {
	Action  string `json:"action"`
	Package string `json:"package"`
	// Changed is false when Apply changed nothing: Rollback then does
	// nothing either.
	Changed bool `json:"changed"`
	// Install: the version and architecture installed. Remove, purge:
	// the version and architecture removed.
	Version string `json:"version,omitempty"`
	Arch    string `json:"arch,omitempty"`
	// Install: the version installed before, absent when the package
	// was not installed.
	PreviousVersion string `json:"previous_version,omitempty"`
	PreviousArch    string `json:"previous_arch,omitempty"`
}

// step is one call's parameters, tool and artifact.
type step struct {
	p    params
	t    tool
	deb  string  // install: the .deb's absolute path
	info debInfo // install: the .deb's control data
}

// prepare decodes the parameters and, for install, reads the .deb.
func prepare(ctx context.Context, sc *sdk.StepContext) (step, error) {
	p, err := mustDecode(sc)
	if err != nil {
		return step{}, err
	}
	t, err := newTool(sc.GetRootDir())
	if err != nil {
		return step{}, err
	}
	s := step{p: p, t: t}
	if p.Action != actionInstall {
		return s, nil
	}
	path, ok := sc.GetArtifacts()[p.Artifact]
	if !ok || path == "" {
		return s, fmt.Errorf("artifact %q: %w", p.Artifact, ErrNoArtifact)
	}
	if s.deb, err = filepath.Abs(path); err != nil {
		return s, fmt.Errorf("artifact %q: %w", p.Artifact, err)
	}
	if s.info, err = readDeb(ctx, s.deb); err != nil {
		return s, fmt.Errorf("artifact %q: %w", p.Artifact, err)
	}
	if p.Package != "" && p.Package != s.info.Package {
		return s, fmt.Errorf("artifact %q: %w: the .deb is %s, the step says %s", p.Artifact, ErrPackageMismatch, s.info.Package, p.Package)
	}
	return s, nil
}

// withDeadline bounds ctx by the step's deadline. (The SDK's server does
// this too; this covers in-process calls.)
func withDeadline(ctx context.Context, sc *sdk.StepContext) (context.Context, context.CancelFunc) {
	if d, ok := sdk.Deadline(sc); ok {
		return context.WithDeadline(ctx, d)
	}
	return context.WithCancel(ctx)
}

// Plan implements sdk.Plan.
func (*Plugin) Plan(ctx context.Context, sc *sdk.StepContext) (*sdk.Plan, error) {
	ctx, cancel := withDeadline(ctx, sc)
	defer cancel()
	s, err := prepare(ctx, sc)
	if err != nil {
		return nil, err
	}
	plan := &sdk.Plan{}
	if s.t.hasDatabase() {
		out, err := run(ctx, nil, "dpkg", s.t.dpkgArgs("--audit")...)
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(out) != "" {
			plan.Actions = append(plan.Actions, "would first run dpkg --configure -a: dpkg reports an interrupted state")
			plan.WouldChange = true
		}
	}
	switch s.p.Action {
	case actionInstall:
		cur, err := s.t.query(ctx, s.info.Package, s.info.Arch)
		if err != nil {
			return nil, err
		}
		plan.Changes = []*sdk.Change{installChange(s.info)}
		if cur.installed() && cur.Version == s.info.Version {
			plan.Actions = append(plan.Actions, fmt.Sprintf("%s %s is already installed", s.info.Package, s.info.Version))
			break
		}
		plan.Actions = append(plan.Actions, fmt.Sprintf("would install %s %s (currently %s)", s.info.Package, s.info.Version, cur))
		plan.WouldChange = true
	default:
		cur, err := s.t.query(ctx, s.p.Package, "")
		if err != nil {
			return nil, err
		}
		plan.Changes = []*sdk.Change{removeChange(s.p.Package)}
		if !needsRemove(s.p.Action, cur) {
			plan.Actions = append(plan.Actions, fmt.Sprintf("%s is %s: nothing to %s", s.p.Package, cur, s.p.Action))
			break
		}
		plan.Actions = append(plan.Actions, fmt.Sprintf("would %s %s (currently %s)", s.p.Action, s.p.Package, cur))
		plan.WouldChange = true
	}
	return plan, nil
}

// needsRemove reports whether action (remove or purge) has work with the
// package in state cur: remove while any of its files are unpacked, purge
// while dpkg knows the package at all (config files included).
func needsRemove(action string, cur pkgState) bool {
	if action == actionPurge {
		return cur.known()
	}
	return cur.unpacked()
}

func installChange(info debInfo) *sdk.Change {
	return &sdk.Change{Kind: sdk.ChangePackage, Name: info.Package, State: "present", Version: info.Version}
}

func removeChange(name string) *sdk.Change {
	return &sdk.Change{Kind: sdk.ChangePackage, Name: name, State: "absent"}
}

// Apply implements sdk.Plugin.
func (pl *Plugin) Apply(ctx context.Context, sc *sdk.StepContext, r sdk.Reporter) (*sdk.Result, error) {
	if r == nil {
		r = nopReporter{}
	}
	ctx, cancel := withDeadline(ctx, sc)
	defer cancel()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("dpkg step %q: %w", sc.GetStep(), err)
	}
	if sc.GetDryRun() {
		plan, err := pl.Plan(ctx, sc)
		if err != nil {
			return nil, err
		}
		for _, a := range plan.GetActions() {
			r.Log(sdk.LevelInfo, "dry run: "+a)
		}
		return &sdk.Result{}, nil
	}
	s, err := prepare(ctx, sc)
	if err != nil {
		return nil, err
	}
	if s.p.Action == actionInstall {
		return s.install(ctx, sc, r)
	}
	return s.remove(ctx, sc, r)
}

// lock takes the root's package lock, telling r when it has to wait.
func (s step) lock(ctx context.Context, r sdk.Reporter) (func(), error) {
	path := s.t.lockPath()
	return acquireLock(ctx, path, func() {
		r.Log(sdk.LevelInfo, "waiting for the package lock "+path+": another package operation is running")
	})
}

func (s step) install(ctx context.Context, sc *sdk.StepContext, r sdk.Reporter) (*sdk.Result, error) {
	info := s.info
	if err := checkDeb(ctx, s.deb); err != nil {
		return nil, fmt.Errorf("artifact %q: %w", s.p.Artifact, err)
	}
	created, err := s.t.initDatabase()
	if err != nil {
		return nil, err
	}
	if created {
		r.Log(sdk.LevelInfo, "created an empty dpkg database in "+s.t.adminDir())
	}
	unlock, err := s.lock(ctx, r)
	if err != nil {
		return nil, err
	}
	defer unlock()
	r.Progress(0.1, "locked")

	recovered, err := s.t.recoverInterrupted(ctx, r)
	if err != nil {
		return nil, err
	}
	cur, err := s.t.query(ctx, info.Package, info.Arch)
	if err != nil {
		return nil, err
	}
	rec := record{Action: actionInstall, Package: info.Package, Version: info.Version, Arch: info.Arch}
	if cur.installed() {
		rec.PreviousVersion, rec.PreviousArch = cur.Version, cur.Arch
	}
	outputs := map[string]string{
		"package":          info.Package,
		"version":          info.Version,
		"architecture":     info.Arch,
		"previous_version": rec.PreviousVersion,
		"recovered":        fmt.Sprint(recovered),
	}

	if dir := sc.GetCacheDir(); dir != "" {
		cached, err := cacheDeb(dir, s.deb, info)
		if err != nil {
			return nil, err
		}
		outputs["cached"] = cached
	} else {
		r.Log(sdk.LevelWarn, "no cache directory: a rollback to this version will not be possible")
	}

	prior, err := earlierAttempt(sc, rec)
	if err != nil {
		return nil, err
	}
	if prior != nil {
		rec = *prior
		outputs["previous_version"] = rec.PreviousVersion
	}
	if cur.installed() && cur.Version == info.Version {
		r.Log(sdk.LevelInfo, fmt.Sprintf("%s %s is already installed", info.Package, info.Version))
		if prior != nil {
			r.Log(sdk.LevelInfo, "an earlier attempt of this step installed it; its undo record is kept")
			return s.result(true, outputs, rec, []*sdk.Change{installChange(info)})
		}
		return s.result(false, outputs, rec, nil)
	}
	// Write-ahead: what Rollback needs is on disk before dpkg runs.
	rec.Changed = true
	if err := sdk.SaveUndo(sc, rec); err != nil {
		return nil, err
	}
	r.Progress(0.2, fmt.Sprintf("installing %s %s (currently %s)", info.Package, info.Version, cur))
	if _, err := s.t.dpkg(ctx, r, "--force-confdef", "--force-confold", "--install", s.deb); err != nil {
		return nil, fmt.Errorf("install %s %s: %w", info.Package, info.Version, err)
	}
	after, err := s.t.query(ctx, info.Package, info.Arch)
	if err != nil {
		return nil, err
	}
	if !after.installed() || after.Version != info.Version {
		return nil, fmt.Errorf("install %s %s: dpkg succeeded but the package is %s", info.Package, info.Version, after)
	}
	r.Progress(1, fmt.Sprintf("installed %s %s", info.Package, info.Version))
	return s.result(true, outputs, rec, []*sdk.Change{installChange(info)})
}

// earlierAttempt returns the undo record an earlier attempt of this step
// saved before it changed the package (a crash cut it off), or nil.
func earlierAttempt(sc *sdk.StepContext, rec record) (*record, error) {
	var prior record
	found, err := sdk.LoadUndo(sc, &prior)
	if err != nil || !found || !prior.Changed || prior.Action != rec.Action || prior.Package != rec.Package {
		return nil, err
	}
	return &prior, nil
}

func (s step) remove(ctx context.Context, sc *sdk.StepContext, r sdk.Reporter) (*sdk.Result, error) {
	name := s.p.Package
	rec := record{Action: s.p.Action, Package: name}
	outputs := map[string]string{"package": name, "recovered": "false"}
	if !s.t.hasDatabase() {
		r.Log(sdk.LevelInfo, fmt.Sprintf("%s is not installed: no dpkg database in %s", name, s.t.adminDir()))
		return s.result(false, outputs, rec, nil)
	}
	unlock, err := s.lock(ctx, r)
	if err != nil {
		return nil, err
	}
	defer unlock()
	r.Progress(0.1, "locked")

	recovered, err := s.t.recoverInterrupted(ctx, r)
	if err != nil {
		return nil, err
	}
	outputs["recovered"] = fmt.Sprint(recovered)
	cur, err := s.t.query(ctx, name, "")
	if err != nil {
		return nil, err
	}
	prior, err := earlierAttempt(sc, rec)
	if err != nil {
		return nil, err
	}
	if !needsRemove(s.p.Action, cur) {
		r.Log(sdk.LevelInfo, fmt.Sprintf("%s is %s: nothing to %s", name, cur, s.p.Action))
		if prior != nil {
			r.Log(sdk.LevelInfo, "an earlier attempt of this step removed it; its undo record is kept")
			outputs["previous_version"] = prior.Version
			return s.result(true, outputs, *prior, []*sdk.Change{removeChange(name)})
		}
		return s.result(false, outputs, rec, nil)
	}
	switch {
	case prior != nil:
		rec = *prior
		outputs["previous_version"] = rec.Version
	case cur.unpacked():
		rec.Version, rec.Arch = cur.Version, cur.Arch
		outputs["previous_version"] = cur.Version
	}
	rec.Changed = true
	if err := sdk.SaveUndo(sc, rec); err != nil {
		return nil, err
	}
	flag := "--remove"
	if s.p.Action == actionPurge {
		flag = "--purge"
	}
	r.Progress(0.2, fmt.Sprintf("%s %s (currently %s)", s.p.Action, name, cur))
	if _, err := s.t.dpkg(ctx, r, flag, name); err != nil {
		return nil, fmt.Errorf("%s %s: %w", s.p.Action, name, err)
	}
	after, err := s.t.query(ctx, name, "")
	if err != nil {
		return nil, err
	}
	if needsRemove(s.p.Action, after) {
		return nil, fmt.Errorf("%s %s: dpkg succeeded but the package is %s", s.p.Action, name, after)
	}
	r.Progress(1, fmt.Sprintf("%s %s done", s.p.Action, name))
	return s.result(true, outputs, rec, []*sdk.Change{removeChange(name)})
}

func (s step) result(changed bool, outputs map[string]string, rec record, changes []*sdk.Change) (*sdk.Result, error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode rollback record: %w", err)
	}
	return &sdk.Result{Changed: changed, Outputs: outputs, RollbackRecord: data, Changes: changes}, nil
}

// Verify implements sdk.Plugin: install passes when the .deb's version
// is installed; remove passes when the package's files are gone, purge
// when dpkg no longer knows the package at all.
func (*Plugin) Verify(ctx context.Context, sc *sdk.StepContext) (*sdk.Verification, error) {
	ctx, cancel := withDeadline(ctx, sc)
	defer cancel()
	s, err := prepare(ctx, sc)
	if err != nil {
		return nil, err
	}
	if s.p.Action == actionInstall {
		cur, err := s.t.query(ctx, s.info.Package, s.info.Arch)
		if err != nil {
			return nil, err
		}
		return &sdk.Verification{
			Passed:   cur.installed() && cur.Version == s.info.Version,
			Evidence: fmt.Sprintf("dpkg database %s: %s is %s; want %s installed", s.t.adminDir(), s.info.Package, cur.describe(), s.info.Version),
		}, nil
	}
	cur, err := s.t.query(ctx, s.p.Package, "")
	if err != nil {
		return nil, err
	}
	want := "not installed (config files may remain)"
	if s.p.Action == actionPurge {
		want = "not installed, no config files"
	}
	return &sdk.Verification{
		Passed:   !needsRemove(s.p.Action, cur),
		Evidence: fmt.Sprintf("dpkg database %s: %s is %s; want %s", s.t.adminDir(), s.p.Package, cur.describe(), want),
	}, nil
}

// Rollback implements sdk.Plugin.
func (*Plugin) Rollback(ctx context.Context, sc *sdk.StepContext, data []byte) (*sdk.RollbackResult, error) {
	ctx, cancel := withDeadline(ctx, sc)
	defer cancel()
	var rec record
	found, err := sdk.RollbackRecord(sc, data, &rec)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	if !found {
		return &sdk.RollbackResult{Message: "nothing to undo: no rollback record"}, nil
	}
	switch {
	case rec.Action != actionInstall && rec.Action != actionRemove && rec.Action != actionPurge:
		return nil, fmt.Errorf("%w: action %q", ErrBadRecord, rec.Action)
	case !validName(rec.Package):
		return nil, fmt.Errorf("%w: package %q", ErrBadRecord, rec.Package)
	}
	if !rec.Changed {
		return &sdk.RollbackResult{Message: "nothing to undo: the step changed nothing"}, sdk.ClearUndo(sc)
	}
	t, err := newTool(sc.GetRootDir())
	if err != nil {
		return nil, err
	}
	if !t.hasDatabase() {
		return nil, fmt.Errorf("roll back %s %s: no dpkg database in %s", rec.Action, rec.Package, t.adminDir())
	}
	s := step{t: t}
	r := nopReporter{}
	unlock, err := s.lock(ctx, r)
	if err != nil {
		return nil, err
	}
	defer unlock()
	recovered, err := t.recoverInterrupted(ctx, r)
	if err != nil {
		return nil, err
	}
	res, err := rollback(ctx, t, sc.GetCacheDir(), rec)
	if err != nil {
		return nil, err
	}
	if err := sdk.ClearUndo(sc); err != nil {
		return nil, err
	}
	if recovered {
		res.Message = "recovered an interrupted dpkg state with dpkg --configure -a; " + res.Message
	}
	return res, nil
}

func rollback(ctx context.Context, t tool, cacheDir string, rec record) (*sdk.RollbackResult, error) {
	name := rec.Package
	if rec.Action == actionInstall {
		cur, err := t.query(ctx, name, rec.Arch)
		if err != nil {
			return nil, err
		}
		why := fmt.Sprintf("%s was not installed before", name)
		if rec.PreviousVersion != "" {
			if cur.installed() && cur.Version == rec.PreviousVersion {
				return &sdk.RollbackResult{Message: fmt.Sprintf("%s %s is already installed", name, cur.Version)}, nil
			}
			deb, err := findCached(ctx, cacheDir, name, rec.PreviousVersion, rec.PreviousArch)
			if err != nil {
				return nil, err
			}
			if deb != "" {
				if _, err := t.dpkg(ctx, nil, "--force-confdef", "--force-confold", "--install", deb); err != nil {
					return nil, fmt.Errorf("reinstall %s %s: %w", name, rec.PreviousVersion, err)
				}
				return &sdk.RollbackResult{Changed: true, Message: fmt.Sprintf("reinstalled %s %s from %s", name, rec.PreviousVersion, deb)}, nil
			}
			why = fmt.Sprintf("no .deb of the previous version %s %s in the cache %q", name, rec.PreviousVersion, cacheDir)
		}
		if !cur.unpacked() {
			return &sdk.RollbackResult{Message: fmt.Sprintf("%s is %s: nothing to remove (%s)", name, cur, why)}, nil
		}
		if _, err := t.dpkg(ctx, nil, "--remove", name); err != nil {
			return nil, fmt.Errorf("remove %s: %w", name, err)
		}
		return &sdk.RollbackResult{Changed: true, Message: fmt.Sprintf("removed %s %s: %s", name, cur.Version, why)}, nil
	}

	// Remove or purge: reinstall the removed version.
	if rec.Version == "" {
		return &sdk.RollbackResult{Message: fmt.Sprintf("nothing to undo: %s only had config files", name)}, nil
	}
	cur, err := t.query(ctx, name, rec.Arch)
	if err != nil {
		return nil, err
	}
	if cur.installed() && cur.Version == rec.Version {
		return &sdk.RollbackResult{Message: fmt.Sprintf("%s %s is already installed", name, cur.Version)}, nil
	}
	deb, err := findCached(ctx, cacheDir, name, rec.Version, rec.Arch)
	if err != nil {
		return nil, err
	}
	if deb == "" {
		return nil, fmt.Errorf("reinstall %s %s: %w: %s not in %q", name, rec.Version, ErrNotCached,
			cacheName(debInfo{Package: name, Version: rec.Version, Arch: rec.Arch}), cacheDir)
	}
	if _, err := t.dpkg(ctx, nil, "--force-confdef", "--force-confold", "--install", deb); err != nil {
		return nil, fmt.Errorf("reinstall %s %s: %w", name, rec.Version, err)
	}
	msg := fmt.Sprintf("reinstalled %s %s from %s", name, rec.Version, deb)
	if rec.Action == actionPurge {
		msg += " (purged configuration files are not restored)"
	}
	return &sdk.RollbackResult{Changed: true, Message: msg}, nil
}

// nopReporter drops reports: Apply's when the caller passes no
// Reporter, and Rollback's, which says what it did in its message.
type nopReporter struct{}

func (nopReporter) Log(string, string)       {}
func (nopReporter) Progress(float64, string) {}
