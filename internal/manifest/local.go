package manifest

import (
	"fmt"
	"path/filepath"
)

// LocalPath returns the file of the local component c (one given by
// path): its path under dir, or under the manifest's directory when dir
// is empty, with every symlink resolved. A file whose real location is
// outside that directory, through ".." or a symlink, is refused with
// ErrOutside: a component's file is uploaded to the DML, where every
// auditor can read it, so it must be one the release manager put beside
// the manifest, not whatever a manifest names. Errors say what the path
// is and where it leads; the caller names the component and its line.
func (m *Manifest) LocalPath(c Component, dir string) (string, error) {
	if dir == "" {
		dir = m.Dir
	}
	if !filepath.IsLocal(c.Path) {
		return "", fmt.Errorf("path %q leaves %s (%w)", c.Path, dir, ErrOutside)
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err == nil {
		realDir, err = filepath.Abs(realDir)
	}
	if err != nil {
		return "", err
	}
	p, err := filepath.EvalSymlinks(filepath.Join(realDir, c.Path))
	if err != nil {
		return "", err
	}
	if rel, err := filepath.Rel(realDir, p); err != nil || !filepath.IsLocal(rel) {
		return "", fmt.Errorf("path %q resolves to %s, outside %s (%w)", c.Path, p, dir, ErrOutside)
	}
	return p, nil
}
