package fleet

import (
	"context"
	"crypto/x509"
	"sync"

	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// hub is the set of live sessions, one per node.
type hub struct {
	mu       sync.Mutex
	sessions map[string]*liveSession
	next     uint64
	closed   error
}

// liveSession is a session as the hub sees it: a wake-up channel for new
// commands, a queue of confirmations to send, and a way to end it.
type liveSession struct {
	nodeID string
	id     uint64
	// ca issued the client certificate the session opened with.
	ca *x509.Certificate
	// wake has room for one signal: Notify never blocks, and several
	// notifications before the session looks collapse into one.
	wake chan struct{}
	// confirm carries operators' confirmations to the session goroutine,
	// which alone sends on the stream.
	confirm chan *agentv1.Confirmation
	cancel  context.CancelCauseFunc
}

// confirmQueue is how many confirmations may wait for a session to send
// them.
const confirmQueue = 64

func newHub() *hub {
	return &hub{sessions: make(map[string]*liveSession)}
}

// add registers a session for nodeID, ending the node's previous one. It
// returns the hub's close reason instead when the hub is closed.
func (h *hub) add(nodeID string, ca *x509.Certificate, cancel context.CancelCauseFunc) (*liveSession, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed != nil {
		return nil, h.closed
	}
	if old := h.sessions[nodeID]; old != nil {
		old.cancel(ErrReplaced)
	}
	h.next++
	s := &liveSession{
		nodeID:  nodeID,
		id:      h.next,
		ca:      ca,
		wake:    make(chan struct{}, 1),
		confirm: make(chan *agentv1.Confirmation, confirmQueue),
		cancel:  cancel,
	}
	h.sessions[nodeID] = s
	return s, nil
}

// remove unregisters s unless a newer session replaced it. It reports
// whether it did, that is whether the node is now without a session.
func (h *hub) remove(s *liveSession) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sessions[s.nodeID] != s {
		return false
	}
	delete(h.sessions, s.nodeID)
	return true
}

// current reports whether s is its node's live session.
func (h *hub) current(s *liveSession) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sessions[s.nodeID] == s
}

func (h *hub) has(nodeID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sessions[nodeID] != nil
}

func (h *hub) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions)
}

func (h *hub) notify(nodeID string) {
	h.mu.Lock()
	s := h.sessions[nodeID]
	h.mu.Unlock()
	if s == nil {
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// wakeAll wakes every session, as notify wakes one.
func (h *hub) wakeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.sessions {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// kickIf ends every session for which match holds, with cause.
func (h *hub) kickIf(match func(*liveSession) bool, cause error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.sessions {
		if match(s) {
			s.cancel(cause)
		}
	}
}

// confirm queues c for nodeID's session. It reports false when the node
// has no session or its queue is full.
func (h *hub) confirm(nodeID string, c *agentv1.Confirmation) bool {
	h.mu.Lock()
	s := h.sessions[nodeID]
	h.mu.Unlock()
	if s == nil {
		return false
	}
	select {
	case s.confirm <- c:
		return true
	default:
		return false
	}
}

// kick ends nodeID's session, if any, with cause.
func (h *hub) kick(nodeID string, cause error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.sessions[nodeID]; s != nil {
		s.cancel(cause)
	}
}

// closeAll ends every session with cause and refuses new ones.
func (h *hub) closeAll(cause error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = cause
	for _, s := range h.sessions {
		s.cancel(cause)
	}
}
