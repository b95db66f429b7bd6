package rollout

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/controller/rollout/state"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/compare"
	"github.com/cairn-ops/cairn/internal/diff"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

func TestRolloutSucceedsOverWaves(t *testing.T) {
	w := newWorld(t, worldOptions{nodes: 3})
	// web1 has a baseline and has drifted from it since (reported, not
	// blocking under on_drift ignore); web2 has libfoo 1.5, which known
	// error KE-12 is about.
	w.baseline("node-01")
	w.agent.update("node-01", func(h *host) { h.packages["vim"] = "9.0" })
	w.agent.update("node-02", func(h *host) { h.packages["libfoo"] = "1.5" })

	ro := w.start(func(s *controllerv1.RolloutSpec) { s.OnDrift = OnDriftIgnore })
	if ro.GetState() != StateRunning || ro.GetRevision() != 1 || len(ro.GetWaves()) != 3 {
		t.Fatalf("Start returned state %s, revision %d, %d waves; want running, 1, 3", ro.GetState(), ro.GetRevision(), len(ro.GetWaves()))
	}
	ro = w.waitState(ro.GetId(), StateCompleted)
	w.waitEvent(EventCompleted)

	if diff := cmp.Diff(map[string]state.Node{"web1": NodePassed, "web2": NodePassed, "web3": NodePassed}, states(ro)); diff != "" {
		t.Errorf("node states (-want +got):\n%s", diff)
	}
	var waves []string
	for _, wv := range ro.GetWaves() {
		waves = append(waves, state.Name(wv.GetState())+" "+strings.Join(wv.GetNodeIds(), ","))
	}
	if diff := cmp.Diff([]string{"done node-01", "done node-02", "done node-03"}, waves); diff != "" {
		t.Errorf("waves (-want +got):\n%s", diff)
	}
	wantCounts := &controllerv1.RolloutCounts{Nodes: 3, Passed: 3}
	if diff := cmp.Diff(wantCounts.String(), ro.GetCounts().String()); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	// Each wave starts after the one before it finished.
	for i := 1; i < 3; i++ {
		prev, next := ro.GetNodes()[i-1], ro.GetNodes()[i]
		if next.GetStartedAt() < prev.GetFinishedAt() {
			t.Errorf("%s started at %s, before %s of the wave before finished at %s", next.GetHostname(), next.GetStartedAt(), prev.GetHostname(), prev.GetFinishedAt())
		}
	}

	for _, n := range ro.GetNodes() {
		if diff := cmp.Diff([]string{"audit", "deploy apply", "audit"}, w.rolloutCommands(ro.GetId(), n.GetNodeId())); diff != "" {
			t.Errorf("%s: commands (-want +got):\n%s", n.GetHostname(), diff)
		}
		var res compare.Result
		if err := json.Unmarshal(n.GetComparisonJson(), &res); err != nil {
			t.Fatalf("%s: comparison_json: %v", n.GetHostname(), err)
		}
		if !res.OK() || len(res.Expected) != 2 {
			t.Errorf("%s: comparison %q, want OK with 2 expected", n.GetHostname(), res.Summary)
		}
		if !n.GetChanged() || n.GetPreAuditId() == "" || n.GetPostAuditId() == "" || n.GetDeployReport().GetState() != agentv1.StateSucceeded {
			t.Errorf("%s: changed %v, pre-audit %q, post-audit %q, report %v", n.GetHostname(), n.GetChanged(), n.GetPreAuditId(), n.GetPostAuditId(), n.GetDeployReport())
		}
		// The CMS baseline is the post-audit, with provenance.
		bs := w.baselines(n.GetNodeId())
		got := bs[len(bs)-1]
		want := &controllerv1.BaselineRecord{
			NodeId: n.GetNodeId(), Version: uint32(len(bs)), AuditId: n.GetPostAuditId(), AcceptedBy: actorSystem,
			Reason: "rollout " + ro.GetId() + " of " + testRelease, Release: testRelease, RolloutId: ro.GetId(), Approvers: []string{approver},
			Tracked: []string{"/etc/webshop/webshop.conf"},
		}
		got.AcceptedAt, got.ContentHash = "", ""
		if diff := cmp.Diff(want.String(), got.String()); diff != "" {
			t.Errorf("%s: baseline (-want +got):\n%s", n.GetHostname(), diff)
		}
	}

	web1, web2 := nodeOf(t, ro, "web1"), nodeOf(t, ro, "web2")
	if !web1.GetHasBaseline() || web1.GetDriftChanges() != 1 || !strings.Contains(web1.GetDriftSummary(), "added") {
		t.Errorf("web1 drift: has baseline %v, %d changes, %q; want the added package", web1.GetHasBaseline(), web1.GetDriftChanges(), web1.GetDriftSummary())
	}
	if nodeOf(t, ro, "web3").GetHasBaseline() {
		t.Error("web3 has no baseline, but the pre-check says it has")
	}
	if diff := cmp.Diff([]string{"KE-12: webshop leaks memory with libfoo before 2.0"}, web2.GetKnownErrors()); diff != "" {
		t.Errorf("web2 known errors (-want +got):\n%s", diff)
	}
	if len(web1.GetKnownErrors()) != 0 {
		t.Errorf("web1 known errors: %v, want none", web1.GetKnownErrors())
	}

	// The DML knows where the component is installed.
	art, err := w.dml.Where(w.ctx, w.release.GetComponents()[0].GetDigest())
	if err != nil {
		t.Fatal(err)
	}
	var installs []string
	for _, in := range art.GetInstalls() {
		installs = append(installs, in.GetNodeId()+" "+in.GetRelease()+" "+in.GetRolloutId())
	}
	wantInstalls := []string{"node-01 " + testRelease + " " + ro.GetId(), "node-02 " + testRelease + " " + ro.GetId(), "node-03 " + testRelease + " " + ro.GetId()}
	if diff := cmp.Diff(wantInstalls, installs); diff != "" {
		t.Errorf("installs (-want +got):\n%s", diff)
	}

	wantLog := []string{"user:operator rollout.start", "system rollout.wave_done", "system rollout.wave_done", "system rollout.wave_done", "system rollout.complete"}
	if diff := cmp.Diff(wantLog, w.logActions(ro.GetId())); diff != "" {
		t.Errorf("audit log (-want +got):\n%s", diff)
	}
	wantEvents := []string{EventStarted, EventWaveDone + " 1", EventWaveDone + " 2", EventWaveDone + " 3", EventCompleted}
	if diff := cmp.Diff(wantEvents, w.notifier.list()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{OutcomePassed, OutcomePassed, OutcomePassed}, w.metrics.finished()); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	if w.metrics.audits != 6 || len(w.metrics.breaches) != 0 {
		t.Errorf("metrics: %d audits (want 6), breaches %v (want none)", w.metrics.audits, w.metrics.breaches)
	}

	// A completed rollout cannot be paused, resumed or aborted.
	for name, act := range map[string]func() (*controllerv1.RolloutRecord, error){
		"pause":  func() (*controllerv1.RolloutRecord, error) { return w.engine().Pause(w.ctx, operator, ro.GetId(), "") },
		"resume": func() (*controllerv1.RolloutRecord, error) { return w.engine().Resume(w.ctx, operator, ro.GetId(), "") },
		"abort":  func() (*controllerv1.RolloutRecord, error) { return w.engine().Abort(w.ctx, operator, ro.GetId(), "") },
	} {
		if _, err := act(); !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "is completed") {
			t.Errorf("%s of a completed rollout: %v, want ErrState saying it is completed", name, err)
		}
	}
}

