package rollout

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/controller/store"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

func TestPlan(t *testing.T) {
	w := newWorld(t, worldOptions{nodes: 3})
	w.baseline("node-01")
	w.agent.update("node-01", func(h *host) { h.packages["vim"] = "9.0" })
	w.auditNow("node-01")
	w.agent.update("node-02", func(h *host) { h.packages["libfoo"] = "1.5" })
	w.auditNow("node-02")
	w.fleet.setConnected("node-03", false)
	w.clock.set(day(t, time.Wednesday, "12:00"))

	plan, err := w.engine().Plan(w.ctx, operator, w.spec(func(s *controllerv1.RolloutSpec) {
		s.Window, s.GatesAfterWave = "Sat 22:00-Sun 04:00", []uint32{1}
	}))
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}

	wantWaves := []*controllerv1.PlannedWave{
		{Index: 1, NodeIds: []string{"node-01"}, GateAfter: true, Bake: "0s"},
		{Index: 2, NodeIds: []string{"node-02"}, Bake: "0s"},
		{Index: 3, NodeIds: []string{"node-03"}, Bake: "0s"},
	}
	if diff := cmp.Diff(wantWaves, plan.GetWaves(), protocmp.Transform()); diff != "" {
		t.Errorf("waves (-want +got):\n%s", diff)
	}
	actions := []string{"steps[0] install: install webshop 2.4.0 (now 2.3.1)"}
	changes := []string{"package webshop present 2.4.0", "file " + confPath + " present sha256 " + confAfter[:12]}
	wantNodes := []*controllerv1.NodePlan{
		{NodeId: "node-01", Hostname: "web1", Wave: 1, Connected: true, HasBaseline: true, DriftChanges: 1, DriftSummary: "1 package added",
			DryRunDone: true, DryRunOk: true, WouldChange: true, Actions: actions, Changes: changes},
		{NodeId: "node-02", Hostname: "web2", Wave: 2, Connected: true, KnownErrors: []string{"KE-12: webshop leaks memory with libfoo before 2.0"},
			DryRunDone: true, DryRunOk: true, WouldChange: true, Actions: actions, Changes: changes},
		{NodeId: "node-03", Hostname: "web3", Wave: 3, DryRunError: "not connected"},
	}
	if diff := cmp.Diff(wantNodes, plan.GetNodes(), protocmp.Transform()); diff != "" {
		t.Errorf("nodes (-want +got):\n%s", diff)
	}
	if want := "3 nodes: webshop 2.3.1 → 2.4.0; 2 files changed"; plan.GetSummary() != want {
		t.Errorf("summary %q, want %q", plan.GetSummary(), want)
	}
	wantWarnings := []string{
		"1 node is not connected: web3",
		"1 node has drifted from the CMS baseline, drift blocks their deployment (on_drift block): web1 (1 change)",
		"2 nodes have no CMS baseline to check drift against: web2, web3",
		"known error KE-12: webshop leaks memory with libfoo before 2.0 matches web2",
		`the window "Sat 22:00-Sun 04:00" is closed now; it opens at 2026-03-07T22:00:00Z`,
	}
	if diff := cmp.Diff(wantWarnings, plan.GetWarnings()); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if plan.GetNextWindow() != "2026-03-07T22:00:00Z" || plan.GetMaxParallel() != 1 || plan.GetReleaseDigest() != w.release.GetDigest() {
		t.Errorf("next window %q, max parallel %d, digest %q", plan.GetNextWindow(), plan.GetMaxParallel(), plan.GetReleaseDigest())
	}
	if s := plan.GetSpec(); s.GetStrategy() != StrategyCanary || s.GetOnFailure() != OnFailureStop || s.GetUnreachable() != UnreachableFail {
		t.Errorf("the plan's spec lacks its defaults: %v", s)
	}

	// A plan creates no rollout; its dry runs are the operator's deploy
	// commands with action plan and no rollout.
	if ros, err := w.engine().List(w.ctx, ""); err != nil || len(ros) != 0 {
		t.Errorf("List after Plan: %v, %v; want none", ros, err)
	}
	err = w.store().View(w.ctx, func(tx store.Tx) error {
		for _, id := range []string{"node-01", "node-02", "node-03"} {
			cmds, err := tx.NodeCommands(id)
			if err != nil {
				return err
			}
			var got []string
			for _, c := range cmds {
				got = append(got, c.GetKind()+" "+c.GetDeploy().GetAction()+" "+c.GetCreatedBy()+" "+c.GetRolloutId()+c.GetState().String())
			}
			var want []string
			if id != "node-03" {
				want = []string{"deploy plan user:operator STATE_SUCCEEDED"}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: commands (-want +got):\n%s", id, diff)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPlanWithoutDryRun(t *testing.T) {
	w := newWorld(t, worldOptions{nodes: 2})
	w.auditNow("node-01")
	plan, err := w.engine().Plan(w.ctx, operator, w.spec(func(s *controllerv1.RolloutSpec) { s.SkipDryRun = true }))
	if err != nil {
		t.Fatal(err)
	}
	// No dry run: the versions come from the release's expectations.
	if want := "2 nodes: webshop (not installed), 2.3.1 → 2.4.0"; plan.GetSummary() != want {
		t.Errorf("summary %q, want %q", plan.GetSummary(), want)
	}
	for _, n := range plan.GetNodes() {
		if n.GetDryRunDone() {
			t.Errorf("%s: dry run done without a dry run", n.GetHostname())
		}
	}
	if cmds := w.rolloutCommands("", "node-01"); len(cmds) != 0 {
		t.Errorf("commands sent without a dry run: %v", cmds)
	}
}

func TestPlanDryRunTimesOut(t *testing.T) {
	w := newWorld(t, worldOptions{nodes: 1})
	w.stopEngine()
	w.mu.Lock()
	w.eng = New(Config{Store: w.st, Blobs: w.blobs, DML: w.dml, Fleet: w.fleet, ReleaseKeys: staticKeys{w.pub}, PlanTimeout: 20 * time.Millisecond, Tick: 5 * time.Millisecond})
	w.mu.Unlock()
	// The agent never answers: the node is connected for the engine,
	// but the fake agent does not see it.
	w.agent.mu.Lock()
	delete(w.agent.hosts, "node-01")
	w.agent.mu.Unlock()
	plan, err := w.engine().Plan(w.ctx, operator, w.spec(nil))
	if err != nil {
		t.Fatal(err)
	}
	n := plan.GetNodes()[0]
	if n.GetDryRunDone() || n.GetDryRunError() != "no answer within 20ms" {
		t.Errorf("dry run done %v, error %q; want no answer within 20ms", n.GetDryRunDone(), n.GetDryRunError())
	}
	var states []string
	err = w.store().View(w.ctx, func(tx store.Tx) error {
		cmds, err := tx.NodeCommands("node-01")
		for _, c := range cmds {
			states = append(states, c.GetState().String()+" "+c.GetError())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"STATE_FAILED dry run expired: no answer within 20ms"}, states); diff != "" {
		t.Errorf("the unanswered dry run (-want +got):\n%s", diff)
	}
}

func TestWindowHoldsNodes(t *testing.T) {
	w := newWorld(t, worldOptions{nodes: 1})
	w.clock.set(day(t, time.Wednesday, "12:00"))
	ro := w.start(func(s *controllerv1.RolloutSpec) { s.Window = "Sat 22:00-Sun 04:00" })
	ro = w.waitFor(ro.GetId(), "the window", func(ro *controllerv1.RolloutRecord) bool { return ro.GetWaitingFor() != "" })
	if want := "window opens at 2026-03-07 22:00:00 UTC"; ro.GetWaitingFor() != want {
		t.Errorf("waiting for %q, want %q", ro.GetWaitingFor(), want)
	}
	if cmds := w.rolloutCommands(ro.GetId(), "node-01"); len(cmds) != 0 || nodeOf(t, ro, "web1").GetState() != NodePending {
		t.Errorf("web1 %s with commands %v while the window is closed", nodeOf(t, ro, "web1").GetState(), cmds)
	}
	if wv := ro.GetWaves()[0]; wv.GetState() != WavePending || wv.GetStartedAt() != "" {
		t.Errorf("wave 1 is %s, started at %q, while the window is closed", wv.GetState(), wv.GetStartedAt())
	}
	w.clock.set(day(t, time.Saturday, "22:30"))
	ro = w.waitState(ro.GetId(), StateCompleted)
	if ro.GetWaitingFor() != "" {
		t.Errorf("a completed rollout waits for %q", ro.GetWaitingFor())
	}
}

func TestListGet(t *testing.T) {
	w := newWorld(t, worldOptions{nodes: 2})
	first := w.start(func(s *controllerv1.RolloutSpec) { s.Selector = map[string]string{"service": "webshop"} })
	w.waitState(first.GetId(), StateCompleted)
	second := w.start(nil)
	w.waitState(second.GetId(), StateCompleted)

	for _, tt := range []struct {
		filter string
		want   []string
	}{
		{"", []string{second.GetId(), first.GetId()}},
		{"webshop", []string{second.GetId(), first.GetId()}},
		{"webshop@2.4.0", []string{second.GetId(), first.GetId()}},
		{"webshop@1.0.0", nil},
		{"other", nil},
	} {
		ros, err := w.engine().List(w.ctx, tt.filter)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range ros {
			got = append(got, r.GetId())
			if len(r.GetNodes()) != 0 {
				t.Errorf("List returned nodes of %s", r.GetId())
			}
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("List(%q) (-want +got):\n%s", tt.filter, diff)
		}
	}
}
