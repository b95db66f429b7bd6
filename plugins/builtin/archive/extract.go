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
	"path"
	"path/filepath"
	"strings"
	"syscall"
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

// record is Apply's rollback record: what it made and what it replaced.
type record struct {
	Dest string `json:"dest"`
	// MadeDest are directories made to create dest, relative to the root,
	// outermost first.
	MadeDest []string `json:"made_dest,omitempty"`
	// Created are paths relative to dest, in the order they were made.
	Created []string `json:"created,omitempty"`
	// Replaced are paths relative to dest whose previous content is kept.
	Replaced []replaced `json:"replaced,omitempty"`
	// BackupDir holds the previous contents of replaced files.
	BackupDir string `json:"backup_dir,omitempty"`
}

type replaced struct {
	Path string      `json:"path"`
	Mode fs.FileMode `json:"mode"`
	// Link is the previous symlink target, for a replaced symlink.
	Link string `json:"link,omitempty"`
	// Backup is the file in BackupDir with the previous content.
	Backup string `json:"backup,omitempty"`
}

func (r *record) empty() bool {
	return len(r.MadeDest) == 0 && len(r.Created) == 0 && len(r.Replaced) == 0
}

// extractor makes the members of a checked layout under dest.
type extractor struct {
	l         *layout
	acts      map[int]action // by archive index
	byIndex   map[int]*entry
	rec       *record
	backupDir string // where previous contents go; "" refuses to replace files
	madeDirs  map[string]bool
	dirModes  []*entry // explicit directories made, chmod-ed last
	tmpSeq    int
}

// extract makes every member whose action is not unchanged. On error it
// has undone what it did.
func extract(ctx context.Context, root *os.Root, destRel, file string, p *params, l *layout, acts []action, backupDir string) (rec *record, err error) {
	x := &extractor{l: l, acts: map[int]action{}, byIndex: map[int]*entry{}, madeDirs: map[string]bool{},
		rec: &record{Dest: p.Dest}, backupDir: backupDir}
	for i, e := range l.entries {
		x.acts[e.index] = acts[i]
		x.byIndex[e.index] = e
	}
	defer func() {
		if err != nil {
			if uerr := undo(root, x.rec); uerr != nil {
				err = fmt.Errorf("%w (undoing the partial extraction also failed: %v)", err, uerr)
			}
		}
	}()
	if err := x.makeDest(root, destRel); err != nil {
		return x.rec, err
	}
	dest, err := root.OpenRoot(destRel)
	if err != nil {
		return x.rec, fmt.Errorf("open destination %s: %w", p.Dest, err)
	}
	defer dest.Close()
	l.dest = dest

	index := -1
	err = walk(ctx, file, p.Format, func(_ *rawEntry, content io.Reader) error {
		index++
		e, ok := x.byIndex[index]
		if !ok || x.acts[index] == unchanged {
			return nil
		}
		if err := x.parents(dest, e.path); err != nil {
			return err
		}
		return x.make(dest, e, x.acts[index], content)
	})
	if err != nil {
		return x.rec, err
	}
	for i := len(x.dirModes) - 1; i >= 0; i-- {
		e := x.dirModes[i]
		if err := dest.Chmod(e.path, e.perm); err != nil {
			return x.rec, fmt.Errorf("chmod %s: %w", e.path, err)
		}
	}
	if err := syncDir(dest, "."); err != nil {
		return x.rec, err
	}
	return x.rec, nil
}

// makeDest makes dest and its missing parents inside the root.
func (x *extractor) makeDest(root *os.Root, destRel string) error {
	if destRel == "." {
		return nil
	}
	els := strings.Split(destRel, "/")
	for i := range els {
		p := strings.Join(els[:i+1], "/")
		fi, err := root.Lstat(p)
		if err == nil {
			if fi.Mode()&fs.ModeSymlink != 0 {
				// os.Root resolves it, and refuses it if it leaves the root.
				fi, err = root.Stat(p)
				if err != nil {
					return fmt.Errorf("destination %s: %w", x.rec.Dest, err)
				}
			}
			if !fi.IsDir() {
				return fmt.Errorf("destination %s: /%s is not a directory", x.rec.Dest, p)
			}
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("destination %s: %w", x.rec.Dest, err)
		}
		if err := root.Mkdir(p, 0o755); err != nil {
			return fmt.Errorf("make destination %s: %w", x.rec.Dest, err)
		}
		x.rec.MadeDest = append(x.rec.MadeDest, p)
	}
	return nil
}

// parents makes the missing parent directories of p.
func (x *extractor) parents(dest *os.Root, p string) error {
	els := strings.Split(p, "/")
	for i := 1; i < len(els); i++ {
		dir := strings.Join(els[:i], "/")
		if x.madeDirs[dir] {
			continue
		}
		fi, err := dest.Lstat(dir)
		switch {
		case err == nil && fi.IsDir():
			x.madeDirs[dir] = true
			continue
		case err == nil:
			return unsafe(p, "would be written through %q, which is not a directory (%s)", dir, fi.Mode().Type())
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("stat %s: %w", dir, err)
		}
		if err := dest.Mkdir(dir, 0o755); err != nil {
			return fmt.Errorf("make directory %s: %w", dir, err)
		}
		x.madeDirs[dir] = true
		x.rec.Created = append(x.rec.Created, dir)
	}
	return nil
}

