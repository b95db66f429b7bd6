package rollout

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"time"

	"github.com/cairn-ops/cairn/controller/blob"
	"github.com/cairn-ops/cairn/controller/dml"
	"github.com/cairn-ops/cairn/controller/store"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// Errors the API maps to status codes. Each is wrapped with the details.
var (
	// ErrInvalid: the spec or request is malformed (InvalidArgument).
	ErrInvalid = errors.New("invalid rollout request")
	// ErrNotApproved: the release is not approved, or its approvals are
	// not bound to its digest (FailedPrecondition).
	ErrNotApproved = errors.New("release is not approved")
	// ErrState: the rollout is not in a state that allows the action
	// (FailedPrecondition).
	ErrState = errors.New("not allowed in the rollout's state")
	// ErrNoNodes: the selector or service matches no node
	// (FailedPrecondition).
	ErrNoNodes = errors.New("no nodes to deploy to")
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

// Config is what the engine needs.
type Config struct {
	Store store.Store
	Blobs *blob.Store
	DML   *dml.DML
	Fleet Fleet
	// ReleasePublicKey checks release signatures before a rollout starts.
	ReleasePublicKey ed25519.PublicKey
	Notifier         Notifier
	Metrics          Metrics
	Now              func() time.Time
	Logger           *slog.Logger
	// Tick is how often the engine re-reads running rollouts when no
	// event woke it (default 250ms).
	Tick time.Duration
	// PlanTimeout bounds how long PlanRollout waits for the nodes' dry
	// runs (default 30s).
	PlanTimeout time.Duration
}

// Engine drives rollouts.
type Engine struct {
	cfg Config
}

// New returns an engine; Run drives it.
func New(cfg Config) *Engine {
	return &Engine{cfg: cfg}
}

// Run drives every running rollout until ctx ends, resuming what the
// store says was in flight.
func (e *Engine) Run(ctx context.Context) error { panic("not implemented") }

// Plan computes the plan of spec without creating anything.
func (e *Engine) Plan(ctx context.Context, actor string, spec *controllerv1.RolloutSpec) (*controllerv1.RolloutPlan, error) {
	panic("not implemented")
}

// Start creates a rollout of an approved release and returns it.
func (e *Engine) Start(ctx context.Context, actor string, spec *controllerv1.RolloutSpec) (*controllerv1.RolloutRecord, error) {
	panic("not implemented")
}

// Get returns a rollout with its nodes.
func (e *Engine) Get(ctx context.Context, id string) (*controllerv1.RolloutRecord, error) {
	panic("not implemented")
}

// List returns rollouts (without nodes), newest first; release filters
// by name or name@version when not empty.
func (e *Engine) List(ctx context.Context, release string) ([]*controllerv1.RolloutRecord, error) {
	panic("not implemented")
}

// Pause, Resume, Abort and Rollback act on a rollout for actor.
func (e *Engine) Pause(ctx context.Context, actor, id, note string) (*controllerv1.RolloutRecord, error) {
	panic("not implemented")
}

func (e *Engine) Resume(ctx context.Context, actor, id, note string) (*controllerv1.RolloutRecord, error) {
	panic("not implemented")
}

func (e *Engine) Abort(ctx context.Context, actor, id, note string) (*controllerv1.RolloutRecord, error) {
	panic("not implemented")
}

func (e *Engine) Rollback(ctx context.Context, actor, id, note string) (*controllerv1.RolloutRecord, error) {
	panic("not implemented")
}

// Confirm records actor's confirmation of a manual step on a node (ID or
// hostname) and passes it to the agent if it is waiting.
func (e *Engine) Confirm(ctx context.Context, actor, id, node, step, note string) (*controllerv1.RolloutRecord, error) {
	panic("not implemented")
}

// Report renders the rollout's management report: text, json, markdown
// or html. It returns the content and its MIME type.
func (e *Engine) Report(ctx context.Context, id, format string) ([]byte, string, error) {
	panic("not implemented")
}

// Subscribe returns a channel that receives (without blocking the
// engine; signals coalesce) after every change to rollout id, and a
// function that ends the subscription.
func (e *Engine) Subscribe(id string) (<-chan struct{}, func()) {
	panic("not implemented")
}

// CommandFinished, ConfirmationRequested and Connection implement
// fleet.Events: they wake the engine.
func (e *Engine) CommandFinished(nodeID, commandID string) {}

func (e *Engine) ConfirmationRequested(nodeID, commandID, step, instructions string) {}

func (e *Engine) Connection(nodeID string, connected bool) {}
