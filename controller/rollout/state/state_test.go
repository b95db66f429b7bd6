package state

import (
	"errors"
	"slices"
	"testing"

	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// TestTablesCoverEveryState: every state of every enum has a row, and
// every state named in a row is a state.
func TestTablesCoverEveryState(t *testing.T) {
	check := func(kind string, states []int32, rows map[int32][]int32) {
		for _, s := range states {
			if _, ok := rows[s]; !ok {
				t.Errorf("%s state %d has no row in the transition table", kind, s)
			}
		}
		for from, tos := range rows {
			for _, to := range append([]int32{from}, tos...) {
				if !slices.Contains(states, to) {
					t.Errorf("%s table names state %d, which is not a state", kind, to)
				}
			}
		}
	}
	check("rollout", ints(RolloutStates()), intRows(rolloutNext))
	check("wave", ints(WaveStates()), intRows(waveNext))
	check("node", ints(NodeStates()), intRows(nodeNext))
}

func ints[S ~int32](s []S) []int32 {
	out := make([]int32, len(s))
	for i, v := range s {
		out[i] = int32(v)
	}
	return out
}

func intRows[S ~int32](m map[S][]S) map[int32][]int32 {
	out := map[int32][]int32{}
	for k, v := range m {
		out[int32(k)] = ints(v)
	}
	return out
}

func TestCheck(t *testing.T) {
	if err := CheckRollout(RolloutRunning, RolloutPaused); err != nil {
		t.Errorf("running → paused: %v", err)
	}
	err := CheckRollout(RolloutRolledBack, RolloutRunning)
	if !errors.Is(err, ErrTransition) || err.Error() != "illegal state transition: rollout from rolled_back to running" {
		t.Errorf("rolled_back → running = %v", err)
	}
	if err := CheckNode(NodePassed, NodePreAudit); !errors.Is(err, ErrTransition) {
		t.Errorf("passed → pre_audit = %v, want ErrTransition: a passed node is not deployed again", err)
	}
	if err := CheckWave(WaveCancelled, WaveRunning); !errors.Is(err, ErrTransition) {
		t.Errorf("cancelled → running = %v, want ErrTransition", err)
	}
}

func TestNames(t *testing.T) {
	for _, s := range RolloutStates() {
		got, ok := ParseRollout(Name(s))
		if !ok || got != s {
			t.Errorf("ParseRollout(Name(%v)) = %v, %v", s, got, ok)
		}
	}
	for _, s := range WaveStates() {
		if got, ok := ParseWave(Name(s)); !ok || got != s {
			t.Errorf("ParseWave(Name(%v)) = %v, %v", s, got, ok)
		}
	}
	for _, s := range NodeStates() {
		if got, ok := ParseNode(Name(s)); !ok || got != s {
			t.Errorf("ParseNode(Name(%v)) = %v, %v", s, got, ok)
		}
	}
	for name, want := range map[string]string{
		Name(RolloutRollbackFailed):   "rollback_failed",
		Name(NodeWaitingConfirmation): "waiting_confirmation",
		Name(WaveCancelled):           "cancelled",
		Name(Node(0)):                 "unknown",
	} {
		if name != want {
			t.Errorf("Name = %q, want %q", name, want)
		}
	}
	if _, ok := ParseNode("exploded"); ok {
		t.Error("ParseNode(exploded) succeeded")
	}
}

// TestCountAddsUp: every node state is in exactly one count.
func TestCountAddsUp(t *testing.T) {
	c := CountStates(NodeStates())
	if Sum(c) != c.GetNodes() || c.GetNodes() != uint32(len(NodeStates())) {
		t.Errorf("counts of one node per state: %v add up to %d of %d", c, Sum(c), c.GetNodes())
	}
	for _, s := range NodeStates() {
		one := CountStates([]Node{s})
		if Sum(one) != 1 {
			t.Errorf("a node %s is in %d counts, want 1", Name(s), Sum(one))
		}
	}
}

func TestSettled(t *testing.T) {
	ro := &controllerv1.RolloutRecord{State: RolloutAborted, Counts: &controllerv1.RolloutCounts{Nodes: 2, Running: 1, Aborted: 1}}
	if Settled(ro) {
		t.Error("an aborted rollout with a node in flight is settled")
	}
	ro.Counts = &controllerv1.RolloutCounts{Nodes: 2, Passed: 1, Aborted: 1}
	if !Settled(ro) {
		t.Error("an aborted rollout with nothing in flight is not settled")
	}
	ro.State = RolloutHalted
	if Settled(ro) {
		t.Error("a halted rollout is settled: an operator must decide")
	}
}

// TestWaveFailures: a closed wave keeps the verdict it closed with, even
// after its failed nodes were rolled back; an open wave counts its nodes
// that count against the budget now.
func TestWaveFailures(t *testing.T) {
	nodes := []*controllerv1.RolloutNode{
		{Wave: 1, State: NodeRolledBack},
		{Wave: 2, State: NodeFailed}, {Wave: 2, State: NodeUnreachable}, {Wave: 2, State: NodeSkipped},
		{Wave: 2, State: NodeInterrupted}, {Wave: 2, State: NodePassed}, {Wave: 2, State: NodeResolved}, {Wave: 2, State: NodeAborted},
	}
	for _, tt := range []struct {
		name string
		wave *controllerv1.RolloutWave
		want uint32
	}{
		{"closed, rolled back since", &controllerv1.RolloutWave{Index: 1, State: WaveFailed, Failures: 1}, 1},
		{"open: failed, unreachable and interrupted count", &controllerv1.RolloutWave{Index: 2, State: WaveRunning}, 3},
		{"cancelled", &controllerv1.RolloutWave{Index: 2, State: WaveCancelled}, 0},
	} {
		if got := WaveFailures(tt.wave, nodes); got != tt.want {
			t.Errorf("%s: WaveFailures = %d, want %d", tt.name, got, tt.want)
		}
	}
}
