// Package testutil holds helpers shared by the tests of several packages.
// It is imported only from _test.go files.
package testutil

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// UnpackTarGz extracts the gzip-compressed tar archive into a new
// temporary directory of t and returns that directory. The test fails if
// the archive cannot be read or holds an entry Unpack refuses.
func UnpackTarGz(t testing.TB, archive string) string {
	t.Helper()
	dir := t.TempDir()
	if err := Unpack(archive, dir); err != nil {
		t.Fatalf("unpack %s: %v", archive, err)
	}
	return dir
}

// Unpack extracts the gzip-compressed tar archive into dir, which must
// exist. It creates regular files with their mode bits, directories with
// theirs plus full access for the owner, and symbolic links with their
// targets as they are. Every write goes through an os.Root, so nothing is
// written outside dir, through a link or otherwise. It refuses absolute
// entry names, names with a ".." element, hard links, devices and FIFOs.
func Unpack(archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return fmt.Errorf("open archive: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("read %s: %w", archive, err)
	}
	defer zr.Close()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open destination: %w", err)
	}
	defer root.Close()

	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", archive, err)
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
		mode := hdr.FileInfo().Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if name == "." {
				break // dir itself, which is the caller's
			}
			if err := mkdirAll(root, name); err != nil {
				return fmt.Errorf("entry %q: %w", hdr.Name, err)
			}
			// The owner keeps full access, so that later entries can be
			// written and the tree can be removed.
			if err := root.Chmod(name, mode|0o700); err != nil {
				return fmt.Errorf("entry %q: %w", hdr.Name, err)
			}
		case tar.TypeReg:
			if err := writeFile(root, name, mode, tr); err != nil {
				return fmt.Errorf("entry %q: %w", hdr.Name, err)
			}
		case tar.TypeSymlink:
			if err := mkParent(root, name); err != nil {
				return fmt.Errorf("entry %q: %w", hdr.Name, err)
			}
			if err := root.Symlink(hdr.Linkname, name); err != nil {
				return fmt.Errorf("entry %q: %w", hdr.Name, err)
			}
		case tar.TypeXGlobalHeader:
			// Archive-wide metadata (git archive writes one); nothing to create.
		default:
			return fmt.Errorf("entry %q: %s not supported (only files, directories and symlinks)", hdr.Name, typeName(hdr.Typeflag))
		}
	}
	return nil
}

// entryName checks a tar entry name and returns it cleaned and in the
// local path syntax: "." for the archive root.
func entryName(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty name")
	}
	if path.IsAbs(name) || filepath.IsAbs(name) || strings.HasPrefix(name, `\`) {
		return "", errors.New("absolute name")
	}
	if slices.Contains(strings.FieldsFunc(name, func(r rune) bool { return r == '/' || r == '\\' }), "..") {
		return "", errors.New(`name has a ".." element`)
	}
	return filepath.FromSlash(path.Clean(name)), nil
}

func mkParent(root *os.Root, name string) error {
	return mkdirAll(root, filepath.Dir(name))
}

// mkdirAll creates name and its missing parents with mode 0o755 whatever
// the umask, so that directories without an entry of their own come out
// the same everywhere.
func mkdirAll(root *os.Root, name string) error {
	if name == "." {
		return nil
	}
	if _, err := root.Lstat(name); err == nil {
		return nil // if not a directory, the next write says so
	}
	if err := mkdirAll(root, filepath.Dir(name)); err != nil {
		return err
	}
	if err := root.Mkdir(name, 0o755); err != nil {
		return err
	}
	return root.Chmod(name, 0o755)
}

func writeFile(root *os.Root, name string, mode fs.FileMode, r io.Reader) error {
	if err := mkParent(root, name); err != nil {
		return err
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	// Chmod, not the OpenFile mode, which the umask would change.
	return root.Chmod(name, mode)
}

func typeName(flag byte) string {
	switch flag {
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "FIFO"
	}
	return fmt.Sprintf("entry type %q", flag)
}
