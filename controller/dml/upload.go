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
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/internal/atomicfile"
	"github.com/cairn-ops/cairn/internal/bytesize"
	"github.com/cairn-ops/cairn/internal/limits"
)

// The caps on unfinished uploads, by the controller config key that sets
// each: the label of cairn_upload_refusals_total and the word refusals
// name.
const (
	CapSessionsPerUser = "upload_sessions_per_user"
	CapSessions        = "upload_sessions"
	CapBytesPerUser    = "upload_bytes_per_user"
	CapBytes           = "upload_bytes"
)

// Caps are the caps, in the order refusals check them.
var Caps = []string{CapSessionsPerUser, CapSessions, CapBytesPerUser, CapBytes}

// SessionLimits bound the unfinished uploads the library holds, so that
// abandoned pushes cannot fill the controller's disk. Bytes are counted
// as declared (a push's size, reserved when its header arrives), not as
// received, so a session cannot grow past what its cap admitted. A zero
// field takes its default (internal/limits; the byte caps are 4 and 16
// times the largest artifact).
type SessionLimits struct {
	// PerUser is how many unfinished uploads one user may hold.
	PerUser int
	// Total is how many all users together may hold.
	Total int
	// BytesPerUser is how many bytes one user's unfinished uploads may
	// declare together.
	BytesPerUser int64
	// Bytes is how many bytes all unfinished uploads may declare.
	Bytes int64
	// Idle is how long a session lives after its last write.
	Idle time.Duration
}

// withDefaults fills in the zero fields; maxBytes is the largest artifact.
func (l SessionLimits) withDefaults(maxBytes int64) SessionLimits {
	if l.PerUser <= 0 {
		l.PerUser = limits.DefaultUploadSessionsPerUser
	}
	if l.Total <= 0 {
		l.Total = limits.DefaultUploadSessions
	}
	if l.BytesPerUser <= 0 {
		l.BytesPerUser = limits.UploadBytesPerUserArtifacts * maxBytes
	}
	if l.Bytes <= 0 {
		l.Bytes = limits.UploadBytesArtifacts * maxBytes
	}
	if l.Idle <= 0 {
		l.Idle = limits.DefaultUploadIdle
	}
	return l
}

// SessionStats is what the unfinished uploads hold, for /metrics.
type SessionStats struct {
	// Open counts the sessions.
	Open int
	// Bytes is what they hold on disk; DeclaredBytes what they declared.
	Bytes, DeclaredBytes int64
	// Refused counts refusals by cap (Caps), since the library opened.
	Refused map[string]uint64
	// Expired counts sessions discarded after Idle without a write.
	Expired uint64
	// SweepErrors counts sweeps (Run) that could not remove a file.
	SweepErrors uint64
}

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
	ID string
	// CreatedBy is the actor who opened it; Owner the user it counts
	// against ("user:NAME", whatever token they used).
	CreatedBy string
	Owner     string
	CreatedAt time.Time
	// Declared is false until the first Push header names the file.
	Declared bool
	Meta
	// Received is how many bytes are stored durably: the next write
	// starts there.
	Received int64
	// ExpiresAt is SessionLimits.Idle after the last write.
	ExpiresAt time.Time
}

