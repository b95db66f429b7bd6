package api_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/internal/diff"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

func TestCMS(t *testing.T) {
	e := newEnv(t)
	e.addNode(t, "n1", "web1", map[string]string{"role": "web"})
	e.addNode(t, "n2", "web2", map[string]string{"role": "web"})
	e.addNode(t, "n3", "db1", map[string]string{"role": "db"})
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	a1 := e.addAudit(t, "n1", "debian-a", "", t0)
	e.addAudit(t, "n2", "debian-a", "", t0.Add(time.Minute))
	c := controllerv1.NewCMSClient(e.conn)
	op := e.ctx[auth.RoleOperator]

	for _, tt := range []struct {
		name string
		req  *controllerv1.AcceptBaselineRequest
		want *controllerv1.BaselineRecord
		code codes.Code
		msg  string
	}{
		{name: "latest audit", req: &controllerv1.AcceptBaselineRequest{Node: "web1", Reason: "initial"},
			want: &controllerv1.BaselineRecord{NodeId: "n1", Version: 1, AuditId: a1.GetId(), AcceptedBy: "user:operator1", AcceptedAt: stampNow, Reason: "initial", ContentHash: a1.GetContentHash()}},
		{name: "named audit", req: &controllerv1.AcceptBaselineRequest{Node: "n1", AuditId: a1.GetId(), Reason: "again"},
			want: &controllerv1.BaselineRecord{NodeId: "n1", Version: 2, AuditId: a1.GetId(), AcceptedBy: "user:operator1", AcceptedAt: stampNow, Reason: "again", ContentHash: a1.GetContentHash()}},
		{name: "no reason", req: &controllerv1.AcceptBaselineRequest{Node: "n1"}, code: codes.InvalidArgument, msg: "reason"},
		{name: "another node's audit", req: &controllerv1.AcceptBaselineRequest{Node: "n2", AuditId: a1.GetId(), Reason: "x"}, code: codes.InvalidArgument, msg: "audit_id: audit " + a1.GetId() + " belongs to node n1, not n2"},
		{name: "unknown audit", req: &controllerv1.AcceptBaselineRequest{Node: "n2", AuditId: "nope", Reason: "x"}, code: codes.NotFound, msg: "audit nope"},
		{name: "node without audits", req: &controllerv1.AcceptBaselineRequest{Node: "n3", Reason: "x"}, code: codes.FailedPrecondition, msg: "node n3 has no audit yet"},
	} {
		t.Run("accept "+tt.name, func(t *testing.T) {
			got, err := c.AcceptBaseline(op, tt.req)
			checkCode(t, err, tt.code, tt.msg)
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); err == nil && diff != "" {
				t.Errorf("AcceptBaseline (-want +got):\n%s", diff)
			}
		})
	}
	hist, err := c.BaselineHistory(e.ctx[auth.RoleAuditor], &controllerv1.BaselineHistoryRequest{Node: "web1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(hist.GetBaselines()) != 2 || hist.GetBaselines()[0].GetReason() != "initial" || hist.GetBaselines()[1].GetVersion() != 2 {
		t.Errorf("BaselineHistory = %v, want versions 1 (initial) and 2", hist.GetBaselines())
	}

	// n1 changes: debian-b's software on the same host.
	a2 := e.addAudit(t, "n1", "debian-b", "debian-a", t0.Add(time.Hour))
	if _, err := controllerv1.NewServicesClient(e.conn).CreateService(op, &controllerv1.CreateServiceRequest{Name: "web", Selector: map[string]string{"role": "web"}}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		req  *controllerv1.DriftRequest
		want *controllerv1.DriftResponse
		code codes.Code
		msg  string
	}{
		{name: "service", req: &controllerv1.DriftRequest{Service: "web"}, want: &controllerv1.DriftResponse{
			Nodes: []*controllerv1.NodeDrift{
				{NodeId: "n1", Hostname: "web1", HasBaseline: true, BaselineAuditId: a1.GetId(), LatestAuditId: a2.GetId(), Changes: 3},
				{NodeId: "n2", Hostname: "web2"},
			},
			NodesDrifted: 1, NodesWithoutBaseline: 1, TotalChanges: 3,
		}},
		{name: "selector", req: &controllerv1.DriftRequest{Selector: map[string]string{"role": "db"}}, want: &controllerv1.DriftResponse{
			Nodes:                []*controllerv1.NodeDrift{{NodeId: "n3", Hostname: "db1"}},
			NodesWithoutBaseline: 1,
		}},
		{name: "unknown service", req: &controllerv1.DriftRequest{Service: "nope"}, code: codes.NotFound, msg: "service nope"},
		{name: "both", req: &controllerv1.DriftRequest{Service: "web", Selector: map[string]string{"a": "b"}}, code: codes.InvalidArgument, msg: "selector"},
	} {
		t.Run("drift "+tt.name, func(t *testing.T) {
			got, err := c.Drift(e.ctx[auth.RoleAuditor], tt.req)
			checkCode(t, err, tt.code, tt.msg)
			if err != nil {
				return
			}
			for _, d := range got.GetNodes() {
				if d.GetHasBaseline() {
					var r diff.Report
					if err := json.Unmarshal(d.GetReportJson(), &r); err != nil {
						t.Errorf("node %s report_json: %v", d.GetNodeId(), err)
					}
					if d.GetSummary() != r.Summary || d.GetSummary() == "" {
						t.Errorf("node %s summary %q, report's %q", d.GetNodeId(), d.GetSummary(), r.Summary)
					}
				}
				d.ReportJson, d.Summary = nil, ""
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("Drift (-want +got):\n%s", diff)
			}
		})
	}

	exp, err := c.Export(e.ctx[auth.RoleAuditor], &controllerv1.ExportRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(exp.GetNodes()) != 3 || len(exp.GetServices()) != 1 || len(exp.GetBaselines()) != 2 {
		t.Errorf("Export: %d nodes, %d services, %d baselines; want 3, 1, 2", len(exp.GetNodes()), len(exp.GetServices()), len(exp.GetBaselines()))
	}

	imp, err := c.Import(e.ctx[auth.RoleAdmin], &controllerv1.ImportRequest{
		Nodes: []*controllerv1.NodeRecord{
			{Id: "n1", Labels: map[string]string{"role": "web", "tier": "front"}},
			{Id: "n2", Labels: map[string]string{"role": "web"}}, // unchanged
			{Id: "n9", Labels: map[string]string{"role": "web"}},
		},
		Services: []*controllerv1.ServiceRecord{
			{Name: "web", Selector: map[string]string{"role": "web"}},
			{Name: "db", Selector: map[string]string{"role": "db"}, Description: "databases"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &controllerv1.ImportResponse{NodesUpdated: 1, ServicesCreated: 1, Skipped: []string{"node n9: not enrolled", "service web: exists"}}
	if diff := cmp.Diff(want, imp, protocmp.Transform()); diff != "" {
		t.Errorf("Import (-want +got):\n%s", diff)
	}
	_, err = c.Import(e.ctx[auth.RoleAdmin], &controllerv1.ImportRequest{Services: []*controllerv1.ServiceRecord{{Name: "Bad Name", Selector: map[string]string{"a": "b"}}}})
	checkCode(t, err, codes.InvalidArgument, "services[0].name")
	n, err := controllerv1.NewNodesClient(e.conn).GetNode(op, &controllerv1.GetNodeRequest{Node: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"role": "web", "tier": "front"}, n.GetLabels()); diff != "" {
		t.Errorf("imported labels (-want +got):\n%s", diff)
	}
	e.checkLog(t, "baseline.accept", "baseline.accept", "service.create", "cms.import")
}
