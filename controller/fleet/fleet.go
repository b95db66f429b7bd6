package fleet

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/controller/blob"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/pki"
	"github.com/cairn-ops/cairn/internal/refusal"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxAuditBytes = 64 << 20
	DefaultLostAfter     = 5 * time.Minute
)

// lastSeenEvery bounds how often a live session writes its node's
// last-seen time: at most once per interval, in memory otherwise.
const lastSeenEvery = 30 * time.Second

// helloTimeout is how long a new session may take to send its Hello.
const helloTimeout = 30 * time.Second

// Config is what the fleet needs from the controller.
type Config struct {
	Store store.Store
	Blobs *blob.Store
	// Keys are the controller's CAs and release keys (controller/keyring):
	// the issuing CA signs node certificates, and agents are told what to
	// trust when they enroll, when a session opens and when a rotation
	// changes it (TrustChanged).
	Keys Keys
	// Now is the clock (time.Now when nil).
	Now    func() time.Time
	Logger *slog.Logger
	// MaxAuditBytes bounds an uploaded audit (DefaultMaxAuditBytes when 0).
	MaxAuditBytes int64
	// LostAfter is how long a node may stay disconnected before it is
	// marked lost (DefaultLostAfter when 0).
	LostAfter time.Duration
}

// Keys are the controller's key material as it is now.
type Keys interface {
	// IssuingCA signs node certificates now.
	IssuingCA() *pki.CA
	// Trust is what agents are told to trust at now.
	Trust(now time.Time) *agentv1.Trust
	// Generation changes with every rotation.
	Generation() uint64
	// Retired reports whether ca's rotation overlap has ended at now.
	Retired(ca *x509.Certificate, now time.Time) (time.Time, bool)
}

// Fleet serves the Enrollment and Agent services and tracks live sessions.
type Fleet struct {
	st        store.Store
	blobs     *blob.Store
	keys      Keys
	now       func() time.Time
	log       *slog.Logger
	maxAudit  int64
	lostAfter time.Duration
	hub       *hub
	events    Events
	// connMu orders connection events (see register).
	connMu sync.Mutex
}

