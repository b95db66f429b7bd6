package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/cairn-ops/cairn/internal/atomicfile"
)

// action is what extracting one member does to the disk.
type action int

const (
	unchanged action = iota
	create
	replace
)

// compare says, per member, what extracting it would do.
func (l *layout) compare() ([]action, error) {
	acts := make([]action, len(l.entries))
	for i, e := range l.entries {
		fi := l.lstat(e.path)
		if fi == nil {
			acts[i] = create
			continue
		}
		same, err := l.matches(e, fi)
		if err != nil {
			return nil, err
		}
		if !same {
			acts[i] = replace
		}
	}
	return acts, nil
}

// matches reports whether fi at e.path on disk is what e makes.
func (l *layout) matches(e *entry, fi fs.FileInfo) (bool, error) {
	switch e.kind {
	case kindDir:
		return fi.IsDir(), nil
	case kindSymlink:
		if fi.Mode()&fs.ModeSymlink == 0 {
			return false, nil
		}
		t, err := l.dest.Readlink(e.path)
		if err != nil {
			return false, fmt.Errorf("read symlink %s: %w", e.path, err)
		}
		return t == e.link, nil
	}
	if !fi.Mode().IsRegular() || fi.Size() != e.size || fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != e.perm {
		return false, nil
	}
	sum, err := fileSHA(l.dest, e.path)
	if err != nil {
		return false, err
	}
	return sum == e.sha, nil
}

func fileSHA(r *os.Root, name string) (string, error) {
	f, err := r.Open(name)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", name, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// testHook, when set (by tests), is called at points of Apply where an
// agent can be killed: "saved" (undo record saved), "tmp" (a temporary
// file written), "placed" (a member renamed into place), "done".
var testHook func(stage string)

func hook(stage string) {
	if testHook != nil {
		testHook(stage)
	}
}

// missingDest lists the directories, relative to the root and outermost
// first, that must be made to create dest.
func missingDest(root *os.Root, destRel, dest string) ([]string, error) {
	if destRel == "." {
		return nil, nil
	}
	var missing []string
	els := strings.Split(destRel, "/")
	for i := range els {
		p := strings.Join(els[:i+1], "/")
		if len(missing) > 0 {
			missing = append(missing, p)
			continue
		}
		fi, err := root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, p)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("destination %s: %w", dest, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			// os.Root resolves it, and refuses it if it leaves the root.
			if fi, err = root.Stat(p); err != nil {
				return nil, fmt.Errorf("destination %s: %w", dest, err)
			}
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("destination %s: /%s is not a directory", dest, p)
		}
	}
	return missing, nil
}

// extractor makes the members of a checked layout under dest.
type extractor struct {
	acts     map[int]action // by archive index
	byIndex  map[int]*entry
	tag      string
	madeDirs map[string]bool
	dirModes []*entry // explicit directories made, chmod-ed last
	budget   *budget
	written  int64
}

// extract makes every member whose action is not unchanged: the undo
// record naming all it does is saved already. It returns at the first
// error; the caller undoes.
func extract(ctx context.Context, root *os.Root, destRel string, madeDest []string, file string, p *params, l *layout, acts []action, tag string) error {
	x := &extractor{acts: map[int]action{}, byIndex: map[int]*entry{}, madeDirs: map[string]bool{}, tag: tag, budget: newBudget(p.limits())}
	for i, e := range l.entries {
		x.acts[e.index] = acts[i]
		x.byIndex[e.index] = e
	}
	for _, d := range madeDest {
		if err := root.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("make destination %s: %w", p.Dest, err)
		}
	}
	dest, err := root.OpenRoot(destRel)
	if err != nil {
		return fmt.Errorf("open destination %s: %w", p.Dest, err)
	}
	defer dest.Close()

	index := -1
	err = walk(ctx, file, p.Format, x.budget, func(_ *rawEntry, content io.Reader) error {
		index++
		e, ok := x.byIndex[index]
		if !ok || x.acts[index] == unchanged {
			return nil
		}
		if err := x.parents(dest, e.path); err != nil {
			return err
		}
		return x.make(dest, e, content)
	})
	if err != nil {
		return err
	}
	for i := len(x.dirModes) - 1; i >= 0; i-- {
		e := x.dirModes[i]
		if err := dest.Chmod(e.path, e.perm); err != nil {
			return fmt.Errorf("chmod %q: %w", e.path, err)
		}
	}
	return atomicfile.SyncDirIn(dest, ".")
}

