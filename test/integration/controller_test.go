package integration

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// The JSON shapes below are the parts of cairnctl's -o json output (the
// .proto field names) that these tests read.

type nodeJSON struct {
	ID       string            `json:"id"`
	Hostname string            `json:"hostname"`
	Labels   map[string]string `json:"labels"`
	State    string            `json:"state"`
}

type nodeListJSON struct {
	Nodes []nodeJSON `json:"nodes"`
}

type commandJSON struct {
	ID      string `json:"id"`
	NodeID  string `json:"node_id"`
	State   string `json:"state"`
	AuditID string `json:"audit_id"`
	Error   string `json:"error"`
}

type auditListJSON struct {
	Audits []struct {
		ID     string `json:"id"`
		NodeID string `json:"node_id"`
	} `json:"audits"`
}

type baselineJSON struct {
	NodeID     string `json:"node_id"`
	Version    int    `json:"version"`
	AuditID    string `json:"audit_id"`
	AcceptedBy string `json:"accepted_by"`
	Reason     string `json:"reason"`
}

type driftJSON struct {
	Nodes []struct {
		NodeID      string `json:"node_id"`
		Hostname    string `json:"hostname"`
		HasBaseline bool   `json:"has_baseline"`
		Changes     int    `json:"changes"`
		Summary     string `json:"summary"`
		Report      struct {
			Sections []struct {
				Name    string `json:"name"`
				Changes []struct {
					Op   string `json:"op"`
					Kind string `json:"kind"`
					Key  string `json:"key"`
				} `json:"changes"`
			} `json:"sections"`
		} `json:"report"`
	} `json:"nodes"`
	NodesDrifted         int `json:"nodes_drifted"`
	NodesWithoutBaseline int `json:"nodes_without_baseline"`
	TotalChanges         int `json:"total_changes"`
}

// extraPackage is a dpkg status stanza the test installs on one agent.
const extraPackage = `
Package: cairn-e2e-extra
Status: install ok installed
Priority: optional
Section: utils
Installed-Size: 12
Maintainer: Cairn Tests <tests@example.com>
Architecture: amd64
Version: 1.2.3-1
Description: package added by the integration test
`

const extraPackageKey = "dpkg/cairn-e2e-extra/amd64"

// nodes lists the controller's nodes by ID.
func (c *controller) nodes(t *testing.T) map[string]nodeJSON {
	t.Helper()
	var l nodeListJSON
	c.ctlJSON(t, &l, "node", "list")
	m := make(map[string]nodeJSON, len(l.Nodes))
	for _, n := range l.Nodes {
		m[n.ID] = n
	}
	return m
}

// nodeState is one node's connection state as node show reports it.
func (c *controller) nodeState(t *testing.T, id string) string {
	t.Helper()
	var n nodeJSON
	c.ctlJSON(t, &n, "node", "show", id)
	return n.State
}

// runAudits runs audit run --wait with args and requires every command to
// succeed, returning the commands by node ID.
func (c *controller) runAudits(t *testing.T, want int, args ...string) map[string]commandJSON {
	t.Helper()
	var resp struct {
		Commands []commandJSON `json:"commands"`
	}
	c.ctlJSON(t, &resp, append([]string{"audit", "run", "--wait", "--wait-timeout", "60s",
		"--collectors", "os,packages,services"}, args...)...)
	got := make(map[string]commandJSON)
	for _, cmd := range resp.Commands {
		if cmd.State != "STATE_SUCCEEDED" || cmd.AuditID == "" {
			t.Errorf("audit command %s on node %s: state %s, audit %q, error %q; want succeeded with an audit",
				cmd.ID, cmd.NodeID, cmd.State, cmd.AuditID, cmd.Error)
		}
		got[cmd.NodeID] = cmd
	}
	if len(got) != want {
		t.Fatalf("audit run %v: commands for %d nodes, want %d: %+v", args, len(got), want, resp.Commands)
	}
	return got
}

// stateSnapshot is what a controller restart must keep: the node
// registry (without last-seen times), every node's audits and baselines.
type stateSnapshot struct {
	Nodes     []map[string]any
	Audits    map[string][]string
	Baselines map[string][]baselineJSON
}

