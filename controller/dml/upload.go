package dml

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cairn-ops/cairn/internal/atomicfile"
	"github.com/cairn-ops/cairn/internal/limits"
)

// SessionTTL is how long an upload session lives after its last write;
// older sessions are discarded when the DML starts and when asked for.
const SessionTTL = 24 * time.Hour

// Meta is what the first Push header declares about an upload.
type Meta struct {
	Name string
	Kind string
	// Size is the whole file's size in bytes.
	Size int64
	// SHA256 is optional: the digest (hex) the content must hash to.
	SHA256 string
}

// Upload is the state of one upload session.
type Upload struct {
	ID        string
	CreatedBy string
	CreatedAt time.Time
	// Declared is false until the first Push header names the file.
	Declared bool
	Meta
	// Received is how many bytes are stored durably: the next write
	// starts there.
	Received int64
	// ExpiresAt is SessionTTL after the last write.
	ExpiresAt time.Time
}

// sidecar is the JSON file kept beside an upload's data.
type sidecar struct {
	ID        string    `json:"id"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	Declared  bool      `json:"declared"`
	Name      string    `json:"name,omitempty"`
	Kind      string    `json:"kind,omitempty"`
	Size      int64     `json:"size_bytes"`
	SHA256    string    `json:"sha256,omitempty"`
}

// sessions are the upload session files under the blob directory's
// tmp/uploads: <id> holds the bytes received so far, <id>.json the
// sidecar. Each session has its own lock, so that two pushes to one
// upload cannot interleave.
type sessions struct {
	dir   string
	locks sync.Map // upload ID → *sync.Mutex
}

func (s *sessions) lock(id string) func() {
	m, _ := s.locks.LoadOrStore(id, new(sync.Mutex))
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

func (s *sessions) dataPath(id string) string { return filepath.Join(s.dir, id) }
func (s *sessions) metaPath(id string) string { return filepath.Join(s.dir, id+".json") }

// checkID refuses anything but the 32 lowercase hex digits newID makes,
// so an ID is never a path.
func checkID(id string) error {
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return fmt.Errorf("%w: upload ID %s is not 32 lowercase hex digits", ErrInvalid, limits.Quote(id))
	}
	return nil
}

func newUploadID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("new upload ID: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func (s *sessions) create(actor string, now time.Time) (*Upload, error) {
	id, err := newUploadID()
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(s.dataPath(id), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create upload: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("create upload: %w", err)
	}
	sc := &sidecar{ID: id, CreatedBy: actor, CreatedAt: now.UTC()}
	if err := s.writeSidecar(sc); err != nil {
		os.Remove(s.dataPath(id))
		return nil, err
	}
	return s.status(id, now)
}

func (s *sessions) writeSidecar(sc *sidecar) error {
	data, err := json.Marshal(sc)
	if err != nil {
		return fmt.Errorf("encode upload %s: %w", sc.ID, err)
	}
	if err := atomicfile.Write(s.metaPath(sc.ID), data, 0o600); err != nil {
		return fmt.Errorf("write upload %s: %w", sc.ID, err)
	}
	return nil
}

func (s *sessions) readSidecar(id string) (*sidecar, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(s.metaPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s (it may have expired after %s; start a new push)", ErrUploadNotFound, id, SessionTTL)
	}
	if err != nil {
		return nil, fmt.Errorf("read upload %s: %w", id, err)
	}
	var sc sidecar
	if err := json.Unmarshal(data, &sc); err != nil {
		return nil, fmt.Errorf("read upload %s: %w", id, err)
	}
	return &sc, nil
}

// status reads a session; an expired one is discarded and not found.
func (s *sessions) status(id string, now time.Time) (*Upload, error) {
	sc, err := s.readSidecar(id)
	if err != nil {
		return nil, err
	}
	info, err := os.Stat(s.dataPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no data file", ErrUploadNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", id, err)
	}
	last := s.lastChange(id)
	u := &Upload{
		ID: sc.ID, CreatedBy: sc.CreatedBy, CreatedAt: sc.CreatedAt, Declared: sc.Declared,
		Meta:      Meta{Name: sc.Name, Kind: sc.Kind, Size: sc.Size, SHA256: sc.SHA256},
		Received:  info.Size(),
		ExpiresAt: last.Add(SessionTTL),
	}
	if !now.Before(u.ExpiresAt) {
		if err := s.remove(id); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s expired at %s; start a new push", ErrUploadNotFound, id, u.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return u, nil
}

// append writes data at the end of the session's file and syncs it, so
// that what status reports is durable.
func (s *sessions) append(id string, data []byte) error {
	f, err := os.OpenFile(s.dataPath(id), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("write upload %s: %w", id, err)
	}
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if err := f.Close(); werr == nil {
		werr = err
	}
	if werr != nil {
		return fmt.Errorf("write upload %s: %w", id, werr)
	}
	return nil
}

// remove deletes a session's files; a missing file is no error.
func (s *sessions) remove(id string) error {
	var errs []error
	for _, p := range []string{s.metaPath(id), s.dataPath(id)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("discard upload %s: %w", id, err)
	}
	return nil
}

// removeStale discards every session (and every leftover file) whose last
// change is SessionTTL before now or older, and returns how many files
// it removed.
func (s *sessions) removeStale(now time.Time) (int, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, fmt.Errorf("list uploads: %w", err)
	}
	removed := 0
	seen := map[string]bool{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		if id := strings.TrimSuffix(e.Name(), ".json"); checkID(id) == nil {
			// A session goes as a whole, by its newest file.
			if seen[id] {
				continue
			}
			seen[id] = true
			if now.Sub(s.lastChange(id)) < SessionTTL {
				continue
			}
			if err := s.remove(id); err != nil {
				return removed, err
			}
			removed++
			continue
		}
		// A leftover temporary sidecar.
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return removed, fmt.Errorf("list uploads: %w", err)
		}
		if now.Sub(info.ModTime()) < SessionTTL {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("remove stale upload file: %w", err)
		}
		removed++
	}
	return removed, nil
}

// lastChange is the newest modification time of a session's files (the
// zero time when it has none).
func (s *sessions) lastChange(id string) time.Time {
	var last time.Time
	for _, p := range []string{s.dataPath(id), s.metaPath(id)} {
		if info, err := os.Stat(p); err == nil && info.ModTime().After(last) {
			last = info.ModTime()
		}
	}
	return last
}
