package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-ops/cairn/controller/rollout/state"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// Bucket layout of the bbolt file (schema version 10). Values are
// deterministic protobuf binary unless noted. "\0" is a NUL byte; be64 is
// an 8-byte big-endian integer; time(ts) is be64 of the timestamp's Unix
// nanoseconds with the sign bit flipped (see timeKey), so keys sort by
// instant, not by string.
//
//	meta
//	  schema_version        → be64
//	  auditlog_head         → be64 sequence ‖ hash (hex string bytes)
//	  keyring_generation    → be64 (absent: 0; written since version 6, no migration needed)
//	enroll_tokens           token hash → EnrollTokenRecord
//	nodes                   node ID → NodeRecord
//	users                   user name → UserRecord
//	api_tokens              token hash → APITokenRecord (issuers since version 5)
//	commands                command ID → CommandRecord (typed reports since version 10)
//	node_commands           node ID ‖ \0 ‖ time(created_at) ‖ command ID → "" (index)
//	audits                  audit ID → AuditRecord
//	node_audits             node ID ‖ \0 ‖ time(stored_at) ‖ audit ID → "" (index)
//	baselines               node ID ‖ \0 ‖ be64 version → BaselineRecord (tracked since version 9)
//	services                service name → ServiceRecord
//	auditlog                be64 sequence → AuditLogEntry
//	artifacts               sha256 digest (hex) → ArtifactRecord        (since version 2)
//	artifact_names          name ‖ \0 ‖ digest → "" (index)             (since version 2)
//	releases                name ‖ \0 ‖ version → ReleaseRecord         (since version 3)
//	rollouts                rollout ID → RolloutRecord (without nodes)  (since version 4; enum states since 6)
//	rollout_nodes           rollout ID ‖ \0 ‖ node ID → RolloutNode      (since version 4; enum states since 6; typed reports since 10)
//	agent_events            node ID ‖ \0 ‖ item ID → AgentEventRecord    (since version 4; typed reports since 10)
//	issued_reports          report digest → IssuedReport                (since version 7)
//
// The audit log's head in meta is written with every appended entry and
// is what detects deletion of the newest entries.
//
// Migrations: migrations[i] takes a file from schema version i to i+1.
// OpenBolt runs the missing ones in one transaction, so a file is either
// fully migrated or untouched. A file without meta is version 0.

// DefaultBoltTimeout is how long OpenBolt waits for another process to
// release the file.
const DefaultBoltTimeout = 2 * time.Second

// BoltOptions configures OpenBolt.
type BoltOptions struct {
	// Timeout is how long to wait for the file lock (default
	// DefaultBoltTimeout).
	Timeout time.Duration
}

var (
	keySchemaVersion = []byte("schema_version")
	keyAuditLogHead  = []byte("auditlog_head")
	keyKeyringGen    = []byte("keyring_generation")
)

// migrations[i] migrates schema version i to i+1.
var migrations = []func(*bolt.Tx) error{
	migrateCreateBuckets,
	migrateArtifacts,
	migrateReleases,
	migrateRollouts,
	migrateTokenIssuers,
	migrateRolloutStates,
	migrateIssuedReports,
	migrateReserved8,       // 7 → 8: reserved for the release records of issue 12
	migrateBaselineTracked, // 8 → 9
	migrateTypedReports,    // 9 → 10
}

// schemaVersion is the bucket layout version this code writes.
var schemaVersion = uint64(len(migrations))