func (c *controller) snapshot(t *testing.T, ids []string) stateSnapshot {
	t.Helper()
	var l struct {
		Nodes []map[string]any `json:"nodes"`
	}
	c.ctlJSON(t, &l, "node", "list")
	for _, n := range l.Nodes {
		delete(n, "last_seen")
	}
	s := stateSnapshot{Nodes: l.Nodes, Audits: map[string][]string{}, Baselines: map[string][]baselineJSON{}}
	for _, id := range ids {
		var al auditListJSON
		c.ctlJSON(t, &al, "audit", "list", id)
		for _, a := range al.Audits {
			s.Audits[id] = append(s.Audits[id], a.ID)
		}
		var h struct {
			Baselines []baselineJSON `json:"baselines"`
		}
		c.ctlJSON(t, &h, "cms", "history", id)
		s.Baselines[id] = h.Baselines
	}
	return s
}

// TestControllerEndToEnd runs the whole fleet lifecycle against real
// processes: enrollment of three agents, remote audits, baselines and
// drift, a crashed agent, revocation and a controller restart. The steps
// share one controller and build on each other.
func TestControllerEndToEnd(t *testing.T) {
	c := startController(t)

	var joinToken struct {
		Token string `json:"token"`
		Uses  int    `json:"uses"`
	}
	c.ctlJSON(t, &joinToken, "enroll-token", "create", "--uses", "3", "--labels", "env=e2e,tier=web")
	if !strings.HasPrefix(joinToken.Token, "cairn_e_") || joinToken.Uses != 3 {
		t.Fatalf("enroll-token create: got %+v, want a cairn_e_ token with 3 uses", joinToken)
	}

	agents := make([]*agentProc, 3)
	for i := range agents {
		agents[i] = newAgent(t, fmt.Sprintf("e2e-host-%d", i+1))
		agents[i].start(c, c.enrollFlags(joinToken.Token, fmt.Sprintf("idx=%d", i+1))...)
	}
	ids := make([]string, len(agents)) // node ID of agents[i]

	mustRun(t, "enroll", func(t *testing.T) {
		var nodes map[string]nodeJSON
		waitFor(t, startTimeout, "three connected nodes", func() bool {
			nodes = c.nodes(t)
			n := 0
			for _, node := range nodes {
				if node.State == "STATE_CONNECTED" {
					n++
				}
			}
			return n == 3
		})
		if len(nodes) != 3 {
			t.Fatalf("node list has %d nodes, want 3: %+v", len(nodes), nodes)
		}
		for _, n := range nodes {
			i := -1
			for j, a := range agents {
				if a.name == n.Hostname {
					i = j
				}
			}
			if i < 0 {
				t.Fatalf("node %s has hostname %q, want one of the agents' e2e-host-N", n.ID, n.Hostname)
			}
			ids[i] = n.ID
			want := map[string]string{"env": "e2e", "tier": "web", "idx": fmt.Sprint(i + 1)}
			if diff := cmp.Diff(want, n.Labels); diff != "" {
				t.Errorf("labels of node %s (%s) (-want +got):\n%s", n.ID, n.Hostname, diff)
			}
		}
		for i, id := range ids {
			if id == "" {
				t.Fatalf("no node has hostname %s", agents[i].name)
			}
		}
	})

	firstAudits := map[string]commandJSON{}
	mustRun(t, "audit and baseline", func(t *testing.T) {
		firstAudits = c.runAudits(t, 3, "--selector", "env=e2e")
		for _, id := range ids {
			var al auditListJSON
			c.ctlJSON(t, &al, "audit", "list", id)
			if len(al.Audits) != 1 || al.Audits[0].ID != firstAudits[id].AuditID || al.Audits[0].NodeID != id {
				t.Errorf("audit list %s: got %+v, want just audit %s", id, al.Audits, firstAudits[id].AuditID)
			}
		}
		for _, id := range ids {
			var b baselineJSON
			c.ctlJSON(t, &b, "cms", "baseline", "accept", id, "--reason", "initial e2e baseline")
			want := baselineJSON{NodeID: id, Version: 1, AuditID: firstAudits[id].AuditID,
				AcceptedBy: "user:admin", Reason: "initial e2e baseline"}
			if diff := cmp.Diff(want, b); diff != "" {
				t.Errorf("cms baseline accept %s (-want +got):\n%s", id, diff)
			}
		}
		var d driftJSON
		c.ctlJSON(t, &d, "cms", "drift")
		if d.NodesDrifted != 0 || d.TotalChanges != 0 || d.NodesWithoutBaseline != 0 || len(d.Nodes) != 3 {
			t.Errorf("cms drift right after the baselines: %d nodes, %d drifted, %d without baseline, %d changes; want 3, 0, 0, 0",
				len(d.Nodes), d.NodesDrifted, d.NodesWithoutBaseline, d.TotalChanges)
		}
	})

	mustRun(t, "drift", func(t *testing.T) {
		status := filepath.Join(agents[1].root, "var/lib/dpkg/status")
		f, err := os.OpenFile(status, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(extraPackage); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		c.runAudits(t, 3, "--selector", "env=e2e")

		var d driftJSON
		c.ctlJSON(t, &d, "cms", "drift")
		if d.NodesDrifted != 1 || d.TotalChanges != 1 || len(d.Nodes) != 3 {
			t.Errorf("cms drift: %d nodes, %d drifted, %d changes; want 3, 1, 1", len(d.Nodes), d.NodesDrifted, d.TotalChanges)
		}
		for _, n := range d.Nodes {
			if !n.HasBaseline {
				t.Errorf("cms drift: node %s has no baseline", n.NodeID)
			}
			if n.NodeID != ids[1] {
				if n.Changes != 0 {
					t.Errorf("cms drift: node %s (%s) has %d changes (%s), want none", n.NodeID, n.Hostname, n.Changes, n.Summary)
				}
				continue
			}
			var got []string
			for _, s := range n.Report.Sections {
				for _, ch := range s.Changes {
					got = append(got, s.Name+" "+ch.Op+" "+ch.Kind+" "+ch.Key)
				}
			}
			want := []string{"packages added package " + extraPackageKey}
			if diff := cmp.Diff(want, got); diff != "" || n.Changes != 1 || n.Summary != "1 package added" {
				t.Errorf("cms drift of node %s: %d changes, summary %q; changes (-want +got):\n%s", n.NodeID, n.Changes, n.Summary, diff)
			}
		}

		var h struct {
			Baselines []baselineJSON `json:"baselines"`
		}
		c.ctlJSON(t, &h, "cms", "history", ids[1])
		if len(h.Baselines) != 1 || h.Baselines[0].AuditID != firstAudits[ids[1]].AuditID || h.Baselines[0].Reason != "initial e2e baseline" {
			t.Errorf("cms history %s: got %+v, want the one initial baseline", ids[1], h.Baselines)
		}
	})

	t.Run("used-up token", func(t *testing.T) {
		extra := newAgent(t, "e2e-host-4")
		extra.start(c, c.enrollFlags(joinToken.Token, "idx=4")...)
		code := extra.p.wait(t, startTimeout)
		out := extra.p.out.String()
		if code == 0 || !strings.Contains(out, "token") {
			t.Errorf("a 4th agent with a 3-use token: exit %d, output %q; want a non-zero exit and an error about the token", code, out)
		}
		if n := len(c.nodes(t)); n != 3 {
			t.Errorf("node list has %d nodes after the refused enrollment, want 3", n)
		}
	})

	mustRun(t, "crash and reconnect", func(t *testing.T) {
		a := agents[0]
		a.p.stop(t, syscall.SIGKILL)
		waitFor(t, startTimeout, "the killed agent's node to be disconnected", func() bool {
			return c.nodeState(t, ids[0]) == "STATE_DISCONNECTED"
		})
		a.start(c) // the same data dir, no token
		waitFor(t, startTimeout, "the restarted agent's node to be connected", func() bool {
			if a.p.exited() {
				t.Fatalf("restarted agent exited with %d", a.p.code)
			}
			return c.nodeState(t, ids[0]) == "STATE_CONNECTED"
		})
		c.runAudits(t, 1, "--node", ids[0])
		if n := len(c.nodes(t)); n != 3 {
			t.Errorf("node list has %d nodes after the agent restarted, want 3 (no new enrollment)", n)
		}
	})

	t.Run("revoke", func(t *testing.T) {
		c.mustCtl(t, "node", "revoke", ids[2])
		if s := c.nodeState(t, ids[2]); s != "STATE_REVOKED" {
			t.Errorf("node show %s after revoke: state %s, want STATE_REVOKED", ids[2], s)
		}
		// The revoked node's live session ends, and the agent stops for
		// good, saying why.
		p := agents[2].p
		if !poll(10*time.Second, p.exited) {
			t.Errorf("agent %s still runs 10s after its node was revoked; want its session ended and the agent exited", agents[2].name)
			return
		}
		if p.code == 0 || !strings.Contains(p.out.String(), "revoked") {
			t.Errorf("revoked agent: exit %d, output %q; want a non-zero exit and a message about revocation", p.code, p.out.String())
		}
	})

	t.Run("controller restart", func(t *testing.T) {
		// Agent 3 is revoked; whatever happened to its process above, the
		// restart must leave its node revoked.
		before := c.snapshot(t, ids)
		c.stop(t)
		c.start(t)
		waitFor(t, startTimeout, "agents 1 and 2 to reconnect", func() bool {
			n := c.nodes(t)
			return n[ids[0]].State == "STATE_CONNECTED" && n[ids[1]].State == "STATE_CONNECTED"
		})
		after := c.snapshot(t, ids)
		if diff := cmp.Diff(before, after); diff != "" {
			t.Errorf("state changed across a controller restart (-before +after):\n%s", diff)
		}
		p := agents[2].p
		if !poll(startTimeout, p.exited) {
			t.Errorf("revoked agent still runs after the controller restarted")
		} else if p.code == 0 || !strings.Contains(p.out.String(), "revoked") {
			t.Errorf("revoked agent: exit %d, output %q; want a non-zero exit and a message about revocation", p.code, p.out.String())
		}
		if s := c.nodeState(t, ids[2]); s != "STATE_REVOKED" {
			t.Errorf("revoked node after the restart: state %s", s)
		}

		var d driftJSON
		c.ctlJSON(t, &d, "cms", "drift")
		if d.NodesDrifted != 1 || d.TotalChanges != 1 {
			t.Errorf("cms drift after the restart: %d drifted, %d changes; want 1, 1", d.NodesDrifted, d.TotalChanges)
		}
		r := c.ctl(t, "auditlog", "verify")
		if r.code != 0 || !strings.Contains(r.stdout, "audit log intact") {
			t.Errorf("auditlog verify after the restart: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		c.runAudits(t, 2, "--selector", "env=e2e")
	})

	for _, a := range agents {
		if !a.p.exited() {
			if code := a.p.stop(t, syscall.SIGTERM); code != 0 {
				t.Errorf("agent %s exited with %d on SIGTERM, want 0", a.name, code)
			}
		}
	}
	c.stop(t)
}

// mustRun runs a step of a sequential test and stops the test when the
// step failed, since later steps build on it.
func mustRun(t *testing.T, name string, step func(t *testing.T)) {
	t.Helper()
	if !t.Run(name, step) {
		t.FailNow()
	}
}

// TestAuditLogTamper edits and deletes audit-log entries directly in the
// controller's bbolt file, with the controller stopped, and shows that
// auditlog verify catches each and names where.
func TestAuditLogTamper(t *testing.T) {
	tests := []struct {
		name string
		// tamper changes the log of n entries and returns what verify's
		// error must match.
		tamper func(t *testing.T, tx *bolt.Tx, n uint64) *regexp.Regexp
	}{
		{
			name: "edit",
			tamper: func(t *testing.T, tx *bolt.Tx, n uint64) *regexp.Regexp {
				seq := n - 1
				e := logEntry(t, tx, seq)
				e.Action = "user.delete"
				e.Details["roles"] = "admin"
				b, err := proto.Marshal(e)
				if err != nil {
					t.Fatal(err)
				}
				if err := tx.Bucket([]byte("auditlog")).Put(seqKey(seq), b); err != nil {
					t.Fatal(err)
				}
				return regexp.MustCompile(fmt.Sprintf(`at entry %d: .*edited`, seq))
			},
		},
		{
			name: "delete middle",
			tamper: func(t *testing.T, tx *bolt.Tx, n uint64) *regexp.Regexp {
				if err := tx.Bucket([]byte("auditlog")).Delete(seqKey(2)); err != nil {
					t.Fatal(err)
				}
				return regexp.MustCompile(`at entry 2: .*deleted`)
			},
		},
		{
			name: "delete newest",
			tamper: func(t *testing.T, tx *bolt.Tx, n uint64) *regexp.Regexp {
				if err := tx.Bucket([]byte("auditlog")).Delete(seqKey(n)); err != nil {
					t.Fatal(err)
				}
				return regexp.MustCompile(fmt.Sprintf(`at entry %d: .*head`, n))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startController(t)
			c.mustCtl(t, "enroll-token", "create", "--uses", "2")
			c.mustCtl(t, "service", "create", "web", "--selector", "tier=web")
			c.mustCtl(t, "user", "create", "bob", "--role", "operator")
			if r := c.ctl(t, "auditlog", "verify"); r.code != 0 {
				t.Fatalf("auditlog verify before tampering: exit %d\n%s", r.code, r.stderr)
			}
			c.stop(t) // bbolt keeps the file locked while serve runs

			db, err := bolt.Open(filepath.Join(c.dataDir, "cairn.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			var want *regexp.Regexp
			err = db.Update(func(tx *bolt.Tx) error {
				log := tx.Bucket([]byte("auditlog"))
				if log == nil {
					t.Fatal(`no "auditlog" bucket in cairn.db`)
				}
				k, _ := log.Cursor().Last()
				if len(k) != 8 {
					t.Fatalf("newest audit-log key %x, want an 8-byte sequence", k)
				}
				n := binary.BigEndian.Uint64(k)
				if n < 5 {
					t.Fatalf("the audit log has %d entries, want at least 5", n)
				}
				want = tt.tamper(t, tx, n)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}

			c.start(t)
			r := c.ctl(t, "auditlog", "verify")
			t.Logf("auditlog verify: exit %d: %s", r.code, strings.TrimSpace(r.stderr))
			if r.code != 1 || !want.MatchString(r.stderr) {
				t.Errorf("auditlog verify after %s: exit %d, stderr %q; want exit 1 and an error matching %q",
					tt.name, r.code, r.stderr, want)
			}
		})
	}
}

func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, seq)
}

// logEntry reads entry seq of the audit log in tx.
func logEntry(t *testing.T, tx *bolt.Tx, seq uint64) *controllerv1.AuditLogEntry {
	t.Helper()
	v := tx.Bucket([]byte("auditlog")).Get(seqKey(seq))
	if v == nil {
		t.Fatalf("no audit-log entry %d", seq)
	}
	e := &controllerv1.AuditLogEntry{}
	if err := proto.Unmarshal(v, e); err != nil {
		t.Fatalf("decode audit-log entry %d: %v", seq, err)
	}
	if e.Details == nil {
		e.Details = map[string]string{}
	}
	return e
}

// TestUnauthorized shows cairnctl's exit status 3 for a missing token and
// for a role that lacks permission, against the real controller.
func TestUnauthorized(t *testing.T) {
	c := startController(t)
	c.mustCtl(t, "user", "create", "aud", "--role", "auditor")
	var tok struct {
		Token string `json:"token"`
	}
	c.ctlJSON(t, &tok, "token", "create", "--user", "aud")
	if !strings.HasPrefix(tok.Token, "cairn_u_") {
		t.Fatalf("token create: got %q, want a cairn_u_ token", tok.Token)
	}

	tests := []struct {
		name     string
		token    string
		args     []string
		wantCode int
	}{
		{"no token", "", []string{"node", "list"}, 3},
		{"unknown token", "cairn_u_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", []string{"node", "list"}, 3},
		{"auditor revokes", tok.Token, []string{"node", "revoke", "n-000000000000"}, 3},
		{"auditor creates an enroll token", tok.Token, []string{"enroll-token", "create"}, 3},
		{"auditor lists nodes", tok.Token, []string{"node", "list"}, 0},
		{"auditor verifies the audit log", tok.Token, []string{"auditlog", "verify"}, 0},
		{"auditor whoami", tok.Token, []string{"whoami"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.ctlAs(t, tt.token, tt.args...)
			if r.code != tt.wantCode {
				t.Errorf("cairnctl %s: exit %d, want %d\nstdout: %s\nstderr: %s",
					strings.Join(tt.args, " "), r.code, tt.wantCode, r.stdout, r.stderr)
			}
			if tt.wantCode == 3 && strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
				t.Errorf("cairnctl %s: want a one-line error, got %q", strings.Join(tt.args, " "), r.stderr)
			}
		})
	}
}
