package ctl

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/controller/rollout/state"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// fakeRollouts is the fake controller's Rollouts service: canned records
// and, for WatchRollout, a script of records per rollout ID.
type fakeRollouts struct {
	controllerv1.UnimplementedRolloutsServer
	*fake
}

var webshop24 = &controllerv1.ReleaseRef{Name: "webshop", Version: "2.4.0"}

// rolloutNode is a node of a fake rollout.
func rolloutNode(host string, wave uint32, name string, change func(*controllerv1.RolloutNode)) *controllerv1.RolloutNode {
	st, ok := state.ParseNode(name)
	if !ok {
		panic("no node state " + name)
	}
	n := &controllerv1.RolloutNode{NodeId: "n-" + host, Hostname: host, Wave: wave, State: st}
	if change != nil {
		change(n)
	}
	return n
}

// statusRollout is r-1, in the middle of its second wave.
func statusRollout() *controllerv1.RolloutRecord {
	ids := func(hosts ...string) []string {
		out := make([]string, len(hosts))
		for i, h := range hosts {
			out[i] = "n-" + h
		}
		return out
	}
	return &controllerv1.RolloutRecord{
		Id: "r-1", Release: webshop24, ReleaseDigest: strings.Repeat("d", 64),
		Spec:  &controllerv1.RolloutSpec{Release: webshop24, Service: "shop", Strategy: "canary", OnFailure: "stop"},
		State: state.RolloutRunning, CreatedBy: "user:alice", CreatedAt: ts(10 * time.Minute), UpdatedAt: ts(time.Second),
		Waves: []*controllerv1.RolloutWave{
			{Index: 1, NodeIds: ids("web1"), State: state.WaveDone, GateAfter: true},
			{Index: 2, NodeIds: ids("web2", "web3", "web4", "web5", "web6", "web7"), State: state.WaveRunning, MaxFailures: 1},
			{Index: 3, NodeIds: ids("web8", "web9"), State: state.WavePending, MaxFailures: 1},
		},
		Counts: &controllerv1.RolloutCounts{Nodes: 9, Pending: 3, Running: 2, Passed: 2, Failed: 1, Unreachable: 1},
		Nodes: []*controllerv1.RolloutNode{
			rolloutNode("web1", 1, "passed", func(n *controllerv1.RolloutNode) { n.DurationSeconds = 42.4 }),
			rolloutNode("web2", 2, "passed", func(n *controllerv1.RolloutNode) { n.DurationSeconds = 95 }),
			rolloutNode("web3", 2, "failed", func(n *controllerv1.RolloutNode) {
				n.DurationSeconds, n.Error = 20, "step restart (exec): exit status 1"
			}),
			rolloutNode("web4", 2, "deploying", func(n *controllerv1.RolloutNode) { n.StartedAt = ts(15 * time.Second) }),
			rolloutNode("web5", 2, "waiting_confirmation", func(n *controllerv1.RolloutNode) {
				n.StartedAt, n.WaitingStep, n.WaitingInstructions = ts(2*time.Minute), "drain-lb", "Drain web5 in the LB console"
			}),
			rolloutNode("web6", 2, "unreachable", func(n *controllerv1.RolloutNode) {
				n.UnreachableSince, n.Error = ts(3*time.Minute), "agent not connected"
			}),
			rolloutNode("web7", 2, "pending", nil),
			rolloutNode("web8", 3, "pending", nil),
			rolloutNode("web9", 3, "pending", nil),
		},
		Revision: 17,
	}
}

// watchStep is one record of a watch script.
func watchStep(id string, rev uint64, name, reason string, waves []*controllerv1.RolloutWave, nodes ...*controllerv1.RolloutNode) *controllerv1.RolloutRecord {
	st, _ := state.ParseRollout(name)
	for _, w := range waves {
		if w.GetState() == state.WaveDone || w.GetState() == state.WaveFailed {
			w.Failures = 0
			for _, n := range nodes {
				if n.GetWave() == w.GetIndex() && state.NodeCountsFailed(n.GetState()) {
					w.Failures++
				}
			}
		}
	}
	return &controllerv1.RolloutRecord{
		Id: id, Release: webshop24, ReleaseDigest: strings.Repeat("d", 64), Revision: rev, State: st, Reason: reason,
		Spec:  &controllerv1.RolloutSpec{Release: webshop24, Service: "shop", OnFailure: "stop"},
		Waves: waves, Nodes: nodes, Counts: state.Count(nodes),
	}
}

func waves(states ...string) []*controllerv1.RolloutWave {
	var out []*controllerv1.RolloutWave
	for i, s := range states {
		st, _ := state.ParseWave(s)
		w := &controllerv1.RolloutWave{Index: uint32(i + 1), State: st}
		if i == 0 {
			w.NodeIds = []string{"n-web1"}
		} else {
			w.NodeIds = []string{"n-web2", "n-web3"}
		}
		out = append(out, w)
	}
	return out
}