func TestDriftBlocksTheNode(t *testing.T) {
	w := newWorld(t, worldOptions{nodes: 2})
	// web1 has drifted from its baseline; web2 has no baseline at all,
	// which is not drift.
	w.baseline("node-01")
	w.agent.update("node-01", func(h *host) { h.packages["vim"] = "9.0" })

	ro := w.start(func(s *controllerv1.RolloutSpec) { s.Waves = []string{"100%"}; s.MaxFailures = "1" })
	ro = w.waitState(ro.GetId(), StateCompleted)
	if diff := cmp.Diff(map[string]state.Node{"web1": NodeFailed, "web2": NodePassed}, states(ro)); diff != "" {
		t.Errorf("node states (-want +got):\n%s", diff)
	}
	for _, n := range ro.GetNodes() {
		if n.GetHostname() != "web1" {
			continue
		}
		if !strings.Contains(n.GetError(), "drift from the CMS baseline (1 package added); nothing was deployed") {
			t.Errorf("web1 error %q, want it to say the drift blocked it", n.GetError())
		}
		if n.GetDeployCommand() != "" {
			t.Errorf("web1 got deploy command %s; drift must block it", n.GetDeployCommand())
		}
	}
}

func TestCanaryFailureHalts(t *testing.T) {
	w := newWorld(t, worldOptions{nodes: 3})
	w.agent.update("node-01", func(h *host) { h.behavior = deployFails })
	ro := w.start(nil)
	ro = w.waitState(ro.GetId(), StateHalted)

	web1 := nodeOf(t, ro, "web1")
	if web1.GetState() != NodeFailed || !strings.HasPrefix(web1.GetError(), "step install failed: dpkg: dependency problems") {
		t.Errorf("web1: %s %q, want failed with the step's error", web1.GetState(), web1.GetError())
	}
	// The failed deployment is still post-audited.
	if web1.GetPostAuditId() == "" || len(web1.GetComparisonJson()) == 0 {
		t.Error("the failed canary has no post-audit comparison")
	}
	if !strings.Contains(ro.GetReason(), "wave 1 failed") || !strings.Contains(ro.GetReason(), "web1") {
		t.Errorf("reason %q does not name wave 1 and web1", ro.GetReason())
	}
	if diff := cmp.Diff([]state.Wave{WaveFailed, WavePending, WavePending}, []state.Wave{ro.GetWaves()[0].GetState(), ro.GetWaves()[1].GetState(), ro.GetWaves()[2].GetState()}); diff != "" {
		t.Errorf("wave states (-want +got):\n%s", diff)
	}
	// Give the engine many passes: nothing of wave 2 starts.
	w.waitEvent(EventHalted)
	for range 20 {
		w.engine().wakeUp()
		time.Sleep(time.Millisecond)
	}
	for _, id := range []string{"node-02", "node-03"} {
		if cmds := w.rolloutCommands(ro.GetId(), id); len(cmds) != 0 {
			t.Errorf("%s got commands %v after the canary failed", id, cmds)
		}
	}
	if diff := cmp.Diff([]string{EventStarted, EventHalted}, w.notifier.list()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if !slices.Contains(w.logActions(ro.GetId()), "system rollout.halt") {
		t.Errorf("no rollout.halt in the audit log: %v", w.logActions(ro.GetId()))
	}
	if bs := w.baselines("node-01"); len(bs) != 0 {
		t.Errorf("the failed node's baseline advanced: %v", bs)
	}
}

func TestFailureBudget(t *testing.T) {
	tests := []struct {
		name        string
		maxFailures string
		onFailure   string
		failing     []string
		wantState   state.Rollout
		wantStates  map[string]state.Node
	}{
		{
			name: "within the budget", maxFailures: "1", failing: []string{"node-02"}, wantState: StateCompleted,
			wantStates: map[string]state.Node{"web1": NodePassed, "web2": NodeFailed, "web3": NodePassed, "web4": NodePassed},
		},
		{
			name: "over the budget halts at once", maxFailures: "1", failing: []string{"node-01", "node-02"}, wantState: StateHalted,
			wantStates: map[string]state.Node{"web1": NodeFailed, "web2": NodeFailed, "web3": NodePending, "web4": NodePending},
		},
		{
			name: "percentage rounds down", maxFailures: "49%", failing: []string{"node-01", "node-02"}, wantState: StateHalted,
			wantStates: map[string]state.Node{"web1": NodeFailed, "web2": NodeFailed, "web3": NodePending, "web4": NodePending},
		},
		{
			name: "continue goes on", maxFailures: "0", onFailure: OnFailureContinue, failing: []string{"node-01", "node-02"}, wantState: StateCompleted,
			wantStates: map[string]state.Node{"web1": NodeFailed, "web2": NodeFailed, "web3": NodePassed, "web4": NodePassed},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, worldOptions{nodes: 4})
			for _, id := range tt.failing {
				w.agent.update(id, func(h *host) { h.behavior = deployFails })
			}
			ro := w.start(func(s *controllerv1.RolloutSpec) {
				s.Strategy, s.MaxParallel, s.MaxFailures, s.OnFailure = StrategyAllAtOnce, "1", tt.maxFailures, tt.onFailure
			})
			ro = w.waitState(ro.GetId(), tt.wantState)
			if diff := cmp.Diff(tt.wantStates, states(ro)); diff != "" {
				t.Errorf("node states (-want +got):\n%s", diff)
			}
			if tt.onFailure == OnFailureContinue && ro.GetWaves()[0].GetState() != WaveFailed {
				t.Errorf("wave state %s, want failed: it exceeded its budget", ro.GetWaves()[0].GetState())
			}
		})
	}
}

