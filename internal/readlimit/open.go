package readlimit

import (
	"fmt"
	"os"
)

// Open opens the regular file at path for reading. It stats the file
// first and refuses anything else with ErrNotRegular without opening it,
// then opens it without blocking (O_NONBLOCK, which a regular file
// ignores) and checks that what it opened is the file it stated, so a
// FIFO or a device swapped in between is refused too. The caller bounds
// its reading: this is for content streamed into a hash or copied whole.
func Open(path string) (*os.File, error) {
	return openStated(path, os.Stat, func() (*os.File, error) {
		return os.OpenFile(path, os.O_RDONLY|nonBlock, 0)
	})
}

// OpenRoot is Open for the file name inside root (os.Root keeps it,
// symlinks included, inside root). The file's Name is root's directory
// joined with name.
func OpenRoot(root *os.Root, name string) (*os.File, error) {
	path := root.Name() + string(os.PathSeparator) + name
	stat := func(string) (os.FileInfo, error) { return root.Stat(name) }
	return openStated(path, stat, func() (*os.File, error) {
		return root.OpenFile(name, os.O_RDONLY|nonBlock, 0)
	})
}

// openStated stats path, refuses anything but a regular file, opens it
// and checks that what it opened is what it stated.
func openStated(path string, stat func(string) (os.FileInfo, error), open func() (*os.File, error)) (*os.File, error) {
	fi, err := stat(path)
	if err != nil {
		return nil, asOpen(err)
	}
	if !fi.Mode().IsRegular() {
		return nil, notRegular(path, fi)
	}
	f, err := open()
	if err != nil {
		return nil, err
	}
	if err := same(f, path, fi); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// same checks that the open file f is the regular file fi stated.
func same(f *os.File, path string, fi os.FileInfo) error {
	got, err := f.Stat()
	if err != nil {
		return err
	}
	if !got.Mode().IsRegular() {
		return notRegular(path, got)
	}
	if !os.SameFile(fi, got) {
		return fmt.Errorf("%s: replaced while it was opened", path)
	}
	return nil
}