// watchScripts are what WatchRollout sends per rollout ID.
func watchScripts() map[string][]*controllerv1.RolloutRecord {
	n := rolloutNode
	baking := waves("baking", "pending")
	baking[0].BakeUntil = testNow.Add(5 * time.Minute).Format(time.RFC3339)
	ok := []*controllerv1.RolloutRecord{
		watchStep("r-ok", 1, "running", "", waves("running", "pending"), n("web1", 1, "pre_audit", nil), n("web2", 2, "pending", nil), n("web3", 2, "pending", nil)),
		watchStep("r-ok", 2, "running", "", waves("running", "pending"), n("web1", 1, "deploying", nil), n("web2", 2, "pending", nil), n("web3", 2, "pending", nil)),
		watchStep("r-ok", 3, "running", "", baking,
			n("web1", 1, "passed", func(n *controllerv1.RolloutNode) { n.DurationSeconds = 12 }), n("web2", 2, "pending", nil), n("web3", 2, "pending", nil)),
		watchStep("r-ok", 4, "running", "", waves("done", "running"),
			n("web1", 1, "passed", nil), n("web2", 2, "deploying", nil), n("web3", 2, "deploying", nil)),
		watchStep("r-ok", 5, "running", "", waves("done", "running"),
			n("web1", 1, "passed", nil), n("web2", 2, "waiting_confirmation", func(n *controllerv1.RolloutNode) {
				n.WaitingStep, n.WaitingInstructions = "drain-lb", "Drain web2 in the LB console"
			}), n("web3", 2, "deploying", nil)),
		watchStep("r-ok", 6, "completed", "", waves("done", "done"),
			n("web1", 1, "passed", nil), n("web2", 2, "passed", func(n *controllerv1.RolloutNode) { n.DurationSeconds = 61 }),
			n("web3", 2, "passed", func(n *controllerv1.RolloutNode) { n.DurationSeconds = 30 })),
	}
	ok[2].WaitingFor = "bake time until 12:05:00"
	halt := []*controllerv1.RolloutRecord{
		watchStep("r-halt", 1, "running", "", waves("running", "pending"), n("web1", 1, "deploying", nil), n("web2", 2, "pending", nil), n("web3", 2, "pending", nil)),
		watchStep("r-halt", 2, "halted", "wave 1 exceeded its failure budget (1 failed, 0 allowed)", waves("failed", "pending"),
			n("web1", 1, "failed", func(n *controllerv1.RolloutNode) { n.Error = "verify homepage: status 500" }), n("web2", 2, "pending", nil), n("web3", 2, "pending", nil)),
		// The watch stays open on a halted rollout: the client ends it.
	}
	rb := []*controllerv1.RolloutRecord{
		proto.Clone(halt[0]).(*controllerv1.RolloutRecord),
		proto.Clone(halt[1]).(*controllerv1.RolloutRecord),
		watchStep("r-rb", 3, "rolling_back", "wave 1 exceeded its failure budget (1 failed, 0 allowed)", waves("failed", "pending"),
			n("web1", 1, "rolling_back", nil), n("web2", 2, "pending", nil), n("web3", 2, "pending", nil)),
		watchStep("r-rb", 4, "rolled_back", "wave 1 exceeded its failure budget (1 failed, 0 allowed)", waves("failed", "pending"),
			n("web1", 1, "rolled_back", func(n *controllerv1.RolloutNode) { n.DurationSeconds = 9 }), n("web2", 2, "pending", nil), n("web3", 2, "pending", nil)),
	}
	for _, r := range rb {
		r.Id = "r-rb"
		r.Spec.OnFailure = "rollback"
	}
	abort := []*controllerv1.RolloutRecord{
		watchStep("r-abort", 1, "paused", "paused by user:bob", waves("running", "pending"), n("web1", 1, "deploying", nil)),
		watchStep("r-abort", 2, "aborted", "aborted by user:bob: window overrun", waves("running", "pending"),
			n("web1", 1, "aborted", func(n *controllerv1.RolloutNode) { n.Error = "rollout aborted" })),
	}
	// r-done started two days before the watch and finished at 11:58 on
	// the watch's day: a watch of it shows when things happened.
	at := func(d time.Duration) string { return testNow.Add(d).Format(time.RFC3339) }
	done := watchStep("r-done", 9, "completed", "", waves("done"),
		n("web1", 1, "passed", func(n *controllerv1.RolloutNode) { n.PhaseStartedAt = at(-3 * time.Minute) }))
	done.CreatedAt, done.FinishedAt = at(-48*time.Hour), at(-2*time.Minute)
	done.Waves[0].StartedAt, done.Waves[0].FinishedAt = at(-48*time.Hour+time.Minute), at(-2*time.Minute)
	return map[string][]*controllerv1.RolloutRecord{"r-ok": ok, "r-halt": halt, "r-rb": rb, "r-abort": abort, "r-done": []*controllerv1.RolloutRecord{done}}
}

