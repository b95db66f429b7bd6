package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protojson"

	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// Kinds of outbox items.
const (
	// KindStepResult is a finished step (Finish): an agentv1.StepResult
	// (Step.Result), protojson. Items queued by agents before the typed
	// reports hold the Step's JSON, without its rollback record.
	KindStepResult = agentv1.OutboxStepResult
	// KindDeploymentResult is a deployment's end (EndDeployment): its
	// agentv1.ApplyReport, protojson.
	KindDeploymentResult = agentv1.OutboxDeploymentResult
	// KindDeploymentInterrupted is a step a crash cut off (Recover): an
	// agentv1.Interruption, protojson.
	KindDeploymentInterrupted = agentv1.OutboxDeploymentInterrupted
	// KindCommandResult is a controller command's result (Complete): the
	// caller's encoding of it, JSON. Its ID is ResultID(command ID).
	KindCommandResult = "command_result"
)

// Default bounds (Options.MaxCompleted, Options.MaxOutbox).
const (
	// DefaultMaxCompleted is how many completed command IDs are kept: a
	// command redelivered after that many newer ones (and whose result
	// the controller acknowledged) would run again.
	DefaultMaxCompleted = 1000
	// DefaultMaxOutbox is how many items the outbox keeps while the
	// controller does not acknowledge them.
	DefaultMaxOutbox = 4096
)

// OutboxItem is a report waiting for the controller. ID is stable for the
// report it carries, so a report put twice is kept once and the
// controller can drop a redelivered one.
type OutboxItem struct {
	ID           string          `json:"id"`
	Kind         string          `json:"kind"`
	DeploymentID string          `json:"deployment_id"`
	CreatedAt    time.Time       `json:"created_at"`
	Payload      json.RawMessage `json:"payload"`
	// Seq is the item's place in the outbox, filled in by List: List
	// continues after it.
	Seq uint64 `json:"-"`
}

// Completion is the end of a controller's command: the journal remembers
// the command as completed (so that a redelivered command does not run
// again) and queues its result in the outbox until the controller
// acknowledges it.
type Completion struct {
	CommandID string
	// Result is the command's result, JSON, as the caller encodes it.
	Result json.RawMessage
}

// ResultID is the outbox ID of a command's result.
func ResultID(commandID string) string { return "command/" + commandID }

// stepResultItem is the outbox item that reports a finished step.
func stepResultItem(s Step, now time.Time) (OutboxItem, error) {
	payload, err := protojson.Marshal(s.Result())
	if err != nil {
		return OutboxItem{}, fmt.Errorf("encode the result of step %s: %w", s.Ref(), err)
	}
	return OutboxItem{
		ID:           fmt.Sprintf("%s/%s/%s/%d", s.DeploymentID, s.List, s.Name, s.Attempts),
		Kind:         KindStepResult,
		DeploymentID: s.DeploymentID,
		CreatedAt:    now,
		Payload:      payload,
	}, nil
}

// Put adds an item to the outbox. An item whose ID is already there is
// not added again.
func (j *Journal) Put(ctx context.Context, item OutboxItem) error {
	if item.CreatedAt.IsZero() {
		item.CreatedAt = j.now().UTC()
	}
	return j.update(ctx, func(tx *bolt.Tx) error { return j.putOutbox(tx, item) })
}

// putOutbox adds item to the outbox in tx unless its ID is there.
func (j *Journal) putOutbox(tx *bolt.Tx, item OutboxItem) error {
	if item.ID == "" {
		return errors.New("outbox item needs an ID")
	}
	if len(item.Payload) > 0 && !json.Valid(item.Payload) {
		return fmt.Errorf("outbox item %s: payload is not JSON", item.ID)
	}
	data, err := json.Marshal(item)
	if err != nil {
		return fmt.Errorf("outbox item %s: %w", item.ID, err)
	}
	return appendIndexed(tx, bucketOutbox, bucketOutboxIDs, keyOutboxCount, []byte(item.ID), data)
}

// appendIndexed appends value under the next sequence of bucket order,
// indexes it by id in bucket index and counts it (the counter key in
// meta), unless id is indexed already.
func appendIndexed(tx *bolt.Tx, order, index, counter, id, value []byte) error {
	ids := tx.Bucket(index)
	if ids.Get(id) != nil {
		return nil
	}
	b := tx.Bucket(order)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	key := binary.BigEndian.AppendUint64(nil, seq)
	if err := b.Put(key, value); err != nil {
		return err
	}
	if err := ids.Put(id, key); err != nil {
		return err
	}
	return count(tx, counter, 1)
}

// removeIndexed removes what appendIndexed added under id, if anything.
func removeIndexed(tx *bolt.Tx, order, index, counter, id []byte) error {
	ids := tx.Bucket(index)
	key := ids.Get(id)
	if key == nil {
		return nil
	}
	if err := tx.Bucket(order).Delete(bytes.Clone(key)); err != nil {
		return err
	}
	if err := ids.Delete(id); err != nil {
		return err
	}
	return count(tx, counter, -1)
}

// List returns up to limit outbox items (all when limit <= 0) that come
// after the item whose Seq is after (0: from the first), oldest first.
func (j *Journal) List(ctx context.Context, after uint64, limit int) ([]OutboxItem, error) {
	var out []OutboxItem
	err := j.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		k, v := c.Seek(binary.BigEndian.AppendUint64(nil, after+1))
		for ; k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			var item OutboxItem
			if err := json.Unmarshal(v, &item); err != nil {
				return fmt.Errorf("outbox item %x: %w", k, err)
			}
			item.Seq = binary.BigEndian.Uint64(k)
			out = append(out, item)
		}
		return nil
	})
	return out, err
}