// New returns a fleet for cfg.
func New(cfg Config) *Fleet {
	f := &Fleet{
		st:        cfg.Store,
		blobs:     cfg.Blobs,
		keys:      cfg.Keys,
		now:       cfg.Now,
		log:       cfg.Logger,
		maxAudit:  cfg.MaxAuditBytes,
		lostAfter: cfg.LostAfter,
		hub:       newHub(),
	}
	if f.now == nil {
		f.now = time.Now
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.maxAudit <= 0 {
		f.maxAudit = DefaultMaxAuditBytes
	}
	if f.lostAfter <= 0 {
		f.lostAfter = DefaultLostAfter
	}
	return f
}

// Register adds the Enrollment and Agent services to s.
func (f *Fleet) Register(s *grpc.Server) {
	agentv1.RegisterEnrollmentServer(s, &enrollment{f: f})
	agentv1.RegisterAgentServer(s, &agentService{f: f})
}

// Notify tells the node's live session, if any, that it has new pending
// commands. It never blocks; an offline node gets them when it connects.
func (f *Fleet) Notify(nodeID string) {
	f.hub.notify(nodeID)
}

// TrustChanged tells every live session that the keyring changed (a
// rotation), so each sends its agent the new trust. It never blocks.
func (f *Fleet) TrustChanged() {
	f.hub.wakeAll()
}

// Connected returns the number of live sessions.
func (f *Fleet) Connected() int {
	return f.hub.len()
}

// Run keeps the node registry's connection states honest until ctx ends:
// every LostAfter/4 it marks nodes disconnected for longer than LostAfter
// as lost, nodes recorded as connected without a live session (left over
// from a controller that stopped) as disconnected, and ends the sessions
// of nodes revoked while connected. When ctx ends it closes every session,
// so that a graceful server stop does not wait for them.
func (f *Fleet) Run(ctx context.Context) error {
	defer f.hub.closeAll(ErrShutdown)
	t := time.NewTicker(max(f.lostAfter/4, time.Second))
	defer t.Stop()
	for {
		if err := f.sweep(ctx); err != nil && ctx.Err() == nil {
			f.log.Warn("node state sweep failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// sweep is one pass of Run.
func (f *Fleet) sweep(ctx context.Context) error {
	now := f.now()
	var stale, revoked []string
	err := f.st.View(ctx, func(tx store.Tx) error {
		nodes, err := tx.Nodes()
		if err != nil {
			return err
		}
		for _, n := range nodes {
			if n.GetState() == controllerv1.NodeRecord_STATE_REVOKED {
				if f.hub.has(n.GetId()) {
					revoked = append(revoked, n.GetId())
				}
				continue
			}
			if _, changed := f.sweptState(n, now); changed {
				stale = append(stale, n.GetId())
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	for _, id := range revoked {
		f.hub.kick(id, ErrRevoked)
	}
	// A session whose certificate's CA retired since it opened ends: the
	// agent's next call would be refused with the reason anyway.
	f.hub.kickIf(func(s *liveSession) bool {
		_, retired := f.keys.Retired(s.ca, now)
		return s.ca != nil && retired
	}, ErrCertificateRetired)
	if len(stale) == 0 {
		return nil
	}
	err = f.st.Update(ctx, func(tx store.Tx) error {
		for _, id := range stale {
			n, err := tx.Node(id)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			// Checked again inside the write: a session may have started.
			state, changed := f.sweptState(n, now)
			if !changed {
				continue
			}
			n.State = state
			if err := tx.PutNode(n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark nodes disconnected or lost: %w", err)
	}
	return nil
}

// sweptState is the state a sweep at now gives n, and whether it differs.
func (f *Fleet) sweptState(n *controllerv1.NodeRecord, now time.Time) (controllerv1.NodeRecord_State, bool) {
	state := n.GetState()
	switch state {
	case controllerv1.NodeRecord_STATE_CONNECTED, controllerv1.NodeRecord_STATE_DISCONNECTED:
	default:
		return state, false
	}
	if f.hub.has(n.GetId()) {
		return state, false
	}
	seen := n.GetLastSeen()
	if seen == "" {
		seen = n.GetEnrolledAt()
	}
	want := controllerv1.NodeRecord_STATE_DISCONNECTED
	if t, err := time.Parse(time.RFC3339Nano, seen); err == nil && now.Sub(t) > f.lostAfter {
		want = controllerv1.NodeRecord_STATE_LOST
	}
	return want, want != state
}

// nodeID returns the calling node's ID from the principal the auth
// interceptor put in ctx.
func nodeID(ctx context.Context) (string, error) {
	p, ok := auth.FromContext(ctx)
	if !ok || p.NodeID == "" {
		return "", status.Error(codes.Unauthenticated, "this method needs a node client certificate")
	}
	return p.NodeID, nil
}

// notEnrolled refuses a node the store does not know, with the reason
// refusal.NodeUnknown.
func notEnrolled(id string) error {
	return refusal.Errorf(codes.PermissionDenied, refusal.NodeUnknown, "node %s is not enrolled with this controller", id)
}

// liveNode returns the caller's node record, refusing unknown and revoked
// nodes.
func (f *Fleet) liveNode(ctx context.Context, id string) (*controllerv1.NodeRecord, error) {
	var n *controllerv1.NodeRecord
	err := f.st.View(ctx, func(tx store.Tx) error {
		var err error
		n, err = tx.Node(id)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, notEnrolled(id)
	case err != nil:
		return nil, status.Errorf(codes.Internal, "read node %s: %v", id, err)
	case n.GetState() == controllerv1.NodeRecord_STATE_REVOKED:
		return nil, auth.NodeRevokedError(id)
	}
	return n, nil
}