func (f fakeRollouts) PlanRollout(_ context.Context, spec *controllerv1.RolloutSpec) (*controllerv1.RolloutPlan, error) {
	if spec.GetService() == "empty" {
		return nil, status.Error(codes.FailedPrecondition, "no nodes to deploy to: service empty has no nodes")
	}
	full := proto.Clone(spec).(*controllerv1.RolloutSpec)
	if full.Strategy == "" {
		full.Strategy = "canary"
	}
	if len(full.Waves) == 0 {
		full.Waves = []string{"1", "10%", "50%", "100%"}
	}
	full.MaxFailures = cmpOr(full.MaxFailures, "0")
	full.Unreachable = cmpOr(full.Unreachable, "fail")
	full.OnFailure = cmpOr(full.OnFailure, "stop")
	plan := &controllerv1.RolloutPlan{
		Spec: full, ReleaseDigest: strings.Repeat("d", 64), MaxParallel: 1,
		Summary: "3 nodes: webshop 2.3.1 → 2.4.0; 3 files changed",
		Waves: []*controllerv1.PlannedWave{
			{Index: 1, NodeIds: []string{"n-web1"}, GateAfter: true},
			{Index: 2, NodeIds: []string{"n-web2", "n-db1"}, Bake: "10m"},
		},
		Nodes: []*controllerv1.NodePlan{
			{NodeId: "n-web1", Hostname: "web1", Wave: 1, Connected: true, HasBaseline: true, DryRunDone: true, DryRunOk: true, WouldChange: true,
				DriftPathsNotCompared: 1, DriftSummary: "no changes where both audits looked; 1 tracked path not compared: /etc/webshop/webshop.conf",
				Actions: []string{"dpkg: install webshop 2.4.0 (upgrade from 2.3.1)", "systemd: restart webshop.service"},
				Changes: []string{"package webshop 2.3.1 → 2.4.0"}},
			{NodeId: "n-web2", Hostname: "web2", Wave: 2, Connected: true, HasBaseline: true, DriftChanges: 1, DriftSummary: "1 file changed",
				DryRunDone: true, DryRunOk: false, DryRunError: "dpkg: webshop 2.4.0 depends on libfoo (>= 2)",
				KnownErrors: []string{"KE-1: homepage check fails"}},
			{NodeId: "n-db1", Hostname: "db1", Wave: 2},
		},
		Warnings: []string{"db1 is not connected: no dry run", "db1 has no CMS baseline: drift cannot be checked"},
	}
	if full.Window != "" {
		plan.NextWindow = "2025-06-07T22:00:00Z"
	}
	return plan, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (f fakeRollouts) StartRollout(_ context.Context, spec *controllerv1.RolloutSpec) (*controllerv1.RolloutRecord, error) {
	if spec.GetRelease().GetVersion() == "9.9.9" {
		return nil, status.Error(codes.FailedPrecondition, "release is not approved: webshop@9.9.9 is tested")
	}
	id := "r-" + spec.GetService() // the service names the watch script --watch follows
	r := watchScripts()[id]
	if r == nil {
		return &controllerv1.RolloutRecord{Id: id, Release: spec.GetRelease(), Spec: spec, State: state.RolloutRunning,
			Counts: &controllerv1.RolloutCounts{Nodes: 3}, Waves: waves("running", "pending")}, nil
	}
	return r[0], nil
}

func (f fakeRollouts) GetRollout(_ context.Context, req *controllerv1.RolloutRef) (*controllerv1.RolloutRecord, error) {
	if req.GetId() != "r-1" {
		return nil, status.Errorf(codes.NotFound, "rollout %s not found", req.GetId())
	}
	return statusRollout(), nil
}

func (f fakeRollouts) ListRollouts(context.Context, *controllerv1.ListRolloutsRequest) (*controllerv1.ListRolloutsResponse, error) {
	old := watchScripts()["r-rb"][3]
	old.CreatedAt, old.CreatedBy = ts(26*time.Hour), "user:bob"
	return &controllerv1.ListRolloutsResponse{Rollouts: []*controllerv1.RolloutRecord{statusRollout(), old}}, nil
}

// WatchRollout sends the rollout's script, then ends after a final state
// or waits for the caller to leave, as the real service does.
func (f fakeRollouts) WatchRollout(req *controllerv1.RolloutRef, stream grpc.ServerStreamingServer[controllerv1.RolloutRecord]) error {
	f.record(req)
	script, ok := watchScripts()[req.GetId()]
	if !ok {
		return status.Errorf(codes.NotFound, "rollout %s not found", req.GetId())
	}
	for _, r := range script {
		if err := stream.Send(r); err != nil {
			return err
		}
	}
	if state.Settled(script[len(script)-1]) {
		return nil
	}
	<-stream.Context().Done()
	return stream.Context().Err()
}

func (f fakeRollouts) act(req *controllerv1.RolloutAction, st state.Rollout) (*controllerv1.RolloutRecord, error) {
	if req.GetId() != "r-1" {
		return nil, status.Errorf(codes.NotFound, "rollout %s not found", req.GetId())
	}
	r := statusRollout()
	r.State, r.Reason = st, req.GetNote()
	return r, nil
}

func (f fakeRollouts) PauseRollout(_ context.Context, req *controllerv1.RolloutAction) (*controllerv1.RolloutRecord, error) {
	return f.act(req, state.RolloutPaused)
}

func (f fakeRollouts) ResumeRollout(_ context.Context, req *controllerv1.RolloutAction) (*controllerv1.RolloutRecord, error) {
	return nil, status.Errorf(codes.FailedPrecondition, "not allowed in the rollout's state: %s is running", req.GetId())
}

func (f fakeRollouts) AbortRollout(_ context.Context, req *controllerv1.RolloutAction) (*controllerv1.RolloutRecord, error) {
	return f.act(req, state.RolloutAborted)
}

func (f fakeRollouts) RollbackRollout(_ context.Context, req *controllerv1.RolloutAction) (*controllerv1.RolloutRecord, error) {
	return f.act(req, state.RolloutRollingBack)
}

func (f fakeRollouts) ConfirmStep(_ context.Context, req *controllerv1.ConfirmStepRequest) (*controllerv1.RolloutRecord, error) {
	return f.act(&controllerv1.RolloutAction{Id: req.GetId()}, state.RolloutRunning)
}

func (f fakeRollouts) RolloutReport(_ context.Context, req *controllerv1.RolloutReportRequest) (*controllerv1.RenderResponse, error) {
	if req.GetId() != "r-1" {
		return nil, status.Errorf(codes.NotFound, "rollout %s not found", req.GetId())
	}
	return &controllerv1.RenderResponse{Content: []byte("report of r-1 as " + req.GetFormat() + "\n"), ContentType: "text/plain", Digest: fakeDigest}, nil
}

// fakeDigest is the digest of the fake's reports.
const fakeDigest = "sha256:5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed"

func (f fakeRollouts) VerifyRolloutReport(_ context.Context, req *controllerv1.VerifyReportRequest) (*controllerv1.IssuedReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rec, ok := f.issued[req.GetDigest()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "this controller issued no report with digest %s: not found", req.GetDigest())
	}
	return rec, nil
}