func TestComparisonFailsNode(t *testing.T) {
	tests := []struct {
		name     string
		behavior int
		wantErr  string
	}{
		{name: "unexpected change", behavior: deployExtra, wantErr: "1 unexpected change: package curl"},
		{name: "missing expectation", behavior: deployNoFile, wantErr: "1 expected change missing: file " + confPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, worldOptions{nodes: 1})
			w.agent.update("node-01", func(h *host) { h.behavior = tt.behavior })
			ro := w.start(nil)
			ro = w.waitState(ro.GetId(), StateHalted)
			n := nodeOf(t, ro, "web1")
			if n.GetState() != NodeFailed || !strings.HasPrefix(n.GetError(), tt.wantErr) {
				t.Errorf("web1: %s %q, want failed with %q", n.GetState(), n.GetError(), tt.wantErr)
			}
			var res compare.Result
			if err := json.Unmarshal(n.GetComparisonJson(), &res); err != nil {
				t.Fatal(err)
			}
			if res.OK() {
				t.Errorf("the stored comparison is OK: %s", res.Summary)
			}
			if !n.GetChanged() {
				t.Error("the node's deployment changed it, but changed is false")
			}
		})
	}
}

func TestGatePausesUntilResume(t *testing.T) {
	w := newWorld(t, worldOptions{nodes: 2})
	ro := w.start(func(s *controllerv1.RolloutSpec) {
		s.Waves, s.GatesAfterWave, s.Bake = []string{"1", "100%"}, []uint32{1}, "1ms"
	})
	ro = w.waitState(ro.GetId(), StatePaused)
	if want := "gate after wave 1: run cairnctl rollout resume " + ro.GetId(); ro.GetReason() != want {
		t.Errorf("reason %q, want %q", ro.GetReason(), want)
	}
	if diff := cmp.Diff(map[string]state.Node{"web1": NodePassed, "web2": NodePending}, states(ro)); diff != "" {
		t.Errorf("node states at the gate (-want +got):\n%s", diff)
	}
	if ro.GetWaves()[0].GetBakeUntil() == "" {
		t.Error("wave 1 did not bake before the gate")
	}
	if cmds := w.rolloutCommands(ro.GetId(), "node-02"); len(cmds) != 0 {
		t.Errorf("web2 got commands %v at the gate", cmds)
	}
	if _, err := w.engine().Pause(w.ctx, operator, ro.GetId(), ""); !errors.Is(err, ErrState) {
		t.Errorf("Pause of a paused rollout: %v, want ErrState", err)
	}
	got, err := w.engine().Resume(w.ctx, operator, ro.GetId(), "canary looks fine")
	if err != nil {
		t.Fatal(err)
	}
	if got.GetState() != StateRunning || got.GetReason() != "" {
		t.Errorf("after Resume: %s %q, want running with no reason", got.GetState(), got.GetReason())
	}
	if _, err := w.engine().Resume(w.ctx, operator, ro.GetId(), ""); !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "applies to a rollout that is paused") {
		t.Errorf("Resume of a running rollout: %v, want ErrState saying what is allowed", err)
	}
	w.waitState(ro.GetId(), StateCompleted)
	wantLog := []string{"user:operator rollout.start", "system rollout.wave_done", "system rollout.gate", "user:operator rollout.resume", "system rollout.wave_done", "system rollout.complete"}
	if diff := cmp.Diff(wantLog, w.logActions(ro.GetId())); diff != "" {
		t.Errorf("audit log (-want +got):\n%s", diff)
	}
}

func TestPauseAndAbort(t *testing.T) {
	w := newWorld(t, worldOptions{nodes: 3})
	w.agent.update("node-01", func(h *host) { h.hold = true })
	ro := w.start(nil)
	w.waitFor(ro.GetId(), "web1 deploying", func(ro *controllerv1.RolloutRecord) bool {
		return nodeOf(t, ro, "web1").GetState() == NodeDeploying
	})
	signals, stop := w.engine().Subscribe(ro.GetId())
	defer stop()
	select {
	case <-signals:
	default:
	}
	before := w.get(ro.GetId()).GetRevision()
	paused, err := w.engine().Pause(w.ctx, operator, ro.GetId(), "lunch")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-signals:
	default:
		t.Error("Pause did not signal the rollout's subscribers")
	}
	if paused.GetRevision() <= before {
		t.Errorf("revision %d after Pause, was %d", paused.GetRevision(), before)
	}
	if paused.GetState() != StatePaused || paused.GetReason() != "paused by user:operator: lunch" {
		t.Errorf("after Pause: %s %q", paused.GetState(), paused.GetReason())
	}
	// The node in flight finishes; nothing new starts.
	w.agent.update("node-01", func(h *host) { h.hold = false })
	ro = w.waitFor(ro.GetId(), "web1 passed", func(ro *controllerv1.RolloutRecord) bool {
		return nodeOf(t, ro, "web1").GetState() == NodePassed
	})
	if ro.GetState() != StatePaused || nodeOf(t, ro, "web2").GetState() != NodePending {
		t.Errorf("after the node in flight finished: rollout %s, web2 %s; want paused, pending", ro.GetState(), nodeOf(t, ro, "web2").GetState())
	}
	aborted, err := w.engine().Abort(w.ctx, operator, ro.GetId(), "not today")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]state.Node{"web1": NodePassed, "web2": NodeAborted, "web3": NodeAborted}, states(aborted)); diff != "" {
		t.Errorf("after Abort (-want +got):\n%s", diff)
	}
	if _, err := w.engine().Abort(w.ctx, operator, ro.GetId(), ""); !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "is aborted") {
		t.Errorf("second Abort: %v, want ErrState saying it is aborted", err)
	}
	if _, err := w.engine().Pause(w.ctx, operator, "ro-000000000000", ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Pause of an unknown rollout: %v, want ErrNotFound", err)
	}
}

