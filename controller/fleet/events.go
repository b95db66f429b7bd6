package fleet

import (
	"context"
	"crypto/x509"

	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// Events receives what the fleet learns from agents that others act on;
// the rollout engine implements it. Calls must not block: the fleet
// calls them from session goroutines.
type Events interface {
	// CommandFinished: a command's result is stored (succeeded or
	// failed). It is called again when an agent resends the result of a
	// command already finished (after a lost ResultAck), so receivers
	// must treat it as "look at the stored command", not as a count.
	CommandFinished(nodeID, commandID string)
	// ConfirmationRequested: a deploy command's manual step waits for an
	// operator's confirmation.
	ConfirmationRequested(nodeID, commandID, step, instructions string)
	// Connection: the node's session opened (true) or ended (false),
	// in the order the sessions opened and ended. A session replaced by
	// a newer one of the same node does not report false, so a node can
	// be reported connected twice in a row.
	Connection(nodeID string, connected bool)
	// DeploymentInterrupted: an agent that restarted found the deployment
	// of its deploy command commandID cut off, step (LIST/NAME) running
	// when it stopped. The agent's report of it is stored as an agent
	// event of kind "deployment_interrupted"; the call comes once per
	// stored item (receivers must still treat it as "look again", as
	// with CommandFinished).
	DeploymentInterrupted(nodeID, commandID, step string)
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
	return f.hub.confirm(nodeID, c)
}

// commandFinished tells the events receiver, if any, that a command's
// result is stored.
func (f *Fleet) commandFinished(nodeID, commandID string) {
	if f.events != nil {
		f.events.CommandFinished(nodeID, commandID)
	}
}

// confirmationRequested tells the events receiver, if any, that a manual
// step waits.
func (f *Fleet) confirmationRequested(nodeID string, r *agentv1.ConfirmationRequest) {
	if f.events != nil {
		f.events.ConfirmationRequested(nodeID, r.GetCommandId(), r.GetStep(), r.GetInstructions())
	}
}

// deploymentInterrupted tells the events receiver, if any, that the
// node's agent found the deployment of its deploy command commandID cut
// off by a stop in step (LIST/NAME).
func (f *Fleet) deploymentInterrupted(nodeID, commandID, step string) {
	if f.events != nil {
		f.events.DeploymentInterrupted(nodeID, commandID, step)
	}
}

// register adds a node's session to the hub and reports the connection.
// connMu keeps a node's connection events in the order of the hub's
// changes without calling the receiver under the hub's lock (the
// receiver may well ask IsConnected).
func (f *Fleet) register(nodeID string, ca *x509.Certificate, cancel context.CancelCauseFunc) (*liveSession, error) {
	f.connMu.Lock()
	defer f.connMu.Unlock()
	live, err := f.hub.add(nodeID, ca, cancel)
	if err != nil {
		return nil, err
	}
	if f.events != nil {
		f.events.Connection(nodeID, true)
	}
	return live, nil
}

// unregister removes a session from the hub and, unless a newer session
// of the node replaced it, reports the node disconnected.
func (f *Fleet) unregister(live *liveSession) {
	f.connMu.Lock()
	defer f.connMu.Unlock()
	if f.hub.remove(live) && f.events != nil {
		f.events.Connection(live.nodeID, false)
	}
}