// TestRolloutCommands runs each rollout command against the fake
// controller and checks the exit code, the output and the request.
func TestRolloutCommands(t *testing.T) {
	f := startFake(t)
	outFile := filepath.Join(t.TempDir(), "rollout.html")
	spec := func(change func(*controllerv1.RolloutSpec)) *controllerv1.RolloutSpec {
		s := &controllerv1.RolloutSpec{Release: webshop24, Service: "shop"}
		if change != nil {
			change(s)
		}
		return s
	}
	tests := []struct {
		name        string
		args        []string
		env         map[string]string
		code        int
		golden      string
		out, errOut []string
		// req is the last request the controller should have received.
		req proto.Message
	}{
		// plan: flags → spec
		{name: "plan", args: []string{"rollout", "plan", "webshop@2.4.0", "--service", "shop"}, golden: "rollout-plan.txt", req: spec(nil)},
		{
			name: "plan every flag",
			args: []string{"rollout", "plan", "webshop@2.4.0", "--selector", "env=prod,role=web", "--strategy", "waves", "--waves", "2,50%,100%",
				"--max-parallel", "25%", "--max-failures", "1", "--unreachable", "wait:10m", "--bake", "15m", "--gate", "after-wave:2",
				"--gate", "after-wave:1", "--window", " Sat 22:00-Sun 04:00 ", "--on-failure", "rollback", "--no-dry-run"},
			out: []string{"nodes:        selector env=prod,role=web", "strategy:     waves, waves 2,50%,100%", "gates:        after wave 1, after wave 2",
				"window:       Sat 22:00-Sun 04:00 (opens 2025-06-07T22:00:00Z)", "on failure:   rollback", "bake:         15m"},
			req: &controllerv1.RolloutSpec{
				Release: webshop24, Selector: map[string]string{"env": "prod", "role": "web"}, Strategy: "waves", Waves: []string{"2", "50%", "100%"},
				MaxParallel: "25%", MaxFailures: "1", Unreachable: "wait:10m", Bake: "15m", GatesAfterWave: []uint32{1, 2},
				Window: "Sat 22:00-Sun 04:00", OnFailure: "rollback", SkipDryRun: true,
			},
		},
		{name: "plan json", args: []string{"rollout", "plan", "webshop@2.4.0", "--service", "shop", "-o", "json"},
			out: []string{`"summary": "3 nodes: webshop 2.3.1 → 2.4.0; 3 files changed"`, `"strategy": "canary"`, `"dry_run_error"`}},
		{name: "plan yaml", args: []string{"rollout", "plan", "webshop@2.4.0", "--service", "shop", "-o", "yaml"}, out: []string{"max_parallel: 1", "- n-web1"}},
		{name: "plan no nodes", args: []string{"rollout", "plan", "webshop@2.4.0", "--service", "empty"}, code: ExitFailed,
			errOut: []string{"cairnctl: plan rollout of webshop@2.4.0: no nodes to deploy to: service empty has no nodes"}},
		{name: "plan neither target", args: []string{"rollout", "plan", "webshop@2.4.0"}, code: ExitUsage, errOut: []string{"give either --service S or --selector k=v,..."}},
		{name: "plan both targets", args: []string{"rollout", "plan", "webshop@2.4.0", "--service", "shop", "--selector", "a=b"}, code: ExitUsage, errOut: []string{"give --service S or --selector k=v,..., not both"}},
		{name: "plan bad release", args: []string{"rollout", "plan", "webshop", "--service", "shop"}, code: ExitUsage, errOut: []string{`"webshop" is not a release: want NAME@VERSION`}},
		{name: "plan no release", args: []string{"rollout", "plan", "--service", "shop"}, code: ExitUsage, errOut: []string{"needs NAME@VERSION"}},
		{name: "plan bad selector", args: []string{"rollout", "plan", "webshop@2.4.0", "--selector", "env"}, code: ExitUsage, errOut: []string{`--selector "env"`}},
		{name: "plan bad strategy", args: []string{"rollout", "plan", "webshop@2.4.0", "--service", "shop", "--strategy", "big-bang"}, code: ExitUsage,
			errOut: []string{`--strategy "big-bang": use canary, waves or all-at-once`}},
		{name: "plan zero wave", args: []string{"rollout", "plan", "webshop@2.4.0", "--service", "shop", "--waves", "0,100%"}, code: ExitUsage, errOut: []string{`--waves "0": at least 1`}},
		{name: "plan wave over 100%", args: []string{"rollout", "plan", "webshop@2.4.0", "--service", "shop", "--waves", "1,150%"}, code: ExitUsage, errOut: []string{`--waves "150%": a percentage is at most 100%`}},
		{name: "plan wave not a number", args: []string{"rollout", "plan", "webshop@2.4.0", "--service", "shop", "--waves", "half"}, code: ExitUsage, errOut: []string{`--waves "half": give a number of nodes N or a percentage N%`}},
		{name: "plan zero parallel", args: []string{"rollout", "plan", "webshop@2.4.0", "--service", "shop", "--max-parallel", "0"}, code: ExitUsage, errOut: []string{`--max-parallel "0": at least 1`}},
		{name: "plan negative failures", args: []string{"rollout", "plan", "webshop@2.4.0", "--service", "shop", "--max-failures", "-1"}, code: ExitUsage, errOut: []string{`--max-failures "-1"`}},
		{name: "plan zero failures", args: []string{"rollout", "plan", "webshop@2.4.0", "--service", "shop", "--max-failures", "0%"},
			req: spec(func(s *controllerv1.RolloutSpec) { s.MaxFailures = "0%" })},
		{name: "plan bad unreachable", args: []string{"rollout", "plan", "webshop@2.4.0", "--service", "shop", "--unreachable", "wait"}, code: ExitUsage, errOut: []string{`--unreachable "wait": use fail, skip or wait:DURATION`}},
		{name: "plan unreachable no duration", args: []string{"rollout", "plan", "webshop@2.4.0", "--service", "shop", "--unreachable", "wait:0s"}, code: ExitUsage},
		{name: "plan unreachable skip", args: []string{"rollout", "plan", "webshop@2.4.0", "--service", "shop", "--unreachable", "skip"},
			req: spec(func(s *controllerv1.RolloutSpec) { s.Unreachable = "skip" })},
		{name: "plan bad bake", args: []string{"rollout", "plan", "webshop@2.4.0", "--service", "shop", "--bake", "soon"}, code: ExitUsage, errOut: []string{`--bake "soon"`}},
		{name: "plan bad gate", args: []string{"rollout", "plan", "webshop@2.4.0", "--service", "shop", "--gate", "2"}, code: ExitUsage, errOut: []string{`--gate "2": use after-wave:N`}},
		{name: "plan gate zero", args: []string{"rollout", "plan", "webshop@2.4.0", "--service", "shop", "--gate", "after-wave:0"}, code: ExitUsage},
		{name: "plan bad on-failure", args: []string{"rollout", "plan", "webshop@2.4.0", "--service", "shop", "--on-failure", "panic"}, code: ExitUsage, errOut: []string{`--on-failure "panic": use stop, continue or rollback`}},
		{name: "plan bad format", args: []string{"rollout", "plan", "webshop@2.4.0", "--service", "shop", "-o", "html"}, code: ExitUsage},

		// start
		{
			name: "start", args: []string{"rollout", "start", "webshop@2.4.0", "--service", "shop", "--gate", "after-wave:1"},
			out: []string{"rollout r-shop started: webshop@2.4.0 to 3 nodes in 2 waves (running)", "cairnctl rollout watch r-shop", "cairnctl rollout rollback r-shop"},
			req: spec(func(s *controllerv1.RolloutSpec) { s.GatesAfterWave = []uint32{1} }),
		},
		{name: "start has no --no-dry-run", args: []string{"rollout", "start", "webshop@2.4.0", "--service", "shop", "--no-dry-run"}, code: ExitUsage, errOut: []string{"unknown flag: --no-dry-run"}},
		{name: "start json", args: []string{"rollout", "start", "webshop@2.4.0", "--service", "shop", "-o", "json"}, out: []string{`"id": "r-shop"`, `"state": "ROLLOUT_STATE_RUNNING"`}},
		{name: "start not approved", args: []string{"rollout", "start", "webshop@9.9.9", "--service", "shop"}, code: ExitFailed,
			errOut: []string{"cairnctl: start rollout of webshop@9.9.9: release is not approved: webshop@9.9.9 is tested"}},
		{name: "start watch completes", args: []string{"rollout", "start", "webshop@2.4.0", "--service", "ok", "--watch"},
			out: []string{"rollout r-ok started", "12:00:00 web3 wave 2 passed in 30s", "12:00:00 rollout completed: 3 nodes: 3 passed, 0 failed"},
			req: &controllerv1.RolloutRef{Id: "r-ok"}},
		{name: "start watch halts", args: []string{"rollout", "start", "webshop@2.4.0", "--service", "halt", "--watch"}, code: ExitFailed,
			out:    []string{"12:00:00 web1 wave 1 failed: verify homepage: status 500", "12:00:00 rollout halted: wave 1 exceeded its failure budget"},
			errOut: []string{"cairnctl: rollout r-halt halted: wave 1 exceeded its failure budget (1 failed, 0 allowed); 'cairnctl rollout retry r-halt --node NODE' re-runs a failed node, 'cairnctl rollout rollback r-halt' rolls back the changed nodes"}},
		{name: "start watch json", args: []string{"rollout", "start", "webshop@2.4.0", "--service", "ok", "--watch", "-o", "json"},
			out: []string{`"state": "ROLLOUT_STATE_COMPLETED"`}, errOut: []string{"12:00:00 rollout completed"}},

		// list
		{name: "list", args: []string{"rollout", "list"}, golden: "rollout-list.txt", req: &controllerv1.ListRolloutsRequest{}},
		{name: "list release", args: []string{"rollout", "list", "--release", "webshop@2.4.0"}, req: &controllerv1.ListRolloutsRequest{Release: "webshop@2.4.0"}},
		{name: "list release name", args: []string{"rollout", "list", "--release", "webshop"}, req: &controllerv1.ListRolloutsRequest{Release: "webshop"}},
		{name: "list bad release", args: []string{"rollout", "list", "--release", "webshop@"}, code: ExitUsage},
		{name: "list json", args: []string{"rollout", "list", "-o", "json"}, out: []string{`"rollouts": [`, `"id": "r-rb"`}},

		// status
		{name: "status", args: []string{"rollout", "status", "r-1"}, golden: "rollout-status.txt", req: &controllerv1.RolloutRef{Id: "r-1"}},
		{name: "status yaml", args: []string{"rollout", "status", "r-1", "-o", "yaml"}, out: []string{"waiting_step: drain-lb"}},
		{name: "status unknown", args: []string{"rollout", "status", "r-9"}, code: ExitFailed, errOut: []string{"cairnctl: rollout r-9: rollout r-9 not found"}},
		{name: "status no id", args: []string{"rollout", "status"}, code: ExitUsage, errOut: []string{"needs ID"}},

		// watch (stdout is not a terminal: lines)
		{name: "watch completes", args: []string{"rollout", "watch", "r-ok"}, golden: "rollout-watch.txt", req: &controllerv1.RolloutRef{Id: "r-ok"}},
		{name: "watch a finished rollout", args: []string{"rollout", "watch", "r-done"}, out: []string{
			"2025-05-30 12:00:00 rollout r-done of webshop@2.4.0: completed, 1 node in 1 wave\n",
			"11:57:00 web1 wave 1 passed\n",
			"11:58:00 wave 1 done: 1 node: 1 passed",
		}},
		{name: "watch halts", args: []string{"rollout", "watch", "r-halt"}, code: ExitFailed, errOut: []string{"rollout r-halt halted"}},
		{name: "watch follows a rollback past halted", args: []string{"rollout", "watch", "r-rb"}, code: ExitFailed,
			out:    []string{"rollout halted: wave 1", "web1 wave 1 rolling_back", "web1 wave 1 rolled_back in 9s", "rollout rolled_back: wave 1"},
			errOut: []string{"cairnctl: rollout r-rb rolled back: wave 1 exceeded its failure budget (1 failed, 0 allowed)\n"}},
		{name: "watch aborted", args: []string{"rollout", "watch", "r-abort"}, code: ExitFailed,
			out:    []string{"rollout r-abort of webshop@2.4.0: paused: paused by user:bob", "rollout aborted: aborted by user:bob: window overrun"},
			errOut: []string{"cairnctl: rollout r-abort aborted: aborted by user:bob: window overrun\n"}},
		{name: "watch unknown", args: []string{"rollout", "watch", "r-9"}, code: ExitFailed, errOut: []string{"cairnctl: watch rollout r-9: rollout r-9 not found"}},

		// actions
		{name: "pause", args: []string{"rollout", "pause", "r-1", "--note", "lunch"}, out: []string{"rollout r-1: pause accepted; state paused: lunch"},
			req: &controllerv1.RolloutAction{Id: "r-1", Note: "lunch"}},
		{name: "resume refused", args: []string{"rollout", "resume", "r-1"}, code: ExitFailed,
			errOut: []string{"cairnctl: resume rollout r-1: not allowed in the rollout's state: r-1 is running"}, req: &controllerv1.RolloutAction{Id: "r-1"}},
		{name: "abort", args: []string{"rollout", "abort", "r-1"}, out: []string{"rollout r-1: abort accepted; state aborted"}},
		{name: "rollback", args: []string{"rollout", "rollback", "r-1", "--note", "CHG-9"}, out: []string{"rollout r-1: rollback accepted; state rolling_back: CHG-9"},
			req: &controllerv1.RolloutAction{Id: "r-1", Note: "CHG-9"}},
		{name: "rollback unknown", args: []string{"rollout", "rollback", "r-9"}, code: ExitFailed, errOut: []string{"rollback rollout r-9: rollout r-9 not found"}},
		{name: "confirm", args: []string{"rollout", "confirm", "r-1", "--node", "web5", "--step", "drain-lb", "--note", "drained"},
			out: []string{"rollout r-1: step drain-lb on web5 confirmed; state running"},
			req: &controllerv1.ConfirmStepRequest{Id: "r-1", Node: "web5", Step: "drain-lb", Note: "drained"}},
		{name: "confirm no note", args: []string{"rollout", "confirm", "r-1", "--node", "web5", "--step", "drain-lb"}, code: ExitUsage, errOut: []string{"--note TEXT is required"}},
		{name: "confirm blank note", args: []string{"rollout", "confirm", "r-1", "--node", "web5", "--step", "drain-lb", "--note", "  "}, code: ExitUsage},
		{name: "confirm no node", args: []string{"rollout", "confirm", "r-1", "--step", "drain-lb", "--note", "x"}, code: ExitUsage, errOut: []string{"--node NODE is required"}},
		{name: "confirm no step", args: []string{"rollout", "confirm", "r-1", "--node", "web5", "--note", "x"}, code: ExitUsage, errOut: []string{"--step STEP is required"}},

		// report
		{name: "report", args: []string{"rollout", "report", "r-1"}, out: []string{"report of r-1 as text\n"}, req: &controllerv1.RolloutReportRequest{Id: "r-1", Format: "text"}},
		{name: "report md", args: []string{"rollout", "report", "r-1", "-o", "md"}, out: []string{"report of r-1 as markdown"}},
		{name: "report json", args: []string{"rollout", "report", "r-1", "-o", "json"}, out: []string{"report of r-1 as json"}},
		{name: "report bad format", args: []string{"rollout", "report", "r-1", "-o", "pdf"}, code: ExitUsage, errOut: []string{"use text, json, markdown or html"}},
		{name: "report to file", args: []string{"rollout", "report", "r-1", "-o", "html", "--out", outFile},
			out: []string{fmt.Sprintf("wrote %s (%d bytes, digest %s)\n", outFile, len("report of r-1 as html\n"), fakeDigest)}, req: &controllerv1.RolloutReportRequest{Id: "r-1", Format: "html"}},
		{name: "report to a missing directory", args: []string{"rollout", "report", "r-1", "--out", filepath.Join(outFile, "nope", "r.txt")}, code: ExitFailed,
			errOut: []string{"rollout report: create temporary file in"}},

		{name: "forbidden", args: []string{"rollout", "pause", "r-1"}, env: map[string]string{"CAIRN_TOKEN": viewerToken}, code: ExitDenied, errOut: []string{"refused; see 'cairnctl whoami'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.reset()
			r := f.run(t, tt.env, "", tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tt.code, r.stdout, r.stderr)
			}
			if tt.golden != "" {
				golden(t, tt.golden, r.stdout)
			}
			for _, s := range tt.out {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
				}
			}
			for _, s := range tt.errOut {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
				}
			}
			if tt.code != ExitOK && strings.Count(r.stderr, "cairnctl: ") != 1 {
				t.Errorf("want exactly one error line on stderr, got:\n%s", r.stderr)
			}
			if tt.req != nil {
				if diff := cmp.Diff(tt.req, f.last(), protocmp.Transform()); diff != "" {
					t.Errorf("request (-want +got):\n%s", diff)
				}
			}
		})
	}
	if b, err := os.ReadFile(outFile); err != nil || string(b) != "report of r-1 as html\n" {
		t.Errorf("--out wrote %q, %v", b, err)
	}
}

