package exec

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/cairn-ops/cairn/internal/inroot"
)

// exists reports whether path (absolute, inside the root) exists. It is
// resolved as a process chrooted to the root would resolve it: symlinks,
// absolute ones included, stay inside the root.
func (c *config) exists(path string) (bool, error) {
	_, err := inroot.Stat(c.root, path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("check creates %s: %w", path, err)
	}
}
