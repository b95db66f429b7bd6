package sdktest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// Tree is a snapshot of a directory tree: slash-separated path relative
// to the root → what is there.
type Tree map[string]Entry

// Entry is one path in a Tree.
type Entry struct {
	Mode   string // fs.FileMode's String, e.g. "-rw-r--r--"
	SHA256 string `json:",omitempty"` // regular files
	Link   string `json:",omitempty"` // symbolic links: the target
}

// Snapshot walks root, without following symbolic links, and returns its
// tree, leaving out paths matched by an ignore pattern (path.Match on the
// slash-separated relative path) and everything under them. A root that
// does not exist is an empty tree.
func Snapshot(root string, ignore ...string) (Tree, error) {
	tree := Tree{}
	if _, err := os.Lstat(root); os.IsNotExist(err) {
		return tree, nil
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if ignored(rel, ignore) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := Entry{Mode: info.Mode().String()}
		switch {
		case info.Mode().IsRegular():
			sum, err := fileSHA256(p)
			if err != nil {
				return err
			}
			e.SHA256 = sum
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			e.Link = target
		}
		tree[rel] = e
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", root, err)
	}
	return tree, nil
}

func ignored(rel string, patterns []string) bool {
	for _, pat := range patterns {
		if ok, _ := path.Match(pat, rel); ok {
			return true
		}
	}
	return false
}

// fileSHA256 is the hex sha256 of the regular file at p. (sdktest is for
// plugin authors outside this module, so it imports nothing of Cairn's
// but plugins/sdk and proto/.)
func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