// terminal is a buffer that says it is a character device, as a
// terminal's os.File does.
type terminal struct{ bytes.Buffer }

func (*terminal) Stat() (os.FileInfo, error) { return charDevice{}, nil }

type charDevice struct{}

func (charDevice) Name() string       { return "tty" }
func (charDevice) Size() int64        { return 0 }
func (charDevice) Mode() fs.FileMode  { return fs.ModeDevice | fs.ModeCharDevice | 0o620 }
func (charDevice) ModTime() time.Time { return time.Time{} }
func (charDevice) IsDir() bool        { return false }
func (charDevice) Sys() any           { return nil }

// TestRolloutWatchTerminal: on a terminal, watch redraws the status view
// with progress bars at each record instead of printing lines.
func TestRolloutWatchTerminal(t *testing.T) {
	f := startFake(t)
	out := &terminal{}
	var errOut bytes.Buffer
	env := map[string]string{"CAIRN_CONTROLLER": f.addr, "CAIRN_CA": f.caPath, "CAIRN_TOKEN": adminToken, "HOME": t.TempDir()}
	a := &app{out: out, errOut: &errOut, in: strings.NewReader(""), getenv: func(k string) string { return env[k] }, now: func() time.Time { return testNow }}
	if code := a.execute(context.Background(), []string{"rollout", "watch", "r-ok"}); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	got := out.String()
	if n, want := strings.Count(got, "\x1b[H\x1b[2J"), len(watchScripts()["r-ok"]); n != want {
		t.Errorf("%d redraws, want one per record (%d)", n, want)
	}
	frames := strings.Split(got, "\x1b[H\x1b[2J")
	last := frames[len(frames)-1]
	for _, s := range []string{"state:        completed", "progress:     [##########] 3/3 nodes passed", "  2     done   [##########] 2/2", "web2      2     passed  1m1s"} {
		if !strings.Contains(last, s) {
			t.Errorf("last frame lacks %q:\n%s", s, last)
		}
	}
	if strings.Contains(got, "12:00:00 web1 wave 1") {
		t.Errorf("a terminal got plain lines:\n%s", got)
	}
}

