// Package archive is the built-in step plugin that extracts a tar, tar.gz
// or zip artifact into a directory under the root, safely.
//
// The archive is read twice. The first pass checks every member before
// anything is written and refuses the whole archive (ErrUnsafeEntry,
// naming the member) for an absolute name, a ".." element, a backslash or
// NUL in a name, an over-long name, a symlink whose target is absolute or
// leaves the destination (following the archive's own symlinks and those
// already on disk), a hard link to anything but a file earlier in the
// archive, a device or FIFO, a member written through a symlink, and a
// file named "." or "". The second pass writes through an os.Root opened
// at ROOT/dest, so even a symlink swapped in meanwhile cannot lead a write
// outside; each file goes to a temporary name and is renamed into place.
// When the second pass fails, what it made is removed and what it
// replaced restored.
//
// Files already present with the archive's content and mode are left
// alone, so Apply is idempotent; its rollback record lists the paths it
// created and replaced, the replaced files' previous contents being kept
// under CACHE_DIR/IDEMPOTENCY_KEY/. Owners are not set (files belong to
// the agent's user); permission bits are ANDed with mode_mask (default
// 0777: no setuid, setgid or sticky bits).
package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

// Name is the plugin's name in manifests.
const Name = "archive"

// maxDeclared bounds the file changes a step declares.
const maxDeclared = 10000

// Plugin extracts archives. The zero value is ready to use.
type Plugin struct{}

var _ sdk.Plugin = (*Plugin)(nil)

// New returns the archive plugin.
func New() sdk.Plugin { return &Plugin{} }

// Describe implements sdk.Plugin.
func (*Plugin) Describe(context.Context) (*sdk.Description, error) {
	return &sdk.Description{
		Name:       Name,
		Version:    "1.0.0",
		Idempotent: true,
		Summary:    "extract a tar, tar.gz or zip artifact into a directory under the root, refusing any entry that could escape it",
		Params: []*sdk.ParamSpec{
			{Name: "artifact", Type: "string", Required: true, Description: "name of the archive among the step's artifacts"},
			{Name: "dest", Type: "string", Required: true, Description: "absolute directory inside the root to extract into; made when missing"},
			{Name: "format", Type: "string", Description: "tar, tar.gz or zip; empty detects it from the content"},
			{Name: "strip_components", Type: "number", Description: "leading path elements to drop from every name, like tar --strip-components"},
			{Name: "mode_mask", Type: "string", Description: `octal mask ANDed with every member's permissions (default "0777")`},
		},
	}, nil
}

// Validate implements sdk.Plugin.
func (*Plugin) Validate(_ context.Context, sc *sdk.StepContext) ([]*sdk.FieldError, error) {
	_, errs := decode(sc)
	return errs, nil
}

// step is one call's decoded parameters and opened paths.
type step struct {
	p       *params
	file    string   // the archive
	root    *os.Root // the step's root
	destRel string   // dest relative to the root, "." for the root itself
	dest    *os.Root // nil when dest does not exist yet
}

func (s *step) close() {
	if s.dest != nil {
		s.dest.Close()
	}
	s.root.Close()
}

func open(sc *sdk.StepContext) (*step, error) {
	p, errs := decode(sc)
	if len(errs) > 0 {
		return nil, fieldErrors(errs)
	}
	file := sc.GetArtifacts()[p.Artifact]
	if file == "" {
		return nil, fmt.Errorf("no artifact named %q in the step context", p.Artifact)
	}
	rootDir := sc.GetRootDir()
	if rootDir == "" {
		rootDir = "/"
	}
	root, err := os.OpenRoot(rootDir)
	if err != nil {
		return nil, fmt.Errorf("open root: %w", err)
	}
	s := &step{p: p, file: file, root: root, destRel: strings.TrimPrefix(p.Dest, "/")}
	if s.destRel == "" {
		s.destRel = "."
	}
	s.dest, err = root.OpenRoot(s.destRel)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		root.Close()
		return nil, fmt.Errorf("open destination %s: %w", p.Dest, err)
	}
	return s, nil
}