// owner is the user an upload counts against: "user:NAME" for a user
// whatever token they acted with, else the actor itself.
func owner(actor string) string {
	if u, _ := auth.ParseActor(actor); u != "" {
		return "user:" + u
	}
	return actor
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

// session is what the index keeps of one upload for the caps.
type session struct {
	owner    string
	declared int64
	received int64
}

// sessions are the upload session files under the blob directory's
// tmp/uploads: <id> holds the bytes received so far, <id>.json the
// sidecar. Each session has its own lock, so that two pushes to one
// upload cannot interleave; the index (open), rebuilt from the files
// when the library opens, counts them against the caps.
//
// Lock order: a session's lock, then mu. lockMu guards the table of
// session locks only and is never held while waiting for one.
type sessions struct {
	dir    string
	limits SessionLimits

	lockMu sync.Mutex
	locks  map[string]*sessionLock // upload ID → its lock, while someone holds or waits for it

	mu          sync.Mutex
	open        map[string]*session
	refused     map[string]uint64
	expired     uint64
	sweepErrors uint64
}

func newSessions(dir string, l SessionLimits) *sessions {
	return &sessions{dir: dir, limits: l, locks: map[string]*sessionLock{}, open: map[string]*session{}, refused: map[string]uint64{}}
}

// sessionLock is one upload's lock and how many hold or wait for it.
type sessionLock struct {
	mu   sync.Mutex
	refs int
}

// lock takes the lock of upload id and returns its unlock. The table
// keeps a lock only while it is held or awaited: calls naming IDs that
// are not (or no longer) sessions must not grow it without end.
func (s *sessions) lock(id string) func() {
	s.lockMu.Lock()
	l := s.locks[id]
	if l == nil {
		l = &sessionLock{}
		s.locks[id] = l
	}
	l.refs++
	s.lockMu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		s.lockMu.Lock()
		if l.refs--; l.refs == 0 {
			delete(s.locks, id)
		}
		s.lockMu.Unlock()
	}
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

// free says how to make room under a cap for who.
func (s *sessions) free(who string) string {
	var ids []string
	for id, e := range s.open {
		if e.owner == who {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	how := fmt.Sprintf("finish an unfinished push (cairnctl artifact push FILE --resume ID) or discard it (cairnctl artifact discard ID), or wait: a session without data for %s is discarded", s.limits.Idle)
	if len(ids) > 0 {
		how += "; " + who + "'s sessions: " + strings.Join(ids, ", ")
	}
	return how
}

// refuse counts a refusal by cap and returns its error.
func (s *sessions) refuse(cap, format string, args ...any) error {
	s.refused[cap]++
	return fmt.Errorf("%w: %s (%s)", ErrLimit, fmt.Sprintf(format, args...), cap)
}

func (s *sessions) create(actor string, now time.Time) (*Upload, error) {
	who := owner(actor)
	s.mu.Lock()
	n := 0
	for _, e := range s.open {
		if e.owner == who {
			n++
		}
	}
	switch {
	case n >= s.limits.PerUser:
		err := s.refuse(CapSessionsPerUser, "%s holds %d unfinished uploads, the most one user may hold: %s", who, n, s.free(who))
		s.mu.Unlock()
		return nil, err
	case len(s.open) >= s.limits.Total:
		err := s.refuse(CapSessions, "the controller holds %d unfinished uploads, the most it holds for all users together: %s", len(s.open), s.free(who))
		s.mu.Unlock()
		return nil, err
	}
	id, err := s.createFiles(actor, now)
	if err == nil {
		s.open[id] = &session{owner: who}
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return s.status(id, now)
}

// createFiles makes a new session's data file and sidecar.
func (s *sessions) createFiles(actor string, now time.Time) (string, error) {
	id, err := newUploadID()
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(s.dataPath(id), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("create upload: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(s.dataPath(id))
		return "", fmt.Errorf("create upload: %w", err)
	}
	sc := &sidecar{ID: id, CreatedBy: actor, CreatedAt: now.UTC()}
	if err := s.writeSidecar(sc); err != nil {
		os.Remove(s.dataPath(id))
		return "", err
	}
	return id, nil
}

// reserve checks that a session may declare size bytes under the byte
// caps and records it; the caller holds the session's lock.
func (s *sessions) reserve(id string, size int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.open[id]
	if e == nil {
		return fmt.Errorf("%w: %s", ErrUploadNotFound, id)
	}
	var mine, all int64
	for oid, o := range s.open {
		if oid == id {
			continue
		}
		all += o.declared
		if o.owner == e.owner {
			mine += o.declared
		}
	}
	switch {
	case mine+size > s.limits.BytesPerUser:
		return s.refuse(CapBytesPerUser, "%s's unfinished uploads declare %s; with this upload of %s that is more than the %s one user may declare: %s",
			e.owner, bytesize.Format(uint64(mine)), bytesize.Format(uint64(size)), bytesize.Format(uint64(s.limits.BytesPerUser)), s.free(e.owner))
	case all+size > s.limits.Bytes:
		return s.refuse(CapBytes, "the unfinished uploads declare %s; with this upload of %s that is more than the %s all users may declare together: %s",
			bytesize.Format(uint64(all)), bytesize.Format(uint64(size)), bytesize.Format(uint64(s.limits.Bytes)), s.free(e.owner))
	}
	e.declared = size
	return nil
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
		return nil, fmt.Errorf("%w: %s (it may have been discarded after %s without data; start a new push)", ErrUploadNotFound, id, s.limits.Idle)
	}
	if err != nil {
		return nil, fmt.Errorf("read upload %s: %w", id, err)
	}
	var sc sidecar
	if err := json.Unmarshal(data, &sc); err != nil {
		return nil, fmt.Errorf("read upload %s: %w", id, err)
	}
	if sc.ID != id {
		return nil, fmt.Errorf("read upload %s: its sidecar names upload %s", id, limits.Quote(sc.ID))
	}
	return &sc, nil
}

// status reads a session; an expired one is discarded and not found, and
// so is one whose data file is gone.
func (s *sessions) status(id string, now time.Time) (*Upload, error) {
	sc, err := s.readSidecar(id)
	if err != nil {
		return nil, err
	}
	info, err := os.Stat(s.dataPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		if err := s.remove(id); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s lost its data file; start a new push", ErrUploadNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", id, err)
	}
	u := &Upload{
		ID: sc.ID, CreatedBy: sc.CreatedBy, Owner: owner(sc.CreatedBy), CreatedAt: sc.CreatedAt, Declared: sc.Declared,
		Meta:      Meta{Name: sc.Name, Kind: sc.Kind, Size: sc.Size, SHA256: sc.SHA256},
		Received:  info.Size(),
		ExpiresAt: s.lastChange(id).Add(s.limits.Idle),
	}
	if !now.Before(u.ExpiresAt) {
		if err := s.expire(id); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s expired at %s after %s without data; start a new push", ErrUploadNotFound, id, u.ExpiresAt.UTC().Format(time.RFC3339), s.limits.Idle)
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
	s.mu.Lock()
	if e := s.open[id]; e != nil {
		e.received += int64(len(data))
	}
	s.mu.Unlock()
	return nil
}

// remove deletes a session's files and its index entry; a missing file
// is no error.
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
	s.mu.Lock()
	delete(s.open, id)
	s.mu.Unlock()
	return nil
}

// expire removes a session that went Idle without a write.
func (s *sessions) expire(id string) error {
	if err := s.remove(id); err != nil {
		return err
	}
	s.mu.Lock()
	s.expired++
	s.mu.Unlock()
	return nil
}

// sweep discards the sessions whose last change is Idle before now or
// older, and returns how many it removed.
func (s *sessions) sweep(now time.Time) (int, error) {
	s.mu.Lock()
	ids := make([]string, 0, len(s.open))
	for id := range s.open {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	slices.Sort(ids)
	removed := 0
	for _, id := range ids {
		unlock := s.lock(id)
		var err error
		if now.Sub(s.lastChange(id)) >= s.limits.Idle {
			if err = s.expire(id); err == nil {
				removed++
			}
		}
		unlock()
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// load rebuilds the index from the upload directory when the library
// opens, and removes what cannot be resumed: a sidecar without its data
// file or the reverse (a crash between the two), an unreadable sidecar,
// data longer than its declared size, a session idle for Idle or more,
// and anything else in the directory (a leftover temporary sidecar). It
// returns how many sessions it kept and how many files it removed.
func (s *sessions) load(now time.Time) (kept, removed int, err error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, 0, fmt.Errorf("list uploads: %w", err)
	}
	files := map[string]bool{}
	for _, e := range entries {
		files[e.Name()] = true
	}
	rm := func(name string) error {
		if err := os.RemoveAll(filepath.Join(s.dir, name)); err != nil {
			return fmt.Errorf("remove stale upload file: %w", err)
		}
		delete(files, name)
		removed++
		return nil
	}
	for _, e := range entries {
		name := e.Name()
		if !files[name] {
			continue // removed with its pair
		}
		id := strings.TrimSuffix(name, ".json")
		if checkID(id) != nil || e.IsDir() {
			if err := rm(name); err != nil {
				return kept, removed, err
			}
			continue
		}
		ok := files[id] && files[id+".json"] && now.Sub(s.lastChange(id)) < s.limits.Idle
		var sc *sidecar
		var info fs.FileInfo
		if ok {
			sc, err = s.readSidecar(id)
			info, _ = os.Stat(s.dataPath(id))
			ok = err == nil && info != nil && info.Mode().IsRegular() &&
				(sc.Declared && info.Size() <= sc.Size || !sc.Declared && info.Size() == 0)
		}
		if !ok {
			for _, n := range []string{id, id + ".json"} {
				if files[n] {
					if err := rm(n); err != nil {
						return kept, removed, err
					}
				}
			}
			continue
		}
		e := &session{owner: owner(sc.CreatedBy), received: info.Size()}
		if sc.Declared {
			e.declared = sc.Size
		}
		s.open[id] = e
		delete(files, id)
		delete(files, id+".json")
		kept++
	}
	return kept, removed, nil
}

func (s *sessions) sweepFailed() {
	s.mu.Lock()
	s.sweepErrors++
	s.mu.Unlock()
}

// stats sums the index.
func (s *sessions) stats() SessionStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := SessionStats{Open: len(s.open), Refused: map[string]uint64{}, Expired: s.expired, SweepErrors: s.sweepErrors}
	for _, e := range s.open {
		st.Bytes += e.received
		st.DeclaredBytes += e.declared
	}
	for _, c := range Caps {
		st.Refused[c] = s.refused[c]
	}
	return st
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
