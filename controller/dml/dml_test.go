package dml_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/controller/blob"
	"github.com/cairn-ops/cairn/controller/dml"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/limits"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

var testNow = time.Now().UTC().Truncate(time.Second)

// env is one DML over a real blob directory and a store.
type env struct {
	d     *dml.DML
	st    store.Store
	blobs *blob.Store
}

// stores runs fn against the DML on a real bbolt file and on the
// in-memory store.
func stores(t *testing.T, maxBytes int64, fn func(t *testing.T, e *env)) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) store.Store
	}{
		{"bolt", func(t *testing.T) store.Store {
			st, err := store.OpenBolt(filepath.Join(t.TempDir(), "cairn.db"), store.BoltOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return st
		}},
		{"memory", func(*testing.T) store.Store { return store.NewMemory() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.open(t)
			t.Cleanup(func() { st.Close() })
			fn(t, newEnv(t, st, t.TempDir(), maxBytes))
		})
	}
}

func newEnv(t *testing.T, st store.Store, dir string, maxBytes int64) *env {
	t.Helper()
	blobs, err := blob.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dml.New(st, blobs, dml.Options{MaxBytes: maxBytes, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	return &env{d: d, st: st, blobs: blobs}
}

func sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// content returns n deterministic bytes.
func content(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

// begin opens and declares an upload of data.
func (e *env) begin(t *testing.T, name string, data []byte, sha string) *dml.Upload {
	t.Helper()
	u, err := e.d.BeginUpload(t.Context(), "user:alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.Declare(t.Context(), u.ID, dml.Meta{Name: name, Kind: "application", Size: int64(len(data)), SHA256: sha}); err != nil {
		t.Fatal(err)
	}
	return u
}

// write sends data[from:to] in chunks of 1000 bytes.
func (e *env) write(t *testing.T, id string, data []byte, from, to int) {
	t.Helper()
	for off := from; off < to; off += 1000 {
		end := min(off+1000, to)
		got, err := e.d.Write(t.Context(), id, int64(off), data[off:end])
		if err != nil {
			t.Fatal(err)
		}
		if got != int64(end) {
			t.Fatalf("Write returned %d, want %d", got, end)
		}
	}
}

// push stores data in one go.
func (e *env) push(t *testing.T, name string, data []byte) (*controllerv1.ArtifactRecord, bool) {
	t.Helper()
	u := e.begin(t, name, data, "")
	e.write(t, u.ID, data, 0, len(data))
	rec, existed, err := e.d.Complete(t.Context(), u.ID, "user:alice")
	if err != nil {
		t.Fatal(err)
	}
	return rec, existed
}

// snapshot is everything the DML could change: the blob directory's
// files (outside tmp/) and the store's artifacts and audit log.
type snapshot struct {
	Files     []string
	Artifacts []*controllerv1.ArtifactRecord
	Log       []*controllerv1.AuditLogEntry
}

func (e *env) snapshot(t *testing.T) snapshot {
	t.Helper()
	var s snapshot
	err := filepath.WalkDir(e.blobs.Dir(), func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(e.blobs.Dir(), path)
		info, err := de.Info()
		if err != nil {
			return err
		}
		s.Files = append(s.Files, fmt.Sprintf("%s %v %d", rel, info.Mode(), info.Size()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.View(t.Context(), func(tx store.Tx) (err error) {
		if s.Artifacts, err = tx.Artifacts(); err != nil {
			return err
		}
		s.Log, err = tx.LogEntries(0, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *env) actions(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, l := range e.snapshot(t).Log {
		out = append(out, l.GetAction()+" "+l.GetObject())
	}
	return out
}

func TestPushGetOpen(t *testing.T) {
	stores(t, 0, func(t *testing.T, e *env) {
		data := content(2500, 1)
		rec, existed := e.push(t, "app.tar.gz", data)
		want := &controllerv1.ArtifactRecord{
			Digest: sum(data), Name: "app.tar.gz", Kind: "application", SizeBytes: 2500,
			CreatedBy: "user:alice", CreatedAt: testNow.Format("2006-01-02T15:04:05.000000000Z"),
		}
		if diff := cmp.Diff(want, rec, protocmp.Transform()); diff != "" || existed {
			t.Errorf("Complete: existed %v (-want +got):\n%s", existed, diff)
		}
		got, err := e.d.Get(t.Context(), sum(data)[:8])
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
			t.Errorf("Get by prefix (-want +got):\n%s", diff)
		}
		_, r, err := e.d.Open(t.Context(), sum(data))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if b, err := io.ReadAll(r); err != nil || !bytes.Equal(b, data) {
			t.Errorf("Open: %d bytes, %v; want the pushed content", len(b), err)
		}
		if diff := cmp.Diff([]string{"artifact.push artifact/" + sum(data)}, e.actions(t)); diff != "" {
			t.Errorf("audit log (-want +got):\n%s", diff)
		}
		// The session is gone; the upload directory is empty again.
		if entries, _ := os.ReadDir(filepath.Join(e.blobs.Dir(), "tmp", "uploads")); len(entries) != 0 {
			t.Errorf("uploads left behind: %v", entries)
		}
	})
}

// TestResume pushes half, breaks off, asks Status and pushes the rest:
// the artifact is the one a one-shot push makes.
func TestResume(t *testing.T) {
	stores(t, 0, func(t *testing.T, e *env) {
		data := content(5000, 2)
		u := e.begin(t, "big.iso", data, sum(data))
		e.write(t, u.ID, data, 0, 2000)
		// The stream breaks here. A new push asks how far it got.
		st, err := e.d.Status(t.Context(), u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Received != 2000 || st.Size != 5000 || st.Name != "big.iso" {
			t.Fatalf("Status = %+v, want 2000 of 5000 bytes of big.iso", st)
		}
		if _, _, err := e.d.Complete(t.Context(), u.ID, "user:alice"); !errors.Is(err, dml.ErrIncomplete) {
			t.Errorf("Complete of half an upload: got %v, want ErrIncomplete", err)
		}
		// A client that lost track and writes from the wrong offset is told where to go on.
		if got, err := e.d.Write(t.Context(), u.ID, 1000, data[1000:2000]); !errors.Is(err, dml.ErrOffset) || got != 2000 {
			t.Errorf("Write at a stale offset: %d, %v; want 2000, ErrOffset", got, err)
		}
		// Resumed pushes redeclare the same file; another file is refused.
		if _, err := e.d.Declare(t.Context(), u.ID, dml.Meta{Name: "other", Kind: "application", Size: 5000}); !errors.Is(err, dml.ErrInvalid) {
			t.Errorf("Declare of another file: got %v, want ErrInvalid", err)
		}
		if _, err := e.d.Declare(t.Context(), u.ID, dml.Meta{Name: "big.iso", Kind: "application", Size: 5000, SHA256: sum(data)}); err != nil {
			t.Fatal(err)
		}
		e.write(t, u.ID, data, 2000, 5000)
		if _, err := e.d.Write(t.Context(), u.ID, 5000, []byte("x")); !errors.Is(err, dml.ErrInvalid) {
			t.Errorf("Write past the declared size: got %v, want ErrInvalid", err)
		}
		rec, _, err := e.d.Complete(t.Context(), u.ID, "user:alice")
		if err != nil {
			t.Fatal(err)
		}

		oneShot := newEnv(t, store.NewMemory(), t.TempDir(), 0)
		want, _ := oneShot.push(t, "big.iso", data)
		if rec.GetDigest() != want.GetDigest() || rec.GetSizeBytes() != 5000 {
			t.Errorf("resumed push: %s (%d bytes); one-shot push: %s", rec.GetDigest(), rec.GetSizeBytes(), want.GetDigest())
		}
		if _, err := e.d.Status(t.Context(), u.ID); !errors.Is(err, dml.ErrUploadNotFound) {
			t.Errorf("Status after Complete: got %v, want ErrUploadNotFound", err)
		}
	})
}

// TestOversize declares more than the limit: refused, and neither the
// blob directory nor the store changes.
func TestOversize(t *testing.T) {
	stores(t, 1000, func(t *testing.T, e *env) {
		before := e.snapshot(t)
		u, err := e.d.BeginUpload(t.Context(), "user:alice")
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.d.Declare(t.Context(), u.ID, dml.Meta{Name: "huge", Kind: "application", Size: 1001})
		if !errors.Is(err, dml.ErrTooLarge) || !strings.Contains(err.Error(), "more than the limit of 1000 bytes") {
			t.Fatalf("Declare of 1001 bytes: got %v, want ErrTooLarge naming the limit", err)
		}
		if _, err := e.d.Write(t.Context(), u.ID, 0, []byte("x")); !errors.Is(err, dml.ErrUploadNotFound) {
			t.Errorf("Write after refusal: got %v, want ErrUploadNotFound", err)
		}
		if diff := cmp.Diff(before, e.snapshot(t), protocmp.Transform()); diff != "" {
			t.Errorf("blob dir or store changed (-before +after):\n%s", diff)
		}
		// Exactly the limit is fine.
		e.push(t, "at-limit", content(1000, 3))
	})
}

// TestInterrupted leaves an upload half done: no artifact, no blob.
func TestInterrupted(t *testing.T) {
	stores(t, 0, func(t *testing.T, e *env) {
		before := e.snapshot(t)
		data := content(3000, 4)
		u := e.begin(t, "half", data, "")
		e.write(t, u.ID, data, 0, 1500)
		after := e.snapshot(t)
		var outside []string
		for _, f := range after.Files {
			if !strings.HasPrefix(f, "tmp") {
				outside = append(outside, f)
			}
		}
		var beforeOutside []string
		for _, f := range before.Files {
			if !strings.HasPrefix(f, "tmp") {
				beforeOutside = append(beforeOutside, f)
			}
		}
		if diff := cmp.Diff(beforeOutside, outside); diff != "" {
			t.Errorf("blobs changed by an interrupted upload (-before +after):\n%s", diff)
		}
		if len(after.Artifacts) != 0 || len(after.Log) != 0 {
			t.Errorf("store changed by an interrupted upload: %v, %v", after.Artifacts, after.Log)
		}
		if e.blobs.Has(sum(data)) || e.blobs.Has(sum(data[:1500])) {
			t.Error("an interrupted upload reached the blob store")
		}
	})
}

func TestWrongSHA256(t *testing.T) {
	stores(t, 0, func(t *testing.T, e *env) {
		before := e.snapshot(t)
		data := content(1200, 5)
		u := e.begin(t, "tampered", data, sum([]byte("what the release said")))
		e.write(t, u.ID, data, 0, len(data))
		_, _, err := e.d.Complete(t.Context(), u.ID, "user:alice")
		if !errors.Is(err, dml.ErrDigestMismatch) || !strings.Contains(err.Error(), sum(data)) {
			t.Fatalf("Complete: got %v, want ErrDigestMismatch naming the real digest", err)
		}
		if diff := cmp.Diff(before, e.snapshot(t), protocmp.Transform()); diff != "" {
			t.Errorf("store or blob dir changed (-before +after):\n%s", diff)
		}
	})
}

// TestImmutable: pushing the same content again returns the first record
// unchanged; the blob is read-only; nothing in the DML's API edits a
// record but RecordInstall, which only adds installs.
func TestImmutable(t *testing.T) {
	stores(t, 0, func(t *testing.T, e *env) {
		data := content(800, 6)
		first, _ := e.push(t, "shop.deb", data)
		u := e.begin(t, "renamed.deb", data, "")
		e.write(t, u.ID, data, 0, len(data))
		again, existed, err := e.d.Complete(t.Context(), u.ID, "user:bob")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(first, again, protocmp.Transform()); diff != "" || !existed {
			t.Errorf("second push: existed %v (-first +second):\n%s", existed, diff)
		}
		if diff := cmp.Diff([]string{"artifact.push artifact/" + sum(data)}, e.actions(t)); diff != "" {
			t.Errorf("audit log (-want +got):\n%s", diff)
		}
		info, err := os.Stat(filepath.Join(e.blobs.Dir(), sum(data)[:2], sum(data)))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o400 {
			t.Errorf("blob mode %v, want 0400", info.Mode().Perm())
		}
	})
}

func TestWhereAndRecordInstall(t *testing.T) {
	stores(t, 0, func(t *testing.T, e *env) {
		rec, _ := e.push(t, "shop.deb", content(100, 7))
		got, err := e.d.Where(t.Context(), rec.GetDigest())
		if err != nil || len(got.GetInstalls()) != 0 {
			t.Fatalf("Where before installs: %v, %v; want none", got.GetInstalls(), err)
		}
		for _, in := range []*controllerv1.InstallRecord{
			{NodeId: "web2", Release: "shop@1.0.0", RolloutId: "r1"},
			{NodeId: "web1", Release: "shop@1.0.0", RolloutId: "r1"},
			{NodeId: "web1", Release: "shop@1.0.0", RolloutId: "r2"}, // replaces r1 on web1
		} {
			if err := e.d.RecordInstall(t.Context(), "system", rec.GetDigest(), in); err != nil {
				t.Fatal(err)
			}
		}
		got, err = e.d.Where(t.Context(), rec.GetDigest())
		if err != nil {
			t.Fatal(err)
		}
		want := []*controllerv1.InstallRecord{
			{NodeId: "web1", Release: "shop@1.0.0", RolloutId: "r2"},
			{NodeId: "web2", Release: "shop@1.0.0", RolloutId: "r1"},
		}
		if diff := cmp.Diff(want, got.GetInstalls(), protocmp.Transform()); diff != "" {
			t.Errorf("installs (-want +got):\n%s", diff)
		}
		if got.GetName() != "shop.deb" || got.GetSizeBytes() != 100 {
			t.Errorf("RecordInstall changed the record: %v", got)
		}
	})
}

// TestCollectGarbage keeps what the (fake) releases reference and removes
// the rest, records and blobs, each with an audit-log entry.
func TestCollectGarbage(t *testing.T) {
	stores(t, 0, func(t *testing.T, e *env) {
		kept, _ := e.push(t, "kept", content(10, 8))
		gone1, _ := e.push(t, "gone1", content(20, 9))
		gone2, _ := e.push(t, "gone2", content(30, 10))
		referenced := func(_ store.Tx, d string) bool { return d == kept.GetDigest() }

		before := e.snapshot(t)
		dry, err := e.d.CollectGarbage(t.Context(), "user:alice", referenced, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(dry.Removed) != 2 || dry.Kept != 1 || dry.FreedBytes != 50 {
			t.Errorf("dry run: %d removable, %d kept, %d bytes; want 2, 1, 50", len(dry.Removed), dry.Kept, dry.FreedBytes)
		}
		if diff := cmp.Diff(before, e.snapshot(t), protocmp.Transform()); diff != "" {
			t.Errorf("dry run changed something (-before +after):\n%s", diff)
		}

		res, err := e.d.CollectGarbage(t.Context(), "user:alice", referenced, false)
		if err != nil {
			t.Fatal(err)
		}
		var removed []string
		for _, r := range res.Removed {
			removed = append(removed, r.GetName())
		}
		if diff := cmp.Diff([]string{"gone1", "gone2"}, removed); diff != "" {
			t.Errorf("removed (-want +got):\n%s", diff)
		}
		for _, g := range []*controllerv1.ArtifactRecord{gone1, gone2} {
			if e.blobs.Has(g.GetDigest()) {
				t.Errorf("blob of %s still there", g.GetName())
			}
			if _, err := e.d.Get(t.Context(), g.GetDigest()); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Get(%s) after gc: %v, want ErrNotFound", g.GetName(), err)
			}
		}
		if !e.blobs.Has(kept.GetDigest()) {
			t.Error("the referenced artifact's blob was removed")
		}
		wantLog := []string{
			"artifact.push artifact/" + kept.GetDigest(),
			"artifact.push artifact/" + gone1.GetDigest(),
			"artifact.push artifact/" + gone2.GetDigest(),
			"artifact.gc artifact/" + gone1.GetDigest(),
			"artifact.gc artifact/" + gone2.GetDigest(),
		}
		if diff := cmp.Diff(wantLog, e.actions(t)); diff != "" {
			t.Errorf("audit log (-want +got):\n%s", diff)
		}
		// The same content can be pushed again after collection.
		if again, existed := e.push(t, "gone1", content(20, 9)); existed || !e.blobs.Has(again.GetDigest()) {
			t.Errorf("push after gc: existed %v, blob %v", existed, e.blobs.Has(again.GetDigest()))
		}
	})
}

func TestPrefixes(t *testing.T) {
	stores(t, 0, func(t *testing.T, e *env) {
		rec, _ := e.push(t, "a", content(10, 11))
		for _, tc := range []struct {
			name, digest string
			wantErr      error
		}{
			{"full", rec.GetDigest(), nil},
			{"prefix 8", rec.GetDigest()[:8], nil},
			{"prefix 7", rec.GetDigest()[:7], dml.ErrInvalid},
			{"upper case", strings.ToUpper(rec.GetDigest()[:8]), dml.ErrInvalid},
			{"path", "../../etc/passwd", dml.ErrInvalid},
			{"unknown", strings.Repeat("0", 64), store.ErrNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := e.d.Get(t.Context(), tc.digest); !errors.Is(err, tc.wantErr) && (err != nil || tc.wantErr != nil) {
					t.Errorf("Get(%q): got %v, want %v", tc.digest, err, tc.wantErr)
				}
			})
		}
	})
}

func TestCorruptBlobFailsOpen(t *testing.T) {
	e := newEnv(t, store.NewMemory(), t.TempDir(), 0)
	data := content(3000, 12)
	rec, _ := e.push(t, "a", data)
	path := filepath.Join(e.blobs.Dir(), rec.GetDigest()[:2], rec.GetDigest())
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	data[100] ^= 1
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, r, err := e.d.Open(t.Context(), rec.GetDigest())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.ReadAll(r); !errors.Is(err, dml.ErrCorrupt) {
		t.Errorf("reading a corrupt artifact: got %v, want ErrCorrupt", err)
	}
}

// TestStaleSessions: New discards sessions whose last write is older
// than the idle limit and keeps the others.
func TestStaleSessions(t *testing.T) {
	dir := t.TempDir()
	st := store.NewMemory()
	e := newEnv(t, st, dir, 0)
	stale, err := e.d.BeginUpload(t.Context(), "user:alice")
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := e.d.BeginUpload(t.Context(), "user:alice")
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-limits.DefaultUploadIdle - time.Minute)
	for _, p := range []string{stale.ID, stale.ID + ".json"} {
		if err := os.Chtimes(filepath.Join(dir, "tmp", "uploads", p), old, old); err != nil {
			t.Fatal(err)
		}
	}
	e2 := newEnv(t, st, dir, 0)
	if _, err := e2.d.Status(t.Context(), stale.ID); !errors.Is(err, dml.ErrUploadNotFound) {
		t.Errorf("stale session: got %v, want ErrUploadNotFound", err)
	}
	if _, err := e2.d.Status(t.Context(), fresh.ID); err != nil {
		t.Errorf("fresh session: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "tmp", "uploads")); len(entries) != 2 {
		t.Errorf("upload dir holds %d files, want the fresh session's 2", len(entries))
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t, store.NewMemory(), t.TempDir(), 0)
	u, err := e.d.BeginUpload(t.Context(), "user:alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		id   string
		m    dml.Meta
		want error
	}{
		{"no name", "", dml.Meta{Kind: "application"}, dml.ErrInvalid},
		{"bad kind", "", dml.Meta{Name: "a", Kind: "firmware"}, dml.ErrInvalid},
		{"negative size", "", dml.Meta{Name: "a", Kind: "utility", Size: -1}, dml.ErrInvalid},
		{"bad sha256", "", dml.Meta{Name: "a", Kind: "utility", SHA256: "xyz"}, dml.ErrInvalid},
		{"path as ID", "../../../etc", dml.Meta{Name: "a", Kind: "utility"}, dml.ErrInvalid},
		{"unknown ID", strings.Repeat("a", 32), dml.Meta{Name: "a", Kind: "utility"}, dml.ErrUploadNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.id
			if id == "" {
				u, err := e.d.BeginUpload(t.Context(), "user:alice")
				if err != nil {
					t.Fatal(err)
				}
				id = u.ID
			}
			if _, err := e.d.Declare(t.Context(), id, tc.m); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := e.d.Write(t.Context(), u.ID, 0, []byte("x")); !errors.Is(err, dml.ErrInvalid) {
		t.Errorf("Write before Declare: got %v, want ErrInvalid", err)
	}
}
