package fleet

import (
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// Events receives what the fleet learns from agents that others act on;
// the rollout engine implements it. Calls must not block: the fleet
// calls them from session goroutines.
type Events interface {
	// CommandFinished: a command's result is stored (succeeded or
	// failed).
	CommandFinished(nodeID, commandID string)
	// ConfirmationRequested: a deploy command's manual step waits for an
	// operator's confirmation.
	ConfirmationRequested(nodeID, commandID, step, instructions string)
	// Connection: the node's session opened (true) or ended (false).
	Connection(nodeID string, connected bool)
}

// SetEvents sets the receiver of agent events; call it before serving.
func (f *Fleet) SetEvents(e Events) {
	f.events = e
}

// IsConnected reports whether the node has a live session.
func (f *Fleet) IsConnected(nodeID string) bool {
	return f.hub.has(nodeID)
}

// Confirm sends an operator's confirmation of a manual step to the
// node's live session. It reports false when the node is not connected
// (the agent asks again when it reconnects).
func (f *Fleet) Confirm(nodeID string, c *agentv1.Confirmation) bool {
	panic("fleet.Confirm: not implemented yet")
}