func TestIsTerminal(t *testing.T) {
	regular, err := os.Create(filepath.Join(t.TempDir(), "out.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer regular.Close()
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	tests := []struct {
		name string
		w    interface{ Write([]byte) (int, error) }
		want bool
	}{
		{"buffer", &bytes.Buffer{}, false},
		{"regular file", regular, false},
		{"character device", devNull, true},
		{"terminal", &terminal{}, true},
	}
	for _, tt := range tests {
		if got := isTerminal(tt.w); got != tt.want {
			t.Errorf("%s: isTerminal = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestProgressBar(t *testing.T) {
	tests := []struct {
		done, total int
		want        string
	}{
		{0, 0, "[----------] 0/0"},
		{0, 6, "[----------] 0/6"},
		{3, 6, "[#####-----] 3/6"},
		{1, 3, "[###-------] 1/3"},
		{6, 6, "[##########] 6/6"},
	}
	for _, tt := range tests {
		if got := progressBar(tt.done, tt.total); got != tt.want {
			t.Errorf("progressBar(%d, %d) = %q, want %q", tt.done, tt.total, got, tt.want)
		}
	}
}

func TestRolloutEnded(t *testing.T) {
	tests := []struct {
		state                 state.Rollout
		running               uint32
		onFailure, rollbackBy string
		want                  bool
	}{
		{state: state.RolloutRunning},
		{state: state.RolloutPaused},
		{state: state.RolloutRollingBack},
		{state: state.RolloutRollbackPaused},
		{state: state.RolloutCompleted, want: true},
		{state: state.RolloutAborted, want: true},
		{state: state.RolloutAborted, running: 1},
		{state: state.RolloutRolledBack, want: true},
		{state: state.RolloutRollbackFailed, want: true},
		{state: state.RolloutHalted, want: true},
		{state: state.RolloutHalted, running: 2},
		{state: state.RolloutHalted, onFailure: "rollback"},
		{state: state.RolloutHalted, rollbackBy: "user:bob"},
	}
	for _, tt := range tests {
		rec := &controllerv1.RolloutRecord{State: tt.state, Counts: &controllerv1.RolloutCounts{Running: tt.running},
			Spec: &controllerv1.RolloutSpec{OnFailure: tt.onFailure}, RollbackRequestedBy: tt.rollbackBy}
		if got := rolloutEnded(rec); got != tt.want {
			t.Errorf("%s with %d in flight: ended = %v, want %v", state.Name(tt.state), tt.running, got, tt.want)
		}
	}
}