func fieldErrors(errs []*sdk.FieldError) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.GetField() + ": " + e.GetMessage()
		if e.GetField() == "" {
			msgs[i] = e.GetMessage()
		}
	}
	return fmt.Errorf("invalid parameters: %s", strings.Join(msgs, "; "))
}

// survey scans the archive and compares it with the disk.
func (s *step) survey(ctx context.Context) (*layout, []action, error) {
	l, err := scan(ctx, s.file, s.p, s.dest)
	if err != nil {
		return nil, nil, fmt.Errorf("archive %s: %w", s.p.Artifact, err)
	}
	acts, err := l.compare()
	if err != nil {
		return nil, nil, err
	}
	return l, acts, nil
}

// changes declares the regular files the archive places.
func (s *step) changes(l *layout) []*sdk.Change {
	var out []*sdk.Change
	for _, e := range l.entries {
		if e.kind != kindFile && e.kind != kindHardlink {
			continue
		}
		if len(out) == maxDeclared {
			break
		}
		out = append(out, &sdk.Change{Kind: sdk.ChangeFile, Name: path.Join(s.p.Dest, e.path), State: "present", Sha256: e.sha})
	}
	return out
}

// Plan implements sdk.Plugin.
func (*Plugin) Plan(ctx context.Context, sc *sdk.StepContext) (*sdk.Plan, error) {
	s, err := open(sc)
	if err != nil {
		return nil, err
	}
	defer s.close()
	l, acts, err := s.survey(ctx)
	if err != nil {
		return nil, err
	}
	plan := &sdk.Plan{Changes: s.changes(l)}
	n := 0
	for i, e := range l.entries {
		if acts[i] == unchanged {
			continue
		}
		plan.WouldChange = true
		if n++; n > maxDeclared {
			continue
		}
		verb := "create"
		if acts[i] == replace {
			verb = "replace"
		}
		plan.Actions = append(plan.Actions, fmt.Sprintf("%s %s %s", verb, e.kind, path.Join(s.p.Dest, e.path)))
	}
	if n > maxDeclared {
		plan.Actions = append(plan.Actions, fmt.Sprintf("... and %d more", n-maxDeclared))
	}
	if !plan.WouldChange {
		plan.Actions = []string{fmt.Sprintf("nothing to do: the %d members of %s are in place under %s", len(l.entries), s.p.Artifact, s.p.Dest)}
	}
	return plan, nil
}

// Apply implements sdk.Plugin.
func (*Plugin) Apply(ctx context.Context, sc *sdk.StepContext, r sdk.Reporter) (*sdk.Result, error) {
	s, err := open(sc)
	if err != nil {
		return nil, err
	}
	defer s.close()
	l, acts, err := s.survey(ctx)
	if err != nil {
		return nil, err
	}
	res := &sdk.Result{Changes: s.changes(l), Outputs: map[string]string{"dest": s.p.Dest}}
	var n int
	for _, a := range acts {
		if a != unchanged {
			n++
		}
	}
	res.Outputs["members"] = fmt.Sprint(len(l.entries))
	res.Outputs["written"] = fmt.Sprint(n)
	if n == 0 {
		r.Log(sdk.LevelInfo, fmt.Sprintf("all %d members of %s already in place under %s", len(l.entries), s.p.Artifact, s.p.Dest))
		return res, nil
	}
	if sc.GetDryRun() {
		r.Log(sdk.LevelInfo, fmt.Sprintf("dry run: would write %d of %d members under %s", n, len(l.entries), s.p.Dest))
		return res, nil
	}
	r.Progress(0, fmt.Sprintf("extracting %d members into %s", n, s.p.Dest))
	rec, err := extract(ctx, s.root, s.destRel, s.file, s.p, l, acts, backupDir(sc))
	if err != nil {
		return nil, fmt.Errorf("extract %s into %s: %w", s.p.Artifact, s.p.Dest, err)
	}
	r.Progress(1, fmt.Sprintf("extracted %d members into %s", n, s.p.Dest))
	if res.RollbackRecord, err = json.Marshal(rec); err != nil {
		return nil, fmt.Errorf("encode rollback record: %w", err)
	}
	res.Changed = true
	return res, nil
}

