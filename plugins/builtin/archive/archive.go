// Package archive is the built-in step plugin that extracts a tar, tar.gz
// or zip artifact into a directory under the root, safely.
//
// The archive is read twice. The first pass checks every member before
// anything is written and refuses the whole archive (ErrUnsafeEntry,
// naming the member) for an absolute name, a ".." element, a backslash or
// NUL in a name, a name or link target that is over-long (4096 bytes, or
// more than 256 directories deep) or not UTF-8, a
// symlink whose target is absolute or does not lead inside the
// destination, a hard link to anything but a file earlier in the archive,
// a device or FIFO, a member written through a symlink, and a file named
// "." or "". Where symlinks lead is judged on the tree after extraction
// (the archive's members over what is on disk), the way the kernel
// resolves them: see links.go. A symlink already on disk under the
// destination that the archive's changes would turn into a way out
// refuses the archive too.
//
// The first pass also enforces the step's limits while it reads, counting
// the bytes actually read (a sparse tar member counts its logical size;
// declared sizes are not trusted) and stopping at the first byte past a
// limit (ErrLimit): max_bytes (default 4 GiB) of extracted content,
// max_entries (default 100,000) paths (members, and the directories
// their names need that the archive does not list), and max_ratio (default 200)
// extracted bytes per archive byte once more than 1 MiB is extracted. A
// zip's declared number of members is checked against max_entries before
// its central directory is read. A tar must end with its end-of-archive marker, or it is refused as
// truncated (ErrFormat). Before writing, Apply checks that the
// destination's filesystem keeps 64 MiB free after the extraction
// (ErrNoSpace). The second pass writes through an os.Root opened at
// ROOT/dest, so even a symlink swapped in meanwhile cannot lead a write
// outside, enforces the limits again, and checks every file against the
// size and digest of the first pass; each file goes to a temporary name
// and is renamed into place.
//
// Undo is write-ahead (sdk.SaveUndo). Before changing anything, Apply
// copies every file it will replace into the step's state_dir (or, from a
// host without one, CACHE_DIR/IDEMPOTENCY_KEY/), and saves a record of
// the paths it will create, the paths it will replace and their backups,
// and the directories it makes for dest. A re-run of a step that was cut
// off loads that record and keeps it (a path the first attempt created
// stays created) and reports a change while the record is not empty.
// Rollback with no record loads it from the state directory. Temporary
// names derive from the step's idempotency key, not the process, so a
// re-run or rollback removes the temporary files of a killed attempt.
// When the second pass fails, Apply undoes what the record names and
// clears it.
//
// Files already present with the archive's content and mode are left
// alone, so Apply is idempotent. Owners are not set (files belong to the
// agent's user); permission bits are ANDed with mode_mask (default 01777:
// no setuid or setgid, the sticky bit kept). Zip members made without
// Unix modes (on Windows) get 0644, directories 0755.
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
	"unicode/utf8"

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
			{Name: "mode_mask", Type: "string", Description: `octal mask ANDed with every member's permissions (default "01777": no setuid or setgid)`},
			{Name: "max_bytes", Type: "number", Description: "most bytes the archive's files may hold once extracted (default 4294967296, 4 GiB)"},
			{Name: "max_entries", Type: "number", Description: "most paths the archive may make: members, and the directories their names need (default 100000)"},
			{Name: "max_ratio", Type: "number", Description: "most extracted bytes per byte of the archive, once more than 1 MiB is extracted (default 200)"},
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
		return nil, sdk.ParamsError(errs)
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