func TestManualStepWaitsForConfirmation(t *testing.T) {
	w := newWorld(t, worldOptions{nodes: 2})
	for _, id := range w.nodes {
		w.agent.update(id, func(h *host) { h.manual = true })
	}
	ro := w.start(func(s *controllerv1.RolloutSpec) { s.Waves = []string{"1", "100%"} })

	// web2 is confirmed before its turn: the agent gets it when it asks.
	if _, err := w.engine().Confirm(w.ctx, operator, ro.GetId(), "web2", manualStep, "web2 drained in advance"); err != nil {
		t.Fatalf("Confirm ahead: %v", err)
	}
	ro = w.waitFor(ro.GetId(), "web1 waiting", func(ro *controllerv1.RolloutRecord) bool {
		return nodeOf(t, ro, "web1").GetState() == NodeWaitingConfirmation
	})
	web1 := nodeOf(t, ro, "web1")
	if web1.GetWaitingStep() != manualStep || web1.GetWaitingInstructions() != "drain the node in the load balancer" {
		t.Errorf("web1 waits for %q (%q)", web1.GetWaitingStep(), web1.GetWaitingInstructions())
	}
	if !strings.Contains(ro.GetWaitingFor(), "confirmation of step "+manualStep+" on web1") {
		t.Errorf("waiting_for %q does not ask for the confirmation", ro.GetWaitingFor())
	}
	for _, bad := range []struct{ node, step, note string }{
		{"web1", "no-such-step", "x"},
		{"web9", manualStep, "x"},
		{"web1", manualStep, ""},
	} {
		if _, err := w.engine().Confirm(w.ctx, operator, ro.GetId(), bad.node, bad.step, bad.note); !errors.Is(err, ErrInvalid) {
			t.Errorf("Confirm(%s, %s, %q): %v, want ErrInvalid", bad.node, bad.step, bad.note, err)
		}
	}
	if _, err := w.engine().Confirm(w.ctx, operator, ro.GetId(), "web1", manualStep, "drained web1"); err != nil {
		t.Fatal(err)
	}
	ro = w.waitState(ro.GetId(), StateCompleted)
	if diff := cmp.Diff(map[string]state.Node{"web1": NodePassed, "web2": NodePassed}, states(ro)); diff != "" {
		t.Errorf("node states (-want +got):\n%s", diff)
	}
	var got []string
	for _, c := range w.fleet.confirmations() {
		got = append(got, c.GetStep()+" "+c.GetBy()+" "+c.GetNote())
		if c.GetCommandId() == "" || c.GetAt() == "" {
			t.Errorf("confirmation %v lacks its command or time", c)
		}
	}
	want := []string{manualStep + " user:operator drained web1", manualStep + " user:operator web2 drained in advance"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("confirmations sent to agents (-want +got):\n%s", diff)
	}
	if n := nodeOf(t, ro, "web1"); len(n.GetConfirmations()) != 1 || n.GetConfirmations()[0].GetBy() != operator {
		t.Errorf("web1 confirmations: %v", n.GetConfirmations())
	}
	if _, err := w.engine().Confirm(w.ctx, operator, ro.GetId(), "web1", manualStep, "again"); !errors.Is(err, ErrState) {
		t.Errorf("Confirm on a passed node: %v, want ErrState", err)
	}
}

func TestUnreachablePolicies(t *testing.T) {
	tests := []struct {
		name        string
		unreachable string
		// reconnect: web1 connects once it waits to reconnect.
		reconnect  bool
		wantState  state.Rollout
		wantWeb1   state.Node
		wantErr    string
		wantCounts string
		wantMetric string
	}{
		{name: "fail", unreachable: "fail", wantState: StateHalted, wantWeb1: NodeUnreachable, wantErr: "unreachable: not connected when its turn came",
			wantCounts: (&controllerv1.RolloutCounts{Nodes: 2, Pending: 1, Unreachable: 1}).String(), wantMetric: OutcomeUnreachable},
		{name: "skip", unreachable: "skip", wantState: StateCompleted, wantWeb1: NodeSkipped, wantErr: "unreachable, skipped by policy; not connected when its turn came",
			wantCounts: (&controllerv1.RolloutCounts{Nodes: 2, Passed: 1, Skipped: 1}).String(), wantMetric: OutcomeSkipped},
		{name: "wait, never connects", unreachable: "wait:20ms", wantState: StateHalted, wantWeb1: NodeUnreachable, wantErr: "unreachable: not connected within the wait of 20ms",
			wantCounts: (&controllerv1.RolloutCounts{Nodes: 2, Pending: 1, Unreachable: 1}).String(), wantMetric: OutcomeUnreachable},
		{name: "wait, connects", unreachable: "wait:1h", reconnect: true, wantState: StateCompleted, wantWeb1: NodePassed,
			wantCounts: (&controllerv1.RolloutCounts{Nodes: 2, Passed: 2}).String(), wantMetric: OutcomePassed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, worldOptions{nodes: 2})
			w.fleet.setConnected("node-01", false)
			ro := w.start(func(s *controllerv1.RolloutSpec) { s.Unreachable = tt.unreachable })
			if tt.reconnect {
				got := w.waitFor(ro.GetId(), "web1 waiting to reconnect", func(ro *controllerv1.RolloutRecord) bool {
					return nodeOf(t, ro, "web1").GetUnreachableSince() != ""
				})
				if n := nodeOf(t, got, "web1"); n.GetState() != NodePending || !strings.Contains(got.GetWaitingFor(), "1 node to reconnect: web1") {
					t.Errorf("web1 %s, waiting for %q; want pending, waiting for web1 to reconnect", n.GetState(), got.GetWaitingFor())
				}
				w.fleet.setConnected("node-01", true)
			}
			ro = w.waitState(ro.GetId(), tt.wantState)
			if tt.wantState == StateCompleted {
				w.waitEvent(EventCompleted)
			} else {
				w.waitEvent(EventHalted)
			}
			web1 := nodeOf(t, ro, "web1")
			if web1.GetState() != tt.wantWeb1 || web1.GetError() != tt.wantErr {
				t.Errorf("web1: %s %q, want %s %q", web1.GetState(), web1.GetError(), tt.wantWeb1, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantCounts, ro.GetCounts().String()); diff != "" {
				t.Errorf("counts (-want +got):\n%s", diff)
			}
			if got := w.metrics.finished(); !slices.Contains(got, tt.wantMetric) {
				t.Errorf("metrics %v lack %s", got, tt.wantMetric)
			}
		})
	}
}