// migrateCreateBuckets is version 0 → 1: an empty file gets its buckets.
func migrateCreateBuckets(tx *bolt.Tx) error {
	for _, name := range []string{
		tableMeta, tableEnrollTokens, tableNodes, tableUsers, tableAPITokens,
		tableCommands, tableNodeCommands, tableAudits, tableNodeAudits,
		tableBaselines, tableServices, tableAuditLog,
	} {
		if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

// migrateArtifacts is version 1 → 2: the DML's artifact records.
func migrateArtifacts(tx *bolt.Tx) error {
	for _, name := range []string{tableArtifacts, tableArtifactNames} {
		if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

// migrateReleases is version 2 → 3: release records.
func migrateReleases(tx *bolt.Tx) error {
	if _, err := tx.CreateBucketIfNotExists([]byte(tableReleases)); err != nil {
		return fmt.Errorf("create bucket %s: %w", tableReleases, err)
	}
	return nil
}

// migrateRolloutStates is version 5 → 6: the states of rollouts, their
// waves and their nodes become enums (state), from the names version 5
// stored as strings (legacy_state, then cleared). A node unreachable
// under the skip policy, which version 5 marked only in its error, is
// skipped. Counts are recomputed with the new states
// (controller/rollout/state.Count), and a closed wave records the
// failures it closed with. A name version 5 never wrote is an error
// naming the record: the file is left as it was.
func migrateRolloutStates(tx *bolt.Tx) error {
	byRollout := map[string][]*controllerv1.RolloutNode{}
	err := rewrite(tx, tableRolloutNodes, func(n *controllerv1.RolloutNode) (bool, error) {
		if legacy := n.GetLegacyState(); legacy != "" {
			st, ok := state.ParseNode(legacy)
			if !ok {
				return false, fmt.Errorf("rollout %s node %s: unknown state %q", n.GetRolloutId(), n.GetNodeId(), legacy)
			}
			if st == state.NodeUnreachable && strings.HasPrefix(n.GetError(), "unreachable: skipped by policy") {
				st = state.NodeSkipped
			}
			n.State, n.LegacyState = st, ""
		}
		byRollout[n.GetRolloutId()] = append(byRollout[n.GetRolloutId()], n)
		return true, nil
	})
	if err != nil {
		return err
	}
	return rewrite(tx, tableRollouts, func(ro *controllerv1.RolloutRecord) (bool, error) {
		if legacy := ro.GetLegacyState(); legacy != "" {
			st, ok := state.ParseRollout(legacy)
			if !ok {
				return false, fmt.Errorf("rollout %s: unknown state %q", ro.GetId(), legacy)
			}
			ro.State, ro.LegacyState = st, ""
		}
		mine := byRollout[ro.GetId()]
		for _, w := range ro.GetWaves() {
			if legacy := w.GetLegacyState(); legacy != "" {
				st, ok := state.ParseWave(legacy)
				if !ok {
					return false, fmt.Errorf("rollout %s wave %d: unknown state %q", ro.GetId(), w.GetIndex(), legacy)
				}
				w.State, w.LegacyState = st, ""
			}
			if w.GetState() == state.WaveDone || w.GetState() == state.WaveFailed {
				var failures uint32
				for _, n := range mine {
					if n.GetWave() == w.GetIndex() && state.NodeCountsFailed(n.GetState()) {
						failures++
					}
				}
				w.Failures = failures
			}
		}
		if len(mine) > 0 {
			ro.Counts = state.Count(mine)
		}
		return true, nil
	})
}

// Bolt is the embedded Store: one bbolt file.
type Bolt struct {
	db   *bolt.DB
	path string
}

var _ Store = (*Bolt)(nil)

// migrateIssuedReports is version 6 → 7: the records of the reports the
// controller issued (controller/report).
func migrateIssuedReports(tx *bolt.Tx) error {
	if _, err := tx.CreateBucketIfNotExists([]byte(tableIssuedReports)); err != nil {
		return fmt.Errorf("create bucket %s: %w", tableIssuedReports, err)
	}
	return nil
}

// migrateReserved8 is version 7 → 8, which another change of issue 12
// claims; here it changes nothing, and merging that change replaces it.
func migrateReserved8(*bolt.Tx) error { return nil }

// migrateBaselineTracked is version 8 → 9: a baseline records its node's
// tracked set (BaselineRecord.tracked, controller/cms), the paths every
// audit of the node collects. A baseline stored before has none; it gets
// the track lists of the commands that took its audit and the audits of
// the node's earlier baselines, accumulated in version order: the paths
// the rollouts' and the operators' audits tracked. An audit taken without
// a command, or whose command is gone, adds nothing. No path is dropped:
// no release could stop tracking one before this version. A record that
// does not decode is an error naming it: the file is left as it was.
func migrateBaselineTracked(tx *bolt.Tx) error {
	ab, cb := tx.Bucket([]byte(tableAudits)), tx.Bucket([]byte(tableCommands))
	// commandTrack is the track list of the command that took an audit.
	commandTrack := func(auditID string) ([]string, error) {
		v := ab.Get([]byte(auditID))
		if v == nil {
			return nil, nil
		}
		a := &controllerv1.AuditRecord{}
		if err := proto.Unmarshal(v, a); err != nil {
			return nil, fmt.Errorf("decode audit %q: %w", auditID, err)
		}
		if a.GetCommandId() == "" {
			return nil, nil
		}
		v = cb.Get([]byte(a.GetCommandId()))
		if v == nil {
			return nil, nil
		}
		c := &controllerv1.CommandRecord{}
		if err := proto.Unmarshal(v, c); err != nil {
			return nil, fmt.Errorf("decode command %q: %w", a.GetCommandId(), err)
		}
		return c.GetTrack(), nil
	}
	var (
		node    string
		tracked []string
	)
	// Keys are node ID ‖ \0 ‖ be64 version: each node's baselines come
	// together, oldest first.
	return rewrite(tx, tableBaselines, func(b *controllerv1.BaselineRecord) (bool, error) {
		if b.GetNodeId() != node {
			node, tracked = b.GetNodeId(), nil
		}
		track, err := commandTrack(b.GetAuditId())
		if err != nil {
			return false, fmt.Errorf("baseline %d of node %s: %w", b.GetVersion(), b.GetNodeId(), err)
		}
		tracked = slices.Concat(tracked, track, b.GetTracked())
		slices.Sort(tracked)
		tracked = slices.Compact(tracked)
		b.Tracked = slices.Clone(tracked)
		return true, nil
	})
}

// migrateTypedReports is version 9 → 10: the agents' reports that
// versions before stored as JSON bytes move to their typed messages
// (proto/agent/v1): a deploy command's result_json to its apply_report
// or plan_report (by its action), a rollout node's deploy_report_json
// and rollback_report_json to deploy_report and rollback_report, an
// agent event's payload to its report (by its kind). Those JSON reports
// keep the messages' field names and types, so each reads as its message
// (agentv1.UnmarshalLegacy). One that does not — not JSON, or with a
// field the message lacks, or a step_result, which held the agent's
// journal record of the step — stays where it was, as it was: the
// report shows it as unreadable, and nothing it said is lost.
func migrateTypedReports(tx *bolt.Tx) error {
	if err := rewrite(tx, tableCommands, func(c *controllerv1.CommandRecord) (bool, error) {
		if len(c.GetResultJson()) == 0 || c.GetReport() != nil || c.SetLegacyReport(c.GetResultJson()) != nil {
			return false, nil
		}
		c.ResultJson = nil
		return true, nil
	}); err != nil {
		return err
	}
	if err := rewrite(tx, tableRolloutNodes, func(n *controllerv1.RolloutNode) (bool, error) {
		changed := false
		for _, r := range []struct {
			data *[]byte
			rep  **agentv1.ApplyReport
		}{{&n.DeployReportJson, &n.DeployReport}, {&n.RollbackReportJson, &n.RollbackReport}} {
			if len(*r.data) == 0 || *r.rep != nil {
				continue
			}
			var a agentv1.ApplyReport
			if agentv1.UnmarshalLegacy(*r.data, &a) != nil {
				continue
			}
			*r.rep, *r.data, changed = &a, nil, true
		}
		return changed, nil
	}); err != nil {
		return err
	}
	return rewrite(tx, tableAgentEvents, func(ev *controllerv1.AgentEventRecord) (bool, error) {
		if len(ev.GetPayload()) == 0 || ev.GetReport() != nil || !ev.SetLegacyReport(ev.GetPayload()) {
			return false, nil
		}
		ev.Payload = nil
		return true, nil
	})
}

// rewrite decodes every record of bucket as an M, in key order, and
// writes back those that change reports it changed (bbolt forbids writes
// during ForEach: they are written after). An error of change ends it:
// the migration fails and the file is left as it was.
func rewrite[M any, P interface {
	*M
	proto.Message
}](tx *bolt.Tx, bucket string, change func(P) (bool, error)) error {
	b := tx.Bucket([]byte(bucket))
	type keyed struct {
		key []byte
		rec P
	}
	var changed []keyed
	err := b.ForEach(func(k, v []byte) error {
		rec := P(new(M))
		if err := proto.Unmarshal(v, rec); err != nil {
			return fmt.Errorf("decode %s %q: %w", bucket, k, err)
		}
		ok, err := change(rec)
		if ok {
			changed = append(changed, keyed{bytes.Clone(k), rec})
		}
		return err
	})
	if err != nil {
		return err
	}
	for _, kr := range changed {
		v, err := proto.MarshalOptions{Deterministic: true}.Marshal(kr.rec)
		if err != nil {
			return fmt.Errorf("encode %s %q: %w", bucket, kr.key, err)
		}
		if err := b.Put(kr.key, v); err != nil {
			return err
		}
	}
	return nil
}

// migrateRollouts is version 3 → 4: rollouts, their nodes, and the
// agents' outbox items.
func migrateRollouts(tx *bolt.Tx) error {
	for _, name := range []string{tableRollouts, tableRolloutNodes, tableAgentEvents} {
		if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

// migrateTokenIssuers is version 4 → 5: API tokens name the users who
// could hold them besides their user (APITokenRecord.issuers), for
// separation of duties. A token that user X created for another user
// (created_by "user:X") gets X and, since nobody recorded which of X's
// tokens X used, the issuers of every token of X's, repeated until
// nothing changes: more users than the truth, never fewer, which is the
// safe side for separation of duties.
func migrateTokenIssuers(tx *bolt.Tx) error {
	b := tx.Bucket([]byte(tableAPITokens))
	type token struct {
		key     []byte
		rec     *controllerv1.APITokenRecord
		changed bool
	}
	var tokens []*token
	err := b.ForEach(func(k, v []byte) error {
		rec := &controllerv1.APITokenRecord{}
		if err := proto.Unmarshal(v, rec); err != nil {
			return fmt.Errorf("decode API token %x: %w", k, err)
		}
		tokens = append(tokens, &token{key: bytes.Clone(k), rec: rec})
		return nil
	})
	if err != nil {
		return err
	}
	for changed := true; changed; {
		changed = false
		for _, t := range tokens {
			creator, ok := strings.CutPrefix(t.rec.GetCreatedBy(), "user:")
			if !ok {
				continue // "system" (init) or a test's token
			}
			add := []string{creator}
			for _, o := range tokens {
				if o.rec.GetUser() == creator {
					add = append(add, o.rec.GetIssuers()...)
				}
			}
			for _, u := range add {
				if u != t.rec.GetUser() && !slices.Contains(t.rec.Issuers, u) {
					t.rec.Issuers = append(t.rec.Issuers, u)
					t.changed, changed = true, true
				}
			}
		}
	}
	for _, t := range tokens {
		if !t.changed {
			continue
		}
		v, err := proto.MarshalOptions{Deterministic: true}.Marshal(t.rec)
		if err != nil {
			return fmt.Errorf("encode API token %s: %w", t.rec.GetId(), err)
		}
		if err := b.Put(t.key, v); err != nil {
			return fmt.Errorf("put API token %s: %w", t.rec.GetId(), err)
		}
	}
	return nil
}

// OpenBolt opens or creates the store file at path and migrates it to
// the current schema version. It fails with ErrLocked when another process holds the
// file for longer than opts.Timeout, and with ErrSchema when the file was
// written by a newer Cairn.
func OpenBolt(path string, opts BoltOptions) (*Bolt, error) {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultBoltTimeout
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("timed out opening %s: is another cairn-controller using this data dir? (%w)", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := migrate(db, path); err != nil {
		db.Close()
		return nil, err
	}
	return &Bolt{db: db, path: path}, nil
}

// migrate brings the file to schemaVersion. A file that is current is
// not written to.
func migrate(db *bolt.DB, path string) error {
	var version uint64
	err := db.View(func(tx *bolt.Tx) (err error) {
		version, err = readSchemaVersion(tx, path)
		return err
	})
	if err != nil || version == schemaVersion {
		return err
	}
	return db.Update(func(tx *bolt.Tx) error {
		version, err := readSchemaVersion(tx, path)
		if err != nil {
			return err
		}
		for v := version; v < schemaVersion; v++ {
			if err := migrations[v](tx); err != nil {
				return fmt.Errorf("migrate store %s from schema version %d to %d: %w", path, v, v+1, err)
			}
		}
		if err := tx.Bucket([]byte(tableMeta)).Put(keySchemaVersion, seqKey(schemaVersion)); err != nil {
			return fmt.Errorf("migrate store %s: write schema version: %w", path, err)
		}
		return nil
	})
}

// readSchemaVersion returns the file's schema version (0 for a file
// without one) and refuses versions newer than this code.
func readSchemaVersion(tx *bolt.Tx, path string) (uint64, error) {
	var version uint64
	if meta := tx.Bucket([]byte(tableMeta)); meta != nil {
		if v := meta.Get(keySchemaVersion); v != nil {
			if len(v) != 8 {
				return 0, fmt.Errorf("%w: %s: schema version is %d bytes long, want 8: the file is damaged", ErrSchema, path, len(v))
			}
			version = binary.BigEndian.Uint64(v)
		}
	}
	if version > schemaVersion {
		return 0, fmt.Errorf("%w: %s has schema version %d, but this cairn-controller knows only up to %d: run a newer cairn-controller, or restore a backup of the data dir", ErrSchema, path, version, schemaVersion)
	}
	return version, nil
}

// Path is the file the store lives in.
func (b *Bolt) Path() string { return b.path }

// View runs fn in a bbolt read transaction.
func (b *Bolt) View(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return mapBoltErr(b.db.View(func(tx *bolt.Tx) error { return fn(&boltTx{tx: tx}) }))
}

// Update runs fn in a bbolt read-write transaction.
func (b *Bolt) Update(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return mapBoltErr(b.db.Update(func(tx *bolt.Tx) error { return fn(&boltTx{tx: tx}) }))
}

// Batch runs fn through bbolt's Batch: concurrent calls share one
// transaction, and fn may run more than once.
func (b *Bolt) Batch(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return mapBoltErr(b.db.Batch(func(tx *bolt.Tx) error { return fn(&boltTx{tx: tx}) }))
}

// Close closes the file. Closing twice is harmless.
func (b *Bolt) Close() error {
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("close store %s: %w", b.path, err)
	}
	return nil
}

func mapBoltErr(err error) error {
	switch {
	case errors.Is(err, bolterrors.ErrDatabaseNotOpen):
		return ErrClosed
	case errors.Is(err, bolterrors.ErrTxNotWritable):
		return fmt.Errorf("%w: %w", ErrReadOnly, err)
	}
	return err
}

type boltTx struct {
	tx *bolt.Tx
}

func (tx *boltTx) bucket(name string) *bolt.Bucket {
	// migrate made every bucket of the current schema version.
	return tx.tx.Bucket([]byte(name))
}

// boltGet unmarshals the value under key inside the transaction, so
// nothing returned refers to bbolt's memory.
func boltGet[T any, P interface {
	*T
	proto.Message
}](tx *boltTx, table, what, key string) (P, error) {
	v := tx.bucket(table).Get([]byte(key))
	if v == nil {
		return nil, notFound(what, key)
	}
	rec := P(new(T))
	if err := proto.Unmarshal(v, rec); err != nil {
		return nil, fmt.Errorf("decode %s %q: %w", what, key, err)
	}
	return rec, nil
}

func boltPut(tx *boltTx, table, what string, key []byte, rec proto.Message) error {
	v, err := proto.MarshalOptions{Deterministic: true}.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode %s: %w", what, err)
	}
	if err := tx.bucket(table).Put(key, v); err != nil {
		return fmt.Errorf("put %s: %w", what, err)
	}
	return nil
}

// boltScan decodes the values of table whose keys start with prefix, in
// key order, stopping after limit records when limit > 0.
func boltScan[T any, P interface {
	*T
	proto.Message
}](tx *boltTx, table, what string, seek, prefix []byte, limit int) ([]P, error) {
	var out []P
	c := tx.bucket(table).Cursor()
	k, v := c.First()
	if seek != nil {
		k, v = c.Seek(seek)
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		rec := P(new(T))
		if err := proto.Unmarshal(v, rec); err != nil {
			return nil, fmt.Errorf("decode %s %q: %w", what, k, err)
		}
		out = append(out, rec)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out, nil
}

// boltIndexed follows the index keys of nodeID in index to the records
// in table; the record ID is the index key after the node prefix and the
// 8-byte time.
func boltIndexed[T any, P interface {
	*T
	proto.Message
}](tx *boltTx, index, table, what, nodeID string) ([]P, error) {
	var out []P
	prefix := nodePrefix(nodeID)
	c := tx.bucket(index).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) < len(prefix)+8 {
			return nil, fmt.Errorf("%s index: malformed key %q", what, k)
		}
		rec, err := boltGet[T, P](tx, table, what, string(k[len(prefix)+8:]))
		if err != nil {
			return nil, fmt.Errorf("%s index of node %q: %w", what, nodeID, err)
		}
		out = append(out, rec)
	}
	return out, nil
}

// reindex replaces the index entry old (nil when there was none) with
// new.
func (tx *boltTx) reindex(index string, old, new []byte) error {
	b := tx.bucket(index)
	if old != nil && !bytes.Equal(old, new) {
		if err := b.Delete(old); err != nil {
			return fmt.Errorf("update %s: %w", index, err)
		}
	}
	if err := b.Put(new, nil); err != nil {
		return fmt.Errorf("update %s: %w", index, err)
	}
	return nil
}

func (tx *boltTx) EnrollToken(tokenHash string) (*controllerv1.EnrollTokenRecord, error) {
	return boltGet[controllerv1.EnrollTokenRecord](tx, tableEnrollTokens, "enrollment token", tokenHash)
}

func (tx *boltTx) PutEnrollToken(rec *controllerv1.EnrollTokenRecord) error {
	if !tx.tx.Writable() {
		return readOnly("enrollment token")
	}
	if err := checkKey("enrollment token hash", rec.GetTokenHash()); err != nil {
		return err
	}
	return boltPut(tx, tableEnrollTokens, "enrollment token", []byte(rec.GetTokenHash()), rec)
}

func (tx *boltTx) Node(id string) (*controllerv1.NodeRecord, error) {
	return boltGet[controllerv1.NodeRecord](tx, tableNodes, "node", id)
}

func (tx *boltTx) Nodes() ([]*controllerv1.NodeRecord, error) {
	return boltScan[controllerv1.NodeRecord](tx, tableNodes, "node", nil, nil, 0)
}

func (tx *boltTx) PutNode(rec *controllerv1.NodeRecord) error {
	if !tx.tx.Writable() {
		return readOnly("node")
	}
	if err := checkKey("node ID", rec.GetId()); err != nil {
		return err
	}
	return boltPut(tx, tableNodes, "node", []byte(rec.GetId()), rec)
}

func (tx *boltTx) User(name string) (*controllerv1.UserRecord, error) {
	return boltGet[controllerv1.UserRecord](tx, tableUsers, "user", name)
}

func (tx *boltTx) Users() ([]*controllerv1.UserRecord, error) {
	return boltScan[controllerv1.UserRecord](tx, tableUsers, "user", nil, nil, 0)
}

func (tx *boltTx) PutUser(rec *controllerv1.UserRecord) error {
	if !tx.tx.Writable() {
		return readOnly("user")
	}
	if err := checkKey("user name", rec.GetName()); err != nil {
		return err
	}
	return boltPut(tx, tableUsers, "user", []byte(rec.GetName()), rec)
}

func (tx *boltTx) APIToken(tokenHash string) (*controllerv1.APITokenRecord, error) {
	return boltGet[controllerv1.APITokenRecord](tx, tableAPITokens, "API token", tokenHash)
}

func (tx *boltTx) APITokens() ([]*controllerv1.APITokenRecord, error) {
	return boltScan[controllerv1.APITokenRecord](tx, tableAPITokens, "API token", nil, nil, 0)
}

func (tx *boltTx) PutAPIToken(rec *controllerv1.APITokenRecord) error {
	if !tx.tx.Writable() {
		return readOnly("API token")
	}
	if err := checkKey("API token hash", rec.GetTokenHash()); err != nil {
		return err
	}
	return boltPut(tx, tableAPITokens, "API token", []byte(rec.GetTokenHash()), rec)
}

func (tx *boltTx) Command(id string) (*controllerv1.CommandRecord, error) {
	return boltGet[controllerv1.CommandRecord](tx, tableCommands, "command", id)
}

func (tx *boltTx) NodeCommands(nodeID string) ([]*controllerv1.CommandRecord, error) {
	return boltIndexed[controllerv1.CommandRecord](tx, tableNodeCommands, tableCommands, "command", nodeID)
}

func (tx *boltTx) PutCommand(rec *controllerv1.CommandRecord) error {
	if !tx.tx.Writable() {
		return readOnly("command")
	}
	if err := checkKey("command ID", rec.GetId()); err != nil {
		return err
	}
	if err := checkKey("command node ID", rec.GetNodeId()); err != nil {
		return err
	}
	var oldKey []byte
	switch old, err := tx.Command(rec.GetId()); {
	case err == nil:
		oldKey = timeIndexKey(old.GetNodeId(), old.GetCreatedAt(), old.GetId())
	case !errors.Is(err, ErrNotFound):
		return err
	}
	if err := boltPut(tx, tableCommands, "command", []byte(rec.GetId()), rec); err != nil {
		return err
	}
	return tx.reindex(tableNodeCommands, oldKey, timeIndexKey(rec.GetNodeId(), rec.GetCreatedAt(), rec.GetId()))
}

func (tx *boltTx) Audit(id string) (*controllerv1.AuditRecord, error) {
	return boltGet[controllerv1.AuditRecord](tx, tableAudits, "audit", id)
}

func (tx *boltTx) NodeAudits(nodeID string) ([]*controllerv1.AuditRecord, error) {
	return boltIndexed[controllerv1.AuditRecord](tx, tableNodeAudits, tableAudits, "audit", nodeID)
}

func (tx *boltTx) PutAudit(rec *controllerv1.AuditRecord) error {
	if !tx.tx.Writable() {
		return readOnly("audit")
	}
	if err := checkKey("audit ID", rec.GetId()); err != nil {
		return err
	}
	if err := checkKey("audit node ID", rec.GetNodeId()); err != nil {
		return err
	}
	var oldKey []byte
	switch old, err := tx.Audit(rec.GetId()); {
	case err == nil:
		oldKey = timeIndexKey(old.GetNodeId(), old.GetStoredAt(), old.GetId())
	case !errors.Is(err, ErrNotFound):
		return err
	}
	if err := boltPut(tx, tableAudits, "audit", []byte(rec.GetId()), rec); err != nil {
		return err
	}
	return tx.reindex(tableNodeAudits, oldKey, timeIndexKey(rec.GetNodeId(), rec.GetStoredAt(), rec.GetId()))
}

func (tx *boltTx) Baselines(nodeID string) ([]*controllerv1.BaselineRecord, error) {
	prefix := nodePrefix(nodeID)
	return boltScan[controllerv1.BaselineRecord](tx, tableBaselines, "baseline", prefix, prefix, 0)
}

func (tx *boltTx) PutBaseline(rec *controllerv1.BaselineRecord) error {
	if !tx.tx.Writable() {
		return readOnly("baseline")
	}
	if err := checkKey("baseline node ID", rec.GetNodeId()); err != nil {
		return err
	}
	// The node's newest baseline is the last key before the next prefix.
	prefix := nodePrefix(rec.GetNodeId())
	c := tx.bucket(tableBaselines).Cursor()
	k, _ := c.Seek(append([]byte(rec.GetNodeId()), 1))
	if k == nil {
		k, _ = c.Last()
	} else {
		k, _ = c.Prev()
	}
	var latest uint64
	if k != nil && bytes.HasPrefix(k, prefix) && len(k) == len(prefix)+8 {
		latest = binary.BigEndian.Uint64(k[len(prefix):])
	}
	if err := nextSequence("baseline version", latest, uint64(rec.GetVersion())); err != nil {
		return err
	}
	return boltPut(tx, tableBaselines, "baseline", versionKey(rec.GetNodeId(), rec.GetVersion()), rec)
}

func (tx *boltTx) Service(name string) (*controllerv1.ServiceRecord, error) {
	return boltGet[controllerv1.ServiceRecord](tx, tableServices, "service", name)
}

func (tx *boltTx) Services() ([]*controllerv1.ServiceRecord, error) {
	return boltScan[controllerv1.ServiceRecord](tx, tableServices, "service", nil, nil, 0)
}

func (tx *boltTx) PutService(rec *controllerv1.ServiceRecord) error {
	if !tx.tx.Writable() {
		return readOnly("service")
	}
	if err := checkKey("service name", rec.GetName()); err != nil {
		return err
	}
	return boltPut(tx, tableServices, "service", []byte(rec.GetName()), rec)
}

func (tx *boltTx) DeleteService(name string) error {
	if !tx.tx.Writable() {
		return readOnly("service")
	}
	b := tx.bucket(tableServices)
	if b.Get([]byte(name)) == nil {
		return notFound("service", name)
	}
	if err := b.Delete([]byte(name)); err != nil {
		return fmt.Errorf("delete service %q: %w", name, err)
	}
	return nil
}

// lastLog returns the newest entry's key and value (nil when the log is
// empty).
func (tx *boltTx) lastLog() (seq uint64, v []byte) {
	k, v := tx.bucket(tableAuditLog).Cursor().Last()
	if len(k) != 8 {
		return 0, nil
	}
	return binary.BigEndian.Uint64(k), v
}

func (tx *boltTx) LastLogEntry() (*controllerv1.AuditLogEntry, error) {
	seq, v := tx.lastLog()
	if v == nil {
		return nil, notFound("audit-log entry", "last")
	}
	e := &controllerv1.AuditLogEntry{}
	if err := proto.Unmarshal(v, e); err != nil {
		return nil, fmt.Errorf("decode audit-log entry %d: %w", seq, err)
	}
	return e, nil
}

func (tx *boltTx) AppendLogEntry(e *controllerv1.AuditLogEntry) error {
	if !tx.tx.Writable() {
		return readOnly("audit-log entry")
	}
	if e == nil {
		return ErrInvalid
	}
	last, _ := tx.lastLog()
	headSeq, _, err := tx.LogHead()
	if err != nil {
		return err
	}
	if err := checkHead(headSeq, last); err != nil {
		return err
	}
	if err := nextSequence("audit-log entry", last, e.GetSequence()); err != nil {
		return err
	}
	if err := boltPut(tx, tableAuditLog, "audit-log entry", seqKey(e.GetSequence()), e); err != nil {
		return err
	}
	head := append(seqKey(e.GetSequence()), e.GetHash()...)
	if err := tx.bucket(tableMeta).Put(keyAuditLogHead, head); err != nil {
		return fmt.Errorf("put audit-log head: %w", err)
	}
	return nil
}

func (tx *boltTx) LogHead() (uint64, string, error) {
	v := tx.bucket(tableMeta).Get(keyAuditLogHead)
	if v == nil {
		return 0, "", nil
	}
	if len(v) < 8 {
		return 0, "", fmt.Errorf("audit-log head is %d bytes long, want at least 8: the store file is damaged", len(v))
	}
	return binary.BigEndian.Uint64(v), string(v[8:]), nil
}

func (tx *boltTx) KeyringGeneration() (uint64, error) {
	v := tx.bucket(tableMeta).Get(keyKeyringGen)
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("keyring generation is %d bytes long, want 8: the store file is damaged", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func (tx *boltTx) PutKeyringGeneration(gen uint64) error {
	if !tx.tx.Writable() {
		return readOnly("keyring generation")
	}
	if err := tx.bucket(tableMeta).Put(keyKeyringGen, seqKey(gen)); err != nil {
		return fmt.Errorf("put keyring generation: %w", err)
	}
	return nil
}

func (tx *boltTx) LogEntries(after uint64, limit int) ([]*controllerv1.AuditLogEntry, error) {
	if after == ^uint64(0) {
		return nil, nil
	}
	return boltScan[controllerv1.AuditLogEntry](tx, tableAuditLog, "audit-log entry", seqKey(after+1), nil, limit)
}

func (tx *boltTx) Artifact(digest string) (*controllerv1.ArtifactRecord, error) {
	return boltGet[controllerv1.ArtifactRecord](tx, tableArtifacts, "artifact", digest)
}

func (tx *boltTx) Artifacts() ([]*controllerv1.ArtifactRecord, error) {
	var out []*controllerv1.ArtifactRecord
	c := tx.bucket(tableArtifactNames).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		i := bytes.IndexByte(k, 0)
		if i < 0 {
			return nil, fmt.Errorf("artifact name index: malformed key %q", k)
		}
		rec, err := tx.Artifact(string(k[i+1:]))
		if err != nil {
			return nil, fmt.Errorf("artifact name index: %w", err)
		}
		out = append(out, rec)
	}
	return out, nil
}

func (tx *boltTx) PutArtifact(rec *controllerv1.ArtifactRecord) error {
	if !tx.tx.Writable() {
		return readOnly("artifact")
	}
	if err := checkKey("artifact digest", rec.GetDigest()); err != nil {
		return err
	}
	if err := checkKey("artifact name", rec.GetName()); err != nil {
		return err
	}
	var oldKey []byte
	switch old, err := tx.Artifact(rec.GetDigest()); {
	case err == nil:
		oldKey = nameIndexKey(old.GetName(), old.GetDigest())
	case !errors.Is(err, ErrNotFound):
		return err
	}
	if err := boltPut(tx, tableArtifacts, "artifact", []byte(rec.GetDigest()), rec); err != nil {
		return err
	}
	return tx.reindex(tableArtifactNames, oldKey, nameIndexKey(rec.GetName(), rec.GetDigest()))
}

func (tx *boltTx) DeleteArtifact(digest string) error {
	if !tx.tx.Writable() {
		return readOnly("artifact")
	}
	old, err := tx.Artifact(digest)
	if err != nil {
		return err
	}
	if err := tx.bucket(tableArtifacts).Delete([]byte(digest)); err != nil {
		return fmt.Errorf("delete artifact %s: %w", digest, err)
	}
	if err := tx.bucket(tableArtifactNames).Delete(nameIndexKey(old.GetName(), digest)); err != nil {
		return fmt.Errorf("delete artifact %s: %w", digest, err)
	}
	return nil
}

func (tx *boltTx) Release(name, version string) (*controllerv1.ReleaseRecord, error) {
	rec, err := boltGet[controllerv1.ReleaseRecord](tx, tableReleases, "release", string(releaseKey(name, version)))
	return rec, readableKey(err, "release", name+"@"+version)
}

func (tx *boltTx) Releases() ([]*controllerv1.ReleaseRecord, error) {
	out, err := boltScan[controllerv1.ReleaseRecord](tx, tableReleases, "release", nil, nil, 0)
	if err != nil {
		return nil, err
	}
	sortReleases(out)
	return out, nil
}

func (tx *boltTx) PutRelease(rec *controllerv1.ReleaseRecord) error {
	if !tx.tx.Writable() {
		return readOnly("release")
	}
	if err := checkKey("release name", rec.GetName()); err != nil {
		return err
	}
	if err := checkKey("release version", rec.GetVersion()); err != nil {
		return err
	}
	return boltPut(tx, tableReleases, "release", releaseKey(rec.GetName(), rec.GetVersion()), rec)
}

func (tx *boltTx) Rollout(id string) (*controllerv1.RolloutRecord, error) {
	return boltGet[controllerv1.RolloutRecord](tx, tableRollouts, "rollout", id)
}

func (tx *boltTx) Rollouts() ([]*controllerv1.RolloutRecord, error) {
	out, err := boltScan[controllerv1.RolloutRecord](tx, tableRollouts, "rollout", nil, nil, 0)
	if err != nil {
		return nil, err
	}
	sortRollouts(out)
	return out, nil
}

func (tx *boltTx) PutRollout(rec *controllerv1.RolloutRecord) error {
	if !tx.tx.Writable() {
		return readOnly("rollout")
	}
	if err := checkKey("rollout ID", rec.GetId()); err != nil {
		return err
	}
	if len(rec.GetNodes()) > 0 {
		rec = proto.CloneOf(rec)
		rec.Nodes = nil
	}
	return boltPut(tx, tableRollouts, "rollout", []byte(rec.GetId()), rec)
}

func (tx *boltTx) RolloutNode(rolloutID, nodeID string) (*controllerv1.RolloutNode, error) {
	rec, err := boltGet[controllerv1.RolloutNode](tx, tableRolloutNodes, "rollout node", string(pairKey(rolloutID, nodeID)))
	return rec, readableKey(err, "node of rollout "+rolloutID, nodeID)
}

func (tx *boltTx) RolloutNodes(rolloutID string) ([]*controllerv1.RolloutNode, error) {
	prefix := pairKey(rolloutID, "")
	return boltScan[controllerv1.RolloutNode](tx, tableRolloutNodes, "rollout node", prefix, prefix, 0)
}

func (tx *boltTx) PutRolloutNode(rec *controllerv1.RolloutNode) error {
	if !tx.tx.Writable() {
		return readOnly("rollout node")
	}
	if err := checkKey("rollout ID", rec.GetRolloutId()); err != nil {
		return err
	}
	if err := checkKey("node ID", rec.GetNodeId()); err != nil {
		return err
	}
	return boltPut(tx, tableRolloutNodes, "rollout node", pairKey(rec.GetRolloutId(), rec.GetNodeId()), rec)
}

func (tx *boltTx) AgentEvent(nodeID, id string) (*controllerv1.AgentEventRecord, error) {
	rec, err := boltGet[controllerv1.AgentEventRecord](tx, tableAgentEvents, "agent event", string(pairKey(nodeID, id)))
	return rec, readableKey(err, "agent event of node "+nodeID, id)
}

func (tx *boltTx) AgentEvents(nodeID string) ([]*controllerv1.AgentEventRecord, error) {
	prefix := pairKey(nodeID, "")
	return boltScan[controllerv1.AgentEventRecord](tx, tableAgentEvents, "agent event", prefix, prefix, 0)
}

func (tx *boltTx) PutAgentEvent(rec *controllerv1.AgentEventRecord) error {
	if !tx.tx.Writable() {
		return readOnly("agent event")
	}
	if err := checkKey("node ID", rec.GetNodeId()); err != nil {
		return err
	}
	if err := checkKey("agent event ID", rec.GetId()); err != nil {
		return err
	}
	key := pairKey(rec.GetNodeId(), rec.GetId())
	if tx.bucket(tableAgentEvents).Get(key) != nil {
		return fmt.Errorf("%w: agent event %q of node %q is already stored", ErrConflict, rec.GetId(), rec.GetNodeId())
	}
	return boltPut(tx, tableAgentEvents, "agent event", key, rec)
}

func (tx *boltTx) IssuedReport(digest string) (*controllerv1.IssuedReport, error) {
	return boltGet[controllerv1.IssuedReport](tx, tableIssuedReports, "issued report", digest)
}

func (tx *boltTx) PutIssuedReport(rec *controllerv1.IssuedReport) error {
	if !tx.tx.Writable() {
		return readOnly("issued report")
	}
	if err := checkKey("issued report digest", rec.GetDigest()); err != nil {
		return err
	}
	if tx.bucket(tableIssuedReports).Get([]byte(rec.GetDigest())) != nil {
		return fmt.Errorf("%w: report %s was issued already", ErrConflict, rec.GetDigest())
	}
	return boltPut(tx, tableIssuedReports, "issued report", []byte(rec.GetDigest()), rec)
}
