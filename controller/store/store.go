// Package store keeps the controller's state: enrollment tokens, nodes,
// users and API tokens, commands, audit metadata, baselines, services,
// the audit log, the DML's artifact records and releases. Full audit documents and
// artifact contents live in controller/blob; the store holds their
// metadata and digests.
//
// Store is the one wide interface of the controller, because it has
// several real implementations: Bolt (the embedded default, one bbolt file
// in the data directory) and Memory (an in-memory fake for tests), with
// etcd planned for scale-out. One contract suite, storetest.Run, runs
// against each.
//
// All access goes through transactions: View for reads, Update for
// read-modify-write that must be atomic (a state change and its audit-log
// entry commit together or not at all), Batch for many small concurrent
// writes (bbolt's Batch). Records returned from a Tx are copies owned by
// the caller; they stay valid after the transaction.
package store

import (
	"context"

	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// Store is the controller's state.
type Store interface {
	// View runs fn in a read-only transaction.
	View(ctx context.Context, fn func(Tx) error) error
	// Update runs fn in a read-write transaction; it commits when fn
	// returns nil and rolls back otherwise.
	Update(ctx context.Context, fn func(Tx) error) error
	// Batch is Update for many small concurrent writes: fn may be called
	// more than once, so it must be idempotent.
	Batch(ctx context.Context, fn func(Tx) error) error
	Close() error
}

// Tx is one transaction. Getters return ErrNotFound when the record does
// not exist. Lists are in the order each method documents. Writes fail
// with ErrReadOnly in a View.
type Tx interface {
	// EnrollToken returns the enrollment token with the given hash.
	EnrollToken(tokenHash string) (*controllerv1.EnrollTokenRecord, error)
	PutEnrollToken(*controllerv1.EnrollTokenRecord) error

	Node(id string) (*controllerv1.NodeRecord, error)
	// Nodes returns every node, by ID.
	Nodes() ([]*controllerv1.NodeRecord, error)
	PutNode(*controllerv1.NodeRecord) error

	User(name string) (*controllerv1.UserRecord, error)
	// Users returns every user, by name.
	Users() ([]*controllerv1.UserRecord, error)
	PutUser(*controllerv1.UserRecord) error

	// APIToken returns the API token with the given hash.
	APIToken(tokenHash string) (*controllerv1.APITokenRecord, error)
	// APITokens returns every API token, revoked and expired ones too, by
	// token hash (an order that means nothing: callers sort).
	APITokens() ([]*controllerv1.APITokenRecord, error)
	PutAPIToken(*controllerv1.APITokenRecord) error

	Command(id string) (*controllerv1.CommandRecord, error)
	// NodeCommands returns the node's commands, oldest first (by
	// created_at, then ID).
	NodeCommands(nodeID string) ([]*controllerv1.CommandRecord, error)
	PutCommand(*controllerv1.CommandRecord) error

	Audit(id string) (*controllerv1.AuditRecord, error)
	// NodeAudits returns the node's audits, oldest first (by stored_at,
	// then ID).
	NodeAudits(nodeID string) ([]*controllerv1.AuditRecord, error)
	PutAudit(*controllerv1.AuditRecord) error

	// Baselines returns the node's baselines, by version (oldest first).
	Baselines(nodeID string) ([]*controllerv1.BaselineRecord, error)
	// PutBaseline stores a baseline; its version must be one more than the
	// node's latest (1 for the first), else ErrConflict.
	PutBaseline(*controllerv1.BaselineRecord) error

	Service(name string) (*controllerv1.ServiceRecord, error)
	// Services returns every service, by name.
	Services() ([]*controllerv1.ServiceRecord, error)
	PutService(*controllerv1.ServiceRecord) error
	DeleteService(name string) error

	// LastLogEntry returns the newest audit-log entry, or ErrNotFound when
	// the log is empty.
	LastLogEntry() (*controllerv1.AuditLogEntry, error)
	// AppendLogEntry stores e; its sequence must be one more than the last
	// entry's (1 for the first), else ErrConflict. It also records e's
	// sequence and hash as the log's head, kept apart from the entries, so
	// that deleting the newest entries is detected. Entries are never
	// changed or deleted through the store.
	AppendLogEntry(e *controllerv1.AuditLogEntry) error
	// LogHead returns the sequence and hash AppendLogEntry last recorded
	// (0 and "" for an empty log).
	LogHead() (seq uint64, hash string, err error)
	// LogEntries returns up to limit entries (0: all) with a sequence
	// greater than after, in sequence order.
	LogEntries(after uint64, limit int) ([]*controllerv1.AuditLogEntry, error)

	// KeyringGeneration returns the generation of the controller's
	// keyring (controller/keyring) whose rotations the audit log holds;
	// 0 when it holds none.
	KeyringGeneration() (uint64, error)
	// PutKeyringGeneration records that the audit log holds the rotations
	// up to generation gen.
	PutKeyringGeneration(gen uint64) error

	// Artifact returns the DML artifact with the given sha256 digest.
	Artifact(digest string) (*controllerv1.ArtifactRecord, error)
	// Artifacts returns every artifact, by name, then digest.
	Artifacts() ([]*controllerv1.ArtifactRecord, error)
	// PutArtifact stores an artifact record (a new one, or an existing one
	// with more install records; controller/dml keeps the rest immutable).
	PutArtifact(*controllerv1.ArtifactRecord) error
	// DeleteArtifact removes an artifact record; only the DML's garbage
	// collection calls it.
	DeleteArtifact(digest string) error

	// Release returns the release with the given name and version.
	Release(name, version string) (*controllerv1.ReleaseRecord, error)
	// Releases returns every release, by name, then version (Debian
	// version ordering, internal/pkgversion).
	Releases() ([]*controllerv1.ReleaseRecord, error)
	// PutRelease stores a release record, new or changed; controller/release
	// decides which changes are allowed.
	PutRelease(*controllerv1.ReleaseRecord) error

	// Rollout returns the rollout with the given ID, without its nodes.
	Rollout(id string) (*controllerv1.RolloutRecord, error)
	// Rollouts returns every rollout, without nodes, by created_at then ID
	// (oldest first).
	Rollouts() ([]*controllerv1.RolloutRecord, error)
	// PutRollout stores a rollout record; its Nodes field is not stored
	// (nodes are RolloutNode records).
	PutRollout(*controllerv1.RolloutRecord) error
	// RolloutNode returns one node of a rollout.
	RolloutNode(rolloutID, nodeID string) (*controllerv1.RolloutNode, error)
	// RolloutNodes returns the rollout's nodes, by node ID.
	RolloutNodes(rolloutID string) ([]*controllerv1.RolloutNode, error)
	PutRolloutNode(*controllerv1.RolloutNode) error

	// AgentEvent returns one stored outbox item of a node.
	AgentEvent(nodeID, id string) (*controllerv1.AgentEventRecord, error)
	// AgentEvents returns the node's stored outbox items, by ID.
	AgentEvents(nodeID string) ([]*controllerv1.AgentEventRecord, error)
	// PutAgentEvent stores an outbox item; one already stored under the
	// same node and ID is ErrConflict.
	PutAgentEvent(*controllerv1.AgentEventRecord) error

	// IssuedReport returns the record of the report issued with the
	// given digest.
	IssuedReport(digest string) (*controllerv1.IssuedReport, error)
	// PutIssuedReport records an issued report under its digest; one
	// already recorded under the same digest is ErrConflict (the record
	// of an issued report never changes).
	PutIssuedReport(*controllerv1.IssuedReport) error
}