// Ack removes delivered items from the outbox. Unknown IDs are ignored,
// so acknowledging twice is harmless.
func (j *Journal) Ack(ctx context.Context, ids ...string) error {
	return j.update(ctx, func(tx *bolt.Tx) error {
		for _, id := range ids {
			if err := removeIndexed(tx, bucketOutbox, bucketOutboxIDs, keyOutboxCount, []byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Complete records that a controller's command completed and queues its
// result, in one transaction. A command already completed is left as it
// is: its first result stands.
func (j *Journal) Complete(ctx context.Context, c Completion) error {
	return j.update(ctx, func(tx *bolt.Tx) error { return j.complete(tx, c, "") })
}

// complete is Complete in tx; deploymentID is the deployment the command
// ran, if any, kept with its result.
func (j *Journal) complete(tx *bolt.Tx, c Completion, deploymentID string) error {
	if c.CommandID == "" {
		return errors.New("a completion needs a command ID")
	}
	if tx.Bucket(bucketCompletedID).Get([]byte(c.CommandID)) != nil {
		return nil
	}
	if err := addCompleted(tx, c.CommandID); err != nil {
		return err
	}
	return j.putOutbox(tx, OutboxItem{
		ID:           ResultID(c.CommandID),
		Kind:         KindCommandResult,
		DeploymentID: deploymentID,
		CreatedAt:    j.now().UTC(),
		Payload:      c.Result,
	})
}

// addCompleted appends a command ID to the completed ones unless it is
// there.
func addCompleted(tx *bolt.Tx, id string) error {
	return appendIndexed(tx, bucketCompleted, bucketCompletedID, keyCompletedCount, []byte(id), []byte(id))
}

// count adds delta to the counter at key in meta, which says how many
// entries a bucket holds (Bucket.Stats does not see a write
// transaction's own changes).
func count(tx *bolt.Tx, key []byte, delta int64) error {
	return tx.Bucket(bucketMeta).Put(key, binary.BigEndian.AppendUint64(nil, uint64(counted(tx, key)+delta)))
}

func counted(tx *bolt.Tx, key []byte) int64 {
	v := tx.Bucket(bucketMeta).Get(key)
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

// Completed reports whether a controller's command completed here, and
// its result while the controller has not acknowledged it (nil after).
func (j *Journal) Completed(ctx context.Context, commandID string) (bool, *OutboxItem, error) {
	var done bool
	var result *OutboxItem
	err := j.view(ctx, func(tx *bolt.Tx) error {
		done = tx.Bucket(bucketCompletedID).Get([]byte(commandID)) != nil
		key := tx.Bucket(bucketOutboxIDs).Get([]byte(ResultID(commandID)))
		if key == nil {
			return nil
		}
		done = true // its ID was pushed out by newer ones, its result was not
		var item OutboxItem
		if err := json.Unmarshal(tx.Bucket(bucketOutbox).Get(key), &item); err != nil {
			return fmt.Errorf("outbox item %s: %w", ResultID(commandID), err)
		}
		item.Seq = binary.BigEndian.Uint64(key)
		result = &item
		return nil
	})
	return done, result, err
}

// Recent returns the IDs of the n commands completed last, oldest first.
func (j *Journal) Recent(ctx context.Context, n int) ([]string, error) {
	var out []string
	err := j.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketCompleted).Cursor()
		for k, v := c.Last(); k != nil && len(out) < n; k, v = c.Prev() {
			out = append(out, string(v))
		}
		return nil
	})
	for a, b := 0, len(out)-1; a < b; a, b = a+1, b-1 {
		out[a], out[b] = out[b], out[a]
	}
	return out, err
}

// Import adds what another store kept, once: completed command IDs
// (oldest first) and outbox items, in one transaction that also records
// that the import called name is done. It reports whether that import
// was done before (and then changes nothing). IDs and items already in
// the journal are not added again; an item without an ID or with a
// payload that is not JSON fails the import, and nothing is written.
func (j *Journal) Import(ctx context.Context, name string, completed []string, items []OutboxItem) (before bool, err error) {
	key := []byte("imported/" + name)
	err = j.update(ctx, func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if before = meta.Get(key) != nil; before {
			return nil
		}
		for _, id := range completed {
			if id == "" {
				return errors.New("import: a completed command without an ID")
			}
			if err := addCompleted(tx, id); err != nil {
				return err
			}
		}
		for _, item := range items {
			if item.CreatedAt.IsZero() {
				item.CreatedAt = j.now().UTC()
			}
			if err := j.putOutbox(tx, item); err != nil {
				return fmt.Errorf("import: %w", err)
			}
		}
		return meta.Put(key, []byte("1"))
	})
	return before, err
}

// trim drops the oldest completed command IDs and outbox items past the
// bounds, and returns the IDs of the outbox items it dropped.
func (j *Journal) trim(tx *bolt.Tx) ([]string, error) {
	order := tx.Bucket(bucketCompleted)
	for n := counted(tx, keyCompletedCount) - int64(j.maxCompleted); n > 0; n-- {
		_, id := order.Cursor().First()
		if err := removeIndexed(tx, bucketCompleted, bucketCompletedID, keyCompletedCount, bytes.Clone(id)); err != nil {
			return nil, err
		}
	}
	var dropped []string
	ob := tx.Bucket(bucketOutbox)
	for n := counted(tx, keyOutboxCount) - int64(j.maxOutbox); n > 0; n-- {
		_, v := ob.Cursor().First()
		var item OutboxItem
		if err := json.Unmarshal(v, &item); err != nil {
			return nil, fmt.Errorf("outbox: %w", err)
		}
		if err := removeIndexed(tx, bucketOutbox, bucketOutboxIDs, keyOutboxCount, []byte(item.ID)); err != nil {
			return nil, err
		}
		dropped = append(dropped, item.ID)
	}
	return dropped, nil
}
