package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

// version is the plugin's version, reported by Describe.
const version = "1.0.0"

// motd is the plugin. It keeps no state between calls: everything comes
// from the StepContext and the file system.
type motd struct{}

var _ sdk.Plugin = motd{}

// New returns the plugin.
func New() sdk.Plugin { return motd{} }

// params are the plugin's parameters, as decoded.
type params struct {
	Message string `json:"message"`
	Path    string `json:"path"`
	Mode    string `json:"mode"`
}

// step is a validated step: the file, relative to the root, its content
// and its mode.
type step struct {
	rel     string // "etc/motd"
	name    string // "/etc/motd", for messages and declared changes
	content []byte
	mode    fs.FileMode
}

// record is the rollback record: the file before Apply.
type record struct {
	Absent  bool        `json:"absent,omitempty"`
	Content []byte      `json:"content,omitempty"`
	Mode    fs.FileMode `json:"mode,omitempty"`
	// Directories Apply created for the file, deepest last.
	CreatedDirs []string `json:"created_dirs,omitempty"`
}

func (motd) Describe(context.Context) (*sdk.Description, error) {
	return &sdk.Description{
		Name:       "motd",
		Version:    version,
		Idempotent: true,
		Summary:    "write a message of the day to a file under the root",
		Params: []*sdk.ParamSpec{
			{Name: "message", Type: "string", Required: true, Description: "the message; a final newline is added if missing"},
			{Name: "path", Type: "string", Description: "absolute path of the file under the root (default /etc/motd)"},
			{Name: "mode", Type: "string", Description: `octal permissions of the file (default "0644")`},
		},
	}, nil
}

func (m motd) Validate(ctx context.Context, sc *sdk.StepContext) ([]*sdk.FieldError, error) {
	_, errs := parse(sc)
	return errs, nil
}

// parse decodes and checks the parameters.
func parse(sc *sdk.StepContext) (step, []*sdk.FieldError) {
	p := params{Path: "/etc/motd", Mode: "0644"}
	errs := sdk.FieldErrors(sdk.DecodeParams(sc, &p))
	if _, ok := sdk.Params(sc)["message"]; !ok {
		errs.Add("message", "is required")
	}
	clean := path.Clean(p.Path)
	switch {
	case !path.IsAbs(p.Path):
		errs.Add("path", "must be absolute, not %q", p.Path)
	case clean == "/" || strings.HasSuffix(p.Path, "/"):
		errs.Add("path", "must name a file, not %q", p.Path)
	}
	mode, err := strconv.ParseUint(p.Mode, 8, 32)
	if err != nil || mode > 0o777 {
		errs.Add("mode", "must be octal permissions such as \"0644\", not %q", p.Mode)
	}
	if len(errs) > 0 {
		return step{}, errs
	}
	content := []byte(p.Message)
	if !bytes.HasSuffix(content, []byte("\n")) {
		content = append(content, '\n')
	}
	return step{rel: clean[1:], name: clean, content: content, mode: fs.FileMode(mode)}, nil
}

// load validates the parameters and opens the root; a step that does not
// validate is an error here.
func load(sc *sdk.StepContext) (step, *os.Root, error) {
	s, errs := parse(sc)
	if len(errs) > 0 {
		return step{}, nil, sdk.ParamsError(errs)
	}
	root, err := os.OpenRoot(sc.GetRootDir())
	if err != nil {
		return step{}, nil, fmt.Errorf("open root: %w", err)
	}
	return s, root, nil
}

// current reads the file as it is: content and mode, or absent.
func current(root *os.Root, rel string) (record, error) {
	info, err := root.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return record{Absent: true}, nil
	}
	if err != nil {
		return record{}, err
	}
	if !info.Mode().IsRegular() {
		return record{}, fmt.Errorf("%s is not a regular file (%s)", rel, info.Mode().Type())
	}
	data, err := root.ReadFile(rel)
	if err != nil {
		return record{}, err
	}
	return record{Content: data, Mode: info.Mode().Perm()}, nil
}

func (s step) matches(r record) bool {
	return !r.Absent && bytes.Equal(r.Content, s.content) && r.Mode == s.mode
}

func (s step) change() *sdk.Change {
	sum := sha256.Sum256(s.content)
	return &sdk.Change{Kind: sdk.ChangeFile, Name: s.name, State: "present", Sha256: hex.EncodeToString(sum[:])}
}

func (motd) Plan(ctx context.Context, sc *sdk.StepContext) (*sdk.Plan, error) {
	s, root, err := load(sc)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	cur, err := current(root, s.rel)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.name, err)
	}
	plan := &sdk.Plan{Changes: []*sdk.Change{s.change()}}
	switch {
	case cur.Absent:
		plan.Actions = []string{fmt.Sprintf("create %s (%d bytes, mode %04o)", s.name, len(s.content), s.mode)}
	case !bytes.Equal(cur.Content, s.content):
		plan.Actions = []string{fmt.Sprintf("replace the content of %s (%d bytes, mode %04o)", s.name, len(s.content), s.mode)}
	case cur.Mode != s.mode:
		plan.Actions = []string{fmt.Sprintf("change the mode of %s from %04o to %04o", s.name, cur.Mode, s.mode)}
	}
	plan.WouldChange = len(plan.Actions) > 0
	return plan, nil
}

