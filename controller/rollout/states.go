package rollout

// States of a rollout (RolloutRecord.state).
const (
	StateRunning        = "running"
	StatePaused         = "paused"
	StateHalted         = "halted"
	StateCompleted      = "completed"
	StateAborted        = "aborted"
	StateRollingBack    = "rolling_back"
	StateRolledBack     = "rolled_back"
	StateRollbackFailed = "rollback_failed"
)

// States of a node in a rollout (RolloutNode.state).
const (
	NodePending             = "pending"
	NodePreAudit            = "pre_audit"
	NodeDeploying           = "deploying"
	NodeWaitingConfirmation = "waiting_confirmation"
	NodePostAudit           = "post_audit"
	NodePassed              = "passed"
	NodeFailed              = "failed"
	NodeUnreachable         = "unreachable"
	NodeSkipped             = "skipped"
	NodeRollingBack         = "rolling_back"
	NodeRolledBack          = "rolled_back"
	NodeRollbackFailed      = "rollback_failed"
	NodeAborted             = "aborted"
)

// States of a wave (RolloutWave.state).
const (
	WavePending = "pending"
	WaveRunning = "running"
	WaveBaking  = "baking"
	WaveDone    = "done"
	// WaveFailed: the wave's failures exceeded its budget.
	WaveFailed = "failed"
)

// Outcomes reported to Metrics.NodeFinished.
const (
	OutcomePassed         = "passed"
	OutcomeFailed         = "failed"
	OutcomeUnreachable    = "unreachable"
	OutcomeSkipped        = "skipped"
	OutcomeRolledBack     = "rolled_back"
	OutcomeRollbackFailed = "rollback_failed"
)

// SLA breach kinds reported to Metrics.SLABreach.
const (
	BreachNodeDuration    = "node_duration"
	BreachRolloutDuration = "rollout_duration"
	BreachSuccessRate     = "success_rate"
)

// deploying reports whether a node is in flight in its deployment: it
// holds one of the rollout's max_parallel slots.
func deploying(state string) bool {
	switch state {
	case NodePreAudit, NodeDeploying, NodeWaitingConfirmation, NodePostAudit:
		return true
	}
	return false
}

// inFlight reports whether a node waits for a command: a deployment
// phase or a rollback.
func inFlight(state string) bool {
	return deploying(state) || state == NodeRollingBack
}

// deployFinal reports whether a node's deployment is over (whatever
// happened after, such as a rollback).
func deployFinal(state string) bool {
	switch state {
	case NodePassed, NodeFailed, NodeUnreachable, NodeSkipped, NodeAborted,
		NodeRollingBack, NodeRolledBack, NodeRollbackFailed:
		return true
	}
	return false
}

// settled reports whether a rollout has nothing left for the loop to
// drive (a completed rollout may still be rolled back on request).
func settled(state string) bool {
	switch state {
	case StateCompleted, StateRolledBack, StateRollbackFailed:
		return true
	}
	return false
}
