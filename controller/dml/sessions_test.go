package dml_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/controller/blob"
	"github.com/cairn-ops/cairn/controller/dml"
	"github.com/cairn-ops/cairn/controller/store"
)

// clock is a settable clock for the idle limit.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// capped opens a DML over dir with small caps: 2 sessions per user, 3 in
// all, 3000 declared bytes per user, 4000 in all, artifacts up to 2000
// bytes, an hour of idle time.
func capped(t *testing.T, dir string, c *clock) *dml.DML {
	t.Helper()
	blobs, err := blob.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dml.New(store.NewMemory(), blobs, dml.Options{
		MaxBytes: 2000,
		Sessions: dml.SessionLimits{PerUser: 2, Total: 3, BytesPerUser: 3000, Bytes: 4000, Idle: time.Hour},
		Now:      c.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// uploads lists the upload directory.
func uploads(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "tmp", "uploads"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// files are the two files of each session.
func files(ids ...string) []string {
	var out []string
	for _, id := range ids {
		out = append(out, id, id+".json")
	}
	slices.Sort(out)
	return out
}

func meta(size int) dml.Meta {
	return dml.Meta{Name: "a.bin", Kind: "utility", Size: int64(size)}
}

// TestSessionCaps: abandoned uploads cannot pile up. Opening one past a
// count cap and declaring bytes past a byte cap are refused with
// ErrLimit naming the cap, the current use and how to free it; the
// refused upload leaves no file; /metrics' counts follow.
func TestSessionCaps(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: testNow}
	d := capped(t, dir, c)
	ctx := t.Context()
	begin := func(actor string) (*dml.Upload, error) { return d.BeginUpload(ctx, actor) }

	a1, err := begin("user:alice")
	if err != nil {
		t.Fatal(err)
	}
	// Another token of alice's is still alice.
	a2, err := begin("user:alice (token issued by root)")
	if err != nil {
		t.Fatal(err)
	}
	_, err = begin("user:alice")
	if !errors.Is(err, dml.ErrLimit) {
		t.Fatalf("alice's third upload: %v, want ErrLimit", err)
	}
	for _, want := range []string{"user:alice holds 2 unfinished uploads", "(upload_sessions_per_user)", "cairnctl artifact discard ID", a1.ID, a2.ID, "without data for 1h0m0s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}
	b1, err := begin("user:bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := begin("user:carol"); !errors.Is(err, dml.ErrLimit) || !strings.Contains(err.Error(), "the controller holds 3 unfinished uploads") || !strings.Contains(err.Error(), "(upload_sessions)") {
		t.Fatalf("a fourth upload in all: %v, want ErrLimit naming upload_sessions", err)
	}

	// Bytes are reserved when declared: alice may declare 3000 in all.
	if _, err := d.Declare(ctx, a1.ID, meta(2000)); err != nil {
		t.Fatal(err)
	}
	_, err = d.Declare(ctx, a2.ID, meta(1500))
	if !errors.Is(err, dml.ErrLimit) || !strings.Contains(err.Error(), "user:alice's unfinished uploads declare 2.0 KiB; with this upload of 1.5 KiB that is more than the 2.9 KiB one user may declare") {
		t.Fatalf("alice declares 3500 bytes: %v, want ErrLimit naming the per-user bytes", err)
	}
	if _, err := d.Status(ctx, a2.ID); !errors.Is(err, dml.ErrUploadNotFound) {
		t.Errorf("the refused upload: %v, want it discarded", err)
	}
	// bob may not take the rest of the 4000 bytes in all.
	if _, err := d.Declare(ctx, b1.ID, meta(2001)); !errors.Is(err, dml.ErrTooLarge) {
		t.Fatalf("bob declares more than an artifact may be: %v", err)
	}
	b2, err := begin("user:bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Declare(ctx, b2.ID, meta(1500)); err != nil {
		t.Fatal(err)
	}
	b3, err := begin("user:bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Declare(ctx, b3.ID, meta(600)); !errors.Is(err, dml.ErrLimit) || !strings.Contains(err.Error(), "(upload_bytes)") {
		t.Fatalf("4100 bytes in all: %v, want ErrLimit naming upload_bytes", err)
	}
	if diff := cmp.Diff(files(a1.ID, b2.ID), uploads(t, dir)); diff != "" {
		t.Errorf("upload directory after the refusals (-want +got):\n%s", diff)
	}

	// Writing and finishing frees the caps again.
	if _, err := d.Write(ctx, a1.ID, 0, content(2000, 1)); err != nil {
		t.Fatal(err)
	}
	want := dml.SessionStats{Open: 2, Bytes: 2000, DeclaredBytes: 3500, Refused: map[string]uint64{
		dml.CapSessionsPerUser: 1, dml.CapSessions: 1, dml.CapBytesPerUser: 1, dml.CapBytes: 1,
	}}
	if diff := cmp.Diff(want, d.Stats()); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
	if _, _, err := d.Complete(ctx, a1.ID, "user:alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := begin("user:alice"); err != nil {
		t.Errorf("alice after finishing a push: %v", err)
	}
	if err := d.Discard(ctx, b2.ID); err != nil {
		t.Fatal(err)
	}
	if st := d.Stats(); st.Open != 1 || st.DeclaredBytes != 0 {
		t.Errorf("Stats after a push and a discard: %+v, want one undeclared session", st)
	}
}

// TestRefusalsLeaveNoFiles: whatever refuses a push removes its files:
// the upload directory is as before, and so is the rest of the blob
// directory and the store.
func TestRefusalsLeaveNoFiles(t *testing.T) {
	data := content(1000, 3)
	for _, tc := range []struct {
		name string
		// refuse runs the refused push on a new upload.
		refuse func(t *testing.T, d *dml.DML, id string) error
		want   error
	}{
		{"bad kind", func(t *testing.T, d *dml.DML, id string) error {
			_, err := d.Declare(t.Context(), id, dml.Meta{Name: "a", Kind: "firmware", Size: 10})
			return err
		}, dml.ErrInvalid},
		{"name with a control character", func(t *testing.T, d *dml.DML, id string) error {
			_, err := d.Declare(t.Context(), id, dml.Meta{Name: "a\x1b", Kind: "utility", Size: 10})
			return err
		}, dml.ErrInvalid},
		{"over max_artifact_bytes", func(t *testing.T, d *dml.DML, id string) error {
			_, err := d.Declare(t.Context(), id, meta(2001))
			return err
		}, dml.ErrTooLarge},
		{"over the per-user byte cap", func(t *testing.T, d *dml.DML, id string) error {
			other, err := d.BeginUpload(t.Context(), "user:alice")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.Declare(t.Context(), other.ID, meta(2000)); err != nil {
				t.Fatal(err)
			}
			defer d.Discard(t.Context(), other.ID)
			_, err = d.Declare(t.Context(), id, meta(1001))
			return err
		}, dml.ErrLimit},
		{"bad digest", func(t *testing.T, d *dml.DML, id string) error {
			if _, err := d.Declare(t.Context(), id, dml.Meta{Name: "a", Kind: "utility", Size: 1000, SHA256: sum([]byte("other"))}); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Write(t.Context(), id, 0, data); err != nil {
				t.Fatal(err)
			}
			_, _, err := d.Complete(t.Context(), id, "user:alice")
			return err
		}, dml.ErrDigestMismatch},
		{"discarded by the client", func(t *testing.T, d *dml.DML, id string) error {
			if _, err := d.Declare(t.Context(), id, meta(1000)); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Write(t.Context(), id, 0, data[:500]); err != nil {
				t.Fatal(err)
			}
			if err := d.Discard(t.Context(), id); err != nil {
				t.Fatal(err)
			}
			_, err := d.Status(t.Context(), id)
			return err
		}, dml.ErrUploadNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			d := capped(t, dir, &clock{t: testNow})
			u, err := d.BeginUpload(t.Context(), "user:alice")
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.refuse(t, d, u.ID); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if got := uploads(t, dir); len(got) != 0 {
				t.Errorf("upload directory holds %v after the refusal, want nothing", got)
			}
			var blobs []string
			filepath.WalkDir(dir, func(path string, de os.DirEntry, err error) error {
				if err == nil && !de.IsDir() {
					blobs = append(blobs, path)
				}
				return err
			})
			if len(blobs) != 0 {
				t.Errorf("blob directory holds %v, want nothing", blobs)
			}
		})
	}
}

// TestIdleSessions: a session is discarded an hour after its last write
// (not 24 hours after), by the sweep and when it is asked for, and
// counted as expired; one that is written to stays.
func TestIdleSessions(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Now()}
	d := capped(t, dir, c)
	idle, err := d.BeginUpload(t.Context(), "user:alice")
	if err != nil {
		t.Fatal(err)
	}
	busy, err := d.BeginUpload(t.Context(), "user:bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Declare(t.Context(), busy.ID, meta(100)); err != nil {
		t.Fatal(err)
	}
	c.add(59 * time.Minute)
	if n, err := d.RemoveStale(); err != nil || n != 0 {
		t.Fatalf("sweep after 59 minutes: %d, %v; want nothing removed", n, err)
	}
	// bob writes; the files' times are the real clock's, so move them to
	// the test clock's now.
	if _, err := d.Write(t.Context(), busy.ID, 0, content(10, 1)); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{busy.ID, busy.ID + ".json"} {
		if err := os.Chtimes(filepath.Join(dir, "tmp", "uploads", f), c.now(), c.now()); err != nil {
			t.Fatal(err)
		}
	}
	c.add(2 * time.Minute)
	if n, err := d.RemoveStale(); err != nil || n != 1 {
		t.Fatalf("sweep after 61 minutes: %d, %v; want alice's idle session removed", n, err)
	}
	if _, err := d.Status(t.Context(), idle.ID); !errors.Is(err, dml.ErrUploadNotFound) {
		t.Errorf("the idle session: %v, want ErrUploadNotFound", err)
	}
	if diff := cmp.Diff(files(busy.ID), uploads(t, dir)); diff != "" {
		t.Errorf("upload directory (-want +got):\n%s", diff)
	}
	c.add(time.Hour)
	if _, err := d.Status(t.Context(), busy.ID); !errors.Is(err, dml.ErrUploadNotFound) || !strings.Contains(err.Error(), "without data") {
		t.Errorf("bob's session an hour after its last write: %v, want it expired", err)
	}
	if st := d.Stats(); st.Open != 0 || st.Expired != 2 {
		t.Errorf("Stats: %+v, want no session open and 2 expired", st)
	}
}

// TestSessionsAfterRestart: a controller that opens its upload directory
// keeps the sessions it can resume and removes the rest: a sidecar whose
// data file is gone, a data file without a sidecar, a damaged sidecar,
// data longer than declared, an idle session, a leftover temporary file.
// The caps count what it kept.
func TestSessionsAfterRestart(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Now()}
	up := filepath.Join(dir, "tmp", "uploads")
	d := capped(t, dir, c)
	good, err := d.BeginUpload(t.Context(), "user:alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Declare(t.Context(), good.ID, meta(1000)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write(t.Context(), good.ID, 0, content(400, 2)); err != nil {
		t.Fatal(err)
	}
	// What an earlier controller (or a crash) left behind.
	noData, noSidecar, damaged := writeSession(t, up, 1, 100, 10), writeSession(t, up, 2, 100, 10), writeSession(t, up, 3, 100, 10)
	writeSession(t, up, 4, 100, 200) // more data than declared
	idle := writeSession(t, up, 5, 100, 10)
	old := c.now().Add(-2 * time.Hour)
	for _, err := range []error{
		os.Remove(filepath.Join(up, noData)),
		os.Remove(filepath.Join(up, noSidecar+".json")),
		os.WriteFile(filepath.Join(up, damaged+".json"), []byte("{"), 0o600),
		os.WriteFile(filepath.Join(up, ".x.json.tmp-123"), []byte("{}"), 0o600),
		os.Chtimes(filepath.Join(up, idle), old, old),
		os.Chtimes(filepath.Join(up, idle+".json"), old, old),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}

	d = capped(t, dir, c)
	if diff := cmp.Diff(files(good.ID), uploads(t, dir)); diff != "" {
		t.Errorf("upload directory after the restart (-want +got):\n%s", diff)
	}
	if kept, removed := d.Recovered(); kept != 1 || removed != 9 {
		t.Errorf("Recovered() = %d kept, %d removed; want 1, 9", kept, removed)
	}
	if st := d.Stats(); st.Open != 1 || st.Bytes != 400 || st.DeclaredBytes != 1000 {
		t.Errorf("Stats after the restart: %+v, want the kept session", st)
	}
	// It resumes where it was, and counts against alice's caps.
	u, err := d.Status(t.Context(), good.ID)
	if err != nil || u.Received != 400 || u.Owner != "user:alice" {
		t.Fatalf("Status of the kept session: %+v, %v", u, err)
	}
	if _, err := d.BeginUpload(t.Context(), "user:alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.BeginUpload(t.Context(), "user:alice"); !errors.Is(err, dml.ErrLimit) {
		t.Errorf("alice's third session after the restart: %v, want ErrLimit", err)
	}
	if _, err := d.Write(t.Context(), good.ID, 400, content(600, 2)[:600]); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Complete(t.Context(), good.ID, "user:alice"); err != nil {
		t.Errorf("completing the resumed push: %v", err)
	}
}

// writeSession writes a session's files as an earlier controller left
// them: a sidecar declaring size bytes and n bytes of data. n picks the
// ID.
func writeSession(t *testing.T, dir string, n, size, data int) string {
	t.Helper()
	id := fmt.Sprintf("%032x", n)
	sc := fmt.Sprintf(`{"id":%q,"created_by":"user:carol","declared":true,"name":"x","kind":"utility","size_bytes":%d}`, id, size)
	for _, err := range []error{
		os.WriteFile(filepath.Join(dir, id), content(data, 4), 0o600),
		os.WriteFile(filepath.Join(dir, id+".json"), []byte(sc), 0o600),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return id
}