func TestUnreachableWhileInFlight(t *testing.T) {
	w := newWorld(t, worldOptions{nodes: 1})
	w.agent.update("node-01", func(h *host) { h.hold = true })
	ro := w.start(func(s *controllerv1.RolloutSpec) { s.Unreachable = "wait:30ms" })
	w.waitFor(ro.GetId(), "web1 deploying", func(ro *controllerv1.RolloutRecord) bool {
		return nodeOf(t, ro, "web1").GetState() == NodeDeploying
	})
	w.fleet.setConnected("node-01", false)
	ro = w.waitState(ro.GetId(), StateHalted)
	n := nodeOf(t, ro, "web1")
	if n.GetState() != NodeUnreachable || !strings.Contains(n.GetError(), "during deploying") {
		t.Errorf("web1: %s %q, want unreachable during deploying", n.GetState(), n.GetError())
	}
	c, err := w.engine().command(w.ctx, n.GetDeployCommand())
	if err != nil {
		t.Fatal(err)
	}
	if c.GetState() != controllerv1.CommandRecord_STATE_FAILED || !strings.Contains(c.GetError(), "cancelled") {
		t.Errorf("the deploy command is %s %q; want it cancelled so it is not delivered later", c.GetState(), c.GetError())
	}

	// Its deployment may have run on the agent all the same: a rollback
	// includes the node, and the audit after it proves where it is.
	w.agent.update("node-01", func(h *host) { h.hold = false })
	w.fleet.setConnected("node-01", true)
	if _, err := w.engine().Rollback(w.ctx, operator, ro.GetId(), "undo"); err != nil {
		t.Fatal(err)
	}
	ro = w.waitState(ro.GetId(), StateRolledBack)
	if n := nodeOf(t, ro, "web1"); n.GetState() != NodeRolledBack || n.GetRollbackAuditId() == "" {
		t.Errorf("web1 after the rollback: %s, after-rollback audit %q; want rolled back and proven", n.GetState(), n.GetRollbackAuditId())
	}
}

func TestRollbackInReverseWaveOrder(t *testing.T) {
	w := newWorld(t, worldOptions{nodes: 3})
	ro := w.start(nil)
	w.waitState(ro.GetId(), StateCompleted)
	postAudits := map[string]string{}
	for _, n := range w.get(ro.GetId()).GetNodes() {
		postAudits[n.GetNodeId()] = n.GetPostAuditId()
	}
	got, err := w.engine().Rollback(w.ctx, operator, ro.GetId(), "business asked")
	if err != nil {
		t.Fatal(err)
	}
	if got.GetState() != StateRollingBack || got.GetRollbackRequestedBy() != operator || got.GetRollbackStartedAt() == "" {
		t.Errorf("after Rollback: %s, requested by %q at %q", got.GetState(), got.GetRollbackRequestedBy(), got.GetRollbackStartedAt())
	}
	ro = w.waitState(ro.GetId(), StateRolledBack)
	w.waitEvent(EventRolledBack)

	want := []string{"node-01 apply", "node-02 apply", "node-03 apply", "node-03 rollback", "node-02 rollback", "node-01 rollback"}
	if diff := cmp.Diff(want, w.agent.history()); diff != "" {
		t.Errorf("what the agents ran, in order (-want +got):\n%s", diff)
	}
	for _, n := range ro.GetNodes() {
		if n.GetState() != NodeRolledBack {
			t.Errorf("%s: %s %q, want rolled_back", n.GetHostname(), n.GetState(), n.GetError())
		}
		var rep diff.Report
		if err := json.Unmarshal(n.GetRollbackDiffJson(), &rep); err != nil {
			t.Fatalf("%s: rollback_diff_json: %v", n.GetHostname(), err)
		}
		if rep.HasChanges() || n.GetRollbackAuditId() == "" || n.GetRollbackReport() == nil {
			t.Errorf("%s: rollback proof %q, after-rollback audit %q, report %v", n.GetHostname(), rep.Summary, n.GetRollbackAuditId(), n.GetRollbackReport())
		}
		// The CMS baseline went back: a new version at the after-rollback audit.
		bs := w.baselines(n.GetNodeId())
		if len(bs) != 2 || bs[0].GetAuditId() != postAudits[n.GetNodeId()] || bs[1].GetAuditId() != n.GetRollbackAuditId() || bs[1].GetReason() != "rolled back by "+ro.GetId() {
			t.Errorf("%s: baselines %v", n.GetHostname(), bs)
		}
	}
	if ro.GetCounts().GetRolledBack() != 3 {
		t.Errorf("counts: %v, want 3 rolled back", ro.GetCounts())
	}
	if events := w.notifier.list(); events[len(events)-1] != EventRolledBack {
		t.Errorf("events %v do not end with %s", events, EventRolledBack)
	}
	if _, err := w.engine().Rollback(w.ctx, operator, ro.GetId(), ""); !errors.Is(err, ErrState) {
		t.Errorf("second Rollback: %v, want ErrState", err)
	}
}

