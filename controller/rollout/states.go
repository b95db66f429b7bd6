package rollout

import "github.com/cairn-ops/cairn/controller/rollout/state"

// The states, as the engine spells them (controller/rollout/state holds
// the transitions and what each state means).
const (
	StateRunning        = state.RolloutRunning
	StatePaused         = state.RolloutPaused
	StateHalted         = state.RolloutHalted
	StateCompleted      = state.RolloutCompleted
	StateAborted        = state.RolloutAborted
	StateRollingBack    = state.RolloutRollingBack
	StateRolledBack     = state.RolloutRolledBack
	StateRollbackFailed = state.RolloutRollbackFailed
	StateRollbackPaused = state.RolloutRollbackPaused

	NodePending             = state.NodePending
	NodePreAudit            = state.NodePreAudit
	NodeDeploying           = state.NodeDeploying
	NodeWaitingConfirmation = state.NodeWaitingConfirmation
	NodePostAudit           = state.NodePostAudit
	NodePassed              = state.NodePassed
	NodeFailed              = state.NodeFailed
	NodeUnreachable         = state.NodeUnreachable
	NodeSkipped             = state.NodeSkipped
	NodeRollingBack         = state.NodeRollingBack
	NodeRolledBack          = state.NodeRolledBack
	NodeRollbackFailed      = state.NodeRollbackFailed
	NodeAborted             = state.NodeAborted
	NodeInterrupted         = state.NodeInterrupted
	NodeResolving           = state.NodeResolving
	NodeResolved            = state.NodeResolved

	WavePending   = state.WavePending
	WaveRunning   = state.WaveRunning
	WaveBaking    = state.WaveBaking
	WaveDone      = state.WaveDone
	WaveFailed    = state.WaveFailed
	WaveCancelled = state.WaveCancelled
)

// Outcomes reported to Metrics.NodeFinished: the name of the state a
// node's deployment or rollback ended in.
var (
	OutcomePassed         = state.Name(NodePassed)
	OutcomeFailed         = state.Name(NodeFailed)
	OutcomeUnreachable    = state.Name(NodeUnreachable)
	OutcomeSkipped        = state.Name(NodeSkipped)
	OutcomeInterrupted    = state.Name(NodeInterrupted)
	OutcomeRolledBack     = state.Name(NodeRolledBack)
	OutcomeRollbackFailed = state.Name(NodeRollbackFailed)
	OutcomeResolved       = state.Name(NodeResolved)
)

// SLA breach kinds reported to Metrics.SLABreach.
const (
	BreachNodeDuration    = state.BreachNodeDuration
	BreachRolloutDuration = state.BreachRolloutDuration
	BreachSuccessRate     = state.BreachSuccessRate
)
