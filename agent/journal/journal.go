// Package journal is the agent's database (one bbolt file, journal.db):
// the durable record of deployments, the controller's commands the agent
// completed, and the one outbox of everything the controller has not
// acknowledged yet.
//
// Every step of every deployment is written before and after its plugin
// runs, so that after a crash the agent knows which steps ran, which
// finished and which were cut off. What the controller must hear of is
// queued in the outbox in the same transaction as the change it reports:
// a finished step with its result (Finish), the end of a deployment with
// its report and, for a controller's deploy command, the command's
// completion and result (EndDeployment), a step a crash cut off
// (Recover), a command's result with the record that it completed
// (Complete). So a crash can neither lose a report nor make one twice.
// An item leaves the outbox when the controller acknowledges it (Ack).
//
// A step moves
//
//	pending → running → succeeded | failed
//	pending → skipped | failed (refused before it ran)
//	running → interrupted (found running after a crash; not idempotent)
//	running → pending (found running after a crash; idempotent: re-run)
//	interrupted → succeeded | failed | pending (an operator's decision)
//	interrupted → failed (a rollback undid it from its undo record)
//
// and each transition is one bbolt Update, which fsyncs before it
// returns: the agent writes "running" before it calls the plugin's Apply
// and the result after, so a crash in between is seen by Recover.
package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"google.golang.org/protobuf/encoding/protojson"

	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// Bucket layout of DATA/journal.db (schema version 2). Values are JSON of
// the Go types named. "\0" is a NUL byte; be32/be64 are big-endian
// integers.
//
//	meta
//	  schema_version                    → be64
//	  outbox_count                      → be64 (items in outbox; since version 2)
//	  completed_count                   → be64 (IDs in completed; since version 2)
//	  imported/NAME                     → "1" (Import of NAME is done; since version 2)
//	deployments   deployment ID         → Deployment
//	steps         deployment ID ‖ \0 ‖ list rank (1 byte: steps 0, verify 1, rollback 2) ‖ be32 index
//	                                    → Step
//	outbox        be64 sequence         → OutboxItem
//	outbox_ids    item ID               → be64 sequence (index; makes Put idempotent)
//	completed     be64 sequence         → command ID (oldest first; since version 2)
//	completed_ids command ID            → be64 sequence (index)
//
// Migrations: migrations[i] takes a file from schema version i to i+1, in
// one transaction. A file without meta is version 0. A field added to a
// value later (Deployment.command_id, Deployment.ends) reads as its zero
// value from an older file and needs no migration.

// FileName is the journal's file name in the agent's data dir.
const FileName = "journal.db"

// DefaultTimeout is how long Open waits for another process to release
// the file.
const DefaultTimeout = 2 * time.Second

// Step lists, in the order they run.
const (
	ListSteps    = "steps"
	ListVerify   = "verify"
	ListRollback = "rollback"
)

var listRank = map[string]byte{ListSteps: 0, ListVerify: 1, ListRollback: 2}

// State is a step's or a deployment's state.
type State string

// States. Those a report names (a deployment's end, Recover's decision)
// are the words of agentv1's reports.
const (
	StatePending     State = agentv1.StatePending
	StateRunning     State = "running"
	StateSucceeded   State = agentv1.StateSucceeded
	StateFailed      State = agentv1.StateFailed
	StateInterrupted State = agentv1.StateInterrupted
	StateSkipped     State = "skipped"
	// StateRolledBack is a deployment's state after a failure was
	// undone, or after an operator's rollback undid it.
	StateRolledBack State = agentv1.StateRolledBack
	// StateRollingBack is a deployment's state while a rollback of it
	// runs; a rollback that finds it there was cut off and goes on.
	StateRollingBack State = "rolling-back"
)

// Deployment is one run of one manifest against one root.
type Deployment struct {
	ID string `json:"id"`
	// CommandID is the controller's deploy command that started the
	// deployment; empty for a local apply. Journals written before it
	// existed read as empty (JSON values: no migration).
	CommandID string `json:"command_id,omitempty"`
	// Manifest is name@version.
	Manifest     string    `json:"manifest"`
	ManifestFile string    `json:"manifest_file,omitempty"`
	Root         string    `json:"root"`
	StartedAt    time.Time `json:"started_at"`
	FinishedAt   time.Time `json:"finished_at,omitzero"`
	State        State     `json:"state"`
	Error        string    `json:"error,omitempty"`
	// Ends counts the times the deployment ended (EndDeployment): a run,
	// then a rollback, each queue their own deployment_result.
	Ends int `json:"ends,omitempty"`
}

