package blob_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/controller/blob"
)

func open(t *testing.T) (*blob.Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "blobs")
	s, err := blob.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func read(t *testing.T, s *blob.Store, digest string) []byte {
	t.Helper()
	rc, err := s.Open(digest)
	if err != nil {
		t.Fatalf("Open(%s): %v", digest, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tmpFiles lists what is left in the store's temporary directory.
func tmpFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestOpenCreatesDirs(t *testing.T) {
	_, dir := open(t)
	for _, d := range []string{dir, filepath.Join(dir, "tmp")} {
		info, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if !info.IsDir() || info.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, want a 0700 directory", d, info.Mode())
		}
	}
}

func TestPutOpen(t *testing.T) {
	tests := []struct {
		name    string
		content []byte
		limit   int64
	}{
		{"empty", nil, 10},
		{"small", []byte("hello, audit"), 100},
		{"exactly the limit", []byte("0123456789"), 10},
		{"no limit", bytes.Repeat([]byte("x"), 1<<20), 0},
		{"large, in many reads", bytes.Repeat([]byte("0123456789abcdef"), 1<<16), 1 << 21},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, dir := open(t)
			digest, size, err := s.Put(t.Context(), bytes.NewReader(tc.content), tc.limit)
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			if digest != sum(tc.content) || size != int64(len(tc.content)) {
				t.Errorf("Put = %s, %d; want %s, %d", digest, size, sum(tc.content), len(tc.content))
			}
			if !s.Has(digest) {
				t.Error("Has after Put = false")
			}
			if got := read(t, s, digest); !bytes.Equal(got, tc.content) {
				t.Errorf("Open returned %d bytes, want the %d put", len(got), len(tc.content))
			}
			if err := s.Verify(digest); err != nil {
				t.Errorf("Verify: %v", err)
			}
			path := filepath.Join(dir, digest[:2], digest)
			info, err := os.Stat(path)
			if err != nil {
				t.Fatalf("blob not at %s: %v", path, err)
			}
			if info.Mode().Perm() != 0o400 {
				t.Errorf("blob mode %v, want 0400", info.Mode().Perm())
			}
			if left := tmpFiles(t, dir); len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

func TestPutDedupes(t *testing.T) {
	s, dir := open(t)
	content := []byte("same content")
	d1, _, err := s.Put(t.Context(), bytes.NewReader(content), 0)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, d1[:2], d1)
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	d2, size, err := s.Put(t.Context(), bytes.NewReader(content), 0)
	if err != nil {
		t.Fatal(err)
	}
	if d2 != d1 || size != int64(len(content)) {
		t.Errorf("second Put = %s, %d; want %s, %d", d2, size, d1, len(content))
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Error("second Put replaced the stored file")
	}
	if left := tmpFiles(t, dir); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestPutTooLarge(t *testing.T) {
	s, dir := open(t)
	content := []byte("eleven byte")
	_, _, err := s.Put(t.Context(), bytes.NewReader(content), 10)
	if !errors.Is(err, blob.ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	if !strings.Contains(err.Error(), "more than 10 bytes") {
		t.Errorf("error %q does not name the limit", err)
	}
	if s.Has(sum(content)) {
		t.Error("an oversized blob was stored")
	}
	if left := tmpFiles(t, dir); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// failingReader yields some bytes and then an error.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errors.New("connection reset")
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

func TestPutReadError(t *testing.T) {
	s, dir := open(t)
	if _, _, err := s.Put(t.Context(), &failingReader{n: 100}, 0); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Errorf("got %v, want the reader's error", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := s.Put(ctx, strings.NewReader("x"), 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a canceled context: got %v, want context.Canceled", err)
	}
	if left := tmpFiles(t, dir); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestBadDigests(t *testing.T) {
	s, _ := open(t)
	good := sum([]byte("x"))
	tests := []struct {
		name, digest string
	}{
		{"empty", ""},
		{"parent path", "../x"},
		{"parent path, digest length", "../" + good[3:]},
		{"absolute path", "/" + good[1:]},
		{"uppercase", strings.ToUpper(good)},
		{"short", good[:63]},
		{"long", good + "0"},
		{"not hex", "g" + good[1:]},
		{"tmp dir", "tmp"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Open(tc.digest); !errors.Is(err, blob.ErrInvalidDigest) {
				t.Errorf("Open: got %v, want ErrInvalidDigest", err)
			}
			if err := s.Verify(tc.digest); !errors.Is(err, blob.ErrInvalidDigest) {
				t.Errorf("Verify: got %v, want ErrInvalidDigest", err)
			}
			if s.Has(tc.digest) {
				t.Error("Has = true")
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	s, _ := open(t)
	missing := sum([]byte("never stored"))
	if _, err := s.Open(missing); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Open: got %v, want ErrNotFound", err)
	}
	if err := s.Verify(missing); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Verify: got %v, want ErrNotFound", err)
	}
	if s.Has(missing) {
		t.Error("Has = true")
	}
}

func TestConcurrentPuts(t *testing.T) {
	s, dir := open(t)
	contents := [][]byte{bytes.Repeat([]byte("a"), 100_000), bytes.Repeat([]byte("b"), 100_000)}
	const perContent = 8
	type result struct {
		digest string
		err    error
	}
	results := make(chan result, perContent*len(contents))
	var wg sync.WaitGroup
	for range perContent {
		for _, c := range contents {
			wg.Go(func() {
				d, _, err := s.Put(t.Context(), bytes.NewReader(c), 0)
				results <- result{d, err}
			})
		}
	}
	wg.Wait()
	close(results)
	counts := map[string]int{}
	for r := range results {
		if r.err != nil {
			t.Error(r.err)
		}
		counts[r.digest]++
	}
	want := map[string]int{sum(contents[0]): perContent, sum(contents[1]): perContent}
	if diff := cmp.Diff(want, counts); diff != "" {
		t.Errorf("digests (-want +got):\n%s", diff)
	}
	for _, c := range contents {
		if got := read(t, s, sum(c)); !bytes.Equal(got, c) {
			t.Errorf("blob %s has %d bytes, want %d", sum(c)[:8], len(got), len(c))
		}
	}
	if left := tmpFiles(t, dir); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestVerifyCorrupt(t *testing.T) {
	s, dir := open(t)
	digest, _, err := s.Put(t.Context(), strings.NewReader("original audit"), 0)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, digest[:2], digest)
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("tampered audit"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = s.Verify(digest)
	if !errors.Is(err, blob.ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
	if want := sum([]byte("tampered audit")); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not give the content's hash %s", err, want)
	}
}

func TestOpenRemovesStaleTemps(t *testing.T) {
	_, dir := open(t)
	stale, fresh := filepath.Join(dir, "tmp", "put-stale"), filepath.Join(dir, "tmp", "put-fresh")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := blob.Open(dir); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"put-fresh"}, tmpFiles(t, dir)); diff != "" {
		t.Errorf("tmp after Open (-want +got):\n%s", diff)
	}
}

// TestOpenKeepsTempDirs: directories under tmp/ belong to the store's
// users (the DML's upload sessions); Open leaves them and their files
// alone however old they are.
func TestOpenKeepsTempDirs(t *testing.T) {
	_, dir := open(t)
	uploads := filepath.Join(dir, "tmp", "uploads")
	if err := os.Mkdir(uploads, 0o700); err != nil {
		t.Fatal(err)
	}
	session := filepath.Join(uploads, "session")
	if err := os.WriteFile(session, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	for _, p := range []string{session, uploads} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := blob.Open(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(session); err != nil {
		t.Errorf("Open removed a file under tmp/uploads: %v", err)
	}
}

func TestRemove(t *testing.T) {
	s, _ := open(t)
	digest, _, err := s.Put(t.Context(), strings.NewReader("artifact"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(digest); err != nil {
		t.Fatal(err)
	}
	if s.Has(digest) {
		t.Error("blob still there after Remove")
	}
	if err := s.Remove(digest); err != nil {
		t.Errorf("second Remove: %v, want nil", err)
	}
	if err := s.Remove("../x"); !errors.Is(err, blob.ErrInvalidDigest) {
		t.Errorf("Remove of a path: %v, want ErrInvalidDigest", err)
	}
}
