package inroot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Open opens name (absolute or relative, taken inside root) with flags
// (os.O_RDONLY, unix.O_PATH, ...); O_CLOEXEC is always added. Magic links
// (/proc/self/fd/N and the like) are refused.
func Open(root, name string, flags int) (*os.File, error) {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open root", Path: root, Err: err}
	}
	defer unix.Close(rfd)
	rel := strings.TrimLeft(filepath.Clean("/"+name), "/")
	if rel == "" {
		rel = "."
	}
	fd, err := unix.Openat2(rfd, rel, &unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		if errors.Is(err, unix.ENOSYS) {
			err = fmt.Errorf("openat2 is not available (Linux 5.6 or later is needed): %w", err)
		}
		return nil, &fs.PathError{Op: "open", Path: filepath.Join(root, rel), Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(root, rel)), nil
}

// Stat returns what name inside root resolves to, following symlinks
// inside the root.
func Stat(root, name string) (fs.FileInfo, error) {
	f, err := Open(root, name, unix.O_PATH)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Stat()
}

// Dir opens the directory name inside root for use as a working
// directory: the returned path, /proc/self/fd/N, names that very
// directory for as long as the file stays open (chdir to it in a child
// process before exec). Close the file after the child has started.
func Dir(root, name string) (*os.File, string, error) {
	f, err := Open(root, name, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return nil, "", err
	}
	return f, fmt.Sprintf("/proc/self/fd/%d", f.Fd()), nil
}