// backupDir is where Apply keeps replaced files: CACHE_DIR/KEY/.
func backupDir(sc *sdk.StepContext) string {
	if sc.GetCacheDir() == "" {
		return ""
	}
	key := sc.GetIdempotencyKey()
	if key == "" || key == "." || key == ".." || strings.ContainsAny(key, "/\\\x00") {
		sum := sha256.Sum256([]byte("archive:" + key + ":" + sc.GetStep()))
		key = "archive-" + hex.EncodeToString(sum[:8])
	}
	return filepath.Join(sc.GetCacheDir(), key)
}

// Verify implements sdk.Plugin: every member is in place, files with the
// archive's sha256 and mode, symlinks with its targets.
func (*Plugin) Verify(ctx context.Context, sc *sdk.StepContext) (*sdk.Verification, error) {
	s, err := open(sc)
	if err != nil {
		return nil, err
	}
	defer s.close()
	l, acts, err := s.survey(ctx)
	if err != nil {
		return nil, err
	}
	var bad []string
	for i, e := range l.entries {
		if acts[i] == unchanged {
			continue
		}
		what := "differs"
		if acts[i] == create {
			what = "missing"
		}
		bad = append(bad, fmt.Sprintf("%s %s", path.Join(s.p.Dest, e.path), what))
	}
	if len(bad) == 0 {
		return &sdk.Verification{Passed: true, Evidence: fmt.Sprintf("all %d members of %s are in place under %s", len(l.entries), s.p.Artifact, s.p.Dest)}, nil
	}
	if len(bad) > 20 {
		bad = append(bad[:20], fmt.Sprintf("and %d more", len(bad)-20))
	}
	return &sdk.Verification{Evidence: fmt.Sprintf("%d of %d members of %s not in place: %s", len(bad), len(l.entries), s.p.Artifact, strings.Join(bad, "; "))}, nil
}

// Rollback implements sdk.Plugin: removes what Apply created and restores
// what it replaced.
func (*Plugin) Rollback(_ context.Context, sc *sdk.StepContext, data []byte) (*sdk.RollbackResult, error) {
	if len(data) == 0 {
		return &sdk.RollbackResult{Message: "nothing to roll back: apply changed nothing"}, nil
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("decode rollback record: %w", err)
	}
	if rec.Dest == "" || !strings.HasPrefix(rec.Dest, "/") || hasDotDot(rec.Dest) {
		return nil, fmt.Errorf("rollback record names the destination %q", rec.Dest)
	}
	rootDir := sc.GetRootDir()
	if rootDir == "" {
		rootDir = "/"
	}
	root, err := os.OpenRoot(rootDir)
	if err != nil {
		return nil, fmt.Errorf("open root: %w", err)
	}
	defer root.Close()
	if err := undo(root, &rec); err != nil {
		return nil, fmt.Errorf("roll back extraction into %s: %w", rec.Dest, err)
	}
	if rec.BackupDir != "" {
		for _, r := range rec.Replaced {
			if r.Backup != "" {
				os.Remove(filepath.Join(rec.BackupDir, filepath.Base(r.Backup)))
			}
		}
		os.Remove(rec.BackupDir) // only when empty
	}
	return &sdk.RollbackResult{
		Changed: !rec.empty(),
		Message: fmt.Sprintf("removed %d created paths and restored %d replaced ones under %s", len(rec.Created)+len(rec.MadeDest), len(rec.Replaced), rec.Dest),
	}, nil
}
