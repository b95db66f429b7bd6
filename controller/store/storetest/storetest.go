// Package storetest is the contract suite every store.Store
// implementation must pass. An implementation's test calls Run with a
// function that opens a fresh, empty store:
//
//	func TestBolt(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			st, err := store.OpenBolt(filepath.Join(t.TempDir(), "cairn.db"), store.BoltOptions{})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return st
//		})
//	}
//
// Run closes each store when its subtest ends.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/controller/store"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// Run runs the contract suite; open must return a new, empty store.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st store.Store)
	}{
		{"NotFound", testNotFound},
		{"Empty", testEmpty},
		{"RoundTrip", testRoundTrip},
		{"Overwrite", testOverwrite},
		{"Invalid", testInvalid},
		{"ListOrder", testListOrder},
		{"NodeCommandsReindex", testNodeCommandsReindex},
		{"NodePrefixes", testNodePrefixes},
		{"DeleteService", testDeleteService},
		{"Rollback", testRollback},
		{"ReadOnly", testReadOnly},
		{"Baselines", testBaselines},
		{"LogEntries", testLogEntries},
		{"NoAliasing", testNoAliasing},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"Batch", testBatch},
		{"Canceled", testCanceled},
		{"Closed", testClosed},
		{"Artifacts", testArtifacts},
		{"Releases", testReleases},
		{"Rollouts", testRollouts},
		{"RolloutNodes", testRolloutNodes},
		{"AgentEvents", testAgentEvents},
		{"IssuedReports", testIssuedReports},
		{"KeyringGeneration", testKeyringGeneration},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := open(t)
			t.Cleanup(func() { st.Close() })
			tc.fn(t, st)
		})
	}
}

var protoDiff = protocmp.Transform()

