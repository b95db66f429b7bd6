package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"google.golang.org/protobuf/proto"

	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// Memory is an in-memory Store for tests. It is safe for concurrent use.
// Each committed Update publishes a new immutable snapshot, so a View
// never blocks and never sees a half-applied Update; Updates run one at a
// time. Records are cloned on the way in and out.
type Memory struct {
	writeMu sync.Mutex // serializes Update and Batch

	mu     sync.RWMutex // guards cur and closed
	cur    *memState
	closed bool
}

var _ Store = (*Memory)(nil)

// memState is one snapshot. Once published it is never modified: an
// Update copies the outer map and each table it writes to.
type memState struct {
	tables   map[string]map[string]proto.Message
	headSeq  uint64
	headHash string
	keyring  uint64
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{cur: &memState{tables: map[string]map[string]proto.Message{}}}
}

func (m *Memory) snapshot() (*memState, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	return m.cur, nil
}

// View runs fn on the current snapshot.
func (m *Memory) View(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	st, err := m.snapshot()
	if err != nil {
		return err
	}
	return fn(&memTx{st: st})
}

// Update runs fn on a private copy of the current snapshot and publishes
// the copy when fn returns nil.
func (m *Memory) Update(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	base, err := m.snapshot()
	if err != nil {
		return err
	}
	tx := &memTx{
		st: &memState{
			tables:   maps.Clone(base.tables),
			headSeq:  base.headSeq,
			headHash: base.headHash,
			keyring:  base.keyring,
		},
		writable: true,
		owned:    map[string]bool{},
	}
	err = fn(tx)
	tx.writable = false // a Tx kept past Update must not change the published snapshot
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.cur = tx.st
	return nil
}

// Batch is Update: there is nothing to gain from combining writes in
// memory.
func (m *Memory) Batch(ctx context.Context, fn func(Tx) error) error {
	return m.Update(ctx, fn)
}

// Close drops the state. Later calls fail with ErrClosed.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.cur = nil
	return nil
}

type memTx struct {
	st       *memState
	writable bool
	owned    map[string]bool // tables this Update has copied
}

func (tx *memTx) get(table, key string) (proto.Message, bool) {
	rec, ok := tx.st.tables[table][key]
	if !ok {
		return nil, false
	}
	return proto.Clone(rec), true
}

func (tx *memTx) put(table, key string, rec proto.Message) {
	if !tx.owned[table] {
		tx.st.tables[table] = maps.Clone(tx.st.tables[table])
		if tx.st.tables[table] == nil {
			tx.st.tables[table] = map[string]proto.Message{}
		}
		tx.owned[table] = true
	}
	tx.st.tables[table][key] = proto.Clone(rec)
}

func (tx *memTx) delete(table, key string) {
	if !tx.owned[table] {
		tx.st.tables[table] = maps.Clone(tx.st.tables[table])
		tx.owned[table] = true
	}
	delete(tx.st.tables[table], key)
}

