package rollout

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cairn-ops/cairn/controller/blob"
	"github.com/cairn-ops/cairn/controller/dml"
	"github.com/cairn-ops/cairn/controller/store"
	signed "github.com/cairn-ops/cairn/internal/release"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// Fleet is what the engine needs from controller/fleet.
type Fleet interface {
	// Notify wakes the node's session to deliver new commands.
	Notify(nodeID string)
	IsConnected(nodeID string) bool
	// Confirm sends a manual step's confirmation to a connected node.
	Confirm(nodeID string, c *agentv1.Confirmation) bool
}

// Notifier receives rollout events for webhooks (controller/notify).
type Notifier interface {
	// Notify queues an event; it never blocks.
	Notify(event string, payload any)
}

// Webhook event names.
const (
	EventStarted    = "rollout.started"
	EventWaveDone   = "rollout.wave_done"
	EventHalted     = "rollout.halted"
	EventCompleted  = "rollout.completed"
	EventRolledBack = "rollout.rolled_back"
)

// EventPayload is the payload of every event the engine gives the
// Notifier.
type EventPayload struct {
	Rollout string `json:"rollout"`
	// Release is NAME@VERSION.
	Release string `json:"release"`
	State   string `json:"state"`
	Reason  string `json:"reason,omitempty"`
	// Wave is the wave an EventWaveDone is about (1-based).
	Wave uint32 `json:"wave,omitempty"`
	// WaveFailed: the wave exceeded its failure budget.
	WaveFailed bool   `json:"wave_failed,omitempty"`
	Counts     Counts `json:"counts"`
	// At is when it happened (RFC 3339).
	At string `json:"at"`
}

// Counts is RolloutCounts as plain JSON for event payloads.
type Counts struct {
	Nodes          uint32 `json:"nodes"`
	Pending        uint32 `json:"pending"`
	Running        uint32 `json:"running"`
	Passed         uint32 `json:"passed"`
	Failed         uint32 `json:"failed"`
	Unreachable    uint32 `json:"unreachable"`
	Skipped        uint32 `json:"skipped"`
	RolledBack     uint32 `json:"rolled_back"`
	RollbackFailed uint32 `json:"rollback_failed"`
	Aborted        uint32 `json:"aborted"`
	Interrupted    uint32 `json:"interrupted"`
	Resolved       uint32 `json:"resolved"`
}

// Metrics receives measurements for /metrics.
type Metrics interface {
	// NodeFinished: a node's deployment ended with outcome (passed,
	// failed, unreachable, skipped, rolled_back, rollback_failed) after d.
	NodeFinished(outcome string, d time.Duration)
	// AuditFinished: a pre- or post-audit command took d.
	AuditFinished(d time.Duration)
	// SLABreach: kind is node_duration, rollout_duration or success_rate.
	SLABreach(kind string)
}

// Defaults of Config's durations.
const (
	DefaultTick           = 250 * time.Millisecond
	DefaultPlanTimeout    = 30 * time.Second
	DefaultReconnectGrace = 15 * time.Second
	DefaultLostAfter      = 5 * time.Minute
)

// ReleaseKeys are the release public keys signatures are checked with,
// as they are now.
type ReleaseKeys interface {
	PublicKeys() signed.Keys
}

// Config is what the engine needs.
type Config struct {
	Store store.Store
	Blobs *blob.Store
	DML   *dml.DML
	Fleet Fleet
	// ReleaseKeys check release signatures before a rollout starts
	// (controller/keyring: a signing-key rotation changes them while the
	// controller runs).
	ReleaseKeys ReleaseKeys
	Notifier    Notifier
	Metrics     Metrics
	Now         func() time.Time
	Logger      *slog.Logger
	// Tick is how often the engine re-reads running rollouts when no
	// event woke it (default 250ms).
	Tick time.Duration
	// PlanTimeout bounds how long PlanRollout waits for the nodes' dry
	// runs (default 30s).
	PlanTimeout time.Duration
	// ReconnectGrace is how long after Run starts a node that is not
	// connected is given to reconnect before the unreachable policy
	// applies to it, so that a controller restart does not make the
	// fleet unreachable (default 15s).
	ReconnectGrace time.Duration
	// LostAfter is how long a node may stay disconnected while a command
	// of its deployment, rollback or resolution is outstanding before it
	// is unreachable and the rollout's unreachable policy applies, unless
	// the rollout's spec says (lost_after); wait:D uses D. Agents deliver
	// results after reconnecting, so a short disconnect fails nothing
	// (default 5m, the fleet's lost_after: the controller passes its
	// setting, so a node in flight is unreachable when it is marked lost).
	LostAfter time.Duration
	// Location is the time zone of rollout windows (default time.Local:
	// the controller's).
	Location *time.Location
	// Observe, when set, is told of every state transition a pass made,
	// after the pass is committed (tracing, and the tests that check
	// every transition of the state tables is made somewhere).
	Observe func(Transition)
}