func update(t *testing.T, st store.Store, fn func(store.Tx) error) {
	t.Helper()
	if err := st.Update(t.Context(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func view(t *testing.T, st store.Store, fn func(store.Tx) error) {
	t.Helper()
	if err := st.View(t.Context(), fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

// Records used across the tests.
func enrollToken() *controllerv1.EnrollTokenRecord {
	return &controllerv1.EnrollTokenRecord{
		Id: "et-1", TokenHash: "h-enroll", CreatedBy: "alice", CreatedAt: "2026-01-02T03:04:05Z",
		ExpiresAt: "2026-01-02T03:14:05Z", UsesLeft: 2, Labels: map[string]string{"env": "prod"},
	}
}

func node(id string) *controllerv1.NodeRecord {
	return &controllerv1.NodeRecord{
		Id: id, Hostname: "host-" + id, Labels: map[string]string{"env": "prod", "role": "web"},
		AgentVersion: "1.0.0", State: controllerv1.NodeRecord_STATE_CONNECTED,
		EnrolledAt: "2026-01-02T03:04:05Z", LastSeen: "2026-01-02T04:04:05Z", CertSerial: "0a1b",
	}
}

func user(name string) *controllerv1.UserRecord {
	return &controllerv1.UserRecord{Name: name, Roles: []string{"admin", "auditor"}, CreatedBy: "root", CreatedAt: "2026-01-02T03:04:05Z"}
}

func apiToken() *controllerv1.APITokenRecord {
	return &controllerv1.APITokenRecord{Id: "tok-1", User: "alice", TokenHash: "h-api", CreatedBy: "user:admin1 (token issued by root)", CreatedAt: "2026-01-02T03:04:05Z",
		Issuers: []string{"admin1", "root"}}
}

func command(id, nodeID, createdAt string) *controllerv1.CommandRecord {
	return &controllerv1.CommandRecord{
		Id: id, NodeId: nodeID, Kind: "audit", State: controllerv1.CommandRecord_STATE_PENDING,
		CreatedBy: "alice", CreatedAt: createdAt, Collectors: []string{"packages"}, Track: []string{"/etc/hosts"},
	}
}

func audit(id, nodeID, storedAt string) *controllerv1.AuditRecord {
	return &controllerv1.AuditRecord{
		Id: id, NodeId: nodeID, CollectedAt: storedAt, StoredAt: storedAt, ContentHash: "c-" + id,
		SizeBytes: 1234, CommandId: "cmd-" + id, FailedCollectors: []string{"hardware"}, Blob: "b-" + id, Hostname: "host",
	}
}

func baseline(nodeID string, version uint32) *controllerv1.BaselineRecord {
	return &controllerv1.BaselineRecord{
		NodeId: nodeID, Version: version, AuditId: fmt.Sprintf("a-%s-%d", nodeID, version), AcceptedBy: "bob",
		AcceptedAt: "2026-01-02T03:04:05Z", Reason: "initial", ContentHash: "c",
	}
}

func service(name string) *controllerv1.ServiceRecord {
	return &controllerv1.ServiceRecord{Name: name, Selector: map[string]string{"role": name}, Description: "the " + name, CreatedBy: "alice", CreatedAt: "2026-01-02T03:04:05Z"}
}

// artifact returns an artifact record whose digest is 64 hex digits made
// from hex (repeated).
func artifact(hex, name string) *controllerv1.ArtifactRecord {
	return &controllerv1.ArtifactRecord{
		Digest:    strings.Repeat(hex, 64/len(hex)),
		Name:      name,
		Kind:      "application",
		SizeBytes: 42,
		CreatedBy: "user:alice",
		CreatedAt: "2026-01-02T03:04:05Z",
	}
}

func logEntry(seq uint64) *controllerv1.AuditLogEntry {
	return &controllerv1.AuditLogEntry{
		Sequence: seq, Time: "2026-01-02T03:04:05Z", Actor: "user:alice", Action: "node.label", Object: "node/n1",
		Details: map[string]string{"set": "env=prod"}, PrevHash: fmt.Sprintf("hash-%d", seq-1), Hash: fmt.Sprintf("hash-%d", seq),
	}
}

func testNotFound(t *testing.T, st store.Store) {
	tests := []struct {
		name string
		get  func(store.Tx) error
	}{
		{"EnrollToken", func(tx store.Tx) error { _, err := tx.EnrollToken("x"); return err }},
		{"Node", func(tx store.Tx) error { _, err := tx.Node("x"); return err }},
		{"User", func(tx store.Tx) error { _, err := tx.User("x"); return err }},
		{"APIToken", func(tx store.Tx) error { _, err := tx.APIToken("x"); return err }},
		{"Command", func(tx store.Tx) error { _, err := tx.Command("x"); return err }},
		{"Audit", func(tx store.Tx) error { _, err := tx.Audit("x"); return err }},
		{"Service", func(tx store.Tx) error { _, err := tx.Service("x"); return err }},
		{"LastLogEntry", func(tx store.Tx) error { _, err := tx.LastLogEntry(); return err }},
		{"DeleteService", func(tx store.Tx) error { return tx.DeleteService("x") }},
		{"Artifact", func(tx store.Tx) error { _, err := tx.Artifact("x"); return err }},
		{"DeleteArtifact", func(tx store.Tx) error { return tx.DeleteArtifact("x") }},
		{"Rollout", func(tx store.Tx) error { _, err := tx.Rollout("x"); return err }},
		{"RolloutNode", func(tx store.Tx) error { _, err := tx.RolloutNode("y", "x"); return err }},
		{"RolloutNodeOtherRollout", func(tx store.Tx) error { _, err := tx.RolloutNode("x", "y"); return err }},
		{"AgentEvent", func(tx store.Tx) error { _, err := tx.AgentEvent("y", "x"); return err }},
		{"AgentEventOtherNode", func(tx store.Tx) error { _, err := tx.AgentEvent("x", "y"); return err }},
		{"IssuedReport", func(tx store.Tx) error { _, err := tx.IssuedReport("x"); return err }},
	}
	// A record under another key must not be found either.
	update(t, st, func(tx store.Tx) error {
		return errors.Join(tx.PutNode(node("y")), tx.PutRollout(rollout("y", "2026-01-02T03:04:05.000000000Z")),
			tx.PutRolloutNode(rolloutNode("y", "y")), tx.PutAgentEvent(agentEvent("y", "y")))
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := st.Update(t.Context(), tc.get)
			if !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("got %v, want ErrNotFound", err)
			}
		})
	}
}

func testEmpty(t *testing.T, st store.Store) {
	tests := []struct {
		name string
		list func(store.Tx) (int, error)
	}{
		{"Nodes", func(tx store.Tx) (int, error) { r, err := tx.Nodes(); return len(r), err }},
		{"Users", func(tx store.Tx) (int, error) { r, err := tx.Users(); return len(r), err }},
		{"APITokens", func(tx store.Tx) (int, error) { r, err := tx.APITokens(); return len(r), err }},
		{"NodeCommands", func(tx store.Tx) (int, error) { r, err := tx.NodeCommands("n1"); return len(r), err }},
		{"NodeAudits", func(tx store.Tx) (int, error) { r, err := tx.NodeAudits("n1"); return len(r), err }},
		{"Baselines", func(tx store.Tx) (int, error) { r, err := tx.Baselines("n1"); return len(r), err }},
		{"Services", func(tx store.Tx) (int, error) { r, err := tx.Services(); return len(r), err }},
		{"LogEntries", func(tx store.Tx) (int, error) { r, err := tx.LogEntries(0, 0); return len(r), err }},
		{"Artifacts", func(tx store.Tx) (int, error) { r, err := tx.Artifacts(); return len(r), err }},
		{"Rollouts", func(tx store.Tx) (int, error) { r, err := tx.Rollouts(); return len(r), err }},
		{"RolloutNodes", func(tx store.Tx) (int, error) { r, err := tx.RolloutNodes("r1"); return len(r), err }},
		{"AgentEvents", func(tx store.Tx) (int, error) { r, err := tx.AgentEvents("n1"); return len(r), err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			view(t, st, func(tx store.Tx) error {
				n, err := tc.list(tx)
				if err != nil || n != 0 {
					t.Errorf("got %d records, err %v; want none", n, err)
				}
				return nil
			})
		})
	}
	view(t, st, func(tx store.Tx) error {
		seq, hash, err := tx.LogHead()
		if seq != 0 || hash != "" || err != nil {
			t.Errorf("LogHead() = %d, %q, %v; want 0, \"\", nil", seq, hash, err)
		}
		return nil
	})
}

// roundTrip is one record type: how to store a record and read it back.
type roundTrip struct {
	name string
	rec  proto.Message
	put  func(store.Tx) error
	get  func(store.Tx) (proto.Message, error)
}

func roundTrips() []roundTrip {
	et, n, u, at := enrollToken(), node("n1"), user("alice"), apiToken()
	c, a, b, s, e := command("c1", "n1", "2026-01-02T03:04:05Z"), audit("a1", "n1", "2026-01-02T03:04:05Z"), baseline("n1", 1), service("web"), logEntry(1)
	art := artifact("ab", "app.tar.gz")
	art.Installs = []*controllerv1.InstallRecord{{NodeId: "n1", Release: "web@1.0.0", RolloutId: "r1", InstalledAt: "2026-01-02T03:04:05Z"}}
	ro, rn, ev := rollout("r1", "2026-01-02T03:04:05.000000000Z"), rolloutNode("r1", "n1"), agentEvent("n1", "ev-1")
	ir := issuedReport("sha256:ab")
	return []roundTrip{
		{"EnrollToken", et, func(tx store.Tx) error { return tx.PutEnrollToken(et) }, func(tx store.Tx) (proto.Message, error) { return tx.EnrollToken(et.TokenHash) }},
		{"Node", n, func(tx store.Tx) error { return tx.PutNode(n) }, func(tx store.Tx) (proto.Message, error) { return tx.Node(n.Id) }},
		{"User", u, func(tx store.Tx) error { return tx.PutUser(u) }, func(tx store.Tx) (proto.Message, error) { return tx.User(u.Name) }},
		{"APIToken", at, func(tx store.Tx) error { return tx.PutAPIToken(at) }, func(tx store.Tx) (proto.Message, error) { return tx.APIToken(at.TokenHash) }},
		{"Command", c, func(tx store.Tx) error { return tx.PutCommand(c) }, func(tx store.Tx) (proto.Message, error) { return tx.Command(c.Id) }},
		{"Audit", a, func(tx store.Tx) error { return tx.PutAudit(a) }, func(tx store.Tx) (proto.Message, error) { return tx.Audit(a.Id) }},
		{"Baseline", b, func(tx store.Tx) error { return tx.PutBaseline(b) }, func(tx store.Tx) (proto.Message, error) {
			r, err := tx.Baselines(b.NodeId)
			if err != nil || len(r) != 1 {
				return nil, fmt.Errorf("Baselines: %d records, %v", len(r), err)
			}
			return r[0], nil
		}},
		{"Service", s, func(tx store.Tx) error { return tx.PutService(s) }, func(tx store.Tx) (proto.Message, error) { return tx.Service(s.Name) }},
		{"LogEntry", e, func(tx store.Tx) error { return tx.AppendLogEntry(e) }, func(tx store.Tx) (proto.Message, error) { return tx.LastLogEntry() }},
		{"Artifact", art, func(tx store.Tx) error { return tx.PutArtifact(art) }, func(tx store.Tx) (proto.Message, error) { return tx.Artifact(art.Digest) }},
		{"Rollout", ro, func(tx store.Tx) error { return tx.PutRollout(ro) }, func(tx store.Tx) (proto.Message, error) { return tx.Rollout(ro.Id) }},
		{"RolloutNode", rn, func(tx store.Tx) error { return tx.PutRolloutNode(rn) }, func(tx store.Tx) (proto.Message, error) {
			return tx.RolloutNode(rn.RolloutId, rn.NodeId)
		}},
		{"AgentEvent", ev, func(tx store.Tx) error { return tx.PutAgentEvent(ev) }, func(tx store.Tx) (proto.Message, error) { return tx.AgentEvent(ev.NodeId, ev.Id) }},
		{"IssuedReport", ir, func(tx store.Tx) error { return tx.PutIssuedReport(ir) }, func(tx store.Tx) (proto.Message, error) { return tx.IssuedReport(ir.Digest) }},
	}
}

func testRoundTrip(t *testing.T, st store.Store) {
	for _, tc := range roundTrips() {
		t.Run(tc.name, func(t *testing.T) {
			update(t, st, tc.put)
			// Read back in a new transaction (from committed state) and in
			// the writing one (st.Update sees its own writes).
			view(t, st, func(tx store.Tx) error {
				got, err := tc.get(tx)
				if err != nil {
					t.Fatalf("get: %v", err)
				}
				if diff := cmp.Diff(tc.rec, got, protoDiff); diff != "" {
					t.Errorf("read back (-want +got):\n%s", diff)
				}
				return nil
			})
		})
	}
	t.Run("ReadOwnWrites", func(t *testing.T) {
		update(t, st, func(tx store.Tx) error {
			n := node("own")
			if err := tx.PutNode(n); err != nil {
				return err
			}
			got, err := tx.Node("own")
			if err != nil {
				return err
			}
			if diff := cmp.Diff(n, got, protoDiff); diff != "" {
				t.Errorf("read in same Update (-want +got):\n%s", diff)
			}
			return nil
		})
	})
}

func testOverwrite(t *testing.T, st store.Store) {
	first, second := node("n1"), node("n1")
	second.Hostname, second.State, second.Labels = "renamed", controllerv1.NodeRecord_STATE_REVOKED, map[string]string{"only": "this"}
	update(t, st, func(tx store.Tx) error { return tx.PutNode(first) })
	update(t, st, func(tx store.Tx) error { return tx.PutNode(second) })
	view(t, st, func(tx store.Tx) error {
		got, err := tx.Nodes()
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]*controllerv1.NodeRecord{second}, got, protoDiff); diff != "" {
			t.Errorf("Nodes after overwrite (-want +got):\n%s", diff)
		}
		return nil
	})
}

func testInvalid(t *testing.T, st store.Store) {
	tests := []struct {
		name string
		put  func(store.Tx) error
	}{
		{"EnrollTokenNoHash", func(tx store.Tx) error { return tx.PutEnrollToken(&controllerv1.EnrollTokenRecord{Id: "x"}) }},
		{"NodeNoID", func(tx store.Tx) error { return tx.PutNode(&controllerv1.NodeRecord{Hostname: "h"}) }},
		{"NodeIDWithNUL", func(tx store.Tx) error { return tx.PutNode(node("a\x00b")) }},
		{"UserNoName", func(tx store.Tx) error { return tx.PutUser(&controllerv1.UserRecord{}) }},
		{"APITokenNoHash", func(tx store.Tx) error { return tx.PutAPIToken(&controllerv1.APITokenRecord{Id: "x"}) }},
		{"CommandNoID", func(tx store.Tx) error { return tx.PutCommand(command("", "n1", "")) }},
		{"CommandNoNode", func(tx store.Tx) error { return tx.PutCommand(command("c1", "", "")) }},
		{"AuditNoID", func(tx store.Tx) error { return tx.PutAudit(audit("", "n1", "")) }},
		{"AuditNoNode", func(tx store.Tx) error { return tx.PutAudit(audit("a1", "", "")) }},
		{"BaselineNoNode", func(tx store.Tx) error { return tx.PutBaseline(baseline("", 1)) }},
		{"ServiceNoName", func(tx store.Tx) error { return tx.PutService(&controllerv1.ServiceRecord{}) }},
		{"NilLogEntry", func(tx store.Tx) error { return tx.AppendLogEntry(nil) }},
		{"ArtifactNoDigest", func(tx store.Tx) error { return tx.PutArtifact(&controllerv1.ArtifactRecord{Name: "a"}) }},
		{"ArtifactNoName", func(tx store.Tx) error { return tx.PutArtifact(artifact("ab", "")) }},
		{"ArtifactNameWithNUL", func(tx store.Tx) error { return tx.PutArtifact(artifact("ab", "a\x00b")) }},
		{"RolloutNoID", func(tx store.Tx) error { return tx.PutRollout(rollout("", "")) }},
		{"RolloutIDWithNUL", func(tx store.Tx) error { return tx.PutRollout(rollout("r\x001", "")) }},
		{"RolloutNodeNoRollout", func(tx store.Tx) error { return tx.PutRolloutNode(rolloutNode("", "n1")) }},
		{"RolloutNodeNoNode", func(tx store.Tx) error { return tx.PutRolloutNode(rolloutNode("r1", "")) }},
		{"RolloutNodeRolloutWithNUL", func(tx store.Tx) error { return tx.PutRolloutNode(rolloutNode("r\x00n", "1")) }},
		{"AgentEventNoNode", func(tx store.Tx) error { return tx.PutAgentEvent(agentEvent("", "ev-1")) }},
		{"AgentEventNoID", func(tx store.Tx) error { return tx.PutAgentEvent(agentEvent("n1", "")) }},
		{"AgentEventNodeWithNUL", func(tx store.Tx) error { return tx.PutAgentEvent(agentEvent("n\x00e", "1")) }},
		{"IssuedReportNoDigest", func(tx store.Tx) error { return tx.PutIssuedReport(issuedReport("")) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := st.Update(t.Context(), tc.put); !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
}

func ids[T interface{ GetId() string }](recs []T) []string {
	out := []string{}
	for _, r := range recs {
		out = append(out, r.GetId())
	}
	return out
}

func testListOrder(t *testing.T, st store.Store) {
	update(t, st, func(tx store.Tx) error {
		for _, id := range []string{"n3", "n1", "n2", "n10"} {
			if err := tx.PutNode(node(id)); err != nil {
				return err
			}
		}
		for _, name := range []string{"carol", "alice", "bob"} {
			if err := tx.PutUser(user(name)); err != nil {
				return err
			}
		}
		for _, name := range []string{"web", "db", "cache"} {
			if err := tx.PutService(service(name)); err != nil {
				return err
			}
		}
		for _, h := range []string{"h-c", "h-a", "h-b"} {
			tok := apiToken()
			tok.Id, tok.TokenHash = "tok-"+h, h
			if err := tx.PutAPIToken(tok); err != nil {
				return err
			}
		}
		// Times whose string order differs from their order in time:
		// RFC3339Nano trims trailing zeros, and other zones sort by
		// instant. Ties are broken by ID.
		for _, c := range []struct{ id, ts string }{
			{"c-late", "2026-01-02T03:04:06Z"},
			{"c-frac12", "2026-01-02T03:04:05.12Z"},
			{"c-frac1", "2026-01-02T03:04:05.1Z"},
			{"c-whole", "2026-01-02T03:04:05Z"},
			{"c-zone", "2026-01-02T04:04:05.05+01:00"},
			{"c-tie-b", "2026-01-01T00:00:00Z"},
			{"c-tie-a", "2026-01-01T00:00:00Z"},
			{"c-2025", "2025-12-31T23:59:59.999999999Z"},
		} {
			if err := tx.PutCommand(command(c.id, "n1", c.ts)); err != nil {
				return err
			}
			if err := tx.PutAudit(audit("a"+c.id[1:], "n1", c.ts)); err != nil {
				return err
			}
		}
		if err := tx.PutCommand(command("other-node", "n2", "2020-01-01T00:00:00Z")); err != nil {
			return err
		}
		if err := tx.PutAudit(audit("other-node", "n2", "2020-01-01T00:00:00Z")); err != nil {
			return err
		}
		for v := uint32(1); v <= 12; v++ {
			if err := tx.PutBaseline(baseline("n1", v)); err != nil {
				return err
			}
		}
		return tx.PutBaseline(baseline("n2", 1))
	})
	timeOrder := []string{"2025", "tie-a", "tie-b", "whole", "zone", "frac1", "frac12", "late"}
	prefixed := func(p string) []string {
		out := []string{}
		for _, s := range timeOrder {
			out = append(out, p+s)
		}
		return out
	}
	view(t, st, func(tx store.Tx) error {
		nodes, err := tx.Nodes()
		if err != nil {
			return err
		}
		users, err := tx.Users()
		if err != nil {
			return err
		}
		services, err := tx.Services()
		if err != nil {
			return err
		}
		tokens, err := tx.APITokens()
		if err != nil {
			return err
		}
		cmds, err := tx.NodeCommands("n1")
		if err != nil {
			return err
		}
		audits, err := tx.NodeAudits("n1")
		if err != nil {
			return err
		}
		baselines, err := tx.Baselines("n1")
		if err != nil {
			return err
		}
		var userNames, serviceNames []string
		for _, u := range users {
			userNames = append(userNames, u.GetName())
		}
		for _, s := range services {
			serviceNames = append(serviceNames, s.GetName())
		}
		var versions []uint32
		for _, b := range baselines {
			versions = append(versions, b.GetVersion())
		}
		tests := []struct {
			name      string
			got, want any
		}{
			{"Nodes", ids(nodes), []string{"n1", "n10", "n2", "n3"}},
			{"Users", userNames, []string{"alice", "bob", "carol"}},
			{"APITokens", ids(tokens), []string{"tok-h-a", "tok-h-b", "tok-h-c"}},
			{"Services", serviceNames, []string{"cache", "db", "web"}},
			{"NodeCommands", ids(cmds), prefixed("c-")},
			{"NodeAudits", ids(audits), prefixed("a-")},
			{"Baselines", versions, []uint32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
		}
		for _, tc := range tests {
			if diff := cmp.Diff(tc.want, tc.got); diff != "" {
				t.Errorf("%s order (-want +got):\n%s", tc.name, diff)
			}
		}
		return nil
	})
}

// testNodeCommandsReindex rewrites a command with a new node and time and
// an audit with a new time; the lists must follow.
func testNodeCommandsReindex(t *testing.T, st store.Store) {
	update(t, st, func(tx store.Tx) error {
		for _, c := range []*controllerv1.CommandRecord{
			command("c1", "n1", "2026-01-01T00:00:01Z"),
			command("c2", "n1", "2026-01-01T00:00:02Z"),
			command("c3", "n1", "2026-01-01T00:00:03Z"),
		} {
			if err := tx.PutCommand(c); err != nil {
				return err
			}
		}
		for _, a := range []*controllerv1.AuditRecord{
			audit("a1", "n1", "2026-01-01T00:00:01Z"),
			audit("a2", "n1", "2026-01-01T00:00:02Z"),
		} {
			if err := tx.PutAudit(a); err != nil {
				return err
			}
		}
		return nil
	})
	update(t, st, func(tx store.Tx) error {
		moved := command("c1", "n1", "2026-01-01T00:00:09Z")
		moved.State = controllerv1.CommandRecord_STATE_SUCCEEDED
		if err := tx.PutCommand(moved); err != nil {
			return err
		}
		if err := tx.PutCommand(command("c2", "n2", "2026-01-01T00:00:02Z")); err != nil {
			return err
		}
		return tx.PutAudit(audit("a1", "n1", "2026-01-01T00:00:09Z"))
	})
	view(t, st, func(tx store.Tx) error {
		n1, err := tx.NodeCommands("n1")
		if err != nil {
			return err
		}
		n2, err := tx.NodeCommands("n2")
		if err != nil {
			return err
		}
		audits, err := tx.NodeAudits("n1")
		if err != nil {
			return err
		}
		got := map[string][]string{"n1": ids(n1), "n2": ids(n2), "audits": ids(audits)}
		want := map[string][]string{"n1": {"c3", "c1"}, "n2": {"c2"}, "audits": {"a2", "a1"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("lists after rewrite (-want +got):\n%s", diff)
		}
		if len(n1) == 2 && n1[1].GetState() != controllerv1.CommandRecord_STATE_SUCCEEDED {
			t.Errorf("c1 state = %v, want the rewritten record", n1[1].GetState())
		}
		return nil
	})
}

// testNodePrefixes checks that a node's lists do not pick up the records
// of a node whose ID starts with the same characters.
func testNodePrefixes(t *testing.T, st store.Store) {
	update(t, st, func(tx store.Tx) error {
		for _, n := range []string{"a", "ab", "a b", "b"} {
			if err := tx.PutCommand(command("c-"+n, n, "2026-01-01T00:00:00Z")); err != nil {
				return err
			}
			if err := tx.PutAudit(audit("a-"+n, n, "2026-01-01T00:00:00Z")); err != nil {
				return err
			}
			if err := tx.PutBaseline(baseline(n, 1)); err != nil {
				return err
			}
		}
		// "ab" gets a second baseline: "a"'s next version must still be 2.
		if err := tx.PutBaseline(baseline("ab", 2)); err != nil {
			return err
		}
		return tx.PutBaseline(baseline("a", 2))
	})
	view(t, st, func(tx store.Tx) error {
		cmds, err := tx.NodeCommands("a")
		if err != nil {
			return err
		}
		audits, err := tx.NodeAudits("a")
		if err != nil {
			return err
		}
		baselines, err := tx.Baselines("a")
		if err != nil {
			return err
		}
		var auditIDs []string
		for _, b := range baselines {
			auditIDs = append(auditIDs, b.GetAuditId())
		}
		got := [][]string{ids(cmds), ids(audits), auditIDs}
		want := [][]string{{"c-a"}, {"a-a"}, {"a-a-1", "a-a-2"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("node a's lists (-want +got):\n%s", diff)
		}
		return nil
	})
}

func testDeleteService(t *testing.T, st store.Store) {
	update(t, st, func(tx store.Tx) error {
		for _, name := range []string{"web", "db"} {
			if err := tx.PutService(service(name)); err != nil {
				return err
			}
		}
		return nil
	})
	update(t, st, func(tx store.Tx) error { return tx.DeleteService("web") })
	view(t, st, func(tx store.Tx) error {
		if _, err := tx.Service("web"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Service(web) after delete: got %v, want ErrNotFound", err)
		}
		got, err := tx.Services()
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]*controllerv1.ServiceRecord{service("db")}, got, protoDiff); diff != "" {
			t.Errorf("Services after delete (-want +got):\n%s", diff)
		}
		return nil
	})
}

func testRollback(t *testing.T, st store.Store) {
	update(t, st, func(tx store.Tx) error {
		if err := tx.PutNode(node("kept")); err != nil {
			return err
		}
		return tx.PutService(service("kept"))
	})
	boom := errors.New("boom")
	err := st.Update(t.Context(), func(tx store.Tx) error {
		for _, rt := range roundTrips() {
			if err := rt.put(tx); err != nil {
				return err
			}
		}
		changed := node("kept")
		changed.Hostname = "changed"
		if err := tx.PutNode(changed); err != nil {
			return err
		}
		if err := tx.DeleteService("kept"); err != nil {
			return err
		}
		return fmt.Errorf("late failure: %w", boom)
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update returned %v, want fn's error", err)
	}
	view(t, st, func(tx store.Tx) error {
		for _, rt := range roundTrips() {
			if rt.name == "Baseline" {
				continue // its getter is a list; checked below
			}
			if got, err := rt.get(tx); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s after rollback: got %v, %v; want ErrNotFound", rt.name, got, err)
			}
		}
		if b, err := tx.Baselines("n1"); err != nil || len(b) != 0 {
			t.Errorf("Baselines after rollback: %d, %v; want none", len(b), err)
		}
		if seq, hash, err := tx.LogHead(); seq != 0 || hash != "" || err != nil {
			t.Errorf("LogHead after rollback = %d, %q, %v; want empty", seq, hash, err)
		}
		if n, err := tx.Node("kept"); err != nil || n.GetHostname() != "host-kept" {
			t.Errorf("Node(kept) after rollback = %v, %v; want unchanged", n, err)
		}
		if _, err := tx.Service("kept"); err != nil {
			t.Errorf("Service(kept) after rollback: %v; want it kept", err)
		}
		return nil
	})
}

func testReadOnly(t *testing.T, st store.Store) {
	update(t, st, func(tx store.Tx) error { return tx.PutService(service("web")) })
	writes := []struct {
		name  string
		write func(store.Tx) error
	}{
		{"DeleteService", func(tx store.Tx) error { return tx.DeleteService("web") }},
		{"DeleteArtifact", func(tx store.Tx) error { return tx.DeleteArtifact(artifact("ab", "x").Digest) }},
	}
	for _, rt := range roundTrips() {
		writes = append(writes, struct {
			name  string
			write func(store.Tx) error
		}{rt.name, rt.put})
	}
	for _, tc := range writes {
		t.Run(tc.name, func(t *testing.T) {
			var werr error
			view(t, st, func(tx store.Tx) error {
				werr = tc.write(tx)
				return nil
			})
			if !errors.Is(werr, store.ErrReadOnly) {
				t.Errorf("write in View: got %v, want ErrReadOnly", werr)
			}
		})
	}
	view(t, st, func(tx store.Tx) error {
		if _, err := tx.Service("web"); err != nil {
			t.Errorf("Service(web) after read-only delete: %v", err)
		}
		if _, err := tx.Node("n1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Node(n1) after read-only put: %v, want ErrNotFound", err)
		}
		return nil
	})
}

func testBaselines(t *testing.T, st store.Store) {
	steps := []struct {
		name    string
		rec     *controllerv1.BaselineRecord
		wantErr error
	}{
		{"zero", baseline("n1", 0), store.ErrConflict},
		{"skip to 2", baseline("n1", 2), store.ErrConflict},
		{"first", baseline("n1", 1), nil},
		{"repeat 1", baseline("n1", 1), store.ErrConflict},
		{"skip to 3", baseline("n1", 3), store.ErrConflict},
		{"second", baseline("n1", 2), nil},
		{"other node first", baseline("n2", 1), nil},
		{"third", baseline("n1", 3), nil},
	}
	for _, s := range steps {
		err := st.Update(t.Context(), func(tx store.Tx) error { return tx.PutBaseline(s.rec) })
		if !errors.Is(err, s.wantErr) || (s.wantErr == nil && err != nil) {
			t.Errorf("%s: PutBaseline(version %d) = %v, want %v", s.name, s.rec.GetVersion(), err, s.wantErr)
		}
	}
	view(t, st, func(tx store.Tx) error {
		got, err := tx.Baselines("n1")
		if err != nil {
			return err
		}
		want := []*controllerv1.BaselineRecord{baseline("n1", 1), baseline("n1", 2), baseline("n1", 3)}
		if diff := cmp.Diff(want, got, protoDiff); diff != "" {
			t.Errorf("Baselines(n1) (-want +got):\n%s", diff)
		}
		return nil
	})
}

func testLogEntries(t *testing.T, st store.Store) {
	steps := []struct {
		name    string
		seq     uint64
		wantErr error
	}{
		{"zero", 0, store.ErrConflict},
		{"skip to 2", 2, store.ErrConflict},
		{"first", 1, nil},
		{"repeat 1", 1, store.ErrConflict},
		{"second", 2, nil},
		{"skip to 4", 4, store.ErrConflict},
		{"third", 3, nil},
		{"fourth", 4, nil},
		{"fifth", 5, nil},
	}
	for _, s := range steps {
		err := st.Update(t.Context(), func(tx store.Tx) error { return tx.AppendLogEntry(logEntry(s.seq)) })
		if !errors.Is(err, s.wantErr) || (s.wantErr == nil && err != nil) {
			t.Errorf("%s: AppendLogEntry(%d) = %v, want %v", s.name, s.seq, err, s.wantErr)
		}
	}
	view(t, st, func(tx store.Tx) error {
		seq, hash, err := tx.LogHead()
		if seq != 5 || hash != "hash-5" || err != nil {
			t.Errorf("LogHead() = %d, %q, %v; want 5, hash-5", seq, hash, err)
		}
		last, err := tx.LastLogEntry()
		if err != nil {
			return err
		}
		if diff := cmp.Diff(logEntry(5), last, protoDiff); diff != "" {
			t.Errorf("LastLogEntry (-want +got):\n%s", diff)
		}
		return nil
	})
	tests := []struct {
		after uint64
		limit int
		want  []uint64
	}{
		{0, 0, []uint64{1, 2, 3, 4, 5}},
		{0, 2, []uint64{1, 2}},
		{2, 0, []uint64{3, 4, 5}},
		{2, 2, []uint64{3, 4}},
		{4, 10, []uint64{5}},
		{5, 0, nil},
		{99, 0, nil},
		{^uint64(0), 0, nil},
		{0, -1, []uint64{1, 2, 3, 4, 5}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("after%d_limit%d", tc.after, tc.limit), func(t *testing.T) {
			view(t, st, func(tx store.Tx) error {
				entries, err := tx.LogEntries(tc.after, tc.limit)
				if err != nil {
					return err
				}
				var want []*controllerv1.AuditLogEntry
				for _, s := range tc.want {
					want = append(want, logEntry(s))
				}
				if len(entries) == 0 {
					entries = nil
				}
				if diff := cmp.Diff(want, entries, protoDiff); diff != "" {
					t.Errorf("LogEntries(%d, %d) (-want +got):\n%s", tc.after, tc.limit, diff)
				}
				return nil
			})
		})
	}
}

// testNoAliasing mutates records after putting them and after reading
// them; what is stored must not change.
func testNoAliasing(t *testing.T, st store.Store) {
	for _, rt := range roundTrips() {
		t.Run(rt.name, func(t *testing.T) {
			want := proto.Clone(rt.rec)
			update(t, st, rt.put)
			scribble(rt.rec) // the caller's copy, after the put
			var first proto.Message
			view(t, st, func(tx store.Tx) error {
				var err error
				first, err = rt.get(tx)
				return err
			})
			if diff := cmp.Diff(want, first, protoDiff); diff != "" {
				t.Fatalf("stored record changed with the caller's copy (-want +got):\n%s", diff)
			}
			scribble(first) // a returned record
			view(t, st, func(tx store.Tx) error {
				again, err := rt.get(tx)
				if err != nil {
					return err
				}
				if diff := cmp.Diff(want, again, protoDiff); diff != "" {
					t.Errorf("stored record changed with a returned one (-want +got):\n%s", diff)
				}
				return nil
			})
		})
	}
	t.Run("Lists", func(t *testing.T) {
		update(t, st, func(tx store.Tx) error { return tx.PutNode(node("listed")) })
		view(t, st, func(tx store.Tx) error {
			nodes, err := tx.Nodes()
			if err != nil {
				return err
			}
			for _, n := range nodes {
				scribble(n)
			}
			return nil
		})
		view(t, st, func(tx store.Tx) error {
			got, err := tx.Node("listed")
			if err != nil {
				return err
			}
			if diff := cmp.Diff(node("listed"), got, protoDiff); diff != "" {
				t.Errorf("node changed through a listed record (-want +got):\n%s", diff)
			}
			return nil
		})
	})
}

// scribble changes every string, map and list in m, in place.
func scribble(m proto.Message) {
	switch r := m.(type) {
	case *controllerv1.EnrollTokenRecord:
		r.Id, r.Labels["env"] = "changed", "changed"
	case *controllerv1.NodeRecord:
		r.Hostname, r.Labels["env"] = "changed", "changed"
	case *controllerv1.UserRecord:
		r.Roles[0], r.Disabled = "changed", true
	case *controllerv1.APITokenRecord:
		r.User = "changed"
	case *controllerv1.CommandRecord:
		r.Kind, r.Collectors[0] = "changed", "changed"
	case *controllerv1.AuditRecord:
		r.Blob, r.FailedCollectors[0] = "changed", "changed"
	case *controllerv1.BaselineRecord:
		r.Reason = "changed"
	case *controllerv1.ServiceRecord:
		r.Description, r.Selector["role"] = "changed", "changed"
	case *controllerv1.AuditLogEntry:
		r.Actor, r.Details["set"] = "changed", "changed"
	case *controllerv1.ArtifactRecord:
		r.Name, r.Installs[0].NodeId = "changed", "changed"
	case *controllerv1.ReleaseRecord:
		r.CreatedBy, r.Components[0].Digest, r.ManifestYaml[0] = "changed", "changed", 'X'
	case *controllerv1.RolloutRecord:
		r.State, r.Waves[0].NodeIds[0], r.Spec.Selector["role"], r.Counts.Passed = controllerv1.RolloutState_ROLLOUT_STATE_ABORTED, "changed", "changed", 99
	case *controllerv1.RolloutNode:
		r.State, r.DeployReport.Steps[0].Outcome, r.Confirmations[0].Note = controllerv1.NodeState_NODE_STATE_FAILED, "changed", "changed"
	case *controllerv1.AgentEventRecord:
		r.Kind, r.GetDeploymentResult().State = "changed", "changed"
	case *controllerv1.IssuedReport:
		r.IssuedTo, r.Release.Name = "changed", "changed"
	default:
		panic(fmt.Sprintf("scribble: unhandled %T", m))
	}
}

// testConcurrentUpdates runs read-modify-write Updates from several
// goroutines: each reads the last log entry and appends the next one. The
// store must serialize them so that none conflicts.
func testConcurrentUpdates(t *testing.T, st store.Store) {
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for range n {
		wg.Go(func() {
			errs <- st.Update(t.Context(), func(tx store.Tx) error {
				var seq uint64 = 1
				last, err := tx.LastLogEntry()
				switch {
				case err == nil:
					seq = last.GetSequence() + 1
				case !errors.Is(err, store.ErrNotFound):
					return err
				}
				return tx.AppendLogEntry(logEntry(seq))
			})
		})
		// Readers run alongside and must always see a gapless log.
		wg.Go(func() {
			errs <- st.View(t.Context(), func(tx store.Tx) error {
				entries, err := tx.LogEntries(0, 0)
				if err != nil {
					return err
				}
				seq, _, err := tx.LogHead()
				if err != nil {
					return err
				}
				if uint64(len(entries)) != seq {
					return fmt.Errorf("a reader saw %d entries with head %d", len(entries), seq)
				}
				return nil
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	view(t, st, func(tx store.Tx) error {
		entries, err := tx.LogEntries(0, 0)
		if err != nil {
			return err
		}
		var got []uint64
		for _, e := range entries {
			got = append(got, e.GetSequence())
		}
		var want []uint64
		for i := range uint64(n) {
			want = append(want, i+1)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("sequences (-want +got):\n%s", diff)
		}
		return nil
	})
}

func testBatch(t *testing.T, st store.Store) {
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- st.Batch(t.Context(), func(tx store.Tx) error {
				return tx.PutNode(node(fmt.Sprintf("n%02d", i)))
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	boom := errors.New("boom")
	if err := st.Batch(t.Context(), func(tx store.Tx) error {
		if err := tx.PutNode(node("failed")); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Errorf("failing Batch returned %v, want fn's error", err)
	}
	view(t, st, func(tx store.Tx) error {
		nodes, err := tx.Nodes()
		if err != nil {
			return err
		}
		var want []string
		for i := range n {
			want = append(want, fmt.Sprintf("n%02d", i))
		}
		if diff := cmp.Diff(want, ids(nodes)); diff != "" {
			t.Errorf("nodes after Batch (-want +got):\n%s", diff)
		}
		return nil
	})
}

func testCanceled(t *testing.T, st store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ran := false
	fn := func(store.Tx) error { ran = true; return nil }
	for name, call := range map[string]func(context.Context, func(store.Tx) error) error{
		"View": st.View, "Update": st.Update, "Batch": st.Batch,
	} {
		if err := call(ctx, fn); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: got %v, want context.Canceled", name, err)
		}
	}
	if ran {
		t.Error("fn ran despite the canceled context")
	}
}

func testClosed(t *testing.T, st store.Store) {
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	fn := func(store.Tx) error { return nil }
	for name, call := range map[string]func(context.Context, func(store.Tx) error) error{
		"View": st.View, "Update": st.Update, "Batch": st.Batch,
	} {
		if err := call(t.Context(), fn); !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: got %v, want ErrClosed", name, err)
		}
	}
}

// testArtifacts checks the DML's records: listed by name then digest
// (not by digest alone), the name index follows an overwrite, and a
// deleted artifact is gone from both.
func testArtifacts(t *testing.T, st store.Store) {
	a1, b2, b1, c0 := artifact("a1", "tools"), artifact("b2", "app"), artifact("b1", "app"), artifact("c0", "app-extra")
	update(t, st, func(tx store.Tx) error {
		return errors.Join(tx.PutArtifact(a1), tx.PutArtifact(b2), tx.PutArtifact(b1), tx.PutArtifact(c0))
	})
	digests := func(t *testing.T) []string {
		t.Helper()
		var out []string
		view(t, st, func(tx store.Tx) error {
			recs, err := tx.Artifacts()
			for _, r := range recs {
				out = append(out, r.GetName()+"/"+r.GetDigest()[:2])
			}
			return err
		})
		return out
	}
	// "app" sorts before "app-extra": the NUL separator sorts first.
	if diff := cmp.Diff([]string{"app/b1", "app/b2", "app-extra/c0", "tools/a1"}, digests(t)); diff != "" {
		t.Errorf("Artifacts (-want +got):\n%s", diff)
	}

	withInstall := artifact("a1", "zz-renamed")
	withInstall.Installs = []*controllerv1.InstallRecord{{NodeId: "n1", Release: "web@1.0.0"}}
	update(t, st, func(tx store.Tx) error { return tx.PutArtifact(withInstall) })
	if diff := cmp.Diff([]string{"app/b1", "app/b2", "app-extra/c0", "zz-renamed/a1"}, digests(t)); diff != "" {
		t.Errorf("Artifacts after overwrite (-want +got):\n%s", diff)
	}

	update(t, st, func(tx store.Tx) error { return tx.DeleteArtifact(b1.Digest) })
	if diff := cmp.Diff([]string{"app/b2", "app-extra/c0", "zz-renamed/a1"}, digests(t)); diff != "" {
		t.Errorf("Artifacts after delete (-want +got):\n%s", diff)
	}
	view(t, st, func(tx store.Tx) error {
		if _, err := tx.Artifact(b1.Digest); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Artifact after delete: got %v, want ErrNotFound", err)
		}
		got, err := tx.Artifact(withInstall.Digest)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(withInstall, got, protoDiff); diff != "" {
			t.Errorf("Artifact after overwrite (-want +got):\n%s", diff)
		}
		return nil
	})
	if err := st.Update(t.Context(), func(tx store.Tx) error { return tx.DeleteArtifact(b1.Digest) }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete: got %v, want ErrNotFound", err)
	}
}

func release(name, version string) *controllerv1.ReleaseRecord {
	return &controllerv1.ReleaseRecord{
		Name: name, Version: version, State: controllerv1.ReleaseRecord_STATE_DRAFT,
		ManifestYaml: []byte("name: " + name), CreatedBy: "alice",
		Components: []*controllerv1.ReleaseComponent{{Name: "app", Kind: "application", Digest: "ab"}},
	}
}

func testReleases(t *testing.T, st store.Store) {
	recs := []*controllerv1.ReleaseRecord{
		release("web", "1.10.0"), release("web", "1.2.0"), release("api", "2.0.0"),
		release("web", "1.2.0~rc1"), release("web-extra", "0.1"),
	}
	update(t, st, func(tx store.Tx) error {
		var errs []error
		for _, r := range recs {
			errs = append(errs, tx.PutRelease(r))
		}
		return errors.Join(errs...)
	})
	t.Run("Order", func(t *testing.T) {
		var got []string
		view(t, st, func(tx store.Tx) error {
			rs, err := tx.Releases()
			for _, r := range rs {
				got = append(got, r.GetName()+"@"+r.GetVersion())
			}
			return err
		})
		want := []string{"api@2.0.0", "web@1.2.0~rc1", "web@1.2.0", "web@1.10.0", "web-extra@0.1"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Releases (-want +got):\n%s", diff)
		}
	})
	t.Run("RoundTrip", func(t *testing.T) {
		view(t, st, func(tx store.Tx) error {
			got, err := tx.Release("web", "1.10.0")
			if err != nil {
				return err
			}
			if diff := cmp.Diff(recs[0], got, protoDiff); diff != "" {
				t.Errorf("Release (-want +got):\n%s", diff)
			}
			return nil
		})
	})
	t.Run("NotFound", func(t *testing.T) {
		view(t, st, func(tx store.Tx) error {
			for _, k := range [][2]string{{"web", "9"}, {"nope", "1.2.0"}, {"web\x001", "2.0"}} {
				if _, err := tx.Release(k[0], k[1]); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("Release(%q, %q): got %v, want ErrNotFound", k[0], k[1], err)
				}
			}
			return nil
		})
	})
	t.Run("Invalid", func(t *testing.T) {
		for _, r := range []*controllerv1.ReleaseRecord{release("", "1"), release("web", ""), release("a\x00b", "1")} {
			if err := st.Update(t.Context(), func(tx store.Tx) error { return tx.PutRelease(r) }); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("PutRelease(%q, %q): got %v, want ErrInvalid", r.GetName(), r.GetVersion(), err)
			}
		}
		if err := st.View(t.Context(), func(tx store.Tx) error { return tx.PutRelease(release("x", "1")) }); !errors.Is(err, store.ErrReadOnly) {
			t.Errorf("PutRelease in View: got %v, want ErrReadOnly", err)
		}
	})
	t.Run("Rollback", func(t *testing.T) {
		boom := errors.New("boom")
		changed := release("web", "1.10.0")
		changed.State = controllerv1.ReleaseRecord_STATE_SEALED
		err := st.Update(t.Context(), func(tx store.Tx) error {
			if err := errors.Join(tx.PutRelease(changed), tx.PutRelease(release("new", "1"))); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Update: got %v, want boom", err)
		}
		view(t, st, func(tx store.Tx) error {
			if got, err := tx.Release("web", "1.10.0"); err != nil || got.GetState() != controllerv1.ReleaseRecord_STATE_DRAFT {
				t.Errorf("after rollback: got %v, %v; want the draft", got, err)
			}
			if _, err := tx.Release("new", "1"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("after rollback: new release: got %v, want ErrNotFound", err)
			} else if want := `release "new@1": `; !strings.Contains(err.Error(), want) {
				t.Errorf("not-found error %q does not name the release as %s", err, want)
			}
			return nil
		})
	})
	t.Run("NoAliasing", func(t *testing.T) {
		in := release("alias", "1")
		update(t, st, func(tx store.Tx) error { return tx.PutRelease(in) })
		scribble(in)
		var got *controllerv1.ReleaseRecord
		view(t, st, func(tx store.Tx) (err error) {
			got, err = tx.Release("alias", "1")
			return err
		})
		if diff := cmp.Diff(release("alias", "1"), got, protoDiff); diff != "" {
			t.Errorf("Release after changing the stored value (-want +got):\n%s", diff)
		}
		scribble(got)
		view(t, st, func(tx store.Tx) error {
			list, err := tx.Releases()
			if err != nil {
				return err
			}
			for _, r := range list {
				if r.GetName() == "alias" {
					if diff := cmp.Diff(release("alias", "1"), r, protoDiff); diff != "" {
						t.Errorf("Releases after changing a returned value (-want +got):\n%s", diff)
					}
				}
			}
			return nil
		})
	})
}

// rollout returns a rollout record without nodes.
func rollout(id, createdAt string) *controllerv1.RolloutRecord {
	return &controllerv1.RolloutRecord{
		Id: id, Release: &controllerv1.ReleaseRef{Name: "web", Version: "1.2.0"}, ReleaseDigest: "d-web",
		Spec: &controllerv1.RolloutSpec{
			Release: &controllerv1.ReleaseRef{Name: "web", Version: "1.2.0"}, Selector: map[string]string{"role": "web"},
			Strategy: "canary", Waves: []string{"1", "100%"}, MaxParallel: "10%", Unreachable: "fail", OnFailure: "stop",
		},
		State: controllerv1.RolloutState_ROLLOUT_STATE_RUNNING, CreatedBy: "user:alice", CreatedAt: createdAt, UpdatedAt: createdAt,
		Waves: []*controllerv1.RolloutWave{
			{Index: 1, NodeIds: []string{"n1"}, State: controllerv1.WaveState_WAVE_STATE_DONE},
			{Index: 2, NodeIds: []string{"n2", "n3"}, State: controllerv1.WaveState_WAVE_STATE_RUNNING, GateAfter: true},
		},
		Approvers: []string{"user:carol"}, Counts: &controllerv1.RolloutCounts{Nodes: 3, Passed: 1, Running: 2},
		MaxParallel: 2, Revision: 7,
	}
}

func rolloutNode(rolloutID, nodeID string) *controllerv1.RolloutNode {
	return &controllerv1.RolloutNode{
		RolloutId: rolloutID, NodeId: nodeID, Hostname: "host-" + nodeID, Wave: 1, State: controllerv1.NodeState_NODE_STATE_PASSED,
		StartedAt: "2026-01-02T03:04:05.000000000Z", PreAuditId: "a-pre", PostAuditId: "a-post",
		KnownErrors: []string{"KE-1: slow start"},
		DeployReport: &agentv1.ApplyReport{State: agentv1.StateSucceeded, Steps: []*agentv1.StepResult{
			{List: "steps", Name: "install", Plugin: "dpkg", Outcome: agentv1.OutcomeChanged}}},
		Confirmations:   []*controllerv1.StepConfirmation{{Step: "smoke", By: "user:bob", Note: "looks fine"}},
		DurationSeconds: 12.5, Changed: true,
	}
}

func issuedReport(digest string) *controllerv1.IssuedReport {
	return &controllerv1.IssuedReport{
		Digest: digest, RolloutId: "r1", Release: &controllerv1.ReleaseRef{Name: "web", Version: "1.0.0"}, Format: "html",
		GeneratedAt: "2026-01-02T03:04:05.000000000Z", GeneratedAtShown: "2026-01-02 04:04:05 CET", IssuedTo: "user:alice",
	}
}

func agentEvent(nodeID, id string) *controllerv1.AgentEventRecord {
	return &controllerv1.AgentEventRecord{
		NodeId: nodeID, Id: id, Kind: agentv1.OutboxDeploymentResult, DeploymentId: "dep-1", ReceivedAt: "2026-01-02T03:04:05.000000000Z",
		Report: &controllerv1.AgentEventRecord_DeploymentResult{DeploymentResult: &agentv1.ApplyReport{State: agentv1.StateSucceeded}},
	}
}

// testRollouts checks the rollout records: listed oldest first (by the
// instant of created_at, then ID), Nodes never stored, an overwrite
// replaces the record.
func testRollouts(t *testing.T, st store.Store) {
	withNodes := rollout("r-nodes", "2026-01-02T01:00:00.500000000Z")
	withNodes.Nodes = []*controllerv1.RolloutNode{rolloutNode("r-nodes", "n1"), rolloutNode("r-nodes", "n2")}
	update(t, st, func(tx store.Tx) error {
		var errs []error
		for _, r := range []struct{ id, at string }{
			{"r-late", "2026-01-03T00:00:00.000000000Z"},
			{"r-tie-b", "2026-01-02T00:00:00.000000000Z"},
			{"r-tie-a", "2026-01-02T00:00:00.000000000Z"},
			{"r-2025", "2025-12-31T23:59:59.999999999Z"},
			// Another format of a time between r-tie-* and r-nodes: the
			// string sorts after every other, the instant does not.
			{"r-short", "2026-01-02T01:00:00Z"},
		} {
			errs = append(errs, tx.PutRollout(rollout(r.id, r.at)))
		}
		errs = append(errs, tx.PutRollout(withNodes))
		return errors.Join(errs...)
	})
	if len(withNodes.Nodes) != 2 {
		t.Errorf("PutRollout changed the caller's record: %d nodes left, want 2", len(withNodes.Nodes))
	}

	t.Run("Order", func(t *testing.T) {
		view(t, st, func(tx store.Tx) error {
			got, err := tx.Rollouts()
			if err != nil {
				return err
			}
			want := []string{"r-2025", "r-tie-a", "r-tie-b", "r-short", "r-nodes", "r-late"}
			if diff := cmp.Diff(want, ids(got)); diff != "" {
				t.Errorf("Rollouts order (-want +got):\n%s", diff)
			}
			return nil
		})
	})
	t.Run("NodesNotStored", func(t *testing.T) {
		want := rollout("r-nodes", "2026-01-02T01:00:00.500000000Z")
		view(t, st, func(tx store.Tx) error {
			got, err := tx.Rollout("r-nodes")
			if err != nil {
				return err
			}
			if diff := cmp.Diff(want, got, protoDiff); diff != "" {
				t.Errorf("Rollout (-want +got):\n%s", diff)
			}
			list, err := tx.Rollouts()
			if err != nil {
				return err
			}
			for _, r := range list {
				if len(r.GetNodes()) != 0 {
					t.Errorf("Rollouts: %s has %d nodes, want none", r.GetId(), len(r.GetNodes()))
				}
			}
			// Nor are they turned into RolloutNode records.
			nodes, err := tx.RolloutNodes("r-nodes")
			if err != nil {
				return err
			}
			if len(nodes) != 0 {
				t.Errorf("RolloutNodes(r-nodes) = %d records after PutRollout with nodes, want none", len(nodes))
			}
			return nil
		})
	})
	t.Run("Overwrite", func(t *testing.T) {
		changed := rollout("r-late", "2026-01-03T00:00:00.000000000Z")
		changed.State, changed.Reason, changed.Revision = controllerv1.RolloutState_ROLLOUT_STATE_HALTED, "wave 1 failed", 8
		changed.Waves = changed.Waves[:1]
		update(t, st, func(tx store.Tx) error { return tx.PutRollout(changed) })
		view(t, st, func(tx store.Tx) error {
			got, err := tx.Rollout("r-late")
			if err != nil {
				return err
			}
			if diff := cmp.Diff(changed, got, protoDiff); diff != "" {
				t.Errorf("Rollout after overwrite (-want +got):\n%s", diff)
			}
			list, err := tx.Rollouts()
			if err != nil {
				return err
			}
			if len(list) != 6 {
				t.Errorf("Rollouts after overwrite: %d records, want 6", len(list))
			}
			return nil
		})
	})
}

// testRolloutNodes checks that a rollout's nodes are listed by node ID
// and never include another rollout's, even one whose ID starts with the
// same characters ("r1" and "r10").
func testRolloutNodes(t *testing.T, st store.Store) {
	update(t, st, func(tx store.Tx) error {
		var errs []error
		for _, p := range [][2]string{
			{"r1", "n2"}, {"r1", "n10"}, {"r1", "n1"},
			{"r10", "n1"}, {"r10", "n3"}, {"r1 ", "n4"}, {"r", "1"}, {"r", "1n5"}, {"r2", "n1"},
		} {
			errs = append(errs, tx.PutRolloutNode(rolloutNode(p[0], p[1])))
		}
		return errors.Join(errs...)
	})
	nodeIDs := func(recs []*controllerv1.RolloutNode) []string {
		out := []string{}
		for _, r := range recs {
			out = append(out, r.GetRolloutId()+"/"+r.GetNodeId())
		}
		return out
	}
	tests := []struct {
		rollout string
		want    []string
	}{
		{"r1", []string{"r1/n1", "r1/n10", "r1/n2"}},
		{"r10", []string{"r10/n1", "r10/n3"}},
		{"r", []string{"r/1", "r/1n5"}},
		{"r1 ", []string{"r1 /n4"}},
		{"r3", []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.rollout, func(t *testing.T) {
			view(t, st, func(tx store.Tx) error {
				got, err := tx.RolloutNodes(tc.rollout)
				if err != nil {
					return err
				}
				if diff := cmp.Diff(tc.want, nodeIDs(got)); diff != "" {
					t.Errorf("RolloutNodes(%q) (-want +got):\n%s", tc.rollout, diff)
				}
				return nil
			})
		})
	}
	t.Run("Get", func(t *testing.T) {
		view(t, st, func(tx store.Tx) error {
			got, err := tx.RolloutNode("r10", "n3")
			if err != nil {
				return err
			}
			if diff := cmp.Diff(rolloutNode("r10", "n3"), got, protoDiff); diff != "" {
				t.Errorf("RolloutNode(r10, n3) (-want +got):\n%s", diff)
			}
			// "r1" ‖ "0n3" must not find "r10" ‖ "n3".
			for _, k := range [][2]string{{"r1", "0n3"}, {"r1", "n3"}, {"r10", "n2"}} {
				if _, err := tx.RolloutNode(k[0], k[1]); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("RolloutNode(%q, %q): got %v, want ErrNotFound", k[0], k[1], err)
				}
			}
			return nil
		})
	})
	t.Run("Overwrite", func(t *testing.T) {
		changed := rolloutNode("r1", "n2")
		changed.State, changed.Error, changed.Changed = controllerv1.NodeState_NODE_STATE_FAILED, "step install: exit status 1", false
		update(t, st, func(tx store.Tx) error { return tx.PutRolloutNode(changed) })
		view(t, st, func(tx store.Tx) error {
			got, err := tx.RolloutNodes("r1")
			if err != nil {
				return err
			}
			want := []*controllerv1.RolloutNode{rolloutNode("r1", "n1"), rolloutNode("r1", "n10"), changed}
			if diff := cmp.Diff(want, got, protoDiff); diff != "" {
				t.Errorf("RolloutNodes(r1) after overwrite (-want +got):\n%s", diff)
			}
			return nil
		})
	})
}

// testAgentEvents checks a node's stored outbox items: listed by ID, per
// node (prefix-safe), and stored once: a second put of the same node and
// ID is ErrConflict and changes nothing.
func testAgentEvents(t *testing.T, st store.Store) {
	update(t, st, func(tx store.Tx) error {
		var errs []error
		for _, p := range [][2]string{
			{"n1", "ev-2"}, {"n1", "ev-10"}, {"n1", "ev-1"}, {"n10", "ev-1"}, {"n", "1ev-3"}, {"n2", "ev-2"},
		} {
			errs = append(errs, tx.PutAgentEvent(agentEvent(p[0], p[1])))
		}
		return errors.Join(errs...)
	})
	list := func(t *testing.T, nodeID string) []string {
		t.Helper()
		var out []string
		view(t, st, func(tx store.Tx) error {
			recs, err := tx.AgentEvents(nodeID)
			out = ids(recs)
			return err
		})
		return out
	}
	t.Run("List", func(t *testing.T) {
		tests := []struct {
			node string
			want []string
		}{
			{"n1", []string{"ev-1", "ev-10", "ev-2"}},
			{"n10", []string{"ev-1"}},
			{"n", []string{"1ev-3"}},
			{"n3", []string{}},
		}
		for _, tc := range tests {
			if diff := cmp.Diff(tc.want, list(t, tc.node)); diff != "" {
				t.Errorf("AgentEvents(%q) (-want +got):\n%s", tc.node, diff)
			}
		}
	})
	t.Run("Duplicate", func(t *testing.T) {
		dup := agentEvent("n1", "ev-1")
		dup.Kind, dup.Payload = "other", []byte("{}")
		// In a transaction of its own, and after a put of another item in
		// the same transaction: the whole Update fails and rolls back.
		for name, fn := range map[string]func(store.Tx) error{
			"alone": func(tx store.Tx) error { return tx.PutAgentEvent(dup) },
			"after another put": func(tx store.Tx) error {
				if err := tx.PutAgentEvent(agentEvent("n1", "ev-new")); err != nil {
					return err
				}
				return tx.PutAgentEvent(dup)
			},
			"twice in one transaction": func(tx store.Tx) error {
				if err := tx.PutAgentEvent(agentEvent("n3", "ev-1")); err != nil {
					return err
				}
				return tx.PutAgentEvent(agentEvent("n3", "ev-1"))
			},
		} {
			if err := st.Update(t.Context(), fn); !errors.Is(err, store.ErrConflict) {
				t.Errorf("%s: PutAgentEvent of a stored item: got %v, want ErrConflict", name, err)
			}
		}
		view(t, st, func(tx store.Tx) error {
			got, err := tx.AgentEvent("n1", "ev-1")
			if err != nil {
				return err
			}
			if diff := cmp.Diff(agentEvent("n1", "ev-1"), got, protoDiff); diff != "" {
				t.Errorf("AgentEvent after a refused duplicate (-want +got):\n%s", diff)
			}
			return nil
		})
		if diff := cmp.Diff([]string{"ev-1", "ev-10", "ev-2"}, list(t, "n1")); diff != "" {
			t.Errorf("AgentEvents(n1) after refused Updates (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{}, list(t, "n3")); diff != "" {
			t.Errorf("AgentEvents(n3) after refused Updates (-want +got):\n%s", diff)
		}
	})
	t.Run("SameIDOtherNode", func(t *testing.T) {
		update(t, st, func(tx store.Tx) error { return tx.PutAgentEvent(agentEvent("n3", "ev-10")) })
		if diff := cmp.Diff([]string{"ev-10"}, list(t, "n3")); diff != "" {
			t.Errorf("AgentEvents(n3) (-want +got):\n%s", diff)
		}
	})
	t.Run("ReadOnly", func(t *testing.T) {
		var err error
		view(t, st, func(tx store.Tx) error {
			err = tx.PutAgentEvent(agentEvent("n1", "ev-1"))
			return nil
		})
		if !errors.Is(err, store.ErrReadOnly) {
			t.Errorf("PutAgentEvent of a stored item in View: got %v, want ErrReadOnly", err)
		}
	})
}

// testIssuedReports: the record of an issued report never changes: a
// second record under the same digest is refused and the first kept.
func testIssuedReports(t *testing.T, st store.Store) {
	first := issuedReport("sha256:ab")
	update(t, st, func(tx store.Tx) error { return tx.PutIssuedReport(first) })
	again := issuedReport("sha256:ab")
	again.IssuedTo, again.RolloutId = "user:mallory", "r2"
	if err := st.Update(t.Context(), func(tx store.Tx) error {
		if err := tx.PutIssuedReport(issuedReport("sha256:cd")); err != nil {
			return err
		}
		return tx.PutIssuedReport(again)
	}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("PutIssuedReport of a recorded digest: got %v, want ErrConflict", err)
	}
	view(t, st, func(tx store.Tx) error {
		got, err := tx.IssuedReport("sha256:ab")
		if err != nil {
			return err
		}
		if diff := cmp.Diff(first, got, protoDiff); diff != "" {
			t.Errorf("IssuedReport after a refused second record (-want +got):\n%s", diff)
		}
		if _, err := tx.IssuedReport("sha256:cd"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the refused Update's other record: got %v, want ErrNotFound", err)
		}
		return nil
	})
}

// testKeyringGeneration: the generation starts at 0, an Update records
// it, a rolled-back one does not, and a View may not write it.
func testKeyringGeneration(t *testing.T, st store.Store) {
	get := func() uint64 {
		t.Helper()
		var gen uint64
		view(t, st, func(tx store.Tx) error {
			var err error
			gen, err = tx.KeyringGeneration()
			return err
		})
		return gen
	}
	if got := get(); got != 0 {
		t.Fatalf("KeyringGeneration of a new store = %d, want 0", got)
	}
	update(t, st, func(tx store.Tx) error { return tx.PutKeyringGeneration(3) })
	if got := get(); got != 3 {
		t.Errorf("KeyringGeneration = %d, want 3", got)
	}
	errBoom := errors.New("boom")
	err := st.Update(t.Context(), func(tx store.Tx) error {
		if err := tx.PutKeyringGeneration(4); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatal(err)
	}
	if got := get(); got != 3 {
		t.Errorf("after a rolled-back Update, KeyringGeneration = %d, want 3", got)
	}
	err = st.View(t.Context(), func(tx store.Tx) error { return tx.PutKeyringGeneration(5) })
	if !errors.Is(err, store.ErrReadOnly) {
		t.Errorf("PutKeyringGeneration in View: got %v, want ErrReadOnly", err)
	}
}
