// Package blob is the controller's content-addressed file store, for
// things too large for the metadata store: full audit documents now,
// release artifacts later. A blob is named by the sha256 of its content
// (64 lowercase hex digits) and never changes once written.
//
// Layout under the store's directory:
//
//	tmp/                    partial writes, renamed into place when complete
//	tmp/<dir>/              owned by a user of the store (the DML's upload
//	                        sessions), never cleaned by Open
//	ab/abcdef…(64 hex)      one file per blob, fanned out by its first two digits
//
// Put writes atomically: the content streams into a temporary file in
// tmp/ while it is hashed, the file is fsynced and renamed to its digest,
// and the directory is fsynced. A reader or a crash sees the whole blob or
// none. Storing content that is already there keeps the existing file.
package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cairn-ops/cairn/internal/atomicfile"
)

// staleTemp is how old a file in tmp/ must be for Open to remove it as
// the leftover of a crashed Put.
const staleTemp = time.Hour

// Store is a directory of blobs. It is safe for concurrent use, also by
// several processes sharing the directory.
type Store struct {
	dir string
	tmp string
}

// Open opens the blob directory dir, creating it (0700) if needed, and
// removes temporary files left by an interrupted Put.
func Open(dir string) (*Store, error) {
	s := &Store{dir: dir, tmp: filepath.Join(dir, "tmp")}
	if err := os.MkdirAll(s.tmp, 0o700); err != nil {
		return nil, fmt.Errorf("open blob store: %w", err)
	}
	if err := s.removeStale(time.Now().Add(-staleTemp)); err != nil {
		return nil, fmt.Errorf("open blob store %s: %w", dir, err)
	}
	return s, nil
}

func (s *Store) removeStale(before time.Time) error {
	entries, err := os.ReadDir(s.tmp)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue // owned by someone else, e.g. the DML's tmp/uploads
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if info.ModTime().Before(before) {
			if err := os.Remove(filepath.Join(s.tmp, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// Dir is the directory the store lives in.
func (s *Store) Dir() string { return s.dir }

// Path returns the file holding digest, for readers that need a path
// (a plugin planning with an artifact). The file is read-only.
func (s *Store) Path(digest string) (string, error) {
	if err := Check(digest); err != nil {
		return "", err
	}
	p := s.path(digest)
	if _, err := os.Stat(p); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%w: %s", ErrNotFound, digest)
		}
		return "", err
	}
	return p, nil
}

// Put stores what r yields and returns its sha256 digest (hex) and size.
// It reads at most limit bytes: more fails with ErrTooLarge and stores
// nothing. A limit of 0 or less means no limit.
func (s *Store) Put(ctx context.Context, r io.Reader, limit int64) (digest string, size int64, err error) {
	tmp, err := os.CreateTemp(s.tmp, "put-*")
	if err != nil {
		return "", 0, fmt.Errorf("put blob: %w", err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	h := sha256.New()
	src := io.Reader(&ctxReader{ctx: ctx, r: r})
	if limit > 0 {
		src = io.LimitReader(src, limit+1)
	}
	size, err = io.Copy(io.MultiWriter(tmp, h), src)
	if err != nil {
		return "", 0, fmt.Errorf("put blob: read: %w", err)
	}
	if limit > 0 && size > limit {
		return "", 0, fmt.Errorf("put blob: %w: more than %d bytes", ErrTooLarge, limit)
	}
	digest = hex.EncodeToString(h.Sum(nil))
	if err := tmp.Chmod(0o400); err != nil {
		return "", 0, fmt.Errorf("put blob %s: %w", digest, err)
	}
	if err := tmp.Sync(); err != nil {
		return "", 0, fmt.Errorf("put blob %s: sync: %w", digest, err)
	}
	if err := tmp.Close(); err != nil {
		return "", 0, fmt.Errorf("put blob %s: close: %w", digest, err)
	}

	path := s.path(digest)
	if _, err := os.Stat(path); err == nil {
		return digest, size, nil // already stored; the deferred cleanup drops tmp
	}
	fanout := filepath.Dir(path)
	created := false
	switch err := os.Mkdir(fanout, 0o700); {
	case err == nil:
		created = true
	case !errors.Is(err, fs.ErrExist):
		return "", 0, fmt.Errorf("put blob %s: %w", digest, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", 0, fmt.Errorf("put blob %s: %w", digest, err)
	}
	tmp = nil // renamed; nothing to clean up
	if err := atomicfile.SyncDir(fanout); err != nil {
		return "", 0, fmt.Errorf("put blob %s: %w", digest, err)
	}
	if created {
		if err := atomicfile.SyncDir(s.dir); err != nil {
			return "", 0, fmt.Errorf("put blob %s: %w", digest, err)
		}
	}
	return digest, size, nil
}

// Open returns the blob's content. The caller closes it.
func (s *Store) Open(digest string) (io.ReadCloser, error) {
	if err := Check(digest); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path(digest))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, digest)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	return f, nil
}

// Remove deletes the blob. Removing a blob that is not there is not an
// error. Only the DML's garbage collection removes blobs.
func (s *Store) Remove(digest string) error {
	if err := Check(digest); err != nil {
		return err
	}
	path := s.path(digest)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove blob %s: %w", digest, err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("remove blob %s: %w", digest, err)
	}
	return nil
}

// Has reports whether the blob is stored. An invalid digest is never
// stored.
func (s *Store) Has(digest string) bool {
	if Check(digest) != nil {
		return false
	}
	info, err := os.Stat(s.path(digest))
	return err == nil && info.Mode().IsRegular()
}

// Verify re-reads the blob and fails with ErrCorrupt when its content no
// longer hashes to digest.
func (s *Store) Verify(digest string) error {
	f, err := s.Open(digest)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("verify blob %s: %w", digest, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != digest {
		return fmt.Errorf("%w: %s now hashes to %s", ErrCorrupt, digest, got)
	}
	return nil
}

// Check returns ErrInvalidDigest unless digest is 64 lowercase hex
// digits, the only names that can be blobs (and never a path).
func Check(digest string) error {
	if len(digest) != 2*sha256.Size {
		return fmt.Errorf("%w: %q is not 64 hex digits", ErrInvalidDigest, digest)
	}
	for _, c := range []byte(digest) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("%w: %q is not lowercase hex", ErrInvalidDigest, digest)
		}
	}
	return nil
}

func (s *Store) path(digest string) string {
	return filepath.Join(s.dir, digest[:2], digest)
}

// ctxReader stops a Put whose context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
