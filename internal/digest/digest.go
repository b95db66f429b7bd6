// Package digest computes the sha256 digests Cairn names content by: DML
// artifacts, release components, plugin binaries, cached files.
package digest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/cairn-ops/cairn/internal/readlimit"
)

// File returns the lowercase hex sha256 of the regular file at path, read
// as a stream (so of any size). A named pipe or a device is refused
// without being opened (readlimit.Open).
func File(path string) (string, error) {
	f, err := readlimit.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