// survey scans the archive, compares it with the disk, and checks where
// the symlinks of the tree after extraction lead.
func (s *step) survey(ctx context.Context) (*layout, []action, error) {
	l, err := scan(ctx, s.file, s.p, s.dest)
	if err != nil {
		return nil, nil, fmt.Errorf("archive %s: %w", s.p.Artifact, err)
	}
	acts, err := l.compare()
	if err != nil {
		return nil, nil, err
	}
	l.markChanged(acts)
	if err := l.checkArchiveLinks(); err != nil {
		return nil, nil, fmt.Errorf("archive %s: %w", s.p.Artifact, err)
	}
	if err := l.checkDiskLinks(); err != nil {
		return nil, nil, fmt.Errorf("archive %s: %w", s.p.Artifact, err)
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
func (*Plugin) Plan(ctx context.Context, sc *sdk.StepContext) (_ *sdk.Plan, err error) {
	defer func() { err = validError(err) }()
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
	for i, a := range plan.Actions {
		plan.Actions[i] = valid(a)
	}
	return plan, nil
}

// Apply implements sdk.Plugin.
func (*Plugin) Apply(ctx context.Context, sc *sdk.StepContext, r sdk.Reporter) (_ *sdk.Result, err error) {
	defer func() { err = validError(err) }()
	s, err := open(sc)
	if err != nil {
		return nil, err
	}
	defer s.close()
	l, acts, err := s.survey(ctx)
	if err != nil {
		return nil, err
	}
	var prev record
	found, err := sdk.LoadUndo(sc, &prev)
	if err != nil {
		return nil, err
	}
	if found && prev.Dest != s.p.Dest {
		return nil, fmt.Errorf("an earlier attempt of this step extracted into %s, not %s: roll it back first", prev.Dest, s.p.Dest)
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
		r.Log(sdk.LevelInfo, valid(fmt.Sprintf("all %d members of %s already in place under %s", len(l.entries), s.p.Artifact, s.p.Dest)))
		if found && !prev.empty() && !sc.GetDryRun() {
			// An earlier attempt was cut off after it changed the root:
			// this run reports its change, and its record undoes it.
			if s.dest != nil {
				removeTemps(s.dest, &prev)
				if err := fixDirModes(s.dest, l, acts, &prev); err != nil {
					return nil, err
				}
			}
			if res.RollbackRecord, err = json.Marshal(&prev); err != nil {
				return nil, fmt.Errorf("encode rollback record: %w", err)
			}
			res.Changed = true
		}
		return res, nil
	}
	if sc.GetDryRun() {
		r.Log(sdk.LevelInfo, valid(fmt.Sprintf("dry run: would write %d of %d members under %s", n, len(l.entries), s.p.Dest)))
		return res, nil
	}
	madeDest, err := missingDest(s.root, s.destRel, s.p.Dest)
	if err != nil {
		return nil, err
	}
	var earlier *record
	if found {
		earlier = &prev
	}
	rec, backups, err := planRecord(earlier, l, acts, madeDest, s.p.Dest, backupDir(sc), tempTag(sc.GetIdempotencyKey(), sc.GetStep(), s.p.Dest))
	if err != nil {
		return nil, err
	}
	var write, keep int64
	for i, e := range l.entries {
		if acts[i] != unchanged && e.kind == kindFile {
			write += e.size
		}
	}
	for _, b := range backups {
		if fi := l.lstat(b.Path); fi != nil {
			keep += fi.Size()
		}
	}
	if err := checkSpace(s.root, sc.GetRootDir(), s.destRel, write, rec.BackupDir, keep); err != nil {
		return nil, err
	}
	// Write-ahead: the backups and the record are on disk before the
	// root changes.
	if err := saveBackups(s.dest, rec, backups); err != nil {
		removeBackups(&record{BackupDir: rec.BackupDir, Replaced: backups})
		return nil, err
	}
	if err := sdk.SaveUndo(sc, rec); err != nil {
		removeBackups(&record{BackupDir: rec.BackupDir, Replaced: backups})
		return nil, err
	}
	hook("saved")
	r.Progress(0, valid(fmt.Sprintf("extracting %d members into %s", n, s.p.Dest)))
	if err := extract(ctx, s.root, s.destRel, madeDest, s.file, s.p, l, acts, rec.Temp); err != nil {
		err = fmt.Errorf("extract %s into %s: %w", s.p.Artifact, s.p.Dest, err)
		if uerr := undo(s.root, rec); uerr != nil {
			return nil, fmt.Errorf("%w (undoing the partial extraction also failed, the undo record is kept for rollback: %v)", err, uerr)
		}
		removeBackups(rec)
		if cerr := sdk.ClearUndo(sc); cerr != nil {
			return nil, fmt.Errorf("%w (the partial extraction is undone; %v)", err, cerr)
		}
		return nil, err
	}
	if dest, err := s.root.OpenRoot(s.destRel); err == nil {
		err = fixDirModes(dest, l, acts, rec)
		dest.Close()
		if err != nil {
			return nil, err
		}
	}
	hook("done")
	r.Progress(1, valid(fmt.Sprintf("extracted %d members into %s", n, s.p.Dest)))
	if res.RollbackRecord, err = json.Marshal(rec); err != nil {
		return nil, fmt.Errorf("encode rollback record: %w", err)
	}
	res.Changed = true
	return res, nil
}

// backupDir is where Apply keeps replaced files: STATE_DIR/archive-backup,
// or CACHE_DIR/KEY/ from a host that gives no state directory.
func backupDir(sc *sdk.StepContext) string {
	if sc.GetStateDir() != "" {
		return filepath.Join(sc.GetStateDir(), "archive-backup")
	}
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
func (*Plugin) Verify(ctx context.Context, sc *sdk.StepContext) (_ *sdk.Verification, err error) {
	defer func() { err = validError(err) }()
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
		return &sdk.Verification{Passed: true, Evidence: valid(fmt.Sprintf("all %d members of %s are in place under %s", len(l.entries), s.p.Artifact, s.p.Dest))}, nil
	}
	if len(bad) > 20 {
		bad = append(bad[:20], fmt.Sprintf("and %d more", len(bad)-20))
	}
	return &sdk.Verification{Evidence: valid(fmt.Sprintf("%d of %d members of %s not in place: %s", len(bad), len(l.entries), s.p.Artifact, strings.Join(bad, "; ")))}, nil
}

// Rollback implements sdk.Plugin: removes what Apply created and restores
// what it replaced. Without a record (Apply was cut off before its result
// was journaled) it uses the undo record in the state directory.
func (*Plugin) Rollback(_ context.Context, sc *sdk.StepContext, data []byte) (_ *sdk.RollbackResult, err error) {
	defer func() { err = validError(err) }()
	var rec record
	found, err := sdk.RollbackRecord(sc, data, &rec)
	if err != nil {
		return nil, err
	}
	if !found {
		return &sdk.RollbackResult{Message: "nothing to roll back: apply changed nothing"}, nil
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
	if err := sdk.ClearUndo(sc); err != nil {
		return nil, err
	}
	removeBackups(&rec)
	return &sdk.RollbackResult{
		Changed: !rec.empty(),
		Message: valid(fmt.Sprintf("removed %d created paths and restored %d replaced ones under %s", len(rec.Created)+len(rec.MadeDest), len(rec.Replaced), rec.Dest)),
	}, nil
}

// valid replaces what is not UTF-8 in s: proto strings must be UTF-8, and
// messages may quote what is on disk.
func valid(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// validError returns err with a message that is valid UTF-8, still
// matching the same errors.Is targets.
func validError(err error) error {
	if err == nil || utf8.ValidString(err.Error()) {
		return err
	}
	return &utf8Error{msg: valid(err.Error()), err: err}
}

type utf8Error struct {
	msg string
	err error
}

func (e *utf8Error) Error() string { return e.msg }
func (e *utf8Error) Unwrap() error { return e.err }