// Change is how the journal keeps a change a step declared (package,
// file or service); reports carry it as an agentv1.Change (Report).
type Change struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	State   string `json:"state,omitempty"`
	Version string `json:"version,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
}

// Report is the change as reports carry it.
func (c Change) Report() *agentv1.Change {
	return &agentv1.Change{Kind: c.Kind, Name: c.Name, State: c.State, Version: c.Version, Sha256: c.SHA256}
}

// Resolution is an operator's decision on an interrupted step.
type Resolution struct {
	As   string    `json:"as"`
	Note string    `json:"note"`
	By   string    `json:"by,omitempty"`
	At   time.Time `json:"at"`
}

// Step is one step of a deployment.
type Step struct {
	DeploymentID string `json:"deployment_id"`
	List         string `json:"list"`
	Index        int    `json:"index"`
	Name         string `json:"name"`
	Plugin       string `json:"plugin"`
	// Idempotent is the plugin's Describe answer, recorded when the step
	// starts running; Recover decides by it.
	Idempotent     bool              `json:"idempotent"`
	State          State             `json:"state"`
	Attempts       int               `json:"attempts"`
	StartedAt      time.Time         `json:"started_at,omitzero"`
	FinishedAt     time.Time         `json:"finished_at,omitzero"`
	Error          string            `json:"error,omitempty"`
	Changed        bool              `json:"changed"`
	Outputs        map[string]string `json:"outputs,omitempty"`
	RollbackRecord []byte            `json:"rollback_record,omitempty"`
	Changes        []Change          `json:"changes,omitempty"`
	// RolledBackAt is set when the plugin's Rollback undid this step.
	RolledBackAt time.Time `json:"rolled_back_at,omitzero"`
	// Confirmation is an operator's confirmation of a manual step.
	ConfirmedBy   string        `json:"confirmed_by,omitempty"`
	ConfirmedNote string        `json:"confirmed_note,omitempty"`
	Resolutions   []Resolution  `json:"resolutions,omitempty"`
	Log           []string      `json:"log,omitempty"`
	Duration      time.Duration `json:"duration,omitempty"`
}

// Ref names the step in messages: "steps/install".
func (s *Step) Ref() string { return s.List + "/" + s.Name }

// Outcome is a finished step's outcome in a report: failed, passed (a
// verify check), changed or unchanged; "" for a step that is not
// finished.
func (s *Step) Outcome() string {
	switch {
	case s.State == StateFailed:
		return agentv1.OutcomeFailed
	case s.State != StateSucceeded:
		return ""
	case s.List == ListVerify:
		return agentv1.OutcomePassed
	case s.Changed:
		return agentv1.OutcomeChanged
	}
	return agentv1.OutcomeUnchanged
}

// Result is the step as a report's line (and a step_result outbox
// item's payload): its outcome, how long its last attempt ran, its
// error, outputs, changes and log. A confirmation, the rollback record
// and the times stay in the journal.
func (s *Step) Result() *agentv1.StepResult {
	r := &agentv1.StepResult{
		List: s.List, Name: s.Name, Plugin: s.Plugin, Outcome: s.Outcome(),
		Duration: s.Duration.Nanoseconds(), Attempts: int32(s.Attempts), Error: s.Error,
		Outputs: s.Outputs, Log: s.Log,
	}
	for _, c := range s.Changes {
		r.Changes = append(r.Changes, c.Report())
	}
	return r
}

// Options configures Open.
type Options struct {
	// Timeout is how long to wait for the file lock (default
	// DefaultTimeout).
	Timeout time.Duration
	// Logger receives Recover's decisions (default: discard).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// MaxCompleted is how many completed command IDs are kept (default
	// DefaultMaxCompleted); the oldest go first.
	MaxCompleted int
	// MaxOutbox is how many outbox items are kept (default
	// DefaultMaxOutbox); past it the oldest are dropped, and logged.
	MaxOutbox int
}

// Journal is the open journal file.
type Journal struct {
	db   *bolt.DB
	path string
	log  *slog.Logger
	now  func() time.Time
	// maxCompleted and maxOutbox are Options' bounds.
	maxCompleted, maxOutbox int
}

var (
	bucketMeta        = []byte("meta")
	bucketDeployments = []byte("deployments")
	bucketSteps       = []byte("steps")
	bucketOutbox      = []byte("outbox")
	bucketOutboxIDs   = []byte("outbox_ids")
	bucketCompleted   = []byte("completed")
	bucketCompletedID = []byte("completed_ids")
	keySchemaVersion  = []byte("schema_version")
	keyOutboxCount    = []byte("outbox_count")
	keyCompletedCount = []byte("completed_count")
)

var migrations = []func(*bolt.Tx) error{
	func(tx *bolt.Tx) error {
		return createBuckets(tx, bucketMeta, bucketDeployments, bucketSteps, bucketOutbox, bucketOutboxIDs)
	},
	// Version 2: completed commands, which an agent kept in state.json
	// before (agent/session imports that file), and the counters the
	// bounds are kept by.
	func(tx *bolt.Tx) error {
		if err := createBuckets(tx, bucketCompleted, bucketCompletedID); err != nil {
			return err
		}
		var n int64
		c := tx.Bucket(bucketOutboxIDs).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			n++
		}
		return count(tx, keyOutboxCount, n)
	},
}

func createBuckets(tx *bolt.Tx, names ...[]byte) error {
	for _, b := range names {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return fmt.Errorf("create bucket %s: %w", b, err)
		}
	}
	return nil
}

var schemaVersion = uint64(len(migrations))

// Open opens or creates DATA/journal.db (creating the data dir 0700) and
// migrates it. It fails with ErrLocked when another process holds the
// file longer than opts.Timeout.
func Open(dataDir string, opts Options) (*Journal, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxCompleted <= 0 {
		opts.MaxCompleted = DefaultMaxCompleted
	}
	if opts.MaxOutbox <= 0 {
		opts.MaxOutbox = DefaultMaxOutbox
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(dataDir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.Timeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("timed out opening %s: is another cairn-agent using this data dir? (%w)", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return migrate(tx, path) }); err != nil {
		db.Close()
		return nil, err
	}
	return &Journal{db: db, path: path, log: opts.Logger, now: opts.Now, maxCompleted: opts.MaxCompleted, maxOutbox: opts.MaxOutbox}, nil
}

func migrate(tx *bolt.Tx, path string) error {
	var version uint64
	if meta := tx.Bucket(bucketMeta); meta != nil {
		if v := meta.Get(keySchemaVersion); len(v) == 8 {
			version = binary.BigEndian.Uint64(v)
		}
	}
	if version > schemaVersion {
		return fmt.Errorf("journal %s has schema version %d, this cairn-agent reads up to %d: %w", path, version, schemaVersion, ErrSchema)
	}
	if version == schemaVersion {
		return nil
	}
	for v := version; v < schemaVersion; v++ {
		if err := migrations[v](tx); err != nil {
			return fmt.Errorf("migrate journal %s from schema version %d to %d: %w", path, v, v+1, err)
		}
	}
	return tx.Bucket(bucketMeta).Put(keySchemaVersion, binary.BigEndian.AppendUint64(nil, schemaVersion))
}

// Path is the journal file's path.
func (j *Journal) Path() string { return j.path }

// Close closes the file.
func (j *Journal) Close() error { return j.db.Close() }

func stepKey(id, list string, index int) []byte {
	k := append([]byte(id), 0, listRank[list])
	return binary.BigEndian.AppendUint32(k, uint32(index))
}

func put(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

func get(b *bolt.Bucket, key []byte, v any) (bool, error) {
	data := b.Get(key)
	if data == nil {
		return false, nil
	}
	return true, json.Unmarshal(data, v)
}

// update runs fn in a write transaction, then keeps the outbox and the
// completed commands within their bounds in the same transaction; bbolt
// fsyncs before Update returns, so a returned nil means the change is on
// disk. Outbox items dropped to make room are logged once the
// transaction is committed.
func (j *Journal) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var dropped []string
	err := j.db.Update(func(tx *bolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		var err error
		dropped, err = j.trim(tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	if len(dropped) > 0 {
		j.log.Warn("outbox full: dropped the oldest items, the controller will not receive them",
			"limit", j.maxOutbox, "items", dropped)
	}
	return nil
}

func (j *Journal) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := j.db.View(fn); err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	return nil
}

// Begin records a deployment and its steps (all pending) unless the
// deployment is already journaled; either way it returns what the
// journal holds. A deployment already journaled keeps its steps' states:
// that is how a re-run skips what succeeded.
func (j *Journal) Begin(ctx context.Context, d Deployment, steps []Step) (Deployment, []Step, error) {
	var got Deployment
	var gotSteps []Step
	err := j.update(ctx, func(tx *bolt.Tx) error {
		deps := tx.Bucket(bucketDeployments)
		found, err := get(deps, []byte(d.ID), &got)
		if err != nil {
			return err
		}
		if !found {
			if d.State == "" {
				d.State = StatePending
			}
			if d.StartedAt.IsZero() {
				d.StartedAt = j.now().UTC()
			}
			if err := put(deps, []byte(d.ID), d); err != nil {
				return err
			}
			got = d
		}
		sb := tx.Bucket(bucketSteps)
		for _, s := range steps {
			key := stepKey(d.ID, s.List, s.Index)
			if sb.Get(key) != nil {
				continue
			}
			s.DeploymentID = d.ID
			s.State = StatePending
			if err := put(sb, key, s); err != nil {
				return err
			}
		}
		gotSteps, err = stepsOf(tx, d.ID)
		return err
	})
	return got, gotSteps, err
}

func stepsOf(tx *bolt.Tx, id string) ([]Step, error) {
	var out []Step
	prefix := append([]byte(id), 0)
	c := tx.Bucket(bucketSteps).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var s Step
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, fmt.Errorf("step %q: %w", k, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// Deployment returns the deployment whose ID is id or, failing that, the
// one deployment whose ID starts with id.
func (j *Journal) Deployment(ctx context.Context, id string) (Deployment, error) {
	var d Deployment
	err := j.view(ctx, func(tx *bolt.Tx) error {
		var err error
		d, err = findDeployment(tx, id)
		return err
	})
	return d, err
}

func findDeployment(tx *bolt.Tx, id string) (Deployment, error) {
	var d Deployment
	if id == "" {
		return d, fmt.Errorf("deployment %q: %w", id, ErrNotFound)
	}
	deps := tx.Bucket(bucketDeployments)
	if found, err := get(deps, []byte(id), &d); err != nil || found {
		return d, err
	}
	var matches []string
	c := deps.Cursor()
	for k, _ := c.Seek([]byte(id)); k != nil && bytes.HasPrefix(k, []byte(id)); k, _ = c.Next() {
		matches = append(matches, string(k))
	}
	switch len(matches) {
	case 0:
		return d, fmt.Errorf("deployment %q: %w", id, ErrNotFound)
	case 1:
		_, err := get(deps, []byte(matches[0]), &d)
		return d, err
	default:
		return d, fmt.Errorf("deployment %q matches %d deployments: %w", id, len(matches), ErrAmbiguous)
	}
}

// Deployments returns every journaled deployment, newest first.
func (j *Journal) Deployments(ctx context.Context) ([]Deployment, error) {
	var out []Deployment
	err := j.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDeployments).ForEach(func(k, v []byte) error {
			var d Deployment
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("deployment %q: %w", k, err)
			}
			out = append(out, d)
			return nil
		})
	})
	sort.SliceStable(out, func(a, b int) bool { return out[a].StartedAt.After(out[b].StartedAt) })
	return out, err
}

// Steps returns a deployment's steps: steps, then verify, then rollback,
// each in manifest order.
func (j *Journal) Steps(ctx context.Context, id string) ([]Step, error) {
	var out []Step
	err := j.view(ctx, func(tx *bolt.Tx) error {
		var err error
		out, err = stepsOf(tx, id)
		return err
	})
	return out, err
}

// SetDeployment updates a deployment's state and error (and its finish
// time when the state is final).
func (j *Journal) SetDeployment(ctx context.Context, id string, state State, errText string) error {
	return j.update(ctx, func(tx *bolt.Tx) error {
		_, err := j.setDeployment(tx, id, state, errText)
		return err
	})
}

func (j *Journal) setDeployment(tx *bolt.Tx, id string, state State, errText string) (Deployment, error) {
	deps := tx.Bucket(bucketDeployments)
	var d Deployment
	found, err := get(deps, []byte(id), &d)
	if err != nil {
		return d, err
	}
	if !found {
		return d, fmt.Errorf("deployment %q: %w", id, ErrNotFound)
	}
	d.State, d.Error = state, errText
	d.FinishedAt = time.Time{}
	if state != StateRunning && state != StatePending && state != StateRollingBack {
		d.FinishedAt = j.now().UTC()
	}
	return d, put(deps, []byte(id), d)
}

// EndDeployment records that a deployment ended in state (succeeded,
// failed or rolled-back) with errText, and in the same transaction queues
// report in the outbox (KindDeploymentResult, ID
// DEPLOYMENT/deployment/N for its Nth end) and, with done, completes the
// controller's command the deployment ran for (Complete): a crash leaves
// either the deployment running and the command to run again, or both
// ended and reported.
func (j *Journal) EndDeployment(ctx context.Context, id string, state State, errText string, report *agentv1.ApplyReport, done *Completion) error {
	switch state {
	case StateSucceeded, StateFailed, StateRolledBack:
	default:
		return fmt.Errorf("end deployment %s as %s: want %s, %s or %s: %w", id, state, StateSucceeded, StateFailed, StateRolledBack, ErrTransition)
	}
	payload, err := protojson.Marshal(report)
	if err != nil {
		return fmt.Errorf("end deployment %s: encode its report: %w", id, err)
	}
	return j.update(ctx, func(tx *bolt.Tx) error {
		d, err := j.setDeployment(tx, id, state, errText)
		if err != nil {
			return err
		}
		d.Ends++
		if err := put(tx.Bucket(bucketDeployments), []byte(id), d); err != nil {
			return err
		}
		item := OutboxItem{
			ID:           fmt.Sprintf("%s/deployment/%d", id, d.Ends),
			Kind:         KindDeploymentResult,
			DeploymentID: id,
			CreatedAt:    d.FinishedAt,
			Payload:      payload,
		}
		if err := j.putOutbox(tx, item); err != nil {
			return err
		}
		if done != nil {
			return j.complete(tx, *done, id)
		}
		return nil
	})
}

// Transition moves one step from one of the states in from to whatever
// change sets, durably. It fails with ErrTransition when the step is in
// another state, and returns the step as written.
func (j *Journal) Transition(ctx context.Context, id, list string, index int, from []State, change func(*Step)) (Step, error) {
	return j.transition(ctx, id, list, index, from, change, nil)
}

// transition is Transition; after, when set, runs in the same
// transaction with the step as written.
func (j *Journal) transition(ctx context.Context, id, list string, index int, from []State, change func(*Step), after func(*bolt.Tx, Step) error) (Step, error) {
	var s Step
	err := j.update(ctx, func(tx *bolt.Tx) error {
		sb := tx.Bucket(bucketSteps)
		key := stepKey(id, list, index)
		found, err := get(sb, key, &s)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("step %s[%d] of deployment %s: %w", list, index, id, ErrNotFound)
		}
		ok := false
		for _, f := range from {
			ok = ok || s.State == f
		}
		if !ok {
			return fmt.Errorf("step %s is %s, not %s: %w", s.Ref(), s.State, joinStates(from), ErrTransition)
		}
		change(&s)
		if err := put(sb, key, s); err != nil {
			return err
		}
		if after != nil {
			return after(tx, s)
		}
		return nil
	})
	return s, err
}

func joinStates(states []State) string {
	s := make([]string, len(states))
	for i, st := range states {
		s[i] = string(st)
	}
	return strings.Join(s, " or ")
}

// Start moves a pending step to running: attempts+1, the start time, and
// whether its plugin is idempotent. The caller runs the plugin only after
// Start returned nil.
func (j *Journal) Start(ctx context.Context, id, list string, index int, idempotent bool) (Step, error) {
	now := j.now().UTC()
	return j.Transition(ctx, id, list, index, []State{StatePending}, func(s *Step) {
		s.State = StateRunning
		s.Idempotent = idempotent
		s.Attempts++
		s.StartedAt = now
		s.FinishedAt = time.Time{}
		s.Error = ""
		s.RolledBackAt = time.Time{}
	})
}

// Finish records the outcome of a running step: r.State must be
// succeeded or failed, and r's result fields (Changed, Outputs,
// RollbackRecord, Changes, Error, Log, Confirmed*) are copied. In the
// same transaction it queues the step as written, as its report line
// (Step.Result), in the outbox (KindStepResult, ID
// DEPLOYMENT/LIST/NAME/ATTEMPT).
func (j *Journal) Finish(ctx context.Context, r Step) (Step, error) {
	if r.State != StateSucceeded && r.State != StateFailed {
		return Step{}, fmt.Errorf("finish step %s as %s: %w", r.Ref(), r.State, ErrTransition)
	}
	now := j.now().UTC()
	return j.transition(ctx, r.DeploymentID, r.List, r.Index, []State{StateRunning}, func(s *Step) {
		s.State = r.State
		s.FinishedAt = now
		s.Duration = now.Sub(s.StartedAt)
		s.Error = r.Error
		s.Changed = r.Changed
		s.Outputs = r.Outputs
		s.RollbackRecord = r.RollbackRecord
		s.Changes = r.Changes
		s.Log = r.Log
		s.ConfirmedBy, s.ConfirmedNote = r.ConfirmedBy, r.ConfirmedNote
	}, func(tx *bolt.Tx, s Step) error {
		item, err := stepResultItem(s, now)
		if err != nil {
			return err
		}
		return j.putOutbox(tx, item)
	})
}

// Recover resolves the steps a crash left running: a step whose plugin is
// idempotent goes back to pending and will re-run; any other becomes
// interrupted, and its deployment waits for an operator's decision
// (Resolve). For each such step of a deployment that belongs to a deploy
// command (Deployment.CommandID), it queues an Interruption in the
// outbox, in the same transaction. It returns the steps it changed. Run
// it when the agent starts, before running anything.
func (j *Journal) Recover(ctx context.Context) ([]Step, error) {
	var changed []Step
	commands := map[string]string{} // deployment ID → command ID, for the log
	err := j.update(ctx, func(tx *bolt.Tx) error {
		changed = nil
		clear(commands)
		sb := tx.Bucket(bucketSteps)
		deps := tx.Bucket(bucketDeployments)
		type kv struct {
			k []byte
			s Step
		}
		var found []kv
		err := sb.ForEach(func(k, v []byte) error {
			var s Step
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("step %q: %w", k, err)
			}
			if s.State == StateRunning {
				found = append(found, kv{bytes.Clone(k), s})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, f := range found {
			s := f.s
			var d Deployment
			known, err := get(deps, []byte(s.DeploymentID), &d)
			if err != nil {
				return fmt.Errorf("deployment %q: %w", s.DeploymentID, err)
			}
			if s.Idempotent {
				s.State = StatePending
				s.Log = append(s.Log, "found running after a restart; its plugin is idempotent, so it will run again")
			} else {
				s.State = StateInterrupted
				s.FinishedAt = j.now().UTC()
				s.Error = "interrupted: the agent stopped while the step ran, and its plugin is not idempotent; it may or may not have taken effect"
				if known {
					d.State = StateInterrupted
					d.Error = fmt.Sprintf("step %s was interrupted", s.Ref())
					if err := put(deps, []byte(d.ID), d); err != nil {
						return err
					}
				}
			}
			if err := put(sb, f.k, s); err != nil {
				return err
			}
			if known && d.CommandID != "" {
				item, err := interruptionItem(d, s, j.now().UTC())
				if err != nil {
					return err
				}
				if err := j.putOutbox(tx, item); err != nil {
					return err
				}
				commands[d.ID] = d.CommandID
			}
			changed = append(changed, s)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, s := range changed {
		log := j.log.With("deployment", s.DeploymentID, "step", s.Ref(), "plugin", s.Plugin)
		hint := "check the host, then decide with 'cairn-agent journal resolve " + shortID(s.DeploymentID) + " " + s.Ref() + " --as succeeded|failed|retry --note TEXT'"
		if c := commands[s.DeploymentID]; c != "" {
			log = log.With("command", c)
			hint = "reported to the controller: check the host, then decide there (cairnctl rollout retry, resolve or rollback), or here with 'cairn-agent journal resolve " +
				shortID(s.DeploymentID) + " " + s.Ref() + " --as succeeded|failed|retry --note TEXT'"
		}
		if s.State == StatePending {
			log.Warn("step was running when the agent stopped; idempotent, will re-run")
		} else {
			log.Warn("step was running when the agent stopped; not idempotent, marked interrupted: it may or may not have taken effect", "hint", hint)
		}
	}
	return changed, nil
}

// interruptionItem is the outbox item that reports step s of deployment
// d cut off by a crash: an agentv1.Interruption (protojson), ID
// DEPLOYMENT/interrupted/LIST/NAME/ATTEMPT, so that one interruption is
// queued (and stored by the controller) once, and a step interrupted
// again after a retry is reported again.
func interruptionItem(d Deployment, s Step, now time.Time) (OutboxItem, error) {
	payload, err := protojson.Marshal(&agentv1.Interruption{
		CommandId: d.CommandID, DeploymentId: d.ID, Release: d.Manifest,
		Step: s.Ref(), Plugin: s.Plugin, Idempotent: s.Idempotent, State: string(s.State),
	})
	if err != nil {
		return OutboxItem{}, fmt.Errorf("encode the interruption of step %s: %w", s.Ref(), err)
	}
	return OutboxItem{
		ID:           fmt.Sprintf("%s/interrupted/%s/%s/%d", d.ID, s.List, s.Name, s.Attempts),
		Kind:         KindDeploymentInterrupted,
		DeploymentID: d.ID,
		CreatedAt:    now,
		Payload:      payload,
	}, nil
}

func shortID(id string) string { return id[:min(12, len(id))] }

// Resolutions an operator can give an interrupted step.
const (
	ResolveSucceeded = "succeeded"
	ResolveFailed    = "failed"
	ResolveRetry     = "retry"
)

// Resolve records an operator's decision on an interrupted step, named
// "list/name" or just "name" (looked up in steps, verify, rollback in
// that order): succeeded or failed settle it, retry makes it pending so
// the next apply runs it again. The note and who gave it are kept with
// the step. A deployment with no interrupted step left is no longer
// interrupted.
func (j *Journal) Resolve(ctx context.Context, deployment, step, as, note, by string) (Step, error) {
	var to State
	switch as {
	case ResolveSucceeded:
		to = StateSucceeded
	case ResolveFailed:
		to = StateFailed
	case ResolveRetry:
		to = StatePending
	default:
		return Step{}, fmt.Errorf("resolve as %q: use succeeded, failed or retry: %w", as, ErrTransition)
	}
	var out Step
	err := j.update(ctx, func(tx *bolt.Tx) error {
		d, err := findDeployment(tx, deployment)
		if err != nil {
			return err
		}
		steps, err := stepsOf(tx, d.ID)
		if err != nil {
			return err
		}
		list, name, hasList := strings.Cut(step, "/")
		if !hasList {
			list, name = "", step
		}
		idx := -1
		for i, s := range steps {
			if s.Name == name && (list == "" || s.List == list) {
				idx = i
				break
			}
		}
		if idx < 0 {
			return fmt.Errorf("deployment %s has no step %q: %w", d.ID, step, ErrNotFound)
		}
		s := steps[idx]
		if s.State != StateInterrupted {
			return fmt.Errorf("step %s is %s; only an interrupted step is resolved: %w", s.Ref(), s.State, ErrTransition)
		}
		s.State = to
		s.Resolutions = append(s.Resolutions, Resolution{As: as, Note: note, By: by, At: j.now().UTC()})
		if to == StatePending {
			s.Error = ""
		} else {
			s.Error = fmt.Sprintf("resolved by an operator as %s: %s", as, note)
		}
		if err := put(tx.Bucket(bucketSteps), stepKey(d.ID, s.List, s.Index), s); err != nil {
			return err
		}
		steps[idx] = s
		out = s
		still := false
		for _, st := range steps {
			still = still || st.State == StateInterrupted
		}
		if !still && d.State == StateInterrupted {
			d.State, d.Error = StatePending, ""
			if to == StateFailed {
				d.State, d.Error = StateFailed, s.Error
			}
			return put(tx.Bucket(bucketDeployments), []byte(d.ID), d)
		}
		return nil
	})
	return out, err
}