// Transition is one state change of a rollout, a wave or a node. Kind is
// "rollout", "wave" or "node"; From and To are state names.
type Transition struct {
	Kind, From, To string
}

// Engine drives rollouts. Its methods are safe for concurrent use; the
// writes of the loop and of the operator actions are serialized by one
// mutex, so each decides on what the store holds.
type Engine struct {
	cfg Config
	log *slog.Logger

	// mu serializes every write of a rollout or its nodes.
	mu sync.Mutex
	// started is when Run began (under mu), for ReconnectGrace.
	started time.Time

	wake chan struct{}

	qmu        sync.Mutex
	confirms   []confirmRequest
	interrupts []interruption
	subs       map[string]map[chan struct{}]struct{}
	waiters    map[chan struct{}]struct{}

	relMu    sync.Mutex
	releases map[string]*releaseInfo

	audits auditCache

	errMu   sync.Mutex
	lastErr map[string]string
}

// confirmRequest is an agent's request for a manual step's confirmation,
// queued until the loop handles it.
type confirmRequest struct {
	nodeID, commandID, step, instructions string
}

// interruption is an agent's report that a crash cut off step (LIST/NAME)
// of its deploy command, queued until the loop handles it.
type interruption struct {
	nodeID, commandID, step string
}

// New returns an engine; Run drives it.
func New(cfg Config) *Engine {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Tick <= 0 {
		cfg.Tick = DefaultTick
	}
	if cfg.PlanTimeout <= 0 {
		cfg.PlanTimeout = DefaultPlanTimeout
	}
	if cfg.ReconnectGrace < 0 {
		cfg.ReconnectGrace = 0
	} else if cfg.ReconnectGrace == 0 {
		cfg.ReconnectGrace = DefaultReconnectGrace
	}
	if cfg.LostAfter <= 0 {
		cfg.LostAfter = DefaultLostAfter
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	return &Engine{
		cfg:      cfg,
		log:      cfg.Logger,
		started:  cfg.Now(),
		wake:     make(chan struct{}, 1),
		subs:     map[string]map[chan struct{}]struct{}{},
		waiters:  map[chan struct{}]struct{}{},
		releases: map[string]*releaseInfo{},
		lastErr:  map[string]string{},
	}
}

// Run drives every running rollout until ctx ends, resuming what the
// store says was in flight: each node continues from its stored state
// and command IDs. It returns nil when ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	e.started = e.cfg.Now()
	e.mu.Unlock()
	t := time.NewTicker(e.cfg.Tick)
	defer t.Stop()
	for {
		e.passAll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-e.wake:
		case <-t.C:
		}
	}
}

