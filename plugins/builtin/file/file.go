// Package file is the built-in step plugin that places a file under the
// root: inline content or an artifact, with mode, owner and group.
//
// Every file operation goes through an os.Root opened on the step's root
// directory, so neither a ".." in the path nor a symlink inside the root
// that points outside it can make the plugin touch anything outside the
// root. The file itself must be a regular file or absent: a symlink at
// the path is refused, not followed.
//
// Writes are atomic (temporary file in the same directory, fsync, rename,
// fsync of the directory). Apply keeps what was there before in its
// rollback record — the previous bytes up to 1 MiB, a copy under the
// step's cache directory beyond that, the mode and owner, or "absent" —
// and Rollback puts it back or removes the file (and the directories
// Apply created). Apply changes nothing when content, mode and owner
// already match, so the plugin is idempotent. Owner and group names are
// resolved in the root's /etc/passwd and /etc/group; numbers are taken as
// they are.
package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairn-ops/cairn/internal/atomicfile"
	"github.com/cairn-ops/cairn/internal/readlimit"
	"github.com/cairn-ops/cairn/plugins/sdk"
)

// Name is the plugin's name in manifests and the builtin registry.
const Name = "file"

const version = "1.0.0"

// inlineLimit is the largest previous content kept in the rollback
// record itself; larger files are copied under the cache directory.
const inlineLimit = 1 << 20

// Plugin places files under the root.
type Plugin struct{}

var _ sdk.Plugin = (*Plugin)(nil)

// New returns the file plugin.
func New() sdk.Plugin { return &Plugin{} }

// Describe implements sdk.Plugin.
func (*Plugin) Describe(context.Context) (*sdk.Description, error) {
	return &sdk.Description{
		Name:       Name,
		Version:    version,
		Idempotent: true,
		Summary:    "Place inline content or an artifact at a path under the root, atomically, with mode, owner and group; rollback restores the previous file.",
		Params: []*sdk.ParamSpec{
			{Name: "path", Type: "string", Required: true, Description: "absolute path inside the root, e.g. /etc/app.conf"},
			{Name: "content", Type: "string", Description: "the file's content (give content or artifact)"},
			{Name: "artifact", Type: "string", Description: "name of one of the step's artifacts to copy (give content or artifact)"},
			{Name: "mode", Type: "string", Description: "octal permissions (default \"0644\")"},
			{Name: "owner", Type: "string", Description: "user name (from the root's /etc/passwd) or uid"},
			{Name: "group", Type: "string", Description: "group name (from the root's /etc/group) or gid"},
		},
	}, nil
}

// Validate implements sdk.Plugin.
func (*Plugin) Validate(_ context.Context, sc *sdk.StepContext) ([]*sdk.FieldError, error) {
	_, errs := load(sc)
	return errs, nil
}

// want is the file a step asks for.
type want struct {
	sha256 string
	size   int64
}

// desired hashes the content the step asks for.
func (c *config) desired() (want, error) {
	if c.artifact == "" {
		sum, n, _ := hashOf(bytes.NewReader(c.content))
		return want{sha256: sum, size: n}, nil
	}
	f, err := readlimit.Open(c.artifact)
	if err != nil {
		return want{}, fmt.Errorf("open artifact: %w", err)
	}
	defer f.Close()
	sum, n, err := hashOf(f)
	if err != nil {
		return want{}, fmt.Errorf("read artifact %s: %w", c.artifact, err)
	}
	return want{sha256: sum, size: n}, nil
}