// make creates one member; content is its data for a file.
func (x *extractor) make(dest *os.Root, e *entry, act action, content io.Reader) error {
	if e.kind == kindDir {
		if err := dest.Mkdir(e.path, 0o700); err != nil {
			return fmt.Errorf("make directory %s: %w", e.path, err)
		}
		x.madeDirs[e.path] = true
		x.rec.Created = append(x.rec.Created, e.path)
		x.dirModes = append(x.dirModes, e)
		return nil
	}
	x.tmpSeq++
	tmp := path.Join(path.Dir(e.path), fmt.Sprintf(".cairn-archive-%d-%d.tmp", os.Getpid(), x.tmpSeq))
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
		return fmt.Errorf("extract %s: %w", e.path, err)
	}
	if act == replace {
		if err := x.backup(dest, e.path); err != nil {
			dest.Remove(tmp)
			return err
		}
	}
	if err := dest.Rename(tmp, e.path); err != nil {
		dest.Remove(tmp)
		if act == replace {
			x.rec.Replaced = x.rec.Replaced[:len(x.rec.Replaced)-1]
		}
		return fmt.Errorf("extract %s: %w", e.path, err)
	}
	if act == create {
		x.rec.Created = append(x.rec.Created, e.path)
	}
	return nil
}

func writeFile(dest *os.Root, name string, e *entry, content io.Reader) error {
	f, err := dest.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), content)
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
	if sum := hex.EncodeToString(h.Sum(nil)); sum != e.sha {
		return fmt.Errorf("%w: %q has sha256 %s now, %s before", ErrChangedArtifact, shorten(e.name), sum, e.sha)
	}
	return nil
}

// backup keeps what is at p before it is replaced.
func (x *extractor) backup(dest *os.Root, p string) error {
	fi, err := dest.Lstat(p)
	if err != nil {
		return fmt.Errorf("stat %s: %w", p, err)
	}
	r := replaced{Path: p, Mode: fi.Mode()}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		if r.Link, err = dest.Readlink(p); err != nil {
			return fmt.Errorf("read symlink %s: %w", p, err)
		}
	case fi.Mode().IsRegular():
		if x.backupDir == "" {
			return fmt.Errorf("replace %s: no cache_dir in the step context to keep its previous content for rollback", p)
		}
		if err := os.MkdirAll(x.backupDir, 0o700); err != nil {
			return fmt.Errorf("make backup directory: %w", err)
		}
		src, err := dest.Open(p)
		if err != nil {
			return fmt.Errorf("open %s: %w", p, err)
		}
		defer src.Close()
		dst, err := os.CreateTemp(x.backupDir, "backup-*")
		if err != nil {
			return fmt.Errorf("back up %s: %w", p, err)
		}
		_, err = io.Copy(dst, src)
		if err == nil {
			err = dst.Sync()
		}
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(dst.Name())
			return fmt.Errorf("back up %s: %w", p, err)
		}
		r.Backup = filepath.Base(dst.Name())
		x.rec.BackupDir = x.backupDir
	default:
		return unsafe(p, "would replace a %s on disk", fi.Mode().Type())
	}
	x.rec.Replaced = append(x.rec.Replaced, r)
	return nil
}

// undo reverts what rec says was done: restores replaced paths, removes
// created ones (directories only when empty), newest first.
func undo(root *os.Root, rec *record) error {
	if rec.empty() {
		return nil
	}
	destRel := strings.TrimPrefix(rec.Dest, "/")
	if destRel == "" {
		destRel = "."
	}
	var errs []error
	dest, err := root.OpenRoot(destRel)
	switch {
	case err == nil:
		defer dest.Close()
		for i := len(rec.Replaced) - 1; i >= 0; i-- {
			if err := restore(dest, rec.BackupDir, rec.Replaced[i]); err != nil {
				errs = append(errs, err)
			}
		}
		for i := len(rec.Created) - 1; i >= 0; i-- {
			if err := removeIfThere(dest, rec.Created[i]); err != nil {
				errs = append(errs, err)
			}
		}
	case !errors.Is(err, fs.ErrNotExist):
		errs = append(errs, fmt.Errorf("open destination %s: %w", rec.Dest, err))
	}
	for i := len(rec.MadeDest) - 1; i >= 0; i-- {
		if err := removeIfThere(root, rec.MadeDest[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeIfThere removes p; a directory that is not empty (someone put
// files there since) and a path already gone are left alone.
func removeIfThere(r *os.Root, p string) error {
	err := r.Remove(p)
	if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
		return nil
	}
	return fmt.Errorf("remove %s: %w", p, err)
}

// restore puts back what r recorded at its path.
func restore(dest *os.Root, backupDir string, r replaced) error {
	tmp := path.Join(path.Dir(r.Path), fmt.Sprintf(".cairn-archive-%d-restore.tmp", os.Getpid()))
	dest.Remove(tmp)
	var err error
	if r.Mode&fs.ModeSymlink != 0 {
		err = dest.Symlink(r.Link, tmp)
	} else {
		err = copyBackup(dest, tmp, filepath.Join(backupDir, r.Backup), r.Mode)
	}
	if err == nil {
		err = dest.Rename(tmp, r.Path)
	}
	if err != nil {
		dest.Remove(tmp)
		return fmt.Errorf("restore %s: %w", r.Path, err)
	}
	return nil
}

func copyBackup(dest *os.Root, name, backup string, mode fs.FileMode) error {
	src, err := os.Open(backup)
	if err != nil {
		return err
	}
	defer src.Close()
	f, err := dest.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, src)
	if err == nil {
		err = f.Chmod(mode & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(r *os.Root, name string) error {
	d, err := r.Open(name)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", name, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", name, err)
	}
	return nil
}
