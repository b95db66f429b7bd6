package fleet_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/controller/fleet"
	"github.com/cairn-ops/cairn/controller/store"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// recorder is an Events receiver that writes down what it is told.
type recorder struct {
	mu     sync.Mutex
	events []string
}

var _ fleet.Events = (*recorder)(nil)

func (r *recorder) add(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) CommandFinished(nodeID, commandID string) {
	r.add("finished " + nodeID + " " + commandID)
}

func (r *recorder) ConfirmationRequested(nodeID, commandID, step, instructions string) {
	r.add("confirm? " + nodeID + " " + commandID + " " + step + ": " + instructions)
}

func (r *recorder) Connection(nodeID string, connected bool) {
	if connected {
		r.add("connected " + nodeID)
	} else {
		r.add("disconnected " + nodeID)
	}
}

func (r *recorder) DeploymentInterrupted(nodeID, commandID, step string) {
	r.add("interrupted " + nodeID + " " + commandID + " " + step)
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

// newEventsHarness is a harness whose fleet reports to a recorder.
func newEventsHarness(t *testing.T) (*harness, *recorder) {
	t.Helper()
	rec := &recorder{}
	return newHarness(t, 0, func(f *fleet.Fleet) { f.SetEvents(rec) }), rec
}

// putDeploy stores a pending deploy command for nodeID.
func (h *harness) putDeploy(nodeID, id string, d *agentv1.DeployCommand) {
	h.t.Helper()
	h.clock.Add(time.Second)
	err := h.st.Update(context.Background(), func(tx store.Tx) error {
		return tx.PutCommand(&controllerv1.CommandRecord{
			Id: id, NodeId: nodeID, Kind: "deploy", State: controllerv1.CommandRecord_STATE_PENDING,
			CreatedBy: "rollout:r-1", CreatedAt: h.clock.Now().UTC().Format("2006-01-02T15:04:05.000000000Z"),
			RolloutId: d.GetRolloutId(), Deploy: d,
		})
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

// setCommandState moves a stored command to state.
func (h *harness) setCommandState(id string, state controllerv1.CommandRecord_State) {
	h.t.Helper()
	err := h.st.Update(context.Background(), func(tx store.Tx) error {
		c, err := tx.Command(id)
		if err != nil {
			return err
		}
		c.State = state
		return tx.PutCommand(c)
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

// recv returns the next message on s, failing the test after 5 s.
func recv(t *testing.T, s session) *agentv1.ControllerMessage {
	t.Helper()
	type got struct {
		m   *agentv1.ControllerMessage
		err error
	}
	ch := make(chan got, 1)
	go func() {
		m, err := s.Recv()
		ch <- got{m, err}
	}()
	select {
	case g := <-ch:
		if g.err != nil {
			t.Fatalf("receive: %v", g.err)
		}
		return g.m
	case <-time.After(5 * time.Second):
		t.Fatal("nothing received within 5 s")
		return nil
	}
}

func sendMsg(t *testing.T, s session, m *agentv1.AgentMessage) {
	t.Helper()
	if err := s.Send(m); err != nil {
		t.Fatal(err)
	}
}

func deployOf(digests ...string) *agentv1.DeployCommand {
	d := &agentv1.DeployCommand{
		RolloutId:    "r-1",
		Action:       "apply",
		ManifestYaml: []byte("apiVersion: cairn/v1\nkind: Release\nname: shop\nversion: 1.0.0\n"),
		ManifestFile: "release.yaml",
		BundleJson:   []byte(`{"name":"shop"}`),
	}
	for i, dg := range digests {
		d.Artifacts = append(d.Artifacts, &agentv1.ArtifactRef{Component: "c" + string(rune('0'+i)), Digest: dg, SizeBytes: 1})
	}
	return d
}

func TestDeployCommandDeliveredAndResultStored(t *testing.T) {
	h, events := newEventsHarness(t)
	id, cert := h.enroll("web1")
	want := deployOf(strings.Repeat("a", 64))
	h.putDeploy(id, "cmd_deploy", want)
	h.putCommand(id, "cmd_audit")
	s := h.connect(context.Background(), cert)

	c := recv(t, s).GetCommand()
	if c.GetId() != "cmd_deploy" {
		t.Fatalf("first command %v, want cmd_deploy", c)
	}
	if diff := cmp.Diff(want, c.GetDeploy(), protocmp.Transform()); diff != "" {
		t.Errorf("deploy command as delivered (-want +got):\n%s", diff)
	}
	if got := recv(t, s).GetCommand().GetId(); got != "cmd_audit" {
		t.Fatalf("second command %s, want cmd_audit", got)
	}

	report := &agentv1.ApplyReport{State: agentv1.StateFailed, Steps: []*agentv1.StepResult{{List: "steps", Name: "a", Outcome: agentv1.OutcomeFailed, Error: "boom"}}}
	results := []*agentv1.CommandResult{
		{CommandId: "cmd_deploy", Ok: false, Error: "step steps/a failed: boom", Report: &agentv1.CommandResult_ApplyReport{ApplyReport: report}},
		{CommandId: "cmd_audit", Ok: true, AuditId: "audit-1"},
		// The deploy result again (its ResultAck was lost): stored once,
		// reported again.
		{CommandId: "cmd_deploy", Ok: true, Report: &agentv1.CommandResult_ApplyReport{ApplyReport: &agentv1.ApplyReport{State: agentv1.StateSucceeded}}},
	}
	for _, r := range results {
		sendMsg(t, s, &agentv1.AgentMessage{Msg: &agentv1.AgentMessage_Result{Result: r}})
		if got := recv(t, s).GetResultAck().GetCommandId(); got != r.GetCommandId() {
			t.Fatalf("ResultAck for %q, want %q", got, r.GetCommandId())
		}
	}
	got := h.command("cmd_deploy")
	if got.GetState() != controllerv1.CommandRecord_STATE_FAILED || got.GetError() != "step steps/a failed: boom" || !proto.Equal(got.GetApplyReport(), report) {
		t.Errorf("stored deploy command: state %v, error %q, report %v; want the first result", got.GetState(), got.GetError(), got.GetApplyReport())
	}
	if got := h.command("cmd_audit").GetAuditId(); got != "audit-1" {
		t.Errorf("audit command's audit ID %q", got)
	}

	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != io.EOF {
		t.Fatalf("after CloseSend: %v", err)
	}
	eventually(t, "the disconnect event", func() bool { return len(events.get()) == 5 })
	wantEvents := []string{
		"connected " + id,
		"finished " + id + " cmd_deploy",
		"finished " + id + " cmd_audit",
		"finished " + id + " cmd_deploy",
		"disconnected " + id,
	}
	if diff := cmp.Diff(wantEvents, events.get()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestDeployCommandWithoutInstructionsFails(t *testing.T) {
	h, events := newEventsHarness(t)
	id, cert := h.enroll("web1")
	h.putDeploy(id, "cmd_empty", nil)
	h.putCommand(id, "cmd_audit")
	s := h.connect(context.Background(), cert)
	if got := recv(t, s).GetCommand().GetId(); got != "cmd_audit" {
		t.Fatalf("got %s, want only cmd_audit delivered", got)
	}
	c := h.command("cmd_empty")
	if c.GetState() != controllerv1.CommandRecord_STATE_FAILED || !strings.Contains(c.GetError(), "without its deploy instructions") {
		t.Errorf("undeliverable command: %v %q", c.GetState(), c.GetError())
	}
	if diff := cmp.Diff([]string{"connected " + id, "finished " + id + " cmd_empty"}, events.get()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestReplacedSessionReportsNoDisconnect(t *testing.T) {
	h, events := newEventsHarness(t)
	id, cert := h.enroll("web1")
	old := h.connect(context.Background(), cert)
	eventually(t, "first session", func() bool { return h.fleet.IsConnected(id) })
	ctx, cancel := context.WithCancel(context.Background())
	h.connect(ctx, cert)
	if _, err := old.Recv(); codeOf(err) != codes.Unavailable {
		t.Fatalf("old session: %v", err)
	}
	eventually(t, "second connect event", func() bool { return len(events.get()) == 2 })
	cancel()
	eventually(t, "disconnect event", func() bool { return len(events.get()) == 3 })
	if diff := cmp.Diff([]string{"connected " + id, "connected " + id, "disconnected " + id}, events.get()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if h.fleet.IsConnected(id) {
		t.Error("IsConnected after the last session ended")
	}
}

// fetch reads a whole FetchArtifact stream: the chunks' data and sizes.
func fetch(c agentv1.AgentClient, digest string, offset int64) (data []byte, sizes []int64, chunks []int, err error) {
	s, err := c.FetchArtifact(context.Background(), &agentv1.FetchArtifactRequest{Digest: digest, Offset: offset})
	if err != nil {
		return nil, nil, nil, err
	}
	for {
		ch, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return data, sizes, chunks, nil
		}
		if err != nil {
			return data, sizes, chunks, err
		}
		data = append(data, ch.GetData()...)
		sizes = append(sizes, ch.GetSizeBytes())
		chunks = append(chunks, len(ch.GetData()))
	}
}

func TestFetchArtifact(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789abcdef"), (5<<20)/32) // 2.5 MiB
	const mib = 1 << 20
	tests := []struct {
		name       string
		setup      func(h *harness, node, other, digest string)
		asOther    bool // fetch as the other node
		digest     string
		offset     int64
		wantCode   codes.Code
		wantMsg    string
		wantFrom   int64
		wantChunks []int
	}{
		{name: "whole artifact in chunks", setup: func(h *harness, node, _, d string) { h.putDeploy(node, "cmd_1", deployOf(d)) },
			wantChunks: []int{mib, mib, mib / 2}},
		{name: "resumed from an offset", setup: func(h *harness, node, _, d string) { h.putDeploy(node, "cmd_1", deployOf(d)) },
			offset: 3 * mib / 2, wantFrom: 3 * mib / 2, wantChunks: []int{mib}},
		{name: "offset at the end", setup: func(h *harness, node, _, d string) { h.putDeploy(node, "cmd_1", deployOf(d)) },
			offset: int64(len(content)), wantFrom: int64(len(content)), wantChunks: []int{0}},
		{name: "acknowledged command", setup: func(h *harness, node, _, d string) {
			h.putDeploy(node, "cmd_1", deployOf(strings.Repeat("b", 64), d))
			h.setCommandState("cmd_1", controllerv1.CommandRecord_STATE_ACKNOWLEDGED)
		}, wantChunks: []int{mib, mib, mib / 2}},
		{name: "offset beyond the end", setup: func(h *harness, node, _, d string) { h.putDeploy(node, "cmd_1", deployOf(d)) },
			offset: int64(len(content)) + 1, wantCode: codes.OutOfRange, wantMsg: "beyond the end"},
		{name: "no deploy command", setup: func(h *harness, node, _, _ string) { h.putCommand(node, "cmd_audit") },
			wantCode: codes.PermissionDenied, wantMsg: "has no unfinished deploy command that lists artifact"},
		{name: "deploy command for other artifacts", setup: func(h *harness, node, _, _ string) {
			h.putDeploy(node, "cmd_1", deployOf(strings.Repeat("b", 64)))
		}, wantCode: codes.PermissionDenied, wantMsg: "has no unfinished deploy command"},
		{name: "finished deploy command", setup: func(h *harness, node, _, d string) {
			h.putDeploy(node, "cmd_1", deployOf(d))
			h.setCommandState("cmd_1", controllerv1.CommandRecord_STATE_SUCCEEDED)
		}, wantCode: codes.PermissionDenied, wantMsg: "has no unfinished deploy command"},
		{name: "another node's deploy command", setup: func(h *harness, node, _, d string) { h.putDeploy(node, "cmd_1", deployOf(d)) },
			asOther: true, wantCode: codes.PermissionDenied, wantMsg: "has no unfinished deploy command"},
		{name: "bad digest", setup: func(*harness, string, string, string) {}, digest: "ABC",
			wantCode: codes.InvalidArgument, wantMsg: `digest "ABC" is not a sha256 digest`},
		{name: "negative offset", setup: func(h *harness, node, _, d string) { h.putDeploy(node, "cmd_1", deployOf(d)) },
			offset: -1, wantCode: codes.InvalidArgument, wantMsg: "negative"},
		{name: "listed but not in the DML", setup: func(h *harness, node, _, _ string) {
			h.putDeploy(node, "cmd_1", deployOf(strings.Repeat("c", 64)))
		}, digest: strings.Repeat("c", 64), wantCode: codes.NotFound, wantMsg: "is not in the DML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 0)
			digest, _, err := h.blobs.Put(context.Background(), bytes.NewReader(content), 0)
			if err != nil {
				t.Fatal(err)
			}
			node, cert := h.enroll("web1")
			other, otherCert := h.enroll("web2")
			tt.setup(h, node, other, digest)
			if tt.digest != "" {
				digest = tt.digest
			}
			caller := cert
			if tt.asOther {
				caller = otherCert
			}
			data, sizes, chunks, err := fetch(agentv1.NewAgentClient(h.dial(caller)), digest, tt.offset)
			if got := codeOf(err); got != tt.wantCode {
				t.Fatalf("FetchArtifact: %v, want code %v", err, tt.wantCode)
			}
			if err != nil {
				if !strings.Contains(status.Convert(err).Message(), tt.wantMsg) {
					t.Errorf("message %q, want it to contain %q", status.Convert(err).Message(), tt.wantMsg)
				}
				if len(data) != 0 {
					t.Errorf("%d bytes sent with a refusal", len(data))
				}
				return
			}
			if diff := cmp.Diff(tt.wantChunks, chunks); diff != "" {
				t.Errorf("chunk sizes (-want +got):\n%s", diff)
			}
			wantSizes := make([]int64, len(tt.wantChunks))
			wantSizes[0] = int64(len(content))
			if diff := cmp.Diff(wantSizes, sizes); diff != "" {
				t.Errorf("size_bytes per chunk (-want +got):\n%s", diff)
			}
			if !bytes.Equal(data, content[tt.wantFrom:]) {
				t.Errorf("got %d bytes, want the %d bytes from offset %d", len(data), len(content)-int(tt.wantFrom), tt.wantFrom)
			}
		})
	}
}

func TestFetchArtifactNeedsANodeCertificate(t *testing.T) {
	h := newHarness(t, 0)
	_, _, _, err := fetch(agentv1.NewAgentClient(h.dial(nil)), strings.Repeat("a", 64), 0)
	if codeOf(err) != codes.Unauthenticated {
		t.Errorf("FetchArtifact without a certificate: %v, want Unauthenticated", err)
	}
}

// TestDeployReportsOfOlderAgents: a deploy command's report from an agent
// before the typed reports (JSON in report_json) is stored as the typed
// report its action calls for; JSON that is not that report, or a report
// of the wrong kind, fails the command with an error that says why, and
// nothing of it is stored.
func TestDeployReportsOfOlderAgents(t *testing.T) {
	applyReport := &agentv1.ApplyReport{State: agentv1.StateSucceeded, Duration: 2e9, Steps: []*agentv1.StepResult{
		{List: "steps", Name: "a", Plugin: "exec", Outcome: agentv1.OutcomeChanged, Duration: 1e9}}}
	planReport := &agentv1.PlanReport{Release: "shop@1.0.0", Steps: []*agentv1.StepPlan{{List: "steps", Name: "a", WouldChange: true, Line: 3}}}
	tests := []struct {
		name, action string
		result       *agentv1.CommandResult
		wantState    controllerv1.CommandRecord_State
		wantError    string
		wantReport   proto.Message
	}{
		{"apply, JSON", agentv1.ActionApply,
			&agentv1.CommandResult{Ok: true, ReportJson: []byte(`{"state":"succeeded","duration":2000000000,"steps":[{"list":"steps","name":"a","plugin":"exec","outcome":"changed","duration":1000000000}]}`)},
			controllerv1.CommandRecord_STATE_SUCCEEDED, "", applyReport},
		{"plan, JSON", agentv1.ActionPlan,
			&agentv1.CommandResult{Ok: true, ReportJson: []byte(`{"release":"shop@1.0.0","steps":[{"list":"steps","name":"a","line":3,"would_change":true}]}`)},
			controllerv1.CommandRecord_STATE_SUCCEEDED, "", planReport},
		{"JSON that is no report", agentv1.ActionApply,
			&agentv1.CommandResult{Ok: true, ReportJson: []byte(`{"state":"succeeded","stepz":[]}`)},
			controllerv1.CommandRecord_STATE_FAILED, `the agent sent its report as JSON (report_json: an agent older than this controller), and it cannot be read: not a report as agents sent them in JSON: the ApplyReport: `, nil},
		{"not JSON", agentv1.ActionRollback,
			&agentv1.CommandResult{Ok: false, Error: "boom", ReportJson: []byte(`garbage`)},
			controllerv1.CommandRecord_STATE_FAILED, "boom; the agent sent its report as JSON (report_json: an agent older than this controller), and it cannot be read: not a report as agents sent them in JSON: the ApplyReport is not a JSON object; upgrade the agent", nil},
		{"a plan's report for an apply", agentv1.ActionApply,
			&agentv1.CommandResult{Ok: true, Report: &agentv1.CommandResult_PlanReport{PlanReport: planReport}},
			controllerv1.CommandRecord_STATE_FAILED, "the agent answered deploy command cmd (apply) with a dry run's report", nil},
		{"a deployment's report for a plan", agentv1.ActionPlan,
			&agentv1.CommandResult{Ok: true, Report: &agentv1.CommandResult_ApplyReport{ApplyReport: applyReport}},
			controllerv1.CommandRecord_STATE_FAILED, "the agent answered deploy command cmd (plan) with a deployment report", nil},
		{"a report for an audit", "", // an audit command
			&agentv1.CommandResult{Ok: true, AuditId: "", ReportJson: []byte(`{"state":"succeeded"}`)},
			controllerv1.CommandRecord_STATE_FAILED, "the agent answered audit command cmd with a report (report_json)", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 0)
			id, cert := h.enroll("web1")
			if tc.action == "" {
				h.putCommand(id, "cmd")
			} else {
				d := deployOf()
				d.Action = tc.action
				h.putDeploy(id, "cmd", d)
			}
			s := h.connect(context.Background(), cert)
			recv(t, s) // the command
			tc.result.CommandId = "cmd"
			sendMsg(t, s, &agentv1.AgentMessage{Msg: &agentv1.AgentMessage_Result{Result: tc.result}})
			if got := recv(t, s).GetResultAck().GetCommandId(); got != "cmd" {
				t.Fatalf("ResultAck for %q", got)
			}
			c := h.command("cmd")
			if c.GetState() != tc.wantState || !strings.HasPrefix(c.GetError(), tc.wantError) {
				t.Errorf("state %v, error %q; want %v, %q", c.GetState(), c.GetError(), tc.wantState, tc.wantError)
			}
			var got proto.Message
			switch r := c.GetReport().(type) {
			case *controllerv1.CommandRecord_ApplyReport:
				got = r.ApplyReport
			case *controllerv1.CommandRecord_PlanReport:
				got = r.PlanReport
			}
			if diff := cmp.Diff(tc.wantReport, got, protocmp.Transform()); diff != "" || len(c.GetResultJson()) > 0 {
				t.Errorf("stored report (-want +got):\n%s\nresult_json %q", diff, c.GetResultJson())
			}
		})
	}
}

// TestOutboxItemsOfOlderAgents: outbox items from an agent before the
// typed reports are stored with the report their JSON payload holds; a
// payload that is no report of its kind (a step_result held the agent's
// journal record of the step) is kept as it came.
func TestOutboxItemsOfOlderAgents(t *testing.T) {
	h := newHarness(t, 0)
	id, cert := h.enroll("web1")
	s := h.connect(context.Background(), cert)
	stepJSON := []byte(`{"deployment_id":"dep1","list":"steps","index":0,"name":"a","state":"succeeded","changed":true}`)
	items := []*agentv1.OutboxItem{
		{Id: "dep1/steps/a/1", Kind: "step_result", DeploymentId: "dep1", Payload: stepJSON},
		{Id: "dep1/deployment/1", Kind: "deployment_result", DeploymentId: "dep1", Payload: []byte(`{"deployment_id":"dep1","state":"rolled-back","steps":null,"duration":5}`)},
		{Id: "dep1/deployment/2", Kind: "deployment_result", DeploymentId: "dep1", Payload: []byte(`{"state":`)},
	}
	for _, it := range items {
		sendMsg(t, s, &agentv1.AgentMessage{Msg: &agentv1.AgentMessage_Outbox{Outbox: it}})
		if got := recv(t, s).GetOutboxAck().GetId(); got != it.GetId() {
			t.Fatalf("ack %q, want %q", got, it.GetId())
		}
	}
	var stored []*controllerv1.AgentEventRecord
	err := h.st.View(context.Background(), func(tx store.Tx) error {
		var err error
		stored, err = tx.AgentEvents(id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	at := h.clock.Now().UTC().Format("2006-01-02T15:04:05.000000000Z")
	want := []*controllerv1.AgentEventRecord{
		{NodeId: id, Id: "dep1/deployment/1", Kind: "deployment_result", DeploymentId: "dep1", ReceivedAt: at, Report: &controllerv1.AgentEventRecord_DeploymentResult{
			DeploymentResult: &agentv1.ApplyReport{DeploymentId: "dep1", State: agentv1.StateRolledBack, Duration: 5}}},
		{NodeId: id, Id: "dep1/deployment/2", Kind: "deployment_result", DeploymentId: "dep1", ReceivedAt: at, Payload: []byte(`{"state":`)},
		{NodeId: id, Id: "dep1/steps/a/1", Kind: "step_result", DeploymentId: "dep1", ReceivedAt: at, Payload: stepJSON},
	}
	if diff := cmp.Diff(want, stored, protocmp.Transform()); diff != "" {
		t.Errorf("stored agent events (-want +got):\n%s", diff)
	}
}

func TestOutboxItemsStoredOnceAndAcked(t *testing.T) {
	h := newHarness(t, 0)
	id, cert := h.enroll("web1")
	other, otherCert := h.enroll("web2")
	s := h.connect(context.Background(), cert)
	step := func(outcome string) *agentv1.OutboxItem_StepResult {
		return &agentv1.OutboxItem_StepResult{StepResult: &agentv1.StepResult{List: "steps", Name: "a", Outcome: outcome}}
	}
	result := &agentv1.OutboxItem_DeploymentResult{DeploymentResult: &agentv1.ApplyReport{State: agentv1.StateSucceeded}}
	items := []*agentv1.OutboxItem{
		{Id: "dep1/steps/a/1", Kind: "step_result", DeploymentId: "dep1", Report: step(agentv1.OutcomeChanged)},
		{Id: "dep1/steps/a/1", Kind: "step_result", DeploymentId: "dep1", Report: step("changed later")},
		{Id: "dep1/deployment/7", Kind: "deployment_result", DeploymentId: "dep1", Report: result},
	}
	var acks []string
	for _, it := range items {
		sendMsg(t, s, &agentv1.AgentMessage{Msg: &agentv1.AgentMessage_Outbox{Outbox: it}})
		acks = append(acks, recv(t, s).GetOutboxAck().GetId())
	}
	if diff := cmp.Diff([]string{"dep1/steps/a/1", "dep1/steps/a/1", "dep1/deployment/7"}, acks); diff != "" {
		t.Errorf("acks (-want +got):\n%s", diff)
	}
	// Another node's item with the same ID is its own.
	s2 := h.connect(context.Background(), otherCert)
	sendMsg(t, s2, &agentv1.AgentMessage{Msg: &agentv1.AgentMessage_Outbox{Outbox: items[0]}})
	if got := recv(t, s2).GetOutboxAck().GetId(); got != items[0].GetId() {
		t.Errorf("other node's ack %q", got)
	}

	stored := map[string][]*controllerv1.AgentEventRecord{}
	err := h.st.View(context.Background(), func(tx store.Tx) error {
		for _, n := range []string{id, other} {
			evs, err := tx.AgentEvents(n)
			if err != nil {
				return err
			}
			stored[n] = evs
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	at := h.clock.Now().UTC().Format("2006-01-02T15:04:05.000000000Z")
	stepRec := &controllerv1.AgentEventRecord_StepResult{StepResult: step(agentv1.OutcomeChanged).StepResult}
	want := map[string][]*controllerv1.AgentEventRecord{
		id: {
			{NodeId: id, Id: "dep1/deployment/7", Kind: "deployment_result", DeploymentId: "dep1", ReceivedAt: at,
				Report: &controllerv1.AgentEventRecord_DeploymentResult{DeploymentResult: result.DeploymentResult}},
			{NodeId: id, Id: "dep1/steps/a/1", Kind: "step_result", DeploymentId: "dep1", ReceivedAt: at, Report: stepRec},
		},
		other: {
			{NodeId: other, Id: "dep1/steps/a/1", Kind: "step_result", DeploymentId: "dep1", ReceivedAt: at, Report: stepRec},
		},
	}
	if diff := cmp.Diff(want, stored, protocmp.Transform()); diff != "" {
		t.Errorf("stored agent events (-want +got):\n%s", diff)
	}

	sendMsg(t, s, &agentv1.AgentMessage{Msg: &agentv1.AgentMessage_Outbox{Outbox: &agentv1.OutboxItem{Kind: "step_result"}}})
	if _, err := s.Recv(); codeOf(err) != codes.InvalidArgument {
		t.Errorf("an item without an ID: %v, want InvalidArgument", err)
	}
}

// TestDeploymentInterruptedReported: an agent's deployment_interrupted
// outbox item is stored and, the first time only, reported to the events
// receiver when it names one of the node's own deploy commands and a
// step LIST/NAME; anything else is stored and acknowledged, not reported.
func TestDeploymentInterruptedReported(t *testing.T) {
	h, events := newEventsHarness(t)
	id, cert := h.enroll("web1")
	other, _ := h.enroll("web2")
	h.putDeploy(id, "cmd_1", deployOf())
	h.putDeploy(other, "cmd_other", deployOf())
	h.putCommand(id, "cmd_audit")
	s := h.connect(context.Background(), cert)
	for range 2 {
		recv(t, s) // cmd_1 and cmd_audit, delivered on connect
	}
	interrupted := func(command, step string) *agentv1.OutboxItem_Interruption {
		return &agentv1.OutboxItem_Interruption{Interruption: &agentv1.Interruption{
			CommandId: command, DeploymentId: "dep1", Release: "shop@1.0.0", Step: step, Plugin: "exec", State: agentv1.StateInterrupted,
		}}
	}
	// legacy is the payload an agent before the typed reports sent.
	legacy := func(command, step string) []byte {
		return []byte(`{"command_id":"` + command + `","deployment_id":"dep1","release":"shop@1.0.0","step":"` + step + `","plugin":"exec","idempotent":false,"state":"interrupted"}`)
	}
	items := []*agentv1.OutboxItem{
		{Id: "dep1/interrupted/steps/migrate/1", Kind: "deployment_interrupted", DeploymentId: "dep1", Report: interrupted("cmd_1", "steps/migrate")},
		{Id: "dep1/interrupted/steps/migrate/1", Kind: "deployment_interrupted", DeploymentId: "dep1", Report: interrupted("cmd_1", "steps/migrate")}, // resent
		{Id: "dep1/interrupted/steps/migrate/2", Kind: "deployment_interrupted", DeploymentId: "dep1", Report: interrupted("cmd_1", "steps/migrate")}, // again after a retry
		{Id: "dep1/interrupted/verify/page/1", Kind: "deployment_interrupted", DeploymentId: "dep1", Payload: legacy("cmd_1", "verify/page")},         // from an older agent
		{Id: "x/1", Kind: "deployment_interrupted", Report: interrupted("cmd_other", "steps/migrate")},
		{Id: "x/2", Kind: "deployment_interrupted", Report: interrupted("cmd_audit", "steps/migrate")},
		{Id: "x/3", Kind: "deployment_interrupted", Report: interrupted("cmd_unknown", "steps/migrate")},
		{Id: "x/4", Kind: "deployment_interrupted", Report: interrupted("cmd_1", "migrate")},
		{Id: "x/5", Kind: "deployment_interrupted", Report: interrupted("", "steps/migrate")},
		{Id: "x/6", Kind: "deployment_interrupted", Payload: []byte(`nope`)},
		{Id: "x/7", Kind: "deployment_interrupted"},
		{Id: "x/8", Kind: "step_result", Payload: legacy("cmd_1", "steps/migrate")},
		{Id: "x/9", Kind: "step_result", Report: interrupted("cmd_1", "steps/migrate")},
	}
	for _, it := range items {
		sendMsg(t, s, &agentv1.AgentMessage{Msg: &agentv1.AgentMessage_Outbox{Outbox: it}})
		if got := recv(t, s).GetOutboxAck().GetId(); got != it.GetId() {
			t.Fatalf("ack %q, want %q", got, it.GetId())
		}
	}
	want := []string{"connected " + id, "interrupted " + id + " cmd_1 steps/migrate", "interrupted " + id + " cmd_1 steps/migrate", "interrupted " + id + " cmd_1 verify/page"}
	if diff := cmp.Diff(want, events.get()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	err := h.st.View(context.Background(), func(tx store.Tx) error {
		evs, err := tx.AgentEvents(id)
		if len(evs) != len(items)-1 {
			t.Errorf("%d agent events stored, want %d", len(evs), len(items)-1)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestConfirmRoutedToLiveSession(t *testing.T) {
	h, events := newEventsHarness(t)
	id, cert := h.enroll("web1")
	other, _ := h.enroll("web2")
	h.putDeploy(id, "cmd_1", deployOf())
	h.putDeploy(other, "cmd_other", deployOf())
	c := &agentv1.Confirmation{CommandId: "cmd_1", Step: "rack", By: "alice", Note: "disk fitted", At: "2026-11-26T12:05:00Z"}
	if h.fleet.Confirm(id, c) {
		t.Fatal("Confirm reported true for a node without a session")
	}

	s := h.connect(context.Background(), cert)
	if got := recv(t, s).GetCommand().GetId(); got != "cmd_1" {
		t.Fatalf("command %s", got)
	}
	ask := func(cmd string) {
		sendMsg(t, s, &agentv1.AgentMessage{Msg: &agentv1.AgentMessage_ConfirmationRequest{ConfirmationRequest: &agentv1.ConfirmationRequest{
			CommandId: cmd, Step: "rack", Instructions: "fit the disk in bay 3",
		}}})
	}
	ask("cmd_other") // not this node's: ignored
	ask("cmd_unknown")
	ask("cmd_1")
	eventually(t, "the confirmation request", func() bool { return len(events.get()) == 2 })
	if diff := cmp.Diff([]string{"connected " + id, "confirm? " + id + " cmd_1 rack: fit the disk in bay 3"}, events.get()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	if !h.fleet.Confirm(id, c) {
		t.Fatal("Confirm reported false for a connected node")
	}
	if diff := cmp.Diff(c, recv(t, s).GetConfirmation(), protocmp.Transform()); diff != "" {
		t.Errorf("confirmation as received (-want +got):\n%s", diff)
	}
	if h.fleet.Confirm(other, c) {
		t.Error("Confirm reported true for another node without a session")
	}
}

func TestResultCannotClaimAnotherNodesAudit(t *testing.T) {
	h := newHarness(t, 0)
	id, cert := h.enroll("web1")
	other, otherCert := h.enroll("web2")
	h.putCommand(id, "cmd_a1")
	h.putCommand(other, "cmd_b1")
	a, doc := sealedAudit(t)
	if _, err := upload(t, agentv1.NewAgentClient(h.dial(cert)), "cmd_a1", doc, 1000); err != nil {
		t.Fatal(err)
	}
	auditID := a.GetHashes().GetDocument()

	report := func(s session, cmd string) {
		t.Helper()
		sendMsg(t, s, &agentv1.AgentMessage{Msg: &agentv1.AgentMessage_Result{Result: &agentv1.CommandResult{CommandId: cmd, Ok: true, AuditId: auditID}}})
		for {
			m := recv(t, s)
			if m.GetResultAck() != nil {
				if got := m.GetResultAck().GetCommandId(); got != cmd {
					t.Fatalf("ResultAck for %s, want %s", got, cmd)
				}
				return
			}
		}
	}
	// web2 names web1's audit as the result of its own audit command.
	report(h.connect(context.Background(), otherCert), "cmd_b1")
	report(h.connect(context.Background(), cert), "cmd_a1")

	type outcome struct {
		State   string
		AuditID string
		Refused bool
	}
	got := map[string]outcome{}
	for _, c := range []string{"cmd_a1", "cmd_b1"} {
		r := h.command(c)
		got[c] = outcome{r.GetState().String(), r.GetAuditId(), strings.Contains(r.GetError(), "which is not its own (it belongs to another node)")}
	}
	want := map[string]outcome{
		"cmd_a1": {State: "STATE_SUCCEEDED", AuditID: auditID},
		"cmd_b1": {State: "STATE_FAILED", Refused: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("command outcomes (-want +got):\n%s", diff)
	}
}