// list returns clones of the records of table whose sort key (made by
// sortKey; ok false skips the record) is in ascending order.
func list[T proto.Message](tx *memTx, table string, sortKey func(rec T) (string, bool)) []T {
	type keyed struct {
		key string
		rec T
	}
	var recs []keyed
	for _, m := range tx.st.tables[table] {
		rec := m.(T)
		if k, ok := sortKey(rec); ok {
			recs = append(recs, keyed{k, rec})
		}
	}
	slices.SortFunc(recs, func(a, b keyed) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	out := make([]T, len(recs))
	for i, r := range recs {
		out[i] = proto.Clone(r.rec).(T)
	}
	return out
}

func memGet[T proto.Message](tx *memTx, table, what, key string) (T, error) {
	rec, ok := tx.get(table, key)
	if !ok {
		var zero T
		return zero, notFound(what, key)
	}
	return rec.(T), nil
}

func (tx *memTx) EnrollToken(tokenHash string) (*controllerv1.EnrollTokenRecord, error) {
	return memGet[*controllerv1.EnrollTokenRecord](tx, tableEnrollTokens, "enrollment token", tokenHash)
}

func (tx *memTx) PutEnrollToken(rec *controllerv1.EnrollTokenRecord) error {
	if !tx.writable {
		return readOnly("enrollment token")
	}
	if err := checkKey("enrollment token hash", rec.GetTokenHash()); err != nil {
		return err
	}
	tx.put(tableEnrollTokens, rec.GetTokenHash(), rec)
	return nil
}

func (tx *memTx) Node(id string) (*controllerv1.NodeRecord, error) {
	return memGet[*controllerv1.NodeRecord](tx, tableNodes, "node", id)
}

func (tx *memTx) Nodes() ([]*controllerv1.NodeRecord, error) {
	return list(tx, tableNodes, func(r *controllerv1.NodeRecord) (string, bool) { return r.GetId(), true }), nil
}

func (tx *memTx) PutNode(rec *controllerv1.NodeRecord) error {
	if !tx.writable {
		return readOnly("node")
	}
	if err := checkKey("node ID", rec.GetId()); err != nil {
		return err
	}
	tx.put(tableNodes, rec.GetId(), rec)
	return nil
}

func (tx *memTx) User(name string) (*controllerv1.UserRecord, error) {
	return memGet[*controllerv1.UserRecord](tx, tableUsers, "user", name)
}

func (tx *memTx) Users() ([]*controllerv1.UserRecord, error) {
	return list(tx, tableUsers, func(r *controllerv1.UserRecord) (string, bool) { return r.GetName(), true }), nil
}

func (tx *memTx) PutUser(rec *controllerv1.UserRecord) error {
	if !tx.writable {
		return readOnly("user")
	}
	if err := checkKey("user name", rec.GetName()); err != nil {
		return err
	}
	tx.put(tableUsers, rec.GetName(), rec)
	return nil
}

func (tx *memTx) APIToken(tokenHash string) (*controllerv1.APITokenRecord, error) {
	return memGet[*controllerv1.APITokenRecord](tx, tableAPITokens, "API token", tokenHash)
}

func (tx *memTx) APITokens() ([]*controllerv1.APITokenRecord, error) {
	return list(tx, tableAPITokens, func(r *controllerv1.APITokenRecord) (string, bool) { return r.GetTokenHash(), true }), nil
}

func (tx *memTx) PutAPIToken(rec *controllerv1.APITokenRecord) error {
	if !tx.writable {
		return readOnly("API token")
	}
	if err := checkKey("API token hash", rec.GetTokenHash()); err != nil {
		return err
	}
	tx.put(tableAPITokens, rec.GetTokenHash(), rec)
	return nil
}

func (tx *memTx) Command(id string) (*controllerv1.CommandRecord, error) {
	return memGet[*controllerv1.CommandRecord](tx, tableCommands, "command", id)
}

func (tx *memTx) NodeCommands(nodeID string) ([]*controllerv1.CommandRecord, error) {
	return list(tx, tableCommands, func(r *controllerv1.CommandRecord) (string, bool) {
		return string(timeIndexKey(r.GetNodeId(), r.GetCreatedAt(), r.GetId())), r.GetNodeId() == nodeID
	}), nil
}

func (tx *memTx) PutCommand(rec *controllerv1.CommandRecord) error {
	if !tx.writable {
		return readOnly("command")
	}
	if err := checkKey("command ID", rec.GetId()); err != nil {
		return err
	}
	if err := checkKey("command node ID", rec.GetNodeId()); err != nil {
		return err
	}
	tx.put(tableCommands, rec.GetId(), rec)
	return nil
}

func (tx *memTx) Audit(id string) (*controllerv1.AuditRecord, error) {
	return memGet[*controllerv1.AuditRecord](tx, tableAudits, "audit", id)
}

func (tx *memTx) NodeAudits(nodeID string) ([]*controllerv1.AuditRecord, error) {
	return list(tx, tableAudits, func(r *controllerv1.AuditRecord) (string, bool) {
		return string(timeIndexKey(r.GetNodeId(), r.GetStoredAt(), r.GetId())), r.GetNodeId() == nodeID
	}), nil
}

func (tx *memTx) PutAudit(rec *controllerv1.AuditRecord) error {
	if !tx.writable {
		return readOnly("audit")
	}
	if err := checkKey("audit ID", rec.GetId()); err != nil {
		return err
	}
	if err := checkKey("audit node ID", rec.GetNodeId()); err != nil {
		return err
	}
	tx.put(tableAudits, rec.GetId(), rec)
	return nil
}

func (tx *memTx) Baselines(nodeID string) ([]*controllerv1.BaselineRecord, error) {
	return list(tx, tableBaselines, func(r *controllerv1.BaselineRecord) (string, bool) {
		return string(versionKey(r.GetNodeId(), r.GetVersion())), r.GetNodeId() == nodeID
	}), nil
}

func (tx *memTx) PutBaseline(rec *controllerv1.BaselineRecord) error {
	if !tx.writable {
		return readOnly("baseline")
	}
	if err := checkKey("baseline node ID", rec.GetNodeId()); err != nil {
		return err
	}
	var latest uint32
	for _, m := range tx.st.tables[tableBaselines] {
		if b := m.(*controllerv1.BaselineRecord); b.GetNodeId() == rec.GetNodeId() {
			latest = max(latest, b.GetVersion())
		}
	}
	if err := nextSequence("baseline version", uint64(latest), uint64(rec.GetVersion())); err != nil {
		return err
	}
	tx.put(tableBaselines, string(versionKey(rec.GetNodeId(), rec.GetVersion())), rec)
	return nil
}

func (tx *memTx) Service(name string) (*controllerv1.ServiceRecord, error) {
	return memGet[*controllerv1.ServiceRecord](tx, tableServices, "service", name)
}

func (tx *memTx) Services() ([]*controllerv1.ServiceRecord, error) {
	return list(tx, tableServices, func(r *controllerv1.ServiceRecord) (string, bool) { return r.GetName(), true }), nil
}

func (tx *memTx) PutService(rec *controllerv1.ServiceRecord) error {
	if !tx.writable {
		return readOnly("service")
	}
	if err := checkKey("service name", rec.GetName()); err != nil {
		return err
	}
	tx.put(tableServices, rec.GetName(), rec)
	return nil
}

func (tx *memTx) DeleteService(name string) error {
	if !tx.writable {
		return readOnly("service")
	}
	if _, ok := tx.st.tables[tableServices][name]; !ok {
		return notFound("service", name)
	}
	tx.delete(tableServices, name)
	return nil
}

func (tx *memTx) lastSeq() uint64 {
	var last uint64
	for _, m := range tx.st.tables[tableAuditLog] {
		last = max(last, m.(*controllerv1.AuditLogEntry).GetSequence())
	}
	return last
}

func (tx *memTx) LastLogEntry() (*controllerv1.AuditLogEntry, error) {
	last := tx.lastSeq()
	if last == 0 {
		return nil, notFound("audit-log entry", "last")
	}
	rec, _ := tx.get(tableAuditLog, string(seqKey(last)))
	return rec.(*controllerv1.AuditLogEntry), nil
}

func (tx *memTx) AppendLogEntry(e *controllerv1.AuditLogEntry) error {
	if !tx.writable {
		return readOnly("audit-log entry")
	}
	if e == nil {
		return ErrInvalid
	}
	last := tx.lastSeq()
	if err := checkHead(tx.st.headSeq, last); err != nil {
		return err
	}
	if err := nextSequence("audit-log entry", last, e.GetSequence()); err != nil {
		return err
	}
	tx.put(tableAuditLog, string(seqKey(e.GetSequence())), e)
	tx.st.headSeq, tx.st.headHash = e.GetSequence(), e.GetHash()
	return nil
}

func (tx *memTx) LogHead() (uint64, string, error) {
	return tx.st.headSeq, tx.st.headHash, nil
}

func (tx *memTx) KeyringGeneration() (uint64, error) {
	return tx.st.keyring, nil
}

func (tx *memTx) PutKeyringGeneration(gen uint64) error {
	if !tx.writable {
		return readOnly("keyring generation")
	}
	tx.st.keyring = gen
	return nil
}

func (tx *memTx) LogEntries(after uint64, limit int) ([]*controllerv1.AuditLogEntry, error) {
	entries := list(tx, tableAuditLog, func(e *controllerv1.AuditLogEntry) (string, bool) {
		return string(seqKey(e.GetSequence())), e.GetSequence() > after
	})
	if limit > 0 && len(entries) > limit {
		entries = entries[:limit]
	}
	return entries, nil
}

func (tx *memTx) Artifact(digest string) (*controllerv1.ArtifactRecord, error) {
	return memGet[*controllerv1.ArtifactRecord](tx, tableArtifacts, "artifact", digest)
}

func (tx *memTx) Artifacts() ([]*controllerv1.ArtifactRecord, error) {
	return list(tx, tableArtifacts, func(r *controllerv1.ArtifactRecord) (string, bool) {
		return string(nameIndexKey(r.GetName(), r.GetDigest())), true
	}), nil
}

func (tx *memTx) PutArtifact(rec *controllerv1.ArtifactRecord) error {
	if !tx.writable {
		return readOnly("artifact")
	}
	if err := checkKey("artifact digest", rec.GetDigest()); err != nil {
		return err
	}
	if err := checkKey("artifact name", rec.GetName()); err != nil {
		return err
	}
	tx.put(tableArtifacts, rec.GetDigest(), rec)
	return nil
}

func (tx *memTx) DeleteArtifact(digest string) error {
	if !tx.writable {
		return readOnly("artifact")
	}
	if _, ok := tx.st.tables[tableArtifacts][digest]; !ok {
		return notFound("artifact", digest)
	}
	tx.delete(tableArtifacts, digest)
	return nil
}

func (tx *memTx) Release(name, version string) (*controllerv1.ReleaseRecord, error) {
	rec, err := memGet[*controllerv1.ReleaseRecord](tx, tableReleases, "release", string(releaseKey(name, version)))
	return rec, readableKey(err, "release", name+"@"+version)
}

func (tx *memTx) Releases() ([]*controllerv1.ReleaseRecord, error) {
	out := list(tx, tableReleases, func(r *controllerv1.ReleaseRecord) (string, bool) {
		return string(releaseKey(r.GetName(), r.GetVersion())), true
	})
	sortReleases(out)
	return out, nil
}

func (tx *memTx) PutRelease(rec *controllerv1.ReleaseRecord) error {
	if !tx.writable {
		return readOnly("release")
	}
	if err := checkKey("release name", rec.GetName()); err != nil {
		return err
	}
	if err := checkKey("release version", rec.GetVersion()); err != nil {
		return err
	}
	tx.put(tableReleases, string(releaseKey(rec.GetName(), rec.GetVersion())), rec)
	return nil
}

func (tx *memTx) Rollout(id string) (*controllerv1.RolloutRecord, error) {
	return memGet[*controllerv1.RolloutRecord](tx, tableRollouts, "rollout", id)
}

func (tx *memTx) Rollouts() ([]*controllerv1.RolloutRecord, error) {
	out := list(tx, tableRollouts, func(r *controllerv1.RolloutRecord) (string, bool) {
		return r.GetId(), true
	})
	sortRollouts(out)
	return out, nil
}

func (tx *memTx) PutRollout(rec *controllerv1.RolloutRecord) error {
	if !tx.writable {
		return readOnly("rollout")
	}
	if err := checkKey("rollout ID", rec.GetId()); err != nil {
		return err
	}
	rec = proto.CloneOf(rec)
	rec.Nodes = nil
	tx.put(tableRollouts, rec.GetId(), rec)
	return nil
}

func (tx *memTx) RolloutNode(rolloutID, nodeID string) (*controllerv1.RolloutNode, error) {
	rec, err := memGet[*controllerv1.RolloutNode](tx, tableRolloutNodes, "rollout node", string(pairKey(rolloutID, nodeID)))
	return rec, readableKey(err, "node of rollout "+rolloutID, nodeID)
}

func (tx *memTx) RolloutNodes(rolloutID string) ([]*controllerv1.RolloutNode, error) {
	return list(tx, tableRolloutNodes, func(r *controllerv1.RolloutNode) (string, bool) {
		return string(pairKey(r.GetRolloutId(), r.GetNodeId())), r.GetRolloutId() == rolloutID
	}), nil
}

func (tx *memTx) PutRolloutNode(rec *controllerv1.RolloutNode) error {
	if !tx.writable {
		return readOnly("rollout node")
	}
	if err := checkKey("rollout ID", rec.GetRolloutId()); err != nil {
		return err
	}
	if err := checkKey("node ID", rec.GetNodeId()); err != nil {
		return err
	}
	tx.put(tableRolloutNodes, string(pairKey(rec.GetRolloutId(), rec.GetNodeId())), rec)
	return nil
}

func (tx *memTx) AgentEvent(nodeID, id string) (*controllerv1.AgentEventRecord, error) {
	rec, err := memGet[*controllerv1.AgentEventRecord](tx, tableAgentEvents, "agent event", string(pairKey(nodeID, id)))
	return rec, readableKey(err, "agent event of node "+nodeID, id)
}

func (tx *memTx) AgentEvents(nodeID string) ([]*controllerv1.AgentEventRecord, error) {
	return list(tx, tableAgentEvents, func(r *controllerv1.AgentEventRecord) (string, bool) {
		return string(pairKey(r.GetNodeId(), r.GetId())), r.GetNodeId() == nodeID
	}), nil
}

func (tx *memTx) PutAgentEvent(rec *controllerv1.AgentEventRecord) error {
	if !tx.writable {
		return readOnly("agent event")
	}
	if err := checkKey("node ID", rec.GetNodeId()); err != nil {
		return err
	}
	if err := checkKey("agent event ID", rec.GetId()); err != nil {
		return err
	}
	key := string(pairKey(rec.GetNodeId(), rec.GetId()))
	if _, ok := tx.get(tableAgentEvents, key); ok {
		return fmt.Errorf("%w: agent event %q of node %q is already stored", ErrConflict, rec.GetId(), rec.GetNodeId())
	}
	tx.put(tableAgentEvents, key, rec)
	return nil
}

func (tx *memTx) IssuedReport(digest string) (*controllerv1.IssuedReport, error) {
	return memGet[*controllerv1.IssuedReport](tx, tableIssuedReports, "issued report", digest)
}

func (tx *memTx) PutIssuedReport(rec *controllerv1.IssuedReport) error {
	if !tx.writable {
		return readOnly("issued report")
	}
	if err := checkKey("issued report digest", rec.GetDigest()); err != nil {
		return err
	}
	if _, ok := tx.get(tableIssuedReports, rec.GetDigest()); ok {
		return fmt.Errorf("%w: report %s was issued already", ErrConflict, rec.GetDigest())
	}
	tx.put(tableIssuedReports, rec.GetDigest(), rec)
	return nil
}
