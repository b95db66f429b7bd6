package state

import (
	"errors"
	"fmt"
	"strings"

	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// The state types, under short names.
type (
	Rollout = controllerv1.RolloutState
	Wave    = controllerv1.WaveState
	Node    = controllerv1.NodeState
)

// Rollout states.
const (
	RolloutRunning        = controllerv1.RolloutState_ROLLOUT_STATE_RUNNING
	RolloutPaused         = controllerv1.RolloutState_ROLLOUT_STATE_PAUSED
	RolloutHalted         = controllerv1.RolloutState_ROLLOUT_STATE_HALTED
	RolloutCompleted      = controllerv1.RolloutState_ROLLOUT_STATE_COMPLETED
	RolloutAborted        = controllerv1.RolloutState_ROLLOUT_STATE_ABORTED
	RolloutRollingBack    = controllerv1.RolloutState_ROLLOUT_STATE_ROLLING_BACK
	RolloutRolledBack     = controllerv1.RolloutState_ROLLOUT_STATE_ROLLED_BACK
	RolloutRollbackFailed = controllerv1.RolloutState_ROLLOUT_STATE_ROLLBACK_FAILED
	RolloutRollbackPaused = controllerv1.RolloutState_ROLLOUT_STATE_ROLLBACK_PAUSED
)

// Wave states.
const (
	WavePending   = controllerv1.WaveState_WAVE_STATE_PENDING
	WaveRunning   = controllerv1.WaveState_WAVE_STATE_RUNNING
	WaveBaking    = controllerv1.WaveState_WAVE_STATE_BAKING
	WaveDone      = controllerv1.WaveState_WAVE_STATE_DONE
	WaveFailed    = controllerv1.WaveState_WAVE_STATE_FAILED
	WaveCancelled = controllerv1.WaveState_WAVE_STATE_CANCELLED
)

// Node states.
const (
	NodePending             = controllerv1.NodeState_NODE_STATE_PENDING
	NodePreAudit            = controllerv1.NodeState_NODE_STATE_PRE_AUDIT
	NodeDeploying           = controllerv1.NodeState_NODE_STATE_DEPLOYING
	NodeWaitingConfirmation = controllerv1.NodeState_NODE_STATE_WAITING_CONFIRMATION
	NodePostAudit           = controllerv1.NodeState_NODE_STATE_POST_AUDIT
	NodePassed              = controllerv1.NodeState_NODE_STATE_PASSED
	NodeFailed              = controllerv1.NodeState_NODE_STATE_FAILED
	NodeUnreachable         = controllerv1.NodeState_NODE_STATE_UNREACHABLE
	NodeSkipped             = controllerv1.NodeState_NODE_STATE_SKIPPED
	NodeRollingBack         = controllerv1.NodeState_NODE_STATE_ROLLING_BACK
	NodeRolledBack          = controllerv1.NodeState_NODE_STATE_ROLLED_BACK
	NodeRollbackFailed      = controllerv1.NodeState_NODE_STATE_ROLLBACK_FAILED
	NodeAborted             = controllerv1.NodeState_NODE_STATE_ABORTED
	NodeInterrupted         = controllerv1.NodeState_NODE_STATE_INTERRUPTED
	NodeResolving           = controllerv1.NodeState_NODE_STATE_RESOLVING
	NodeResolved            = controllerv1.NodeState_NODE_STATE_RESOLVED
)

// ErrTransition is a state change the tables do not allow.
var ErrTransition = errors.New("illegal state transition")

var rolloutNext = map[Rollout][]Rollout{
	RolloutRunning:        {RolloutPaused, RolloutHalted, RolloutCompleted, RolloutAborted, RolloutRollingBack},
	RolloutPaused:         {RolloutRunning, RolloutHalted, RolloutAborted, RolloutRollingBack},
	RolloutHalted:         {RolloutRunning, RolloutAborted, RolloutRollingBack},
	RolloutCompleted:      {RolloutRunning, RolloutRollingBack},
	RolloutAborted:        {RolloutRollingBack},
	RolloutRollingBack:    {RolloutRollbackPaused, RolloutRolledBack, RolloutRollbackFailed, RolloutAborted},
	RolloutRollbackPaused: {RolloutRollingBack, RolloutAborted},
	RolloutRollbackFailed: {RolloutRollingBack, RolloutRolledBack},
	RolloutRolledBack:     nil,
}

var waveNext = map[Wave][]Wave{
	WavePending:   {WaveRunning, WaveCancelled},
	WaveRunning:   {WaveBaking, WaveDone, WaveFailed},
	WaveBaking:    {WaveDone},
	WaveDone:      {WaveRunning},
	WaveFailed:    {WaveRunning},
	WaveCancelled: nil,
}

// afterDeploy are where a node whose deployment ended without passing
// may go: an operator's retry or resolution, a rollback, or the agent's
// late report that a step was cut off.
var afterDeploy = []Node{NodePreAudit, NodeRollingBack, NodeResolving, NodeInterrupted}

var nodeNext = map[Node][]Node{
	NodePending:             {NodePreAudit, NodeAborted, NodeUnreachable, NodeSkipped},
	NodePreAudit:            {NodeDeploying, NodeFailed, NodeUnreachable, NodeSkipped},
	NodeDeploying:           {NodeWaitingConfirmation, NodePostAudit, NodeFailed, NodeUnreachable, NodeSkipped},
	NodeWaitingConfirmation: {NodeDeploying, NodePostAudit, NodeFailed, NodeUnreachable, NodeSkipped},
	NodePostAudit:           {NodePassed, NodeFailed, NodeUnreachable, NodeSkipped, NodeInterrupted},
	NodePassed:              {NodeRollingBack},
	NodeFailed:              afterDeploy,
	NodeUnreachable:         afterDeploy,
	NodeSkipped:             afterDeploy,
	NodeInterrupted:         {NodePreAudit, NodeRollingBack, NodeResolving},
	NodeAborted:             nil,
	NodeRollingBack:         {NodeRolledBack, NodeRollbackFailed},
	NodeRollbackFailed:      {NodeRollingBack, NodeResolving},
	NodeResolving:           {NodeResolved, NodeFailed, NodeUnreachable, NodeSkipped, NodeInterrupted, NodeRollbackFailed},
	NodeResolved:            nil,
	NodeRolledBack:          nil,
}

func allowed[S comparable](next map[S][]S, from, to S) bool {
	for _, s := range next[from] {
		if s == to {
			return true
		}
	}
	return false
}

// CheckRollout returns an error wrapping ErrTransition unless a rollout
// may go from to to.
func CheckRollout(from, to Rollout) error {
	if allowed(rolloutNext, from, to) {
		return nil
	}
	return fmt.Errorf("%w: rollout from %s to %s", ErrTransition, Name(from), Name(to))
}

// CheckWave is CheckRollout for a wave.
func CheckWave(from, to Wave) error {
	if allowed(waveNext, from, to) {
		return nil
	}
	return fmt.Errorf("%w: wave from %s to %s", ErrTransition, Name(from), Name(to))
}

// CheckNode is CheckRollout for a node.
func CheckNode(from, to Node) error {
	if allowed(nodeNext, from, to) {
		return nil
	}
	return fmt.Errorf("%w: node from %s to %s", ErrTransition, Name(from), Name(to))
}

// NextRollout, NextWave and NextNode list the states the tables allow
// after from (for tests and documentation).
func NextRollout(from Rollout) []Rollout { return append([]Rollout(nil), rolloutNext[from]...) }
func NextWave(from Wave) []Wave          { return append([]Wave(nil), waveNext[from]...) }
func NextNode(from Node) []Node          { return append([]Node(nil), nodeNext[from]...) }

// RolloutStates, WaveStates and NodeStates are every state, in their
// enum's order.
func RolloutStates() []Rollout { return enumValues[Rollout](controllerv1.RolloutState_name) }
func WaveStates() []Wave       { return enumValues[Wave](controllerv1.WaveState_name) }
func NodeStates() []Node       { return enumValues[Node](controllerv1.NodeState_name) }

func enumValues[S ~int32](names map[int32]string) []S {
	var out []S
	for i := int32(1); ; i++ {
		if _, ok := names[i]; !ok {
			return out
		}
		out = append(out, S(i))
	}
}

// prefixes of the enums' value names, dropped by Name.
var prefixes = []string{"ROLLOUT_STATE_", "WAVE_STATE_", "NODE_STATE_"}

// Name is a state's name for people and scripts: "running",
// "rolled_back", "waiting_confirmation". The zero value is "unknown".
func Name[S interface {
	~int32
	String() string
}](s S) string {
	if s == 0 {
		return "unknown"
	}
	n := s.String()
	for _, p := range prefixes {
		n = strings.TrimPrefix(n, p)
	}
	return strings.ToLower(n)
}

// ParseRollout, ParseWave and ParseNode read a name Name wrote (as
// schema version 5 stored states). ok is false for an unknown name.
func ParseRollout(name string) (Rollout, bool) {
	return parse[Rollout](name, "ROLLOUT_STATE_", controllerv1.RolloutState_value)
}

func ParseWave(name string) (Wave, bool) {
	return parse[Wave](name, "WAVE_STATE_", controllerv1.WaveState_value)
}

func ParseNode(name string) (Node, bool) {
	return parse[Node](name, "NODE_STATE_", controllerv1.NodeState_value)
}

func parse[S ~int32](name, prefix string, values map[string]int32) (S, bool) {
	v, ok := values[prefix+strings.ToUpper(name)]
	if !ok || v == 0 {
		return 0, false
	}
	return S(v), true
}