// wakeUp makes the loop run a pass soon; it never blocks.
func (e *Engine) wakeUp() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// CommandFinished, ConfirmationRequested, Connection and
// DeploymentInterrupted implement fleet.Events: they wake the engine.
// None of them blocks.
func (e *Engine) CommandFinished(nodeID, commandID string) {
	e.qmu.Lock()
	for ch := range e.waiters {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	e.qmu.Unlock()
	e.wakeUp()
}

func (e *Engine) ConfirmationRequested(nodeID, commandID, step, instructions string) {
	e.qmu.Lock()
	e.confirms = append(e.confirms, confirmRequest{nodeID: nodeID, commandID: commandID, step: step, instructions: instructions})
	e.qmu.Unlock()
	e.wakeUp()
}

func (e *Engine) Connection(nodeID string, connected bool) {
	e.wakeUp()
}

// DeploymentInterrupted implements fleet.Events: the report is queued
// for the rollout's next pass.
func (e *Engine) DeploymentInterrupted(nodeID, commandID, step string) {
	e.qmu.Lock()
	e.interrupts = append(e.interrupts, interruption{nodeID: nodeID, commandID: commandID, step: step})
	e.qmu.Unlock()
	e.wakeUp()
}

// takeInterrupts returns the queued interruption reports and empties the
// queue.
func (e *Engine) takeInterrupts() []interruption {
	e.qmu.Lock()
	defer e.qmu.Unlock()
	q := e.interrupts
	e.interrupts = nil
	return q
}

// requeueInterrupts puts reports a pass could not act on back.
func (e *Engine) requeueInterrupts(ins []interruption) {
	if len(ins) == 0 {
		return
	}
	e.qmu.Lock()
	defer e.qmu.Unlock()
	e.interrupts = append(slices.Clip(ins), e.interrupts...)
}

// takeConfirms returns the queued confirmation requests and empties the
// queue.
func (e *Engine) takeConfirms() []confirmRequest {
	e.qmu.Lock()
	defer e.qmu.Unlock()
	q := e.confirms
	e.confirms = nil
	return q
}

// requeueConfirms puts requests a pass could not act on back in front of
// the queue: the agent asks only once per attempt.
func (e *Engine) requeueConfirms(reqs []confirmRequest) {
	if len(reqs) == 0 {
		return
	}
	e.qmu.Lock()
	defer e.qmu.Unlock()
	e.confirms = append(slices.Clip(reqs), e.confirms...)
}

// Subscribe returns a channel that receives (without blocking the
// engine; signals coalesce) after every change to rollout id, and a
// function that ends the subscription.
func (e *Engine) Subscribe(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	e.qmu.Lock()
	if e.subs[id] == nil {
		e.subs[id] = map[chan struct{}]struct{}{}
	}
	e.subs[id][ch] = struct{}{}
	e.qmu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			e.qmu.Lock()
			defer e.qmu.Unlock()
			delete(e.subs[id], ch)
			if len(e.subs[id]) == 0 {
				delete(e.subs, id)
			}
		})
	}
}

// signal tells rollout id's subscribers that it changed.
func (e *Engine) signal(id string) {
	e.qmu.Lock()
	defer e.qmu.Unlock()
	for ch := range e.subs[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// commandWaiter returns a channel that receives after any command
// finishes, and a function that removes it (Plan waits on it).
func (e *Engine) commandWaiter() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	e.qmu.Lock()
	e.waiters[ch] = struct{}{}
	e.qmu.Unlock()
	return ch, func() {
		e.qmu.Lock()
		delete(e.waiters, ch)
		e.qmu.Unlock()
	}
}

// notify gives an event to the Notifier, if there is one.
func (e *Engine) notify(event string, payload EventPayload) {
	if e.cfg.Notifier != nil {
		e.cfg.Notifier.Notify(event, payload)
	}
}

// metrics returns the Metrics, or a no-op.
func (e *Engine) metrics() Metrics {
	if e.cfg.Metrics == nil {
		return noMetrics{}
	}
	return e.cfg.Metrics
}

type noMetrics struct{}

func (noMetrics) NodeFinished(string, time.Duration) {}
func (noMetrics) AuditFinished(time.Duration)        {}
func (noMetrics) SLABreach(string)                   {}

// logFailure logs a pass's error for a rollout once, not on every tick
// while it persists.
func (e *Engine) logFailure(id string, err error) {
	e.errMu.Lock()
	defer e.errMu.Unlock()
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if e.lastErr[id] == msg {
		return
	}
	if msg == "" {
		delete(e.lastErr, id)
		e.log.Info("rollout pass recovered", "rollout_id", id)
		return
	}
	e.lastErr[id] = msg
	e.log.Error("rollout pass failed", "rollout_id", id, "err", err)
}