// fill writes the asked-for content to w.
func (c *config) fill(w io.Writer) error {
	if c.artifact == "" {
		_, err := w.Write(c.content)
		return err
	}
	f, err := readlimit.Open(c.artifact)
	if err != nil {
		return fmt.Errorf("open artifact: %w", err)
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// actions compares the current state with the asked-for one: one line
// per difference, none when the file is up to date.
func (c *config) actions(cur state, w want) []string {
	if !cur.exists {
		return []string{fmt.Sprintf("create %s (%d bytes, sha256 %s, mode %04o%s)", c.path, w.size, short(w.sha256), c.mode, c.ownerText())}
	}
	var out []string
	if cur.sha256 != w.sha256 {
		out = append(out, fmt.Sprintf("replace %s: sha256 %s → %s (%d bytes)", c.path, short(cur.sha256), short(w.sha256), w.size))
	}
	if cur.mode != c.mode {
		out = append(out, fmt.Sprintf("chmod %s %04o (was %04o)", c.path, c.mode, cur.mode))
	}
	if (c.uid >= 0 && cur.uid != c.uid) || (c.gid >= 0 && cur.gid != c.gid) {
		out = append(out, fmt.Sprintf("chown %s%s (was %d:%d)", c.path, c.ownerText(), cur.uid, cur.gid))
	}
	return out
}

func (c *config) ownerText() string {
	switch {
	case c.uid >= 0 && c.gid >= 0:
		return fmt.Sprintf(", owner %d:%d", c.uid, c.gid)
	case c.uid >= 0:
		return fmt.Sprintf(", owner %d", c.uid)
	case c.gid >= 0:
		return fmt.Sprintf(", group %d", c.gid)
	}
	return ""
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

func (c *config) change(w want) *sdk.Change {
	return &sdk.Change{Kind: sdk.ChangeFile, Name: c.path, State: "present", Sha256: w.sha256}
}

// open opens the step's root, with the current state and the wanted one.
func (c *config) open() (*os.Root, state, want, error) {
	w, err := c.desired()
	if err != nil {
		return nil, state{}, want{}, err
	}
	root, err := os.OpenRoot(c.rootDir)
	if err != nil {
		return nil, state{}, want{}, fmt.Errorf("open root: %w", err)
	}
	cur, err := inspect(root, c.name)
	if err != nil {
		root.Close()
		return nil, state{}, want{}, err
	}
	return root, cur, w, nil
}

// Plan implements sdk.Plugin.
func (*Plugin) Plan(_ context.Context, sc *sdk.StepContext) (*sdk.Plan, error) {
	c, err := mustLoad(sc)
	if err != nil {
		return nil, err
	}
	root, cur, w, err := c.open()
	if err != nil {
		return nil, err
	}
	defer root.Close()
	plan := &sdk.Plan{Changes: []*sdk.Change{c.change(w)}, Actions: c.actions(cur, w)}
	plan.WouldChange = len(plan.Actions) > 0
	if !plan.WouldChange {
		plan.Actions = []string{c.path + " is up to date"}
	}
	return plan, nil
}

// record is file's rollback record: what was at the path before Apply.
type record struct {
	Path      string `json:"path"`
	Unchanged bool   `json:"unchanged,omitempty"`
	Existed   bool   `json:"existed"`
	// Only mode or owner changed; the content is still the old one.
	SameContent bool `json:"same_content,omitempty"`
	// The previous content, when at most inlineLimit bytes.
	Content []byte `json:"content,omitempty"`
	// Path of a copy of the previous content under the cache directory,
	// named by its sha256, when larger.
	Saved  string `json:"saved,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Mode   uint32 `json:"mode,omitempty"`
	UID    int    `json:"uid"`
	GID    int    `json:"gid"`
	// Directories Apply created, outermost first.
	CreatedDirs []string `json:"created_dirs,omitempty"`
}

func (r *record) marshal() ([]byte, error) { return json.Marshal(r) }

// Apply implements sdk.Plugin.
func (*Plugin) Apply(ctx context.Context, sc *sdk.StepContext, r sdk.Reporter) (*sdk.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("step %q: %w", sc.GetStep(), err)
	}
	c, err := mustLoad(sc)
	if err != nil {
		return nil, err
	}
	root, cur, w, err := c.open()
	if err != nil {
		return nil, err
	}
	defer root.Close()
	res := &sdk.Result{
		Outputs: map[string]string{"path": c.path, "sha256": w.sha256},
		Changes: []*sdk.Change{c.change(w)},
	}
	// An earlier attempt of this step that a crash cut off left its undo
	// record: it describes the file before that attempt, and stays the
	// record of this step.
	var rec record
	prior, err := sdk.LoadUndo(sc, &rec)
	if err != nil {
		return nil, err
	}
	actions := c.actions(cur, w)
	if len(actions) == 0 {
		r.Log(sdk.LevelInfo, c.path+" is up to date")
		if prior && !rec.Unchanged {
			r.Log(sdk.LevelInfo, "an earlier attempt of this step changed it; its undo record is kept")
			res.Changed = true
			res.RollbackRecord, err = rec.marshal()
			return res, err
		}
		res.RollbackRecord, _ = json.Marshal(record{Path: c.path, Unchanged: true})
		return res, nil
	}
	if sc.GetDryRun() {
		for _, a := range actions {
			r.Log(sdk.LevelInfo, "dry run: would "+a)
		}
		res.Changes = nil
		return res, nil
	}
	if !prior || rec.Unchanged {
		fresh, err := c.remember(root, cur, w, sc.GetCacheDir())
		if err != nil {
			return nil, err
		}
		if !fresh.SameContent {
			if fresh.CreatedDirs, err = missingDirs(root, c.name); err != nil {
				return nil, err
			}
		}
		rec = *fresh
		// Write-ahead: the record is on disk before the file changes.
		if err := sdk.SaveUndo(sc, rec); err != nil {
			return nil, err
		}
	}
	if rec.SameContent && cur.sha256 == w.sha256 {
		err = setAttrs(root, c.name, c.mode, c.uid, c.gid)
	} else {
		err = mkdirs(root, rec.CreatedDirs)
		if err == nil {
			err = writeAtomic(root, c.name, c.fill, c.mode, c.uid, c.gid)
		}
	}
	if err != nil {
		return nil, err
	}
	for _, a := range actions {
		r.Log(sdk.LevelInfo, a)
	}
	res.Changed = true
	res.RollbackRecord, err = rec.marshal()
	if err != nil {
		return nil, fmt.Errorf("encode rollback record: %w", err)
	}
	return res, nil
}

// remember builds the rollback record for the file as it is now.
func (c *config) remember(root *os.Root, cur state, w want, cacheDir string) (*record, error) {
	rec := &record{Path: c.path, Existed: cur.exists}
	if !cur.exists {
		return rec, nil
	}
	rec.SHA256, rec.Mode, rec.UID, rec.GID = cur.sha256, cur.mode, cur.uid, cur.gid
	if cur.sha256 == w.sha256 {
		rec.SameContent = true
		return rec, nil
	}
	if cur.size <= inlineLimit {
		b, err := readlimit.RootFile(root, c.name, "", inlineLimit)
		if err != nil {
			return nil, fmt.Errorf("keep previous content of %s: %w", c.path, err)
		}
		rec.Content = b
		return rec, nil
	}
	if cacheDir == "" {
		return nil, fmt.Errorf("keep previous content of %s (%d bytes): larger than %d bytes and the step has no cache directory", c.path, cur.size, inlineLimit)
	}
	dir := filepath.Join(cacheDir, "file-rollback")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keep previous content of %s: %w", c.path, err)
	}
	rec.Saved = filepath.Join(dir, cur.sha256)
	err := atomicfile.WriteFrom(rec.Saved, func(w io.Writer) error {
		f, err := root.Open(c.name)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	}, 0o600)
	if err != nil {
		return nil, fmt.Errorf("keep previous content of %s: %w", c.path, err)
	}
	return rec, nil
}

// Verify implements sdk.Plugin: the file exists with the asked-for
// content, mode and (when given) owner and group.
func (*Plugin) Verify(_ context.Context, sc *sdk.StepContext) (*sdk.Verification, error) {
	c, err := mustLoad(sc)
	if err != nil {
		return nil, err
	}
	root, cur, w, err := c.open()
	if errors.Is(err, ErrNotRegular) {
		return &sdk.Verification{Passed: false, Evidence: err.Error()}, nil
	}
	if err != nil {
		return nil, err
	}
	defer root.Close()
	if !cur.exists {
		return &sdk.Verification{Evidence: c.path + " does not exist"}, nil
	}
	seen := fmt.Sprintf("%s: sha256 %s, mode %04o, owner %d:%d", c.path, short(cur.sha256), cur.mode, cur.uid, cur.gid)
	if diffs := c.actions(cur, w); len(diffs) > 0 {
		return &sdk.Verification{Evidence: seen + "; differs: " + strings.Join(diffs, "; ")}, nil
	}
	return &sdk.Verification{Passed: true, Evidence: seen + " as expected"}, nil
}

// Rollback implements sdk.Plugin: it puts back what the record says was
// there, or removes the file and the directories Apply created.
func (*Plugin) Rollback(_ context.Context, sc *sdk.StepContext, data []byte) (*sdk.RollbackResult, error) {
	var rec record
	found, err := sdk.RollbackRecord(sc, data, &rec)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoRecord, err)
	}
	if !found {
		return &sdk.RollbackResult{Message: "nothing to undo: no rollback record"}, nil
	}
	if rec.Unchanged {
		return &sdk.RollbackResult{Message: "nothing to undo: " + rec.Path + " was already up to date"}, sdk.ClearUndo(sc)
	}
	res, err := restore(sc, rec)
	if err != nil {
		return nil, err
	}
	return res, sdk.ClearUndo(sc)
}

// restore puts back what rec says was at its path.
func restore(sc *sdk.StepContext, rec record) (*sdk.RollbackResult, error) {
	// The record's path is checked like a parameter before it is used.
	probe := &sdk.StepContext{RootDir: sc.GetRootDir()}
	probe.Params, _ = sdk.ParamsOf(map[string]any{"path": rec.Path, "content": ""})
	c, err := mustLoad(probe)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoRecord, err)
	}
	root, err := os.OpenRoot(c.rootDir)
	if err != nil {
		return nil, fmt.Errorf("open root: %w", err)
	}
	defer root.Close()
	// A temporary file an interrupted Apply left goes too.
	if err := root.Remove(tempName(c.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("remove temporary file: %w", err)
	}
	switch {
	case !rec.Existed:
		if err := root.Remove(c.name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("remove %s: %w", rec.Path, err)
		}
		for i := len(rec.CreatedDirs) - 1; i >= 0; i-- {
			if root.Remove(rec.CreatedDirs[i]) != nil {
				break // not empty any more: someone else uses it
			}
		}
		return &sdk.RollbackResult{Changed: true, Message: "removed " + rec.Path}, nil
	case rec.SameContent:
		if err := setAttrs(root, c.name, rec.Mode, rec.UID, rec.GID); err != nil {
			return nil, err
		}
	default:
		fill := func(w io.Writer) error { _, err := w.Write(rec.Content); return err }
		if rec.Saved != "" {
			fill = func(w io.Writer) error {
				f, err := os.Open(rec.Saved)
				if err != nil {
					return fmt.Errorf("open saved copy: %w", err)
				}
				defer f.Close()
				_, err = io.Copy(w, f)
				return err
			}
		}
		// The saved copy stays: a retried Rollback needs it again.
		if err := writeAtomic(root, c.name, fill, rec.Mode, rec.UID, rec.GID); err != nil {
			return nil, err
		}
	}
	return &sdk.RollbackResult{Changed: true, Message: fmt.Sprintf("restored %s (sha256 %s, mode %04o)", rec.Path, short(rec.SHA256), rec.Mode)}, nil
}
