// Package systemd is the built-in step plugin that manages a systemd
// unit: enable, disable, mask and unmask its unit file, and start, stop,
// restart, reload or wait until it is active.
//
// Unit-file actions work offline: under a root other than "/", or on a
// host where systemd is not running, they run `systemctl --root=ROOT
// ACTION -- UNIT`, which only edits the symlinks under ROOT/etc/systemd.
// On a host booted with systemd (root "/" and /run/systemd/system
// present) they run plain `systemctl ACTION -- UNIT`, which also reloads
// the manager. The other actions need a running systemd and fail with
// ErrNoSystemd otherwise. systemctl is always run with an argv, never a
// shell, and the unit name is checked before it reaches the command line.
//
// Apply changes nothing when the unit is already in the wanted state
// (`systemctl is-enabled` / `is-active`); its rollback record holds the
// previous state, which Rollback restores.
package systemd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

// Name is the plugin's name in manifests.
const Name = "systemd"

// Actions.
const (
	actEnable     = "enable"
	actDisable    = "disable"
	actMask       = "mask"
	actUnmask     = "unmask"
	actStart      = "start"
	actStop       = "stop"
	actRestart    = "restart"
	actReload     = "reload"
	actWaitActive = "wait-active"
)

var (
	fileActions    = []string{actEnable, actDisable, actMask, actUnmask}
	runtimeActions = []string{actStart, actStop, actRestart, actReload, actWaitActive}
)

// defaultWait bounds wait-active when the step gives no timeout.
const defaultWait = 90 * time.Second

// Plugin manages systemd units.
type Plugin struct {
	// systemctl is the command run.
	systemctl string
	// bootedDir exists on a host booted with systemd (sd_booted).
	bootedDir string
	// poll is wait-active's interval.
	poll time.Duration
}

var _ sdk.Plugin = (*Plugin)(nil)

// New returns the systemd plugin.
func New() sdk.Plugin {
	return &Plugin{systemctl: "systemctl", bootedDir: "/run/systemd/system", poll: 500 * time.Millisecond}
}

// Describe implements sdk.Plugin.
func (*Plugin) Describe(context.Context) (*sdk.Description, error) {
	return &sdk.Description{
		Name:       Name,
		Version:    "1.0.0",
		Idempotent: true,
		Summary:    "enable, disable, mask or unmask a systemd unit (offline under a root), or start, stop, restart, reload it or wait until it is active (needs a running systemd)",
		Params: []*sdk.ParamSpec{
			{Name: "unit", Type: "string", Required: true, Description: `unit name, e.g. "nginx.service"; ".service" is added when there is no type suffix`},
			{Name: "action", Type: "string", Required: true, Description: "enable, disable, mask, unmask, start, stop, restart, reload or wait-active"},
			{Name: "timeout", Type: "string", Description: "duration (\"30s\") bounding the systemctl call, and how long wait-active waits (default 90s)"},
		},
	}, nil
}

type params struct {
	Unit    string `json:"unit"`
	Action  string `json:"action"`
	Timeout string `json:"timeout"`

	timeout time.Duration
}

// unitName is what systemd accepts in a unit name (unit-name.c), without
// a leading "-" so that it can never read as an option.
var unitName = regexp.MustCompile(`^[A-Za-z0-9:_.@\\][A-Za-z0-9:_.@\\-]*$`)

var unitSuffixes = []string{".service", ".socket", ".target", ".device", ".mount", ".automount",
	".swap", ".timer", ".path", ".slice", ".scope"}

