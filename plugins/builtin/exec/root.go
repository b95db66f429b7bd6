package exec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// exists reports whether path (absolute, inside the root) exists,
// resolving it through an os.Root so that a symlink cannot point the
// check outside the root.
func (c *config) exists(path string) (bool, error) {
	root, err := os.OpenRoot(c.root)
	if err != nil {
		return false, fmt.Errorf("open root: %w", err)
	}
	defer root.Close()
	name := strings.TrimLeft(path, "/")
	if name == "" {
		name = "."
	}
	_, err = root.Stat(name)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("check creates %s: %w", path, err)
	}
}
