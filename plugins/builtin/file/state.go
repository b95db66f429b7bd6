package file

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"

	"github.com/cairn-ops/cairn/internal/atomicfile"
	"github.com/cairn-ops/cairn/internal/readlimit"
)

// state is what is at a path under the root.
type state struct {
	exists   bool
	sha256   string
	size     int64
	mode     uint32 // unix permission bits
	uid, gid int
}

// inspect reads the state of name in root. A symlink, directory or other
// non-regular file is refused with ErrNotRegular; a path that leaves the
// root (through "..", or a symlink in a parent directory) is refused by
// os.Root.
func inspect(root *os.Root, name string) (state, error) {
	fi, err := root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return state{}, nil
	}
	if err != nil {
		return state{}, fmt.Errorf("stat /%s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return state{}, fmt.Errorf("/%s: %w (%s)", name, ErrNotRegular, fi.Mode().Type())
	}
	f, err := readlimit.OpenRoot(root, name)
	if err != nil {
		return state{}, fmt.Errorf("open /%s: %w", name, err)
	}
	defer f.Close()
	sum, n, err := hashOf(f)
	if err != nil {
		return state{}, fmt.Errorf("read /%s: %w", name, err)
	}
	uid, gid := ownerOf(fi)
	return state{exists: true, sha256: sum, size: n, mode: unixMode(fi.Mode()), uid: uid, gid: gid}, nil
}

func hashOf(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

// unixMode converts Go's mode bits to the unix permission bits.
func unixMode(m fs.FileMode) uint32 {
	bits := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return bits
}

// fileMode converts unix permission bits to Go's mode bits.
func fileMode(bits uint32) fs.FileMode {
	m := fs.FileMode(bits & 0o777)
	if bits&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if bits&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if bits&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// tempName is the temporary file writeAtomic uses for name: always the
// same, so that the next attempt or a rollback finds the one a crash left.
func tempName(name string) string {
	return path.Join(path.Dir(name), "."+path.Base(name)+".cairn-tmp")
}

// writeAtomic replaces name in root with what fill writes, with mode and
// owner (-1 leaves the id as the process creates it): a temporary file in
// the same directory, fsync, rename over name, fsync of the directory. A
// crash leaves the old content or the new, never a torn file.
func writeAtomic(root *os.Root, name string, fill func(io.Writer) error, mode uint32, uid, gid int) (err error) {
	dir := path.Dir(name)
	tmp := tempName(name)
	// A temporary file left by an attempt a crash cut off goes first.
	if err := root.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale temporary file /%s: %w", tmp, err)
	}
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create temporary file in /%s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			root.Remove(tmp)
		}
	}()
	if err := fill(f); err != nil {
		return fmt.Errorf("write /%s: %w", name, err)
	}
	if uid >= 0 || gid >= 0 {
		if err := f.Chown(uid, gid); err != nil {
			return fmt.Errorf("chown /%s: %w", name, err)
		}
	}
	// After chown, which clears setuid and setgid.
	if err := f.Chmod(fileMode(mode)); err != nil {
		return fmt.Errorf("chmod /%s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync /%s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close /%s: %w", tmp, err)
	}
	if err := root.Rename(tmp, name); err != nil {
		return fmt.Errorf("rename into /%s: %w", name, err)
	}
	return atomicfile.SyncDirIn(root, dir)
}

// setAttrs changes owner and mode of an existing file in place.
func setAttrs(root *os.Root, name string, mode uint32, uid, gid int) error {
	if uid >= 0 || gid >= 0 {
		if err := root.Lchown(name, uid, gid); err != nil {
			return fmt.Errorf("chown /%s: %w", name, err)
		}
	}
	if err := root.Chmod(name, fileMode(mode)); err != nil {
		return fmt.Errorf("chmod /%s: %w", name, err)
	}
	return atomicfile.SyncDirIn(root, path.Dir(name))
}

// missingDirs returns the parent directories of name that do not exist,
// outermost first.
func missingDirs(root *os.Root, name string) ([]string, error) {
	var missing []string
	for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
		fi, err := root.Stat(dir)
		if err == nil {
			if !fi.IsDir() {
				return nil, fmt.Errorf("/%s is not a directory", dir)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("stat /%s: %w", dir, err)
		}
		missing = append([]string{dir}, missing...)
	}
	return missing, nil
}

// mkdirs creates the directories dirs (mode 0755), outermost first; one
// that exists already (made by an earlier attempt) is fine.
func mkdirs(root *os.Root, dirs []string) error {
	for _, dir := range dirs {
		if err := root.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create directory /%s: %w", dir, err)
		}
	}
	if len(dirs) > 0 {
		return atomicfile.SyncDirIn(root, path.Dir(dirs[0]))
	}
	return nil
}
