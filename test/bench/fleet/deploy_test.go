package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/internal/compare"
	"github.com/cairn-ops/cairn/internal/manifest"
	"github.com/cairn-ops/cairn/plugins/preflight"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// repoRoot is the repository, from this package's directory.
var repoRoot = filepath.Join("..", "..", "..")

func testRelease(t *testing.T) *manifest.Manifest {
	t.Helper()
	m, err := manifest.Parse(releaseYAML, "release.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestFixtureMatchesRelease checks the simulation's premise: the audits
// of the after-state differ from the before-state by exactly what
// release.yaml declares, as the controller's three-way compare sees it
// (the manifest's expect merged with the file plugin's declared change),
// and the before-state is back after a rollback.
func TestFixtureMatchesRelease(t *testing.T) {
	ctx := context.Background()
	m := testRelease(t)
	pre := preflight.Check(ctx, m, preflight.Options{})
	if len(pre.Problems) > 0 {
		t.Fatalf("release.yaml: %v", pre.Problems)
	}
	exp := manifest.MergeDeclared(m, pre.Declared).Expect
	fix, err := newFixture(ctx, repoRoot, t.TempDir(), m)
	if err != nil {
		t.Fatal(err)
	}
	audit := func(state string) *inventoryv1.Audit {
		t.Helper()
		doc, err := fix.document(ctx, state, nil, trackOf(m))
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	before, after := audit(stateBefore), audit(stateAfter)

	tests := []struct {
		name         string
		from, to     *inventoryv1.Audit
		wantExpected []string
		wantMissing  []string
		wantOK       bool
	}{
		{
			name: "deployed", from: before, to: after,
			wantExpected: []string{"packages nginx", "files /etc/nginx/conf.d/fleet.conf"},
			wantOK:       true,
		},
		{
			name: "not deployed", from: before, to: before,
			wantMissing: []string{"packages nginx", "files /etc/nginx/conf.d/fleet.conf"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := compare.Classify(tt.from, tt.to, exp, nil)
			if diff := cmp.Diff(tt.wantExpected, itemKeys(res.Expected)); diff != "" {
				t.Errorf("expected items (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantMissing, itemKeys(res.Missing)); diff != "" {
				t.Errorf("missing items (-want +got):\n%s", diff)
			}
			if len(res.Unexpected) > 0 || len(res.NotComparable) > 0 {
				t.Errorf("unexpected %v, not comparable %v", res.Unexpected, res.NotComparable)
			}
			if res.OK() != tt.wantOK {
				t.Errorf("OK() = %v, want %v (%s)", res.OK(), tt.wantOK, res.Summary)
			}
		})
	}
}

func itemKeys(items []compare.Item) []string {
	var keys []string
	for _, it := range items {
		keys = append(keys, it.Section+" "+it.Key)
	}
	return keys
}

// TestDeploy runs deploy commands through a simulated agent and checks
// the report it sends and the state it is left in.
func TestDeploy(t *testing.T) {
	type step struct{ List, Name, Outcome string }
	tests := []struct {
		name      string
		from      string // the agent's state before
		action    string
		wantOK    bool
		wantError string
		wantState string // the agent's state afterwards
		wantRep   string
		wantSteps []step
	}{
		{
			name: "apply", from: stateBefore, action: "apply", wantOK: true, wantState: stateAfter, wantRep: agentv1.StateSucceeded,
			wantSteps: []step{{"steps", "config", agentv1.OutcomeChanged}},
		},
		{
			name: "rollback", from: stateAfter, action: "rollback", wantOK: true, wantState: stateBefore, wantRep: agentv1.StateRolledBack,
			wantSteps: []step{{agentv1.ListUndo, "config", agentv1.OutcomeRolledBack}},
		},
		{
			name: "unknown action", from: stateAfter, action: "reinstall", wantError: `unknown deploy action "reinstall"`, wantState: stateAfter,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &simAgent{hostname: "bench-00000", state: tt.from, c: newCounters()}
			cmd := &agentv1.DeployCommand{RolloutId: "r-1", Action: tt.action, ManifestYaml: releaseYAML, ManifestFile: "release.yaml"}
			r, err := a.deploy(context.Background(), nil, cmd)
			if err != nil {
				t.Fatal(err)
			}
			if r.GetOk() != tt.wantOK || r.GetError() != tt.wantError {
				t.Fatalf("result ok=%v error=%q, want ok=%v error=%q", r.GetOk(), r.GetError(), tt.wantOK, tt.wantError)
			}
			if a.state != tt.wantState {
				t.Errorf("agent state %q, want %q", a.state, tt.wantState)
			}
			if !tt.wantOK {
				return
			}
			rep := r.GetApplyReport()
			var got []step
			for _, s := range rep.Steps {
				got = append(got, step{s.List, s.Name, s.Outcome})
			}
			if diff := cmp.Diff(tt.wantSteps, got); diff != "" {
				t.Errorf("report steps (-want +got):\n%s", diff)
			}
			if rep.GetState() != tt.wantRep || rep.GetRelease() != "fleet-app@1.0.0" || rep.GetDeploymentId() == "" {
				t.Errorf("report state %q release %q id %q", rep.GetState(), rep.GetRelease(), rep.GetDeploymentId())
			}
		})
	}
}

// TestDeployPlan checks the dry run's PlanReport: the step would change
// its file, and the agent's state is untouched.
func TestDeployPlan(t *testing.T) {
	a := &simAgent{state: stateBefore, c: newCounters()}
	r, err := a.deploy(context.Background(), nil, &agentv1.DeployCommand{Action: "plan", ManifestYaml: releaseYAML, ManifestFile: "release.yaml"})
	if err != nil || !r.GetOk() {
		t.Fatalf("plan: %v %q", err, r.GetError())
	}
	rep := r.GetPlanReport()
	want := []*agentv1.StepPlan{{
		List: "steps", Name: "config", Plugin: "file", Line: 12, WouldChange: true,
		Changes: []*agentv1.Change{{Kind: "file", Name: "/etc/nginx/conf.d/fleet.conf", State: "present",
			Sha256: "699b9aa0bce051582eaf35fd2b32d8d8a8bf9dec475a86493e47595794cf3252"}},
	}}
	if diff := cmp.Diff(want, rep.GetSteps(), protocmp.Transform()); diff != "" {
		t.Errorf("plan steps (-want +got):\n%s", diff)
	}
	if a.state != stateBefore {
		t.Errorf("a dry run moved the agent to %q", a.state)
	}
}
