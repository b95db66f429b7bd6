package api_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"

	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/controller/auth/authtest"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

func nodeIDs(nodes []*controllerv1.NodeRecord) []string {
	var ids []string
	for _, n := range nodes {
		ids = append(ids, n.GetId())
	}
	return ids
}

func TestNodes(t *testing.T) {
	e := newEnv(t)
	e.addNode(t, "n1", "web1", map[string]string{"env": "prod", "role": "web"})
	e.addNode(t, "n2", "web2", map[string]string{"env": "dev", "role": "web"})
	e.addNode(t, "n3", "dup", nil)
	e.addNode(t, "n4", "dup", nil)
	c := controllerv1.NewNodesClient(e.conn)
	ctx := e.ctx[auth.RoleAuditor]

	for _, tt := range []struct {
		name     string
		selector map[string]string
		want     []string
	}{
		{name: "all", want: []string{"n1", "n2", "n3", "n4"}},
		{name: "one label", selector: map[string]string{"role": "web"}, want: []string{"n1", "n2"}},
		{name: "two labels", selector: map[string]string{"role": "web", "env": "prod"}, want: []string{"n1"}},
		{name: "none", selector: map[string]string{"env": "qa"}},
	} {
		t.Run("list "+tt.name, func(t *testing.T) {
			resp, err := c.ListNodes(ctx, &controllerv1.ListNodesRequest{Selector: tt.selector})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, nodeIDs(resp.GetNodes())); diff != "" {
				t.Errorf("ListNodes (-want +got):\n%s", diff)
			}
		})
	}

	for _, tt := range []struct {
		name, ref, want string
		code            codes.Code
		msg             string
	}{
		{name: "by ID", ref: "n2", want: "n2"},
		{name: "by hostname", ref: "web1", want: "n1"},
		{name: "ambiguous hostname", ref: "dup", code: codes.FailedPrecondition, msg: `hostname "dup" names 2 nodes (n3, n4): use a node ID`},
		{name: "unknown", ref: "nope", code: codes.NotFound, msg: `node "nope"`},
		{name: "empty", code: codes.InvalidArgument, msg: "node: a node ID or hostname is required"},
	} {
		t.Run("get "+tt.name, func(t *testing.T) {
			n, err := c.GetNode(ctx, &controllerv1.GetNodeRequest{Node: tt.ref})
			checkCode(t, err, tt.code, tt.msg)
			if err == nil && n.GetId() != tt.want {
				t.Errorf("GetNode(%q) = %s, want %s", tt.ref, n.GetId(), tt.want)
			}
		})
	}

	for _, tt := range []struct {
		name string
		set  map[string]string
		want map[string]string
		code codes.Code
		msg  string
	}{
		{name: "set and remove", set: map[string]string{"env": "staging", "role": "", "tier": "1"}, want: map[string]string{"env": "staging", "tier": "1"}},
		{name: "no change", set: map[string]string{"tier": "1"}, want: map[string]string{"env": "staging", "tier": "1"}},
		{name: "nothing to do", code: codes.InvalidArgument, msg: "set: no labels"},
		{name: "bad key", set: map[string]string{"=x": "1"}, code: codes.InvalidArgument, msg: "set: label key"},
	} {
		t.Run("label "+tt.name, func(t *testing.T) {
			n, err := c.LabelNode(e.ctx[auth.RoleOperator], &controllerv1.LabelNodeRequest{Node: "web1", Set: tt.set})
			checkCode(t, err, tt.code, tt.msg)
			if err == nil {
				if diff := cmp.Diff(tt.want, n.GetLabels()); diff != "" {
					t.Errorf("labels (-want +got):\n%s", diff)
				}
			}
		})
	}

	n, err := c.RevokeNode(e.ctx[auth.RoleAdmin], &controllerv1.RevokeNodeRequest{Node: "n2", Reason: "decommissioned"})
	if err != nil {
		t.Fatal(err)
	}
	if n.GetState() != controllerv1.NodeRecord_STATE_REVOKED {
		t.Errorf("revoked node's state = %v", n.GetState())
	}
	if got, err := c.GetNode(ctx, &controllerv1.GetNodeRequest{Node: "n2"}); err != nil || got.GetState() != controllerv1.NodeRecord_STATE_REVOKED {
		t.Errorf("GetNode after revoke = %v, %v; want REVOKED", got, err)
	}
	if diff := cmp.Diff([]string{"n2"}, e.disp.take()); diff != "" {
		t.Errorf("notified (-want +got):\n%s", diff)
	}
	// Revoking again changes nothing and records nothing.
	if _, err := c.RevokeNode(e.ctx[auth.RoleAdmin], &controllerv1.RevokeNodeRequest{Node: "n2"}); err != nil {
		t.Fatal(err)
	}
	entries := e.checkLog(t, "node.label", "node.revoke")
	want := []map[string]string{
		{"set": "env=staging,tier=1", "removed": "role"},
		{"hostname": "web2", "reason": "decommissioned"},
	}
	got := []map[string]string{entries[0].GetDetails(), entries[1].GetDetails()}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit log details (-want +got):\n%s", diff)
	}
	if entries[1].GetActor() != "user:admin1" || entries[1].GetObject() != "node/n2" {
		t.Errorf("revoke entry actor %q object %q", entries[1].GetActor(), entries[1].GetObject())
	}
}

// TestNodesLastSeen: a node with a live session is seen now, whatever
// its stored last-seen time (written at most every 30 seconds); a node
// without one shows the time it was last heard from.
func TestNodesLastSeen(t *testing.T) {
	e := newEnv(t)
	old := now.Add(-4 * time.Minute).UTC().Format(time.RFC3339Nano)
	for _, id := range []string{"n1", "n2"} {
		authtest.AddNode(t, e.st, &controllerv1.NodeRecord{Id: id, Hostname: "web-" + id, State: controllerv1.NodeRecord_STATE_CONNECTED, LastSeen: old})
	}
	e.disp.mu.Lock()
	e.disp.live = map[string]bool{"n1": true}
	e.disp.mu.Unlock()
	c := controllerv1.NewNodesClient(e.conn)
	ctx := e.ctx[auth.RoleAuditor]
	resp, err := c.ListNodes(ctx, &controllerv1.ListNodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, n := range resp.GetNodes() {
		got[n.GetId()] = n.GetLastSeen()
	}
	if diff := cmp.Diff(map[string]string{"n1": stampNow, "n2": old}, got); diff != "" {
		t.Errorf("ListNodes last_seen (-want +got):\n%s", diff)
	}
	n, err := c.GetNode(ctx, &controllerv1.GetNodeRequest{Node: "web-n1"})
	if err != nil {
		t.Fatal(err)
	}
	if n.GetLastSeen() != stampNow {
		t.Errorf("GetNode last_seen %s, want %s", n.GetLastSeen(), stampNow)
	}
}