func decode(sc *sdk.StepContext) (*params, []*sdk.FieldError) {
	var p params
	errs := sdk.FieldErrors(sdk.DecodeParams(sc, &p))
	switch {
	case p.Unit == "":
		errs.Add("unit", "is required")
	case len(p.Unit) > 255 || !unitName.MatchString(p.Unit):
		errs.Add("unit", "%q is not a valid unit name", p.Unit)
	}
	switch {
	case p.Action == "":
		errs.Add("action", "is required")
	case !slices.Contains(fileActions, p.Action) && !slices.Contains(runtimeActions, p.Action):
		errs.Add("action", "%q: want one of %s", p.Action, strings.Join(append(slices.Clone(fileActions), runtimeActions...), ", "))
	}
	if p.Timeout != "" {
		d, err := time.ParseDuration(p.Timeout)
		if err != nil || d < 0 {
			errs.Add("timeout", "%q is not a duration like \"30s\"", p.Timeout)
		}
		p.timeout = d
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if !slices.ContainsFunc(unitSuffixes, func(s string) bool { return strings.HasSuffix(p.Unit, s) }) {
		p.Unit += ".service"
	}
	return &p, nil
}

// Validate implements sdk.Plugin.
func (*Plugin) Validate(_ context.Context, sc *sdk.StepContext) ([]*sdk.FieldError, error) {
	_, errs := decode(sc)
	return errs, nil
}

// step is one call: its parameters and how to run systemctl.
type step struct {
	pl     *Plugin
	p      *params
	root   string
	booted bool // root is "/" and systemd runs here
}

func (pl *Plugin) open(sc *sdk.StepContext) (*step, error) {
	p, errs := decode(sc)
	if len(errs) > 0 {
		return nil, sdk.ParamsError(errs)
	}
	root := sc.GetRootDir()
	if root == "" {
		root = "/"
	}
	s := &step{pl: pl, p: p, root: root}
	if root == "/" {
		if fi, err := os.Stat(pl.bootedDir); err == nil && fi.IsDir() {
			s.booted = true
		}
	}
	if slices.Contains(runtimeActions, p.Action) && !s.booted {
		if root != "/" {
			return nil, fmt.Errorf("cannot %s %s under the root %s: %w", p.Action, p.Unit, root, ErrNoSystemd)
		}
		return nil, fmt.Errorf("cannot %s %s: %w", p.Action, p.Unit, ErrNoSystemd)
	}
	return s, nil
}

// ctl runs systemctl with args (the unit last, after "--") and returns
// its trimmed stdout; a non-zero exit is an error carrying stderr.
func (s *step) ctl(ctx context.Context, args ...string) (string, error) {
	argv := []string{"--no-pager", "--no-ask-password"}
	if !s.booted {
		argv = append(argv, "--root="+s.root)
	}
	argv = append(append(argv, args...), "--", s.p.Unit)
	cmd := exec.CommandContext(ctx, s.pl.systemctl, argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := strings.TrimSpace(stdout.String())
	if err != nil {
		if ctx.Err() != nil {
			return out, fmt.Errorf("systemctl %s %s: %w", strings.Join(args, " "), s.p.Unit, ctx.Err())
		}
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = out
		}
		return out, fmt.Errorf("systemctl %s %s: %w: %s", strings.Join(args, " "), s.p.Unit, err, msg)
	}
	return out, nil
}

// fileState is the unit's unit-file state (enabled, disabled, masked,
// static, ...).
func (s *step) fileState(ctx context.Context) (string, error) {
	out, err := s.ctl(ctx, "is-enabled")
	// is-enabled exits 1 for disabled and masked units, printing the state.
	if out != "" {
		return strings.SplitN(out, "\n", 2)[0], nil
	}
	if err != nil && strings.Contains(err.Error(), "No such file") {
		return "", fmt.Errorf("%s under %s: %w", s.p.Unit, s.root, ErrUnitNotFound)
	}
	if err == nil {
		err = errors.New("systemctl is-enabled printed nothing")
	}
	return "", err
}

// activeState is the unit's active state (active, inactive, failed, ...).
func (s *step) activeState(ctx context.Context) (string, error) {
	out, err := s.ctl(ctx, "is-active")
	if out != "" {
		return strings.SplitN(out, "\n", 2)[0], nil
	}
	if err == nil {
		err = errors.New("systemctl is-active printed nothing")
	}
	return "", err
}

// state is the state the action is about: the unit-file state for
// unit-file actions, the active state otherwise.
func (s *step) state(ctx context.Context) (string, error) {
	if slices.Contains(fileActions, s.p.Action) {
		return s.fileState(ctx)
	}
	return s.activeState(ctx)
}

// satisfied reports whether the unit in state needs no action.
func satisfied(action, state string) bool {
	switch action {
	case actEnable:
		return state == "enabled"
	case actDisable:
		return slices.Contains([]string{"disabled", "static", "indirect"}, state)
	case actMask:
		return state == "masked"
	case actUnmask:
		return state != "masked" && state != "masked-runtime"
	case actStart, actWaitActive:
		return state == "active"
	case actStop:
		return state == "inactive" || state == "failed"
	}
	return false // restart, reload: always act
}

// declared is the state a step declares for the audit comparison; empty
// for wait-active, which changes nothing.
func declared(action string) string {
	switch action {
	case actEnable:
		return "enabled"
	case actDisable:
		return "disabled"
	case actMask:
		return "masked"
	case actUnmask:
		return "unmasked"
	case actStart, actRestart, actReload:
		return "active"
	case actStop:
		return "inactive"
	}
	return ""
}

func (s *step) changes() []*sdk.Change {
	st := declared(s.p.Action)
	if st == "" {
		return nil
	}
	return []*sdk.Change{{Kind: sdk.ChangeService, Name: s.p.Unit, State: st}}
}

// withTimeouts bounds ctx by the step's deadline and the timeout param
// (for wait-active, its default wait).
func (s *step) withTimeouts(ctx context.Context, sc *sdk.StepContext) (context.Context, context.CancelFunc) {
	cancels := []context.CancelFunc{}
	if d, ok := sdk.Deadline(sc); ok {
		var c context.CancelFunc
		ctx, c = context.WithDeadline(ctx, d)
		cancels = append(cancels, c)
	}
	t := s.p.timeout
	if t == 0 && s.p.Action == actWaitActive {
		t = defaultWait
	}
	if t > 0 {
		var c context.CancelFunc
		ctx, c = context.WithTimeout(ctx, t)
		cancels = append(cancels, c)
	}
	return ctx, func() {
		for _, c := range cancels {
			c()
		}
	}
}

// Plan implements sdk.Plugin.
func (pl *Plugin) Plan(ctx context.Context, sc *sdk.StepContext) (*sdk.Plan, error) {
	s, err := pl.open(sc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.withTimeouts(ctx, sc)
	defer cancel()
	st, err := s.state(ctx)
	if errors.Is(err, ErrUnitNotFound) {
		// An earlier step (a package install) may bring the unit: the
		// plan still says what this step will do and declares it.
		return &sdk.Plan{Changes: s.changes(), WouldChange: true, Actions: []string{
			fmt.Sprintf("%s %s (its unit file is not under the root yet: Apply fails unless an earlier step installs it)", s.p.Action, s.p.Unit),
		}}, nil
	}
	if err != nil {
		return nil, err
	}
	plan := &sdk.Plan{Changes: s.changes()}
	switch {
	case s.p.Action == actWaitActive:
		plan.Actions = []string{fmt.Sprintf("wait until %s is active (now %s)", s.p.Unit, st)}
	case satisfied(s.p.Action, st):
		plan.Actions = []string{fmt.Sprintf("nothing to do: %s is %s", s.p.Unit, st)}
	default:
		plan.WouldChange = true
		plan.Actions = []string{fmt.Sprintf("%s %s (now %s)", s.p.Action, s.p.Unit, st)}
	}
	return plan, nil
}

// record is Apply's rollback record.
type record struct {
	Action string `json:"action"`
	Unit   string `json:"unit"`
	// Previous is the state before Apply: the unit-file state for
	// unit-file actions, the active state otherwise.
	Previous string `json:"previous"`
}

// Apply implements sdk.Plugin.
func (pl *Plugin) Apply(ctx context.Context, sc *sdk.StepContext, r sdk.Reporter) (*sdk.Result, error) {
	s, err := pl.open(sc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.withTimeouts(ctx, sc)
	defer cancel()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s %s: %w", s.p.Action, s.p.Unit, err)
	}
	prev, err := s.state(ctx)
	if err != nil {
		return nil, err
	}
	res := &sdk.Result{Changes: s.changes(), Outputs: map[string]string{"unit": s.p.Unit, "previous_state": prev}}
	if s.p.Action == actWaitActive {
		st, err := s.waitActive(ctx, prev)
		res.Outputs["state"] = st
		if err != nil {
			return nil, err
		}
		r.Log(sdk.LevelInfo, fmt.Sprintf("%s is active", s.p.Unit))
		return res, nil
	}
	// An earlier attempt of this step that a crash cut off left its undo
	// record: it has the state before that attempt.
	rec := record{Action: s.p.Action, Unit: s.p.Unit, Previous: prev}
	var prior record
	found, err := sdk.LoadUndo(sc, &prior)
	if err != nil {
		return nil, err
	}
	found = found && prior.Action == rec.Action && prior.Unit == rec.Unit
	if found {
		rec = prior
		res.Outputs["previous_state"] = rec.Previous
	}
	if satisfied(s.p.Action, prev) {
		res.Outputs["state"] = prev
		r.Log(sdk.LevelInfo, fmt.Sprintf("%s is already %s", s.p.Unit, prev))
		if found {
			r.Log(sdk.LevelInfo, "an earlier attempt of this step changed it; its undo record is kept")
			res.Changed = true
			res.RollbackRecord, err = json.Marshal(rec)
			return res, err
		}
		return res, nil
	}
	if sc.GetDryRun() {
		r.Log(sdk.LevelInfo, fmt.Sprintf("dry run: would %s %s (now %s)", s.p.Action, s.p.Unit, prev))
		return res, nil
	}
	// Write-ahead: the state to go back to is on disk before systemctl runs.
	if err := sdk.SaveUndo(sc, rec); err != nil {
		return nil, err
	}
	r.Log(sdk.LevelInfo, fmt.Sprintf("%s %s (was %s)", s.p.Action, s.p.Unit, prev))
	if _, err := s.ctl(ctx, s.p.Action); err != nil {
		return nil, err
	}
	now, err := s.state(ctx)
	if err != nil {
		return nil, err
	}
	res.Outputs["state"] = now
	if !satisfied(s.p.Action, now) && s.p.Action != actRestart && s.p.Action != actReload {
		hint := ""
		if now == "static" || now == "indirect" {
			hint = " (a unit without WantedBy=, RequiredBy= or Alias= in [Install] cannot be enabled)"
		}
		return nil, fmt.Errorf("%s %s: state is %s afterwards%s", s.p.Action, s.p.Unit, now, hint)
	}
	if s.p.Action == actUnmask {
		res.Changes = []*sdk.Change{{Kind: sdk.ChangeService, Name: s.p.Unit, State: now}}
	}
	res.Changed = true
	if res.RollbackRecord, err = json.Marshal(rec); err != nil {
		return nil, fmt.Errorf("encode rollback record: %w", err)
	}
	return res, nil
}

// waitActive polls until the unit is active.
func (s *step) waitActive(ctx context.Context, st string) (string, error) {
	t := time.NewTicker(s.pl.poll)
	defer t.Stop()
	for st != "active" {
		if st == "failed" {
			return st, fmt.Errorf("%s: %w: it failed", s.p.Unit, ErrNotActive)
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("%s: %w: still %s: %w", s.p.Unit, ErrNotActive, st, ctx.Err())
		case <-t.C:
		}
		var err error
		if st, err = s.activeState(ctx); err != nil && ctx.Err() == nil {
			return st, err
		}
	}
	return st, nil
}

// Verify implements sdk.Plugin: the unit is in the state the action
// makes.
func (pl *Plugin) Verify(ctx context.Context, sc *sdk.StepContext) (*sdk.Verification, error) {
	s, err := pl.open(sc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.withTimeouts(ctx, sc)
	defer cancel()
	st, err := s.state(ctx)
	if err != nil {
		return nil, err
	}
	want := declared(s.p.Action)
	if s.p.Action == actUnmask {
		want = "not masked"
	}
	if s.p.Action == actWaitActive {
		want = "active"
	}
	ok := satisfied(s.p.Action, st) || (s.p.Action == actRestart || s.p.Action == actReload) && st == "active"
	return &sdk.Verification{Passed: ok, Evidence: fmt.Sprintf("%s is %s, want %s", s.p.Unit, st, want)}, nil
}

// Rollback implements sdk.Plugin: puts the unit back in its previous
// state.
func (pl *Plugin) Rollback(ctx context.Context, sc *sdk.StepContext, data []byte) (*sdk.RollbackResult, error) {
	var rec record
	found, err := sdk.RollbackRecord(sc, data, &rec)
	if err != nil {
		return nil, err
	}
	if !found {
		return &sdk.RollbackResult{Message: "nothing to roll back: apply changed nothing"}, nil
	}
	res, err := pl.rollback(ctx, sc, rec)
	if err != nil {
		return nil, err
	}
	return res, sdk.ClearUndo(sc)
}

func (pl *Plugin) rollback(ctx context.Context, sc *sdk.StepContext, rec record) (*sdk.RollbackResult, error) {
	s, err := pl.open(sc)
	if err != nil {
		return nil, err
	}
	if rec.Unit != s.p.Unit || rec.Action != s.p.Action {
		return nil, fmt.Errorf("rollback record is for %s %s, the step is %s %s", rec.Action, rec.Unit, s.p.Action, s.p.Unit)
	}
	ctx, cancel := s.withTimeouts(ctx, sc)
	defer cancel()
	switch rec.Action {
	case actStart:
		if rec.Previous != "active" {
			if _, err := s.ctl(ctx, actStop); err != nil {
				return nil, err
			}
			return &sdk.RollbackResult{Changed: true, Message: "stopped " + s.p.Unit}, nil
		}
	case actStop:
		if rec.Previous == "active" {
			if _, err := s.ctl(ctx, actStart); err != nil {
				return nil, err
			}
			return &sdk.RollbackResult{Changed: true, Message: "started " + s.p.Unit}, nil
		}
	case actRestart, actReload, actWaitActive:
		return &sdk.RollbackResult{Message: "nothing to undo for " + rec.Action}, nil
	default:
		return s.restoreFileState(ctx, rec.Previous)
	}
	return &sdk.RollbackResult{Message: fmt.Sprintf("%s was %s before; nothing to undo", s.p.Unit, rec.Previous)}, nil
}

// restoreFileState brings the unit-file state back to prev.
func (s *step) restoreFileState(ctx context.Context, prev string) (*sdk.RollbackResult, error) {
	now, err := s.fileState(ctx)
	if err != nil {
		return nil, err
	}
	if now == prev {
		return &sdk.RollbackResult{Message: fmt.Sprintf("%s is %s already", s.p.Unit, now)}, nil
	}
	var steps []string
	run := func(action string) error {
		steps = append(steps, action)
		_, err := s.ctl(ctx, action)
		return err
	}
	if prev == "masked" {
		if err := run(actMask); err != nil {
			return nil, err
		}
	} else {
		if now == "masked" {
			if err := run(actUnmask); err != nil {
				return nil, err
			}
			if now, err = s.fileState(ctx); err != nil {
				return nil, err
			}
		}
		switch {
		case now == prev:
		case prev == "enabled":
			if err := run(actEnable); err != nil {
				return nil, err
			}
		case prev == "disabled":
			if err := run(actDisable); err != nil {
				return nil, err
			}
		}
	}
	if now, err = s.fileState(ctx); err != nil {
		return nil, err
	}
	if now != prev {
		return nil, fmt.Errorf("roll back %s: state is %s after %s, want %s", s.p.Unit, now, strings.Join(steps, ", "), prev)
	}
	return &sdk.RollbackResult{Changed: len(steps) > 0, Message: fmt.Sprintf("%s: %s, back to %s", s.p.Unit, strings.Join(steps, ", "), prev)}, nil
}
