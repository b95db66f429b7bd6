package release_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/controller/blob"
	"github.com/cairn-ops/cairn/controller/release"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/manifest"
	signed "github.com/cairn-ops/cairn/internal/release"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

var testNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// env is a store with three artifacts in the DML (site, docs and a test
// report) and the release key.
type env struct {
	st                          store.Store
	blobs                       *blob.Store
	key                         ed25519.PrivateKey
	pub                         ed25519.PublicKey
	site, docs, report, report2 string
}

// stores runs fn on a real bbolt file and on the in-memory store.
func stores(t *testing.T, fn func(t *testing.T, e *env)) {
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
			fn(t, newEnv(t, st))
		})
	}
}

func newEnv(t *testing.T, st store.Store) *env {
	t.Helper()
	blobs, err := blob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{st: st, blobs: blobs, key: key, pub: pub}
	e.site = e.addArtifact(t, "site.tar.gz", "application", "the site")
	e.docs = e.addArtifact(t, "notes.txt", "documentation", "the notes")
	e.report = e.addArtifact(t, "report.txt", "documentation", "all green")
	e.report2 = e.addArtifact(t, "report2.txt", "documentation", "still green")
	return e
}

func (e *env) addArtifact(t *testing.T, name, kind, content string) string {
	t.Helper()
	digest, size, err := e.blobs.Put(t.Context(), strings.NewReader(content), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.Update(t.Context(), func(tx store.Tx) error {
		return tx.PutArtifact(&controllerv1.ArtifactRecord{Digest: digest, Name: name, Kind: kind, SizeBytes: size})
	}); err != nil {
		t.Fatal(err)
	}
	return digest
}

// yaml is a manifest with the site by path and the docs by DML digest.
func (e *env) yaml(version string, approvals int) []byte {
	return fmt.Appendf(nil, `apiVersion: cairn/v1
kind: Release
name: webshop
version: %s
components:
  - {name: site, kind: application, path: site.tar.gz}
  - {name: docs, kind: documentation, digest: %s}
steps:
  - {name: unpack, plugin: archive, params: {artifact: site, dest: /srv/webshop}}
expect:
  packages:
    - {name: legacy-shop, state: absent}
known_errors:
  - {id: KE-1, summary: slow first request, workaround: wait, status: workaround}
notes: |
  Faster checkout.
approvals:
  required: %d
`, version, e.docs, approvals)
}

func (e *env) create(t *testing.T, actor, version string, approvals int) (*controllerv1.ReleaseRecord, error) {
	t.Helper()
	y := e.yaml(version, approvals)
	m, err := manifest.Parse(y, "release.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rec *controllerv1.ReleaseRecord
	err = e.st.Update(t.Context(), func(tx store.Tx) (err error) {
		rec, err = release.Create(tx, testNow, actor, m, y, map[string]string{"site": e.site}, nil)
		return err
	})
	return rec, err
}

func ref(version string) *controllerv1.ReleaseRef {
	return &controllerv1.ReleaseRef{Name: "webshop", Version: version}
}

// step is one lifecycle call by actor.
type step func(tx store.Tx, e *env) (*controllerv1.ReleaseRecord, error)

func seal(actor string) step {
	return func(tx store.Tx, e *env) (*controllerv1.ReleaseRecord, error) {
		return release.Seal(tx, testNow, actor, "webshop", "1.0.0", e.key)
	}
}

func test(actor, result string) step {
	return func(tx store.Tx, e *env) (*controllerv1.ReleaseRecord, error) {
		return release.RecordTest(tx, testNow, actor, ref("1.0.0"), result, "ran the suite", []string{e.report})
	}
}

func approve(actor string) step {
	return func(tx store.Tx, e *env) (*controllerv1.ReleaseRecord, error) {
		return release.Approve(tx, testNow, actor, ref("1.0.0"), "ok")
	}
}

func reject(actor string) step {
	return func(tx store.Tx, e *env) (*controllerv1.ReleaseRecord, error) {
		return release.Reject(tx, testNow, actor, ref("1.0.0"), "no")
	}
}

func (e *env) run(t *testing.T, s step) (*controllerv1.ReleaseRecord, error) {
	t.Helper()
	var rec *controllerv1.ReleaseRecord
	err := e.st.Update(t.Context(), func(tx store.Tx) (err error) {
		rec, err = s(tx, e)
		return err
	})
	return rec, err
}

func (e *env) must(t *testing.T, steps ...step) *controllerv1.ReleaseRecord {
	t.Helper()
	var rec *controllerv1.ReleaseRecord
	for i, s := range steps {
		var err error
		if rec, err = e.run(t, s); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	return rec
}

// dump is every release, artifact and audit-log entry.
func (e *env) dump(t *testing.T) []any {
	t.Helper()
	var out []any
	if err := e.st.View(t.Context(), func(tx store.Tx) error {
		rels, err := tx.Releases()
		if err != nil {
			return err
		}
		arts, err := tx.Artifacts()
		if err != nil {
			return err
		}
		log, err := tx.LogEntries(0, 0)
		out = []any{rels, arts, log}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *env) actions(t *testing.T) []string {
	t.Helper()
	var out []string
	if err := e.st.View(t.Context(), func(tx store.Tx) error {
		log, err := tx.LogEntries(0, 0)
		for _, l := range log {
			out = append(out, l.GetActor()+" "+l.GetAction()+" "+l.GetObject()+" "+l.GetDetails()["state"])
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestHappyPath(t *testing.T) {
	stores(t, func(t *testing.T, e *env) {
		rec, err := e.create(t, "alice", "1.0.0", 1)
		if err != nil {
			t.Fatal(err)
		}
		if rec.GetState() != controllerv1.ReleaseRecord_STATE_DRAFT || len(rec.GetComponents()) != 2 || rec.GetComponents()[0].GetDigest() != e.site {
			t.Fatalf("created: %v", rec)
		}
		rec = e.must(t, seal("alice"))
		if rec.GetState() != controllerv1.ReleaseRecord_STATE_SEALED || rec.GetDigest() != release.Digest(rec.GetManifestCanonical(), rec.GetComponents()) {
			t.Fatalf("sealed: %v", rec)
		}
		if !ed25519.Verify(e.pub, []byte(rec.GetDigest()), rec.GetSignature()) {
			t.Fatal("signature does not verify")
		}
		rec = e.must(t, test("tom", "fail"))
		if rec.GetState() != controllerv1.ReleaseRecord_STATE_SEALED {
			t.Fatalf("a failed test moved the release to %v", rec.GetState())
		}
		rec = e.must(t, test("tom", "pass"), approve("ann"))
		if rec.GetState() != controllerv1.ReleaseRecord_STATE_APPROVED {
			t.Fatalf("approved: state %v", rec.GetState())
		}
		if d := rec.GetDecisions()[0]; d.GetBy() != "ann" || d.GetReleaseDigest() != rec.GetDigest() {
			t.Errorf("decision %v not bound to digest %s", d, rec.GetDigest())
		}
		want := []string{
			"alice release.create release/webshop@1.0.0 draft",
			"alice release.seal release/webshop@1.0.0 sealed",
			"tom release.test release/webshop@1.0.0 sealed",
			"tom release.test release/webshop@1.0.0 tested",
			"ann release.approve release/webshop@1.0.0 approved",
		}
		if diff := cmp.Diff(want, e.actions(t)); diff != "" {
			t.Errorf("audit log (-want +got):\n%s", diff)
		}
		if p := release.Verify(rec, signed.SingleKey(e.pub), time.Now(), e.blobs.Open); len(p) != 0 {
			t.Errorf("Verify of an intact release: %q", p)
		}
		if err := e.st.View(t.Context(), func(tx store.Tx) error {
			for d, want := range map[string]bool{e.site: true, e.docs: true, e.report: true, e.report2: false} {
				if got := release.Referenced(tx, d); got != want {
					t.Errorf("Referenced(%s) = %v, want %v", d, got, want)
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestTwoApprovals(t *testing.T) {
	stores(t, func(t *testing.T, e *env) {
		if _, err := e.create(t, "alice", "1.0.0", 2); err != nil {
			t.Fatal(err)
		}
		rec := e.must(t, seal("alice"), test("tom", "pass"), approve("ann"))
		if rec.GetState() != controllerv1.ReleaseRecord_STATE_TESTED {
			t.Fatalf("after one of two approvals: %v", rec.GetState())
		}
		if _, err := e.run(t, approve("ann")); !errors.Is(err, release.ErrAlreadyDecided) {
			t.Fatalf("second approval by ann: got %v, want ErrAlreadyDecided", err)
		}
		rec = e.must(t, approve("bob"))
		if rec.GetState() != controllerv1.ReleaseRecord_STATE_APPROVED || release.Approvals(rec) != 2 {
			t.Fatalf("after two approvals: %v, %d", rec.GetState(), release.Approvals(rec))
		}
	})
}

// TestRefused tries every forbidden shortcut: each fails with its error
// and leaves the store exactly as it was.
func TestRefused(t *testing.T) {
	tests := []struct {
		name  string
		setup []step
		try   step
		want  error
		msg   string
	}{
		{name: "test on a draft", try: test("tom", "pass"), want: release.ErrState},
		{name: "approve a draft", try: approve("ann"), want: release.ErrState, msg: "is draft; it must be sealed and pass a test before approval"},
		{name: "approve an approved release", setup: []step{seal("alice"), test("tom", "pass"), approve("ann")}, try: approve("bob"), want: release.ErrState, msg: "is approved; it is already approved (1 of 1 approvals)"},
		{name: "approve a rejected release", setup: []step{seal("alice"), test("tom", "pass"), reject("ann")}, try: approve("bob"), want: release.ErrState, msg: "is rejected; a rejected release cannot be approved"},
		{name: "seal twice", setup: []step{seal("alice")}, try: seal("alice"), want: release.ErrState},
		{name: "author records test", setup: []step{seal("sam")}, try: test("alice", "pass"), want: release.ErrSeparation, msg: "the release's author cannot test it"},
		{name: "sealer records test", setup: []step{seal("sam")}, try: test("sam", "pass"), want: release.ErrSeparation},
		{name: "approve before test", setup: []step{seal("alice")}, try: approve("ann"), want: release.ErrState, msg: "is sealed; it needs a passing test before approval"},
		{name: "approve after a failed test only", setup: []step{seal("alice"), test("tom", "fail")}, try: approve("ann"), want: release.ErrState},
		{name: "author approves", setup: []step{seal("alice"), test("tom", "pass")}, try: approve("alice"), want: release.ErrSeparation},
		{name: "tester approves", setup: []step{seal("alice"), test("tom", "pass")}, try: approve("tom"), want: release.ErrSeparation},
		{name: "failed tester approves", setup: []step{seal("alice"), test("ted", "fail"), test("tom", "pass")}, try: approve("ted"), want: release.ErrSeparation},
		{name: "approver approves twice", setup: []step{seal("alice"), test("tom", "pass"), approve("ann")}, try: approve("ann"), want: release.ErrState},
		{name: "author rejects", setup: []step{seal("alice")}, try: reject("alice"), want: release.ErrSeparation},
		{name: "reject a draft", try: reject("ann"), want: release.ErrState},
		{name: "test an approved release", setup: []step{seal("alice"), test("tom", "pass"), approve("ann")}, try: test("tim", "pass"), want: release.ErrState},
		{name: "bad result", setup: []step{seal("alice")}, try: test("tom", "maybe"), want: release.ErrInvalid},
		{name: "evidence not in the DML", setup: []step{seal("alice")}, want: release.ErrArtifact,
			try: func(tx store.Tx, e *env) (*controllerv1.ReleaseRecord, error) {
				return release.RecordTest(tx, testNow, "tom", ref("1.0.0"), "pass", "", []string{strings.Repeat("0", 64)})
			}},
		{name: "unknown release", want: store.ErrNotFound,
			try: func(tx store.Tx, e *env) (*controllerv1.ReleaseRecord, error) {
				return release.Seal(tx, testNow, "alice", "webshop", "9.9.9", e.key)
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stores(t, func(t *testing.T, e *env) {
				if _, err := e.create(t, "alice", "1.0.0", 1); err != nil {
					t.Fatal(err)
				}
				e.must(t, tc.setup...)
				before := e.dump(t)
				_, err := e.run(t, tc.try)
				if !errors.Is(err, tc.want) {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
				if tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
					t.Errorf("error %q does not say %q", err, tc.msg)
				}
				if diff := cmp.Diff(before, e.dump(t), protocmp.Transform()); diff != "" {
					t.Errorf("store changed by a refused call (-before +after):\n%s", diff)
				}
			})
		})
	}
}

func TestCreateRefused(t *testing.T) {
	stores(t, func(t *testing.T, e *env) {
		if _, err := e.create(t, "alice", "1.0.0", 1); err != nil {
			t.Fatal(err)
		}
		before := e.dump(t)
		if _, err := e.create(t, "bob", "1.0.0", 1); !errors.Is(err, release.ErrExists) {
			t.Errorf("duplicate version: got %v, want ErrExists", err)
		}
		y := e.yaml("2.0.0", 1)
		m, err := manifest.Parse(y, "release.yaml")
		if err != nil {
			t.Fatal(err)
		}
		for name, digests := range map[string]map[string]string{
			"no digest for a path component": nil,
			"digest not in the DML":          {"site": strings.Repeat("1", 64)},
		} {
			err := e.st.Update(t.Context(), func(tx store.Tx) error {
				_, err := release.Create(tx, testNow, "alice", m, y, digests, nil)
				return err
			})
			if !errors.Is(err, release.ErrArtifact) {
				t.Errorf("%s: got %v, want ErrArtifact", name, err)
			}
		}
		if diff := cmp.Diff(before, e.dump(t), protocmp.Transform()); diff != "" {
			t.Errorf("store changed by refused creates (-before +after):\n%s", diff)
		}
	})
}

func TestVerify(t *testing.T) {
	stores(t, func(t *testing.T, e *env) {
		if _, err := e.create(t, "alice", "1.0.0", 1); err != nil {
			t.Fatal(err)
		}
		rec := e.must(t, seal("alice"))

		tampered := proto.Clone(rec).(*controllerv1.ReleaseRecord)
		tampered.ManifestCanonical = bytes.Replace(tampered.ManifestCanonical, []byte("webshop"), []byte("webshap"), 1)
		if err := e.st.Update(t.Context(), func(tx store.Tx) error { return tx.PutRelease(tampered) }); err != nil {
			t.Fatal(err)
		}
		var stored *controllerv1.ReleaseRecord
		if err := e.st.View(t.Context(), func(tx store.Tx) (err error) {
			stored, err = tx.Release("webshop", "1.0.0")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if p := release.Verify(stored, signed.SingleKey(e.pub), time.Now(), e.blobs.Open); !containsAll(p, "digest mismatch") {
			t.Errorf("tampered manifest: problems %q", p)
		}

		// Swap the site's blob for other bytes of the same length.
		path := filepath.Join(e.blobs.Dir(), blobPath(t, e.blobs.Dir(), e.site))
		if err := os.Chmod(path, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("the SITE"), 0o600); err != nil {
			t.Fatal(err)
		}
		p := release.Verify(rec, signed.SingleKey(e.pub), time.Now(), e.blobs.Open)
		if !containsAll(p, "component site", "contents hash to "+sha("the SITE")) {
			t.Errorf("swapped artifact: problems %q", p)
		}

		other, _, _ := ed25519.GenerateKey(nil)
		skip := func(string) (io.ReadCloser, error) { return nil, errors.New("skip") }
		if p := release.Verify(rec, signed.SingleKey(other), time.Now(), skip); !containsAll(p, "signature: release signature does not verify", "was not signed by the controller's release key") {
			t.Errorf("wrong key: problems %q", p)
		}
		// Signed by a key whose rotation overlap has ended.
		retired := signed.Keys{{Public: e.pub, RetiresAt: time.Now().Add(-time.Minute)}, {Public: other}}
		if p := release.Verify(rec, retired, time.Now(), skip); !containsAll(p, "signed by a retired key", "which retired at") {
			t.Errorf("retired key: problems %q", p)
		}
	})
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// blobPath finds the file of digest under dir.
func blobPath(t *testing.T, dir, digest string) string {
	t.Helper()
	var found string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && strings.Contains(filepath.Base(p), digest) {
			found, _ = filepath.Rel(dir, p)
		}
		return nil
	})
	if found == "" {
		t.Fatalf("no blob file for %s under %s", digest, dir)
	}
	return found
}

func containsAll(problems []string, subs ...string) bool {
	all := strings.Join(problems, "\n")
	for _, s := range subs {
		if !strings.Contains(all, s) {
			return false
		}
	}
	return true
}
