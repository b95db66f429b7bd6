package api_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/controller/auth"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

func TestAudits(t *testing.T) {
	e := newEnv(t)
	e.addNode(t, "n1", "web1", map[string]string{"env": "prod"})
	e.addNode(t, "n2", "web2", map[string]string{"env": "prod"})
	e.addNode(t, "n3", "web3", map[string]string{"env": "dev"})
	if _, err := controllerv1.NewNodesClient(e.conn).RevokeNode(e.ctx[auth.RoleAdmin], &controllerv1.RevokeNodeRequest{Node: "n3"}); err != nil {
		t.Fatal(err)
	}
	e.disp.take()
	c := controllerv1.NewAuditsClient(e.conn)
	op := e.ctx[auth.RoleOperator]

	var ids []string
	for _, tt := range []struct {
		name  string
		req   *controllerv1.RunAuditRequest
		nodes []string
		code  codes.Code
		msg   string
	}{
		{name: "one node by hostname", req: &controllerv1.RunAuditRequest{Node: "web1", Collectors: []string{"packages"}, Track: []string{"/etc/hosts"}}, nodes: []string{"n1"}},
		{name: "selector", req: &controllerv1.RunAuditRequest{Selector: map[string]string{"env": "prod"}}, nodes: []string{"n1", "n2"}},
		{name: "revoked node", req: &controllerv1.RunAuditRequest{Node: "n3"}, code: codes.FailedPrecondition, msg: "node n3 is revoked"},
		{name: "selector matching only revoked nodes", req: &controllerv1.RunAuditRequest{Selector: map[string]string{"env": "dev"}}, code: codes.FailedPrecondition, msg: "every node matching selector env=dev is revoked"},
		{name: "selector matching nothing", req: &controllerv1.RunAuditRequest{Selector: map[string]string{"env": "qa"}}, code: codes.FailedPrecondition, msg: "no node matches selector env=qa"},
		{name: "no target", req: &controllerv1.RunAuditRequest{}, code: codes.InvalidArgument, msg: "node: name a node, or give a selector"},
		{name: "both targets", req: &controllerv1.RunAuditRequest{Node: "n1", Selector: map[string]string{"env": "prod"}}, code: codes.InvalidArgument, msg: "selector: give a node or a selector, not both"},
		{name: "unknown node", req: &controllerv1.RunAuditRequest{Node: "nope"}, code: codes.NotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := c.RunAudit(op, tt.req)
			checkCode(t, err, tt.code, tt.msg)
			if err != nil {
				if n := e.disp.take(); len(n) > 0 {
					t.Errorf("a failed RunAudit notified %v", n)
				}
				return
			}
			var got []string
			for _, cmd := range resp.GetCommands() {
				got = append(got, cmd.GetNodeId())
				ids = append(ids, cmd.GetId())
				want := &controllerv1.CommandRecord{
					Id: cmd.GetId(), NodeId: cmd.GetNodeId(), Kind: "audit", State: controllerv1.CommandRecord_STATE_PENDING,
					CreatedBy: "user:operator1", CreatedAt: stampNow, UpdatedAt: stampNow,
					Collectors: tt.req.GetCollectors(), Track: tt.req.GetTrack(),
				}
				stored, err := c.GetCommand(e.ctx[auth.RoleAuditor], &controllerv1.GetCommandRequest{Id: cmd.GetId()})
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, stored, protocmp.Transform()); diff != "" {
					t.Errorf("stored command (-want +got):\n%s", diff)
				}
			}
			if diff := cmp.Diff(tt.nodes, got); diff != "" {
				t.Errorf("commands for nodes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.nodes, e.disp.take()); diff != "" {
				t.Errorf("notified (-want +got):\n%s", diff)
			}
		})
	}
	if len(ids) != 3 || ids[0] == ids[1] || ids[1] == ids[2] {
		t.Errorf("command IDs %v, want 3 distinct", ids)
	}
	_, err := c.GetCommand(op, &controllerv1.GetCommandRequest{Id: "cmd_missing"})
	checkCode(t, err, codes.NotFound, "command cmd_missing")

	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	first := e.addAudit(t, "n1", "debian-a", "", t0)
	second := e.addAudit(t, "n1", "debian-b", "debian-a", t0.Add(time.Hour))
	list, err := c.ListAudits(e.ctx[auth.RoleAuditor], &controllerv1.ListAuditsRequest{Node: "web1"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]*controllerv1.AuditRecord{first, second}, list.GetAudits(), protocmp.Transform()); diff != "" {
		t.Errorf("ListAudits (-want +got):\n%s", diff)
	}
	got, err := c.GetAudit(e.ctx[auth.RoleAuditor], &controllerv1.GetAuditRequest{Id: second.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetAudit().GetHashes().GetDocument() != second.GetId() || got.GetRecord().GetBlob() != second.GetBlob() {
		t.Errorf("GetAudit returned document %s record %v, want %s", got.GetAudit().GetHashes().GetDocument(), got.GetRecord(), second.GetId())
	}
	_, err = c.GetAudit(e.ctx[auth.RoleAuditor], &controllerv1.GetAuditRequest{Id: "nope"})
	checkCode(t, err, codes.NotFound, "audit nope")

	entries := e.checkLog(t, "node.revoke", "audit.run", "audit.run")
	if d := entries[2].GetDetails(); d["nodes"] != "n1,n2" || entries[2].GetObject() != "selector/env=prod" {
		t.Errorf("audit.run entry: object %q details %v", entries[2].GetObject(), d)
	}
	if d := entries[1].GetDetails(); d["collectors"] != "packages" || d["track"] != "/etc/hosts" || entries[1].GetObject() != "node/n1" {
		t.Errorf("audit.run entry: object %q details %v", entries[1].GetObject(), d)
	}
}
