package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// SparseFile makes a file of size bytes in a new temporary directory of t
// that takes no room on disk, for tests of size limits.
func SparseFile(t testing.TB, size int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "big")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return path
}
