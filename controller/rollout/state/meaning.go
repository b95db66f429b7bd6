package state

import (
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// RolloutOver reports whether a rollout starts nothing more on its own:
// completed, aborted, rolled back, or its rollback failed. Nodes in
// flight may still finish (Settled), and an operator may still roll it
// back or retry a node.
func RolloutOver(s Rollout) bool {
	switch s {
	case RolloutCompleted, RolloutAborted, RolloutRolledBack, RolloutRollbackFailed:
		return true
	}
	return false
}

// RolloutDriven reports whether the engine starts work in a rollout of
// state s: nodes' deployments (running) or their rollbacks (rolling back).
func RolloutDriven(s Rollout) bool {
	return s == RolloutRunning || s == RolloutRollingBack
}

// RolloutRollback reports whether s is a state of a rollout's rollback.
func RolloutRollback(s Rollout) bool {
	switch s {
	case RolloutRollingBack, RolloutRollbackPaused, RolloutRolledBack, RolloutRollbackFailed:
		return true
	}
	return false
}

// Settled reports whether nothing more happens in a rollout until an
// operator acts: it is over and none of its nodes is in flight. A watch
// ends there.
func Settled(ro *controllerv1.RolloutRecord) bool {
	return RolloutOver(ro.GetState()) && ro.GetCounts().GetRunning() == 0
}

// Stopped reports whether nothing more happens in a rollout until an
// operator acts and nothing of it is in flight: it is over, or halted. A
// watcher has seen its end there.
func Stopped(ro *controllerv1.RolloutRecord) bool {
	s := ro.GetState()
	return (RolloutOver(s) || s == RolloutHalted) && ro.GetCounts().GetRunning() == 0
}

// Succeeded reports whether a settled rollout did what was asked: it
// completed with every node passed (or resolved by hand), or was rolled
// back as asked with every node proven.
func Succeeded(ro *controllerv1.RolloutRecord) bool {
	c := ro.GetCounts()
	switch ro.GetState() {
	case RolloutCompleted:
		return c.GetPassed()+c.GetResolved() == c.GetNodes()
	case RolloutRolledBack:
		return true
	}
	return false
}

// NodeInFlight reports whether a node waits for a command: a phase of its
// deployment, its rollback, or the audit of a resolution.
func NodeInFlight(s Node) bool {
	return NodeInDeployment(s) || s == NodeRollingBack || s == NodeResolving
}

// NodeInDeployment reports whether a node is in a phase of its
// deployment: it holds one of the rollout's max_parallel slots.
func NodeInDeployment(s Node) bool {
	switch s {
	case NodePreAudit, NodeDeploying, NodeWaitingConfirmation, NodePostAudit:
		return true
	}
	return false
}

// NodeDeployOver reports whether a node's deployment is over, whatever
// happened after it (a rollback, a resolution): its wave can close.
func NodeDeployOver(s Node) bool {
	return s != NodePending && s != 0 && !NodeInDeployment(s)
}

// NodeCountsFailed reports whether a node counts against its wave's
// failure budget: its deployment failed, it was unreachable under the
// fail or wait policy, or a step was cut off. A node skipped under the
// skip policy, aborted, or resolved by hand does not.
func NodeCountsFailed(s Node) bool {
	switch s {
	case NodeFailed, NodeUnreachable, NodeInterrupted:
		return true
	}
	return false
}

// NodeUnreached reports whether a node's deployment ended because it
// could not be reached (under any policy).
func NodeUnreached(s Node) bool {
	return s == NodeUnreachable || s == NodeSkipped
}

// NodeRetriable reports whether an operator may retry a node in state s
// (its deployment, or its rollback when s is rollback_failed).
func NodeRetriable(s Node) bool {
	switch s {
	case NodeFailed, NodeUnreachable, NodeSkipped, NodeInterrupted, NodeRollbackFailed:
		return true
	}
	return false
}

// NodeResolvable reports whether an operator may resolve a node in state
// s: its deployment or rollback ended without passing or being proven.
func NodeResolvable(s Node) bool {
	return NodeRetriable(s)
}

// Count tallies nodes by state, each node in exactly one count, so the
// counts add up to Nodes.
func Count(nodes []*controllerv1.RolloutNode) *controllerv1.RolloutCounts {
	c := &controllerv1.RolloutCounts{}
	for _, n := range nodes {
		add(c, n.GetState())
	}
	return c
}

// CountStates is Count over bare states.
func CountStates(states []Node) *controllerv1.RolloutCounts {
	c := &controllerv1.RolloutCounts{}
	for _, s := range states {
		add(c, s)
	}
	return c
}

func add(c *controllerv1.RolloutCounts, s Node) {
	c.Nodes++
	switch {
	case s == NodePending || s == 0:
		c.Pending++
	case NodeInFlight(s):
		c.Running++
	case s == NodePassed:
		c.Passed++
	case s == NodeFailed:
		c.Failed++
	case s == NodeUnreachable:
		c.Unreachable++
	case s == NodeSkipped:
		c.Skipped++
	case s == NodeRolledBack:
		c.RolledBack++
	case s == NodeRollbackFailed:
		c.RollbackFailed++
	case s == NodeAborted:
		c.Aborted++
	case s == NodeInterrupted:
		c.Interrupted++
	case s == NodeResolved:
		c.Resolved++
	}
}

// Sum adds up the counts of every state: it equals Nodes for counts from
// Count.
func Sum(c *controllerv1.RolloutCounts) uint32 {
	return c.GetPending() + c.GetRunning() + c.GetPassed() + c.GetFailed() + c.GetUnreachable() + c.GetSkipped() +
		c.GetRolledBack() + c.GetRollbackFailed() + c.GetAborted() + c.GetInterrupted() + c.GetResolved()
}

// Finished is how many of the counted nodes are done with their
// deployment, rollback or resolution: not pending, not in flight.
func Finished(c *controllerv1.RolloutCounts) uint32 {
	return c.GetNodes() - c.GetPending() - c.GetRunning()
}

// WaveFailures is how many of a wave's nodes counted against its budget:
// as recorded when the wave closed (a later rollback does not change the
// wave's verdict), or so far while it is open. nodes may hold other
// waves' nodes too.
func WaveFailures(w *controllerv1.RolloutWave, nodes []*controllerv1.RolloutNode) uint32 {
	switch w.GetState() {
	case WaveDone, WaveFailed:
		return w.GetFailures()
	case WaveCancelled, WavePending:
		return 0
	}
	var n uint32
	for _, node := range nodes {
		if node.GetWave() == w.GetIndex() && NodeCountsFailed(node.GetState()) {
			n++
		}
	}
	return n
}

// SLA breach kinds: the targets of a release's SLA a rollout or a node
// can breach (what /metrics counts and the report measures).
const (
	BreachNodeDuration    = "node_duration"
	BreachRolloutDuration = "rollout_duration"
	BreachSuccessRate     = "success_rate"
)