func (motd) Apply(ctx context.Context, sc *sdk.StepContext, r sdk.Reporter) (*sdk.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	s, root, err := load(sc)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	prev, err := current(root, s.rel)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.name, err)
	}
	res := &sdk.Result{Changes: []*sdk.Change{s.change()}, Outputs: map[string]string{"sha256": s.change().GetSha256()}}
	// An earlier attempt of this step that a crash cut off saved the file
	// as it was before it: that stays the record to roll back to.
	var earlier record
	found, err := sdk.LoadUndo(sc, &earlier)
	if err != nil {
		return nil, err
	}
	now := prev
	if found {
		prev = earlier
	}
	if s.matches(now) {
		r.Log(sdk.LevelInfo, s.name+" is up to date")
		res.Changed = found
		res.RollbackRecord, err = json.Marshal(prev)
		return res, err
	}
	if !found {
		if prev.CreatedDirs, err = missingDirs(root, path.Dir(s.rel)); err != nil {
			return nil, fmt.Errorf("the directory of %s: %w", s.name, err)
		}
		// Write-ahead: the record is on disk before anything changes.
		if err := sdk.SaveUndo(sc, prev); err != nil {
			return nil, err
		}
	}
	for _, dir := range prev.CreatedDirs {
		if err := root.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("create the directory of %s: %w", s.name, err)
		}
	}
	r.Log(sdk.LevelInfo, fmt.Sprintf("writing %s (%d bytes)", s.name, len(s.content)))
	r.Progress(0.5, "writing")
	if err := writeFile(ctx, root, s.rel, s.content, s.mode); err != nil {
		return nil, fmt.Errorf("write %s: %w", s.name, err)
	}
	r.Progress(1, "written")
	res.Changed = true
	res.RollbackRecord, err = json.Marshal(prev)
	return res, err
}

func (motd) Verify(ctx context.Context, sc *sdk.StepContext) (*sdk.Verification, error) {
	s, root, err := load(sc)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	cur, err := current(root, s.rel)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.name, err)
	}
	want := s.change().GetSha256()
	if cur.Absent {
		return &sdk.Verification{Evidence: fmt.Sprintf("%s is absent; want sha256 %s", s.name, want)}, nil
	}
	sum := sha256.Sum256(cur.Content)
	got := hex.EncodeToString(sum[:])
	return &sdk.Verification{
		Passed:   s.matches(cur),
		Evidence: fmt.Sprintf("%s has sha256 %s and mode %04o; want sha256 %s and mode %04o", s.name, got, cur.Mode, want, s.mode),
	}, nil
}

func (motd) Rollback(ctx context.Context, sc *sdk.StepContext, data []byte) (*sdk.RollbackResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("rollback: %w", err)
	}
	s, root, err := load(sc)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	var rec record
	found, err := sdk.RollbackRecord(sc, data, &rec)
	if err != nil {
		return nil, err
	}
	if !found {
		return &sdk.RollbackResult{Message: "nothing to undo"}, nil
	}
	// The temporary file of a write a crash cut off goes too.
	if err := root.Remove(tempName(s.rel)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	cur, err := current(root, s.rel)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.name, err)
	}
	res := &sdk.RollbackResult{}
	switch {
	case rec.Absent && !cur.Absent:
		if err := root.Remove(s.rel); err != nil {
			return nil, fmt.Errorf("remove %s: %w", s.name, err)
		}
		if err := syncDir(root, path.Dir(s.rel)); err != nil {
			return nil, err
		}
		res.Changed, res.Message = true, "removed "+s.name
	case rec.Absent:
		res.Message = s.name + " is already absent"
	case cur.Absent || !bytes.Equal(cur.Content, rec.Content) || cur.Mode != rec.Mode:
		if err := writeFile(ctx, root, s.rel, rec.Content, rec.Mode); err != nil {
			return nil, fmt.Errorf("restore %s: %w", s.name, err)
		}
		res.Changed, res.Message = true, "restored the previous "+s.name
	default:
		res.Message = s.name + " already has its previous content"
	}
	// Remove the directories Apply created, deepest first, if empty.
	for i := len(rec.CreatedDirs) - 1; i >= 0; i-- {
		dir := rec.CreatedDirs[i]
		entries, err := readDir(root, dir)
		if err != nil || len(entries) > 0 {
			break
		}
		if err := root.Remove(dir); err != nil {
			return nil, fmt.Errorf("remove directory /%s: %w", dir, err)
		}
		res.Changed = true
	}
	return res, sdk.ClearUndo(sc)
}

// tempName is the temporary file writeFile uses for rel: always the same
// name, so that a later attempt or Rollback removes one a crash left.
func tempName(rel string) string {
	return path.Join(path.Dir(rel), "."+path.Base(rel)+".tmp-cairn")
}

// writeFile replaces rel with content atomically: a temporary file in the
// same directory, written, fsynced, renamed over rel, and the directory
// fsynced.
func writeFile(ctx context.Context, root *os.Root, rel string, content []byte, mode fs.FileMode) (err error) {
	dir := path.Dir(rel)
	tmp := tempName(rel)
	if err := root.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			root.Remove(tmp)
		}
	}()
	if _, err := f.Write(content); err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil { // not subject to the umask
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := root.Rename(tmp, rel); err != nil {
		return err
	}
	return syncDir(root, dir)
}

// missingDirs returns dir and its parents under root that do not exist,
// outermost first.
func missingDirs(root *os.Root, dir string) ([]string, error) {
	var missing []string
	for ; dir != "."; dir = path.Dir(dir) {
		info, err := root.Stat(dir)
		if err == nil {
			if !info.IsDir() {
				return nil, fmt.Errorf("/%s is not a directory", dir)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		missing = append([]string{dir}, missing...)
	}
	return missing, nil
}

func readDir(root *os.Root, dir string) ([]fs.DirEntry, error) {
	f, err := root.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
}

func syncDir(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory /%s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory /%s: %w", dir, err)
	}
	return nil
}