// fixDirModes gives their mode to the archive's directories that an
// earlier, killed attempt of the step made (rec lists them as created)
// but did not live to chmod: they are made 0700 and given their mode only
// once the members under them are in place.
func fixDirModes(dest *os.Root, l *layout, acts []action, rec *record) error {
	created := map[string]bool{}
	for _, p := range rec.Created {
		created[p] = true
	}
	for i := len(l.entries) - 1; i >= 0; i-- {
		e := l.entries[i]
		if e.kind != kindDir || acts[i] != unchanged || !created[e.path] {
			continue
		}
		fi, err := dest.Lstat(e.path)
		if err != nil || !fi.IsDir() || fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) == e.perm {
			continue
		}
		if err := dest.Chmod(e.path, e.perm); err != nil {
			return fmt.Errorf("chmod %q: %w", e.path, err)
		}
	}
	return nil
}

// parents makes the missing parent directories of p. The parents of a
// directory in madeDirs are there too, so only those below the nearest
// one are looked at.
func (x *extractor) parents(dest *os.Root, p string) error {
	var todo []string // innermost first
	for dir := parent(p); dir != "" && !x.madeDirs[dir]; dir = parent(dir) {
		todo = append(todo, dir)
	}
	for i := len(todo) - 1; i >= 0; i-- {
		dir := todo[i]
		fi, err := dest.Lstat(dir)
		switch {
		case err == nil && fi.IsDir():
			x.madeDirs[dir] = true
			continue
		case err == nil:
			return unsafe(p, "would be written through %q, which is not a directory (%s)", dir, fi.Mode().Type())
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("stat %q: %w", dir, err)
		}
		if err := dest.Mkdir(dir, 0o755); err != nil {
			return fmt.Errorf("make directory %q: %w", dir, err)
		}
		x.madeDirs[dir] = true
	}
	return nil
}

// make creates one member; content is its data for a file.
func (x *extractor) make(dest *os.Root, e *entry, content io.Reader) error {
	if e.kind == kindDir {
		if err := dest.Mkdir(e.path, 0o700); err != nil {
			return fmt.Errorf("make directory %q: %w", e.path, err)
		}
		x.madeDirs[e.path] = true
		x.dirModes = append(x.dirModes, e)
		return nil
	}
	tmp := tempName(x.tag, e.path)
	dest.Remove(tmp) // left by an attempt that was killed
	var err error
	switch e.kind {
	case kindFile:
		err = writeFile(dest, tmp, e, content)
	case kindSymlink:
		err = dest.Symlink(e.link, tmp)
	case kindHardlink:
		err = dest.Link(e.link, tmp)
	}
	if err != nil {
		dest.Remove(tmp)
		return fmt.Errorf("extract %q: %w", e.path, err)
	}
	hook("tmp")
	if err := dest.Rename(tmp, e.path); err != nil {
		dest.Remove(tmp)
		return fmt.Errorf("extract %q: %w", e.path, err)
	}
	hook("placed")
	return nil
}

// writeFile writes e's content to name, and fails when it is not what
// the check pass read: another size or digest.
func writeFile(dest *os.Root, name string, e *entry, content io.Reader) error {
	f, err := dest.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(content, e.size+1))
	if err == nil {
		err = f.Chmod(e.perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if n != e.size {
		return fmt.Errorf("%w: %q holds %d bytes or more now, %d before", ErrChangedArtifact, shorten(e.name), n, e.size)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != e.sha {
		return fmt.Errorf("%w: %q has sha256 %s now, %s before", ErrChangedArtifact, shorten(e.name), sum, e.sha)
	}
	return nil
}