func TestRollbackByPolicy(t *testing.T) {
	tests := []struct {
		name     string
		behavior int
		// wantCommands are web1's commands: a deployment the agent undid
		// itself only needs the audit that proves it.
		wantCommands []string
	}{
		{name: "unexpected change rolled back", behavior: deployExtra, wantCommands: []string{"audit", "deploy apply", "audit", "deploy rollback", "audit"}},
		{name: "agent already rolled back", behavior: deployFailsRolledBack, wantCommands: []string{"audit", "deploy apply", "audit", "audit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, worldOptions{nodes: 2})
			w.agent.update("node-01", func(h *host) { h.behavior = tt.behavior })
			ro := w.start(func(s *controllerv1.RolloutSpec) { s.OnFailure = OnFailureRollback })
			ro = w.waitState(ro.GetId(), StateRolledBack)
			if ro.GetRollbackRequestedBy() != "policy" {
				t.Errorf("rollback requested by %q, want policy", ro.GetRollbackRequestedBy())
			}
			if diff := cmp.Diff(map[string]state.Node{"web1": NodeRolledBack, "web2": NodeAborted}, states(ro)); diff != "" {
				t.Errorf("node states (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantCommands, w.rolloutCommands(ro.GetId(), "node-01")); diff != "" {
				t.Errorf("web1 commands (-want +got):\n%s", diff)
			}
			if cmds := w.rolloutCommands(ro.GetId(), "node-02"); len(cmds) != 0 {
				t.Errorf("web2 got %v", cmds)
			}
			wantLog := []string{"user:operator rollout.start", "system rollout.halt", "system rollout.rollback", "system rollout.rolled_back"}
			if diff := cmp.Diff(wantLog, w.logActions(ro.GetId())); diff != "" {
				t.Errorf("audit log (-want +got):\n%s", diff)
			}
			if bs := w.baselines("node-01"); len(bs) != 0 {
				t.Errorf("web1 never passed, but its baselines are %v", bs)
			}
		})
	}
}

func TestRestartDoesNotReissueDeploy(t *testing.T) {
	w := newWorld(t, worldOptions{nodes: 3, bolt: true})
	w.agent.update("node-02", func(h *host) { h.hold = true })
	ro := w.start(nil)
	ro = w.waitFor(ro.GetId(), "web2 deploying", func(ro *controllerv1.RolloutRecord) bool {
		return nodeOf(t, ro, "web2").GetState() == NodeDeploying
	})
	deployID := nodeOf(t, ro, "web2").GetDeployCommand()

	// Kill the controller mid-wave: a new engine on the reopened file.
	w.restart()
	if got := nodeOf(t, w.get(ro.GetId()), "web2").GetDeployCommand(); got != deployID {
		t.Fatalf("web2's deploy command is %s after the restart, was %s", got, deployID)
	}
	w.agent.update("node-02", func(h *host) { h.hold = false })
	ro = w.waitState(ro.GetId(), StateCompleted)

	for _, n := range ro.GetNodes() {
		if diff := cmp.Diff([]string{"audit", "deploy apply", "audit"}, w.rolloutCommands(ro.GetId(), n.GetNodeId())); diff != "" {
			t.Errorf("%s: commands (-want +got):\n%s", n.GetHostname(), diff)
		}
		if got := w.agent.executions(n.GetDeployCommand()); got != 1 {
			t.Errorf("%s: the deploy command ran %d times, want once", n.GetHostname(), got)
		}
	}
	if diff := cmp.Diff([]string{"node-01 apply", "node-02 apply", "node-03 apply"}, w.agent.history()); diff != "" {
		t.Errorf("deployments (-want +got):\n%s", diff)
	}
}

func TestStartRefuses(t *testing.T) {
	tests := []struct {
		name string
		// prepare changes the world before Start and returns the spec.
		prepare func(t *testing.T, w *world) *controllerv1.RolloutSpec
		want    error
		says    string
		// planWarns: Plan succeeds and warns with says.
		planWarns bool
	}{
		{
			name: "release not approved",
			prepare: func(t *testing.T, w *world) *controllerv1.RolloutSpec {
				rec := w.createRelease("release-2.5.0.yaml", false)
				return w.spec(func(s *controllerv1.RolloutSpec) { s.Release.Version = rec.GetVersion() })
			},
			want: ErrNotApproved, says: "webshop@2.5.0 is sealed",
		},
		{
			name: "approval bound to another digest",
			prepare: func(t *testing.T, w *world) *controllerv1.RolloutSpec {
				err := w.store().Update(w.ctx, func(tx store.Tx) error {
					rec, err := tx.Release("webshop", "2.4.0")
					if err != nil {
						return err
					}
					rec.Decisions[0].ReleaseDigest = strings.Repeat("0", 64)
					return tx.PutRelease(rec)
				})
				if err != nil {
					t.Fatal(err)
				}
				return w.spec(nil)
			},
			want: ErrNotApproved, says: "approvals bound to another digest do not count: user:approver",
		},
		{
			name: "signature does not verify",
			prepare: func(t *testing.T, w *world) *controllerv1.RolloutSpec {
				err := w.store().Update(w.ctx, func(tx store.Tx) error {
					rec, err := tx.Release("webshop", "2.4.0")
					if err != nil {
						return err
					}
					rec.Signature[0] ^= 0xff
					return tx.PutRelease(rec)
				})
				if err != nil {
					t.Fatal(err)
				}
				return w.spec(nil)
			},
			want: ErrNotApproved, says: "signature does not verify",
		},
		{
			name: "overlapping rollout",
			prepare: func(t *testing.T, w *world) *controllerv1.RolloutSpec {
				w.agent.update("node-01", func(h *host) { h.hold = true })
				first := w.start(nil)
				t.Cleanup(func() { w.engine().Abort(w.ctx, operator, first.GetId(), "") })
				return w.spec(func(s *controllerv1.RolloutSpec) { s.Selector = map[string]string{"env": "prod"} })
			},
			want: ErrState, says: "is running and includes 2 of these nodes: web1, web2", planWarns: true,
		},
		{
			name: "selector and service",
			prepare: func(t *testing.T, w *world) *controllerv1.RolloutSpec {
				return w.spec(func(s *controllerv1.RolloutSpec) { s.Service = "webshop" })
			},
			want: ErrInvalid, says: "not both",
		},
		{
			name: "no nodes",
			prepare: func(t *testing.T, w *world) *controllerv1.RolloutSpec {
				return w.spec(func(s *controllerv1.RolloutSpec) { s.Selector = map[string]string{"env": "dev"} })
			},
			want: ErrNoNodes, says: "env=dev",
		},
		{
			name: "malformed spec",
			prepare: func(t *testing.T, w *world) *controllerv1.RolloutSpec {
				return w.spec(func(s *controllerv1.RolloutSpec) { s.MaxParallel = "many" })
			},
			want: ErrInvalid, says: `max_parallel "many"`,
		},
		{
			name: "unknown release",
			prepare: func(t *testing.T, w *world) *controllerv1.RolloutSpec {
				return w.spec(func(s *controllerv1.RolloutSpec) { s.Release.Version = "9.9.9" })
			},
			want: store.ErrNotFound, says: "webshop@9.9.9",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, worldOptions{nodes: 2})
			spec := tt.prepare(t, w)
			ro, err := w.engine().Start(w.ctx, operator, spec)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("Start: %v (rollout %v), want %v saying %q", err, ro, tt.want, tt.says)
			}
			// Plan checks the same.
			spec.SkipDryRun = true
			plan, err := w.engine().Plan(w.ctx, operator, spec)
			switch {
			case tt.planWarns && err != nil:
				t.Errorf("Plan: %v", err)
			case tt.planWarns && !slices.ContainsFunc(plan.GetWarnings(), func(s string) bool { return strings.Contains(s, tt.says) }):
				t.Errorf("Plan warnings %q do not say %q", plan.GetWarnings(), tt.says)
			case !tt.planWarns && !errors.Is(err, tt.want):
				t.Errorf("Plan: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSLABreaches(t *testing.T) {
	w := newWorld(t, worldOptions{nodes: 2})
	start := day(t, time.Wednesday, "12:00")
	w.clock.set(start)
	w.agent.update("node-01", func(h *host) { h.hold = true })
	w.agent.update("node-02", func(h *host) { h.behavior = deployFails })
	ro := w.start(func(s *controllerv1.RolloutSpec) { s.Strategy, s.MaxFailures = StrategyAllAtOnce, "1" })
	w.waitFor(ro.GetId(), "web1 deploying", func(ro *controllerv1.RolloutRecord) bool {
		return nodeOf(t, ro, "web1").GetState() == NodeDeploying
	})
	// The release's SLA: 10m a node, 1h the rollout, 90% success.
	w.clock.set(start.Add(2 * time.Hour))
	w.agent.update("node-01", func(h *host) { h.hold = false })
	ro = w.waitState(ro.GetId(), StateCompleted)
	w.waitEvent(EventCompleted)
	web1, web2 := nodeOf(t, ro, "web1"), nodeOf(t, ro, "web2")
	if !web1.GetSlaBreached() || web1.GetDurationSeconds() != 7200 || web2.GetSlaBreached() {
		t.Errorf("web1 breached %v after %vs, web2 breached %v; want web1 only, after 7200s", web1.GetSlaBreached(), web1.GetDurationSeconds(), web2.GetSlaBreached())
	}
	w.metrics.mu.Lock()
	got := slices.Clone(w.metrics.breaches)
	w.metrics.mu.Unlock()
	slices.Sort(got)
	if diff := cmp.Diff([]string{BreachNodeDuration, BreachRolloutDuration, BreachSuccessRate}, got); diff != "" {
		t.Errorf("SLA breaches (-want +got):\n%s", diff)
	}
}

func TestIncompletePreAuditDeploysNothing(t *testing.T) {
	w := newWorld(t, worldOptions{nodes: 1})
	w.agent.update("node-01", func(h *host) { h.broken = "services" })
	ro := w.start(nil)
	ro = w.waitState(ro.GetId(), StateHalted)
	n := nodeOf(t, ro, "web1")
	if want := "pre-audit incomplete: 1 collector failed (services)"; n.GetState() != NodeFailed || !strings.HasPrefix(n.GetError(), want) {
		t.Errorf("web1: %s %q, want failed with %q", n.GetState(), n.GetError(), want)
	}
	if diff := cmp.Diff([]string{"audit"}, w.rolloutCommands(ro.GetId(), "node-01")); diff != "" {
		t.Errorf("commands (-want +got):\n%s", diff)
	}
}

// A rollout that was aborted (or halted) while a node was still deploying
// keeps working on that node: no other rollout may start on it, and it
// may not be rolled back while another rollout works on its nodes.
func TestStartRefusesNodeStillInFlight(t *testing.T) {
	w := newWorld(t, worldOptions{nodes: 2})
	w.agent.update("node-01", func(h *host) { h.hold = true })
	first := w.start(func(s *controllerv1.RolloutSpec) { s.Waves = []string{"1", "100%"} })
	w.waitFor(first.GetId(), "web1 deploying", func(ro *controllerv1.RolloutRecord) bool {
		return nodeOf(t, ro, "web1").GetState() == NodeDeploying
	})
	if _, err := w.engine().Abort(w.ctx, operator, first.GetId(), "stop"); err != nil {
		t.Fatal(err)
	}
	second, err := w.engine().Start(w.ctx, operator, w.spec(nil))
	if !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "includes 1 of these nodes: web1") {
		t.Fatalf("Start over a node still deploying in an aborted rollout: %v (rollout %v), want ErrState naming web1", err, second.GetId())
	}
	spec := w.spec(nil)
	spec.SkipDryRun = true
	plan, err := w.engine().Plan(w.ctx, operator, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(plan.GetWarnings(), func(s string) bool { return strings.Contains(s, "web1") }) {
		t.Errorf("Plan warnings %q do not name web1", plan.GetWarnings())
	}
}

func TestRollbackRefusedWhileAnotherRolloutWorksOnItsNodes(t *testing.T) {
	w := newWorld(t, worldOptions{nodes: 1})
	first := w.start(nil)
	w.waitState(first.GetId(), StateCompleted)
	w.agent.update("node-01", func(h *host) { h.hold = true })
	second := w.start(nil)
	t.Cleanup(func() { w.engine().Abort(w.ctx, operator, second.GetId(), "") })
	w.waitFor(second.GetId(), "web1 deploying", func(ro *controllerv1.RolloutRecord) bool {
		return nodeOf(t, ro, "web1").GetState() == NodeDeploying
	})
	ro, err := w.engine().Rollback(w.ctx, operator, first.GetId(), "undo the first")
	if !errors.Is(err, ErrState) || !strings.Contains(err.Error(), second.GetId()) {
		t.Fatalf("Rollback of %s while %s deploys its node: %v (state %s), want ErrState naming %s", first.GetId(), second.GetId(), err, ro.GetState(), second.GetId())
	}
	if got := w.get(first.GetId()).GetState(); got != StateCompleted {
		t.Errorf("first rollout is %s after a refused rollback, want %s", got, StateCompleted)
	}
}

// Rolling back a rollout whose nodes a later rollout changed would undo
// the later one: it is refused until the later one is rolled back.
func TestRollbackRefusedOverALaterRollout(t *testing.T) {
	w := newWorld(t, worldOptions{nodes: 1})
	first := w.start(nil)
	w.waitState(first.GetId(), StateCompleted)
	second := w.start(nil)
	w.waitState(second.GetId(), StateCompleted)

	_, err := w.engine().Rollback(w.ctx, operator, first.GetId(), "undo the first")
	if !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "node web1 was changed by the later rollout "+second.GetId()) {
		t.Fatalf("Rollback of %s after %s changed its node: %v, want ErrState naming the later rollout", first.GetId(), second.GetId(), err)
	}
	if got := w.get(first.GetId()).GetState(); got != StateCompleted {
		t.Errorf("first rollout is %s after a refused rollback, want %s", got, StateCompleted)
	}
	if _, err := w.engine().Rollback(w.ctx, operator, second.GetId(), "undo the second"); err != nil {
		t.Fatalf("Rollback of the later rollout: %v", err)
	}
	w.waitState(second.GetId(), StateRolledBack)
	if ro, err := w.engine().Rollback(w.ctx, operator, first.GetId(), "now the first"); err != nil || ro.GetState() != StateRollingBack {
		t.Fatalf("Rollback of %s once %s is rolled back: %v (state %s), want rolling back", first.GetId(), second.GetId(), err, ro.GetState())
	}
}

// A manual rollback step waits for an operator's confirmation like a
// deployment's; a confirmation of the deployment's step of the same name
// does not confirm it.
func TestManualRollbackStepWaitsForConfirmation(t *testing.T) {
	w := newWorld(t, worldOptions{nodes: 1})
	w.agent.update("node-01", func(h *host) { h.manualRollback, h.hold = true, true })
	ro := w.start(nil)
	w.waitFor(ro.GetId(), "web1 deploying", func(ro *controllerv1.RolloutRecord) bool {
		return nodeOf(t, ro, "web1").GetState() == NodeDeploying
	})
	// Given while the node deploys: it confirms nothing of the rollback.
	if _, err := w.engine().Confirm(w.ctx, operator, ro.GetId(), "web1", rollbackStep, "too early"); err != nil {
		t.Fatalf("Confirm of a deploying node: %v", err)
	}
	w.agent.update("node-01", func(h *host) { h.hold = false })
	w.waitState(ro.GetId(), StateCompleted)
	if _, err := w.engine().Confirm(w.ctx, operator, ro.GetId(), "web1", rollbackStep, "still too early"); !errors.Is(err, ErrState) {
		t.Errorf("Confirm of a passed node: %v, want ErrState", err)
	}
	if _, err := w.engine().Rollback(w.ctx, operator, ro.GetId(), "undo"); err != nil {
		t.Fatal(err)
	}
	ro = w.waitFor(ro.GetId(), "web1's rollback waiting", func(ro *controllerv1.RolloutRecord) bool {
		return nodeOf(t, ro, "web1").GetWaitingStep() == rollbackStep
	})
	if n := nodeOf(t, ro, "web1"); n.GetState() != NodeRollingBack {
		t.Errorf("web1 is %s while its rollback waits, want %s", n.GetState(), NodeRollingBack)
	}
	if !strings.Contains(ro.GetWaitingFor(), "confirmation of step "+rollbackStep+" on web1") {
		t.Errorf("waiting_for %q does not ask for the confirmation", ro.GetWaitingFor())
	}
	if _, err := w.engine().Confirm(w.ctx, operator, ro.GetId(), "web1", rollbackStep, "removed from the LB"); err != nil {
		t.Fatalf("Confirm of the rollback step: %v", err)
	}
	ro = w.waitState(ro.GetId(), StateRolledBack)
	if diff := cmp.Diff(map[string]state.Node{"web1": NodeRolledBack}, states(ro)); diff != "" {
		t.Errorf("node states (-want +got):\n%s", diff)
	}
	var got []string
	for _, c := range w.fleet.confirmations() {
		got = append(got, c.GetCommandId()+" "+c.GetStep()+" "+c.GetNote())
	}
	want := []string{nodeOf(t, ro, "web1").GetRollbackCommand() + " " + rollbackStep + " removed from the LB"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("confirmations sent to agents (-want +got):\n%s", diff)
	}
}
