package store_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/controller/rollout/state"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/controller/store/storetest"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

func TestBolt(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openBolt(t, filepath.Join(t.TempDir(), "cairn.db")) })
}

func openBolt(t *testing.T, path string) *store.Bolt {
	t.Helper()
	st, err := store.OpenBolt(path, store.BoltOptions{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// raw opens the store file directly with bbolt, as an attacker or a
// damaged disk would change it.
func raw(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func TestBoltReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cairn.db")
	st := openBolt(t, path)
	n := &controllerv1.NodeRecord{Id: "n1", Hostname: "web-1", Labels: map[string]string{"env": "prod"}}
	c := &controllerv1.CommandRecord{Id: "c1", NodeId: "n1", Kind: "audit", CreatedAt: "2026-01-02T03:04:05Z"}
	b := &controllerv1.BaselineRecord{NodeId: "n1", Version: 1, AuditId: "a1"}
	e := &controllerv1.AuditLogEntry{Sequence: 1, Action: "node.enroll", Hash: "h1"}
	if err := st.Update(t.Context(), func(tx store.Tx) error {
		return errors.Join(tx.PutNode(n), tx.PutCommand(c), tx.PutBaseline(b), tx.AppendLogEntry(e))
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st = openBolt(t, path)
	type state struct {
		Node      *controllerv1.NodeRecord
		Commands  []*controllerv1.CommandRecord
		Baselines []*controllerv1.BaselineRecord
		Log       []*controllerv1.AuditLogEntry
		HeadSeq   uint64
		HeadHash  string
	}
	var got state
	if err := st.View(t.Context(), func(tx store.Tx) (err error) {
		if got.Node, err = tx.Node("n1"); err != nil {
			return err
		}
		if got.Commands, err = tx.NodeCommands("n1"); err != nil {
			return err
		}
		if got.Baselines, err = tx.Baselines("n1"); err != nil {
			return err
		}
		if got.Log, err = tx.LogEntries(0, 0); err != nil {
			return err
		}
		got.HeadSeq, got.HeadHash, err = tx.LogHead()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	want := state{n, []*controllerv1.CommandRecord{c}, []*controllerv1.BaselineRecord{b}, []*controllerv1.AuditLogEntry{e}, 1, "h1"}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("after reopen (-want +got):\n%s", diff)
	}
	// The next baseline and entry follow on from the reopened state.
	if err := st.Update(t.Context(), func(tx store.Tx) error {
		return errors.Join(
			tx.PutBaseline(&controllerv1.BaselineRecord{NodeId: "n1", Version: 2}),
			tx.AppendLogEntry(&controllerv1.AuditLogEntry{Sequence: 2, PrevHash: "h1", Hash: "h2"}),
		)
	}); err != nil {
		t.Errorf("append after reopen: %v", err)
	}
}

func TestBoltLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cairn.db")
	first := openBolt(t, path)

	start := time.Now()
	second, err := store.OpenBolt(path, store.BoltOptions{Timeout: 200 * time.Millisecond})
	if err == nil {
		second.Close()
		t.Fatal("second OpenBolt succeeded while the first holds the file")
	}
	if !errors.Is(err, store.ErrLocked) {
		t.Errorf("got %v, want ErrLocked", err)
	}
	if want := fmt.Sprintf("timed out opening %s: is another cairn-controller using this data dir?", path); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	// bbolt stops retrying one retry interval (50ms) early.
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Errorf("gave up after %v, long before the 200ms timeout", waited)
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	openBolt(t, path) // free again
}

func TestBoltOpenError(t *testing.T) {
	_, err := store.OpenBolt(filepath.Join(t.TempDir(), "missing", "cairn.db"), store.BoltOptions{})
	if err == nil || errors.Is(err, store.ErrLocked) {
		t.Fatalf("OpenBolt in a missing directory: got %v, want a plain open error", err)
	}
}

var allBuckets = []string{
	"agent_events", "api_tokens", "artifact_names", "artifacts", "auditlog", "audits", "baselines", "commands", "enroll_tokens", "issued_reports", "meta",
	"node_audits", "node_commands", "nodes", "releases", "rollout_nodes", "rollouts", "services", "users",
}

func TestBoltSchema(t *testing.T) {
	tests := []struct {
		name string
		// prepare makes the file before OpenBolt; nil leaves no file.
		prepare     func(t *testing.T, path string)
		wantErr     error
		wantMessage string
		// wantVersion is the file's schema_version afterwards.
		wantVersion []byte
	}{
		{
			name:        "no file",
			wantVersion: be64(10),
		},
		{
			name:        "empty bbolt file",
			prepare:     func(t *testing.T, path string) { raw(t, path, func(*bolt.Tx) error { return nil }) },
			wantVersion: be64(10),
		},
		{
			name: "version 0 with some buckets",
			prepare: func(t *testing.T, path string) {
				raw(t, path, func(tx *bolt.Tx) error {
					_, err := tx.CreateBucket([]byte("meta"))
					return err
				})
			},
			wantVersion: be64(10),
		},
		{
			// A file written by the schema-1 code: its buckets, its
			// version, a record; migrating adds the artifact buckets and
			// keeps the record (checked below in TestBoltMigrateV1).
			name:        "version 1",
			prepare:     writeV1,
			wantVersion: be64(10),
		},
		{
			// A file written by the schema-2 code (the DML, no releases).
			name:        "version 2",
			prepare:     writeV2,
			wantVersion: be64(10),
		},
		{
			// A file written by the schema-6 code: no issued reports.
			name: "version 6",
			prepare: func(t *testing.T, path string) {
				openBolt(t, path).Close()
				raw(t, path, func(tx *bolt.Tx) error {
					if err := tx.DeleteBucket([]byte("issued_reports")); err != nil {
						return err
					}
					return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), be64(6))
				})
			},
			wantVersion: be64(10),
		},
		{
			name:        "current",
			prepare:     func(t *testing.T, path string) { openBolt(t, path).Close() },
			wantVersion: be64(10),
		},
		{
			name: "newer",
			prepare: func(t *testing.T, path string) {
				openBolt(t, path).Close()
				raw(t, path, func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), be64(11)) })
			},
			wantErr:     store.ErrSchema,
			wantMessage: "has schema version 11, but this cairn-controller knows only up to 10: run a newer cairn-controller",
			wantVersion: be64(11),
		},
		{
			name: "damaged version",
			prepare: func(t *testing.T, path string) {
				openBolt(t, path).Close()
				raw(t, path, func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), []byte{1}) })
			},
			wantErr:     store.ErrSchema,
			wantMessage: "schema version is 1 bytes long, want 8",
			wantVersion: []byte{1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cairn.db")
			if tc.prepare != nil {
				tc.prepare(t, path)
			}
			st, err := store.OpenBolt(path, store.BoltOptions{})
			if err == nil {
				st.Close()
			}
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("OpenBolt: got %v, want %v", err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tc.wantMessage) {
				t.Errorf("error %q does not say %q", err, tc.wantMessage)
			}

			var buckets []string
			var version []byte
			raw(t, path, func(tx *bolt.Tx) error {
				if meta := tx.Bucket([]byte("meta")); meta != nil {
					version = append([]byte(nil), meta.Get([]byte("schema_version"))...)
				}
				return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
					buckets = append(buckets, string(name))
					return nil
				})
			})
			if diff := cmp.Diff(tc.wantVersion, version); diff != "" {
				t.Errorf("schema_version (-want +got):\n%s", diff)
			}
			if tc.wantErr == nil {
				if diff := cmp.Diff(allBuckets, buckets); diff != "" {
					t.Errorf("buckets (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// v1Buckets are the buckets of schema version 1.
var v1Buckets = []string{
	"meta", "enroll_tokens", "nodes", "users", "api_tokens", "commands", "node_commands",
	"audits", "node_audits", "baselines", "services", "auditlog",
}

// writeV1 makes the file a schema-version-1 store holding node n1, as
// the code before the DML wrote it.
func writeV1(t *testing.T, path string) {
	t.Helper()
	raw(t, path, func(tx *bolt.Tx) error {
		for _, name := range v1Buckets {
			if _, err := tx.CreateBucket([]byte(name)); err != nil {
				return err
			}
		}
		if err := tx.Bucket([]byte("meta")).Put([]byte("schema_version"), be64(1)); err != nil {
			return err
		}
		n, err := proto.Marshal(&controllerv1.NodeRecord{Id: "n1", Hostname: "web-1"})
		if err != nil {
			return err
		}
		return tx.Bucket([]byte("nodes")).Put([]byte("n1"), n)
	})
}

// TestBoltMigrateV1 opens a version-1 file: its records survive, and the
// artifact records of version 2 work in it, also after reopening.
func TestBoltMigrateV1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cairn.db")
	writeV1(t, path)
	st := openBolt(t, path)
	art := &controllerv1.ArtifactRecord{Digest: strings.Repeat("ab", 32), Name: "app", Kind: "application"}
	if err := st.Update(t.Context(), func(tx store.Tx) error {
		if n, err := tx.Node("n1"); err != nil || n.GetHostname() != "web-1" {
			return fmt.Errorf("node n1 after migration: %v, %v", n, err)
		}
		return tx.PutArtifact(art)
	}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	st = openBolt(t, path)
	if err := st.View(t.Context(), func(tx store.Tx) error {
		got, err := tx.Artifacts()
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]*controllerv1.ArtifactRecord{art}, got, protocmp.Transform()); diff != "" {
			t.Errorf("artifacts after reopen (-want +got):\n%s", diff)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// writeV2 makes the file a schema-version-2 store holding node n1, as
// the code before releases wrote it.
func writeV2(t *testing.T, path string) {
	writeV1(t, path)
	raw(t, path, func(tx *bolt.Tx) error {
		for _, name := range []string{"artifacts", "artifact_names"} {
			if _, err := tx.CreateBucket([]byte(name)); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), be64(2))
	})
}

// TestBoltMigrateV2 opens a version-2 file: its records survive and
// releases work in it, also after reopening.
func TestBoltMigrateV2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cairn.db")
	writeV2(t, path)
	st := openBolt(t, path)
	rel := &controllerv1.ReleaseRecord{Name: "web", Version: "1.0.0", CreatedBy: "alice"}
	if err := st.Update(t.Context(), func(tx store.Tx) error {
		if n, err := tx.Node("n1"); err != nil || n.GetHostname() != "web-1" {
			return fmt.Errorf("node n1 after migration: %v, %v", n, err)
		}
		return tx.PutRelease(rel)
	}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	st = openBolt(t, path)
	if err := st.View(t.Context(), func(tx store.Tx) error {
		got, err := tx.Releases()
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]*controllerv1.ReleaseRecord{rel}, got, protocmp.Transform()); diff != "" {
			t.Errorf("releases after reopen (-want +got):\n%s", diff)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestBoltMigrateV4 opens a version-4 file, whose API tokens do not name
// their issuers: a token another user created gets that user and, as
// nobody knows which of their tokens they used, the issuers of all of
// them, transitively.
func TestBoltMigrateV4(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cairn.db")
	st := openBolt(t, path)
	tokens := []*controllerv1.APITokenRecord{
		{Id: "tok-root", User: "root", TokenHash: "h-root", CreatedBy: "system"},
		{Id: "tok-admin1", User: "admin1", TokenHash: "h-admin1", CreatedBy: "user:root"},
		{Id: "tok-admin1-own", User: "admin1", TokenHash: "h-admin1-own", CreatedBy: "user:admin1"},
		{Id: "tok-ap2", User: "ap2", TokenHash: "h-ap2", CreatedBy: "user:admin1"},
		{Id: "tok-rm", User: "rm", TokenHash: "h-rm", CreatedBy: "user:ap2"},
	}
	if err := st.Update(t.Context(), func(tx store.Tx) error {
		for _, tok := range tokens {
			if err := tx.PutAPIToken(tok); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	raw(t, path, func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), be64(4)) })

	st = openBolt(t, path)
	want := map[string][]string{
		"h-root":       nil,
		"h-admin1":     {"root"},
		"h-admin1-own": {"root"},
		"h-ap2":        {"admin1", "root"},
		"h-rm":         {"ap2", "admin1", "root"},
	}
	got := map[string][]string{}
	if err := st.View(t.Context(), func(tx store.Tx) error {
		for hash := range want {
			tok, err := tx.APIToken(hash)
			if err != nil {
				return err
			}
			got[hash] = tok.GetIssuers()
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("issuers after migration (-want +got):\n%s", diff)
	}
}

// TestBoltLogTampered deletes the newest audit-log entries behind the
// store's back: the head still names them, and the store refuses to
// append an entry that would paper over the gap.
func TestBoltLogTampered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cairn.db")
	st := openBolt(t, path)
	for seq := uint64(1); seq <= 3; seq++ {
		if err := st.Update(t.Context(), func(tx store.Tx) error {
			return tx.AppendLogEntry(&controllerv1.AuditLogEntry{Sequence: seq, Hash: fmt.Sprintf("h%d", seq)})
		}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	raw(t, path, func(tx *bolt.Tx) error { return tx.Bucket([]byte("auditlog")).Delete(be64(3)) })

	st = openBolt(t, path)
	err := st.Update(t.Context(), func(tx store.Tx) error {
		return tx.AppendLogEntry(&controllerv1.AuditLogEntry{Sequence: 3, PrevHash: "h2", Hash: "forged"})
	})
	if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "cairnctl auditlog verify") {
		t.Errorf("append after deletion: got %v, want ErrConflict naming auditlog verify", err)
	}
	if err := st.View(t.Context(), func(tx store.Tx) error {
		seq, hash, err := tx.LogHead()
		if seq != 3 || hash != "h3" || err != nil {
			t.Errorf("LogHead() = %d, %q, %v; want 3, h3", seq, hash, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// openFixture opens a copy of a store file in testdata (migrating it),
// so that the fixture stays as it is.
func openFixture(t *testing.T, fixture string) *store.Bolt {
	t.Helper()
	data, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cairn.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return openBolt(t, path)
}

// TestBoltMigrateBaselineTracked opens a copy of testdata/v7/cairn.db,
// whose baselines record no tracked paths, and reads back each with the
// track lists of the commands that took its audit and its node's earlier
// baselines' audits: what the node's audits tracked, accumulated.
func TestBoltMigrateBaselineTracked(t *testing.T) {
	st := openFixture(t, "testdata/v7/cairn.db")
	want := map[string][][]string{
		"n1":  {{"/etc/a"}, {"/etc/a", "/etc/b"}, {"/etc/a", "/etc/b"}, {"/etc/a", "/etc/b", "/etc/c"}},
		"n2":  {nil, {"/srv/x"}},
		"n10": {{"/opt/y"}},
	}
	err := st.View(t.Context(), func(tx store.Tx) error {
		for node, w := range want {
			bs, err := tx.Baselines(node)
			if err != nil {
				return err
			}
			var got [][]string
			for i, b := range bs {
				if b.GetVersion() != uint32(i+1) || b.GetReason() != "fixture" {
					t.Errorf("node %s baseline %d: version %d, reason %q", node, i+1, b.GetVersion(), b.GetReason())
				}
				got = append(got, b.GetTracked())
			}
			if diff := cmp.Diff(w, got); diff != "" {
				t.Errorf("node %s: tracked sets by version (-want +got):\n%s", node, diff)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBoltMigrateRolloutStates opens a copy of testdata/v5/cairn.db, a
// schema-version-5 file with rollouts, waves and nodes in every state
// that version stored (as strings), and reads each back as its enum,
// with counts that add up.
func TestBoltMigrateRolloutStates(t *testing.T) {
	st := openFixture(t, "testdata/v5/cairn.db")
	type want struct {
		state string
		waves []string
		nodes []string
	}
	wants := map[string]want{
		"ro-running":         {"running", []string{"done", "running", "pending"}, []string{"passed", "pre_audit", "deploying", "waiting_confirmation", "post_audit", "pending"}},
		"ro-paused":          {"paused", []string{"done", "baking"}, []string{"passed", "passed"}},
		"ro-halted":          {"halted", []string{"failed", "pending"}, []string{"failed", "unreachable", "skipped"}},
		"ro-completed":       {"completed", []string{"done"}, []string{"passed", "failed"}},
		"ro-aborted":         {"aborted", []string{"done", "pending"}, []string{"passed", "aborted"}},
		"ro-rolling-back":    {"rolling_back", []string{"done"}, []string{"rolling_back", "rolled_back"}},
		"ro-rolled-back":     {"rolled_back", []string{"done"}, []string{"rolled_back"}},
		"ro-rollback-failed": {"rollback_failed", []string{"failed"}, []string{"rollback_failed", "rolled_back"}},
	}
	err := st.View(t.Context(), func(tx store.Tx) error {
		all, err := tx.Rollouts()
		if err != nil {
			return err
		}
		if len(all) != len(wants) {
			t.Errorf("%d rollouts after the migration, want %d", len(all), len(wants))
		}
		for _, ro := range all {
			w, ok := wants[ro.GetId()]
			if !ok {
				t.Errorf("unexpected rollout %s", ro.GetId())
				continue
			}
			got := want{state: state.Name(ro.GetState())}
			for _, wv := range ro.GetWaves() {
				got.waves = append(got.waves, state.Name(wv.GetState()))
				if wv.GetLegacyState() != "" {
					t.Errorf("rollout %s wave %d keeps its legacy state %q", ro.GetId(), wv.GetIndex(), wv.GetLegacyState())
				}
			}
			nodes, err := tx.RolloutNodes(ro.GetId())
			if err != nil {
				return err
			}
			for _, n := range nodes {
				got.nodes = append(got.nodes, state.Name(n.GetState()))
				if n.GetLegacyState() != "" {
					t.Errorf("rollout %s node %s keeps its legacy state %q", ro.GetId(), n.GetNodeId(), n.GetLegacyState())
				}
			}
			slices.Sort(got.nodes)
			slices.Sort(w.nodes)
			if diff := cmp.Diff(w, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("rollout %s after the migration (-want +got):\n%s", ro.GetId(), diff)
			}
			if ro.GetLegacyState() != "" {
				t.Errorf("rollout %s keeps its legacy state %q", ro.GetId(), ro.GetLegacyState())
			}
			if c := ro.GetCounts(); c.GetNodes() != uint32(len(nodes)) || state.Sum(c) != c.GetNodes() {
				t.Errorf("rollout %s counts %v do not add up to its %d nodes", ro.GetId(), c, len(nodes))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBoltOldFileHasNoRevocations: a file written before tokens could be
// revoked, users disabled or rotations logged (testdata/v5) opens without
// a migration for them: its tokens and users read as neither revoked nor
// disabled (the new fields are optional), and its keyring generation is
// 0, no rotation logged (the meta key is absent).
func TestBoltOldFileHasNoRevocations(t *testing.T) {
	data, err := os.ReadFile("testdata/v5/cairn.db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cairn.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	st := openBolt(t, path)
	err = st.View(t.Context(), func(tx store.Tx) error {
		tokens, err := tx.APITokens()
		if err != nil {
			return err
		}
		for _, tok := range tokens {
			if tok.GetRevokedAt() != "" || tok.GetRevokedBy() != "" || tok.GetLastUsedAt() != "" {
				t.Errorf("token %s of a v5 file reads as revoked or used: %v", tok.GetId(), tok)
			}
		}
		users, err := tx.Users()
		if err != nil {
			return err
		}
		for _, u := range users {
			if u.GetDisabledBy() != "" || u.GetDisabledAt() != "" {
				t.Errorf("user %s of a v5 file reads as disabled by someone: %v", u.GetName(), u)
			}
		}
		gen, err := tx.KeyringGeneration()
		if err != nil || gen != 0 {
			t.Errorf("KeyringGeneration of a v5 file = %d, %v; want 0", gen, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBoltMigrateTypedReports opens a copy of testdata/v7-reports/cairn.db, a
// schema-version-7 file whose deploy commands, rollout nodes and agent
// events hold the agents' reports as JSON (written by its gen.go from
// proto/agent/v1/testdata/legacy): each readable report reads back as
// its message, its JSON gone; each unreadable one, and the step_result
// that held the agent's journal record, is kept as it was.
func TestBoltMigrateTypedReports(t *testing.T) {
	legacy := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "..", "proto", "agent", "v1", "testdata", "legacy", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	read := func(name string, m proto.Message) proto.Message {
		if err := agentv1.UnmarshalLegacy(legacy(name), m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	applyRep := read("apply-report.json", &agentv1.ApplyReport{}).(*agentv1.ApplyReport)
	interrupted := read("apply-report-interrupted.json", &agentv1.ApplyReport{}).(*agentv1.ApplyReport)
	plan := read("plan-report.json", &agentv1.PlanReport{}).(*agentv1.PlanReport)
	interruption := read("interruption.json", &agentv1.Interruption{}).(*agentv1.Interruption)
	if applyRep.GetState() != agentv1.StateRolledBack || len(plan.GetSteps()) != 3 || interruption.GetStep() != "steps/migrate" {
		t.Fatalf("fixtures read as %v, %v, %v", applyRep, plan, interruption)
	}

	st := openFixture(t, "testdata/v7-reports/cairn.db")
	type command struct {
		json   string
		report proto.Message
	}
	wantCommands := map[string]command{
		"cmd-apply":    {"", applyRep},
		"cmd-rollback": {"", interrupted},
		"cmd-plan":     {"", plan},
		"cmd-garbled":  {"not json", nil},
		"cmd-noreport": {"", nil},
		"cmd-audit":    {"", nil},
	}
	type node struct {
		deployJSON, rollbackJSON string
		deploy, rollback         *agentv1.ApplyReport
	}
	wantNodes := map[string]node{
		"node-1": {deploy: applyRep, rollback: interrupted},
		"node-2": {deployJSON: "not json"},
	}
	stepJSON := `{"deployment_id":"d-1","list":"steps","index":0,"name":"install","plugin":"dpkg","idempotent":true,"state":"succeeded","attempts":1,"changed":true}` + "\n"
	wantEvents := map[string][]*controllerv1.AgentEventRecord{
		"node-1": {
			{NodeId: "node-1", Id: "d-1/deployment/1", Kind: "deployment_result", DeploymentId: "d-1", ReceivedAt: "2026-11-01T10:05:00.000000000Z",
				Report: &controllerv1.AgentEventRecord_DeploymentResult{DeploymentResult: applyRep}},
			{NodeId: "node-1", Id: "d-1/steps/install/1", Kind: "step_result", DeploymentId: "d-1", ReceivedAt: "2026-11-01T10:05:00.000000000Z",
				Payload: []byte(stepJSON)},
			{NodeId: "node-1", Id: "d-4/interrupted/steps/migrate/1", Kind: "deployment_interrupted", DeploymentId: "d-4", ReceivedAt: "2026-11-01T10:05:00.000000000Z",
				Report: &controllerv1.AgentEventRecord_Interruption{Interruption: interruption}},
		},
		"node-2": {
			{NodeId: "node-2", Id: "d-5/deployment/1", Kind: "deployment_result", DeploymentId: "d-5", ReceivedAt: "2026-11-01T10:05:00.000000000Z",
				Payload: []byte(`{"state":`)},
		},
	}
	err := st.View(t.Context(), func(tx store.Tx) error {
		for id, want := range wantCommands {
			c, err := tx.Command(id)
			if err != nil {
				return err
			}
			var got proto.Message
			if c.GetApplyReport() != nil {
				got = c.GetApplyReport()
			} else if c.GetPlanReport() != nil {
				got = c.GetPlanReport()
			}
			if diff := cmp.Diff(want, command{string(c.GetResultJson()), got}, cmp.AllowUnexported(command{}), protocmp.Transform()); diff != "" {
				t.Errorf("command %s after the migration (-want +got):\n%s", id, diff)
			}
		}
		nodes, err := tx.RolloutNodes("ro-1")
		if err != nil {
			return err
		}
		if len(nodes) != len(wantNodes) {
			t.Errorf("%d rollout nodes, want %d", len(nodes), len(wantNodes))
		}
		for _, n := range nodes {
			got := node{string(n.GetDeployReportJson()), string(n.GetRollbackReportJson()), n.GetDeployReport(), n.GetRollbackReport()}
			if diff := cmp.Diff(wantNodes[n.GetNodeId()], got, cmp.AllowUnexported(node{}), protocmp.Transform()); diff != "" {
				t.Errorf("rollout node %s after the migration (-want +got):\n%s", n.GetNodeId(), diff)
			}
		}
		for nodeID, want := range wantEvents {
			got, err := tx.AgentEvents(nodeID)
			if err != nil {
				return err
			}
			if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
				t.Errorf("agent events of %s after the migration (-want +got):\n%s", nodeID, diff)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
