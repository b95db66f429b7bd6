// Package auditlog is the controller's tamper-evident record of every
// state-changing action. Entries form a hash chain: each carries the hash
// of the one before and its own hash over its canonical encoding, so an
// edited or deleted entry breaks the chain at that point. The newest
// entry's sequence and hash are also kept as the log's head, apart from
// the entries, so deleting the newest entries is caught as well.
//
// Append is called inside the store transaction that makes the change, so
// the change and its entry commit together.
package auditlog

import (
	"errors"
	"fmt"
	"time"

	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/canonical"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// Append adds an entry to the log within tx.
func Append(tx store.Tx, now time.Time, actor, action, object string, details map[string]string) (*controllerv1.AuditLogEntry, error) {
	var seq uint64 = 1
	prev := ""
	last, err := tx.LastLogEntry()
	switch {
	case err == nil:
		seq, prev = last.GetSequence()+1, last.GetHash()
	case !isNotFound(err):
		return nil, fmt.Errorf("audit log: %w", err)
	}
	e := &controllerv1.AuditLogEntry{
		Sequence: seq,
		Time:     now.UTC().Format(time.RFC3339Nano),
		Actor:    actor,
		Action:   action,
		Object:   object,
		Details:  details,
		PrevHash: prev,
	}
	if e.Hash, err = Hash(e); err != nil {
		return nil, err
	}
	if err := tx.AppendLogEntry(e); err != nil {
		return nil, fmt.Errorf("audit log: append %s: %w", action, err)
	}
	return e, nil
}

// Hash is the sha256 of e's canonical encoding with its hash field empty.
func Hash(e *controllerv1.AuditLogEntry) (string, error) {
	c := &controllerv1.AuditLogEntry{
		Sequence: e.GetSequence(),
		Time:     e.GetTime(),
		Actor:    e.GetActor(),
		Action:   e.GetAction(),
		Object:   e.GetObject(),
		Details:  e.GetDetails(),
		PrevHash: e.GetPrevHash(),
	}
	return canonical.Sum(c)
}

// Problem is the first entry that does not verify, and why.
type Problem struct {
	Sequence uint64
	Reason   string
}

func (p *Problem) Error() string {
	return fmt.Sprintf("audit log entry %d: %s", p.Sequence, p.Reason)
}

// Verify checks a whole log, given in sequence order, against the head
// the store recorded. It returns nil when the chain is intact, else the
// first broken entry.
func Verify(entries []*controllerv1.AuditLogEntry, headSeq uint64, headHash string) *Problem {
	prev := ""
	for i, e := range entries {
		want := uint64(i + 1)
		if e.GetSequence() != want {
			return &Problem{Sequence: want, Reason: fmt.Sprintf("missing: found entry %d where %d belongs (entries deleted)", e.GetSequence(), want)}
		}
		if e.GetPrevHash() != prev {
			return &Problem{Sequence: want, Reason: "previous-hash link broken (the entry before it was edited or replaced)"}
		}
		h, err := Hash(e)
		if err != nil {
			return &Problem{Sequence: want, Reason: err.Error()}
		}
		if h != e.GetHash() {
			return &Problem{Sequence: want, Reason: "content does not match its hash (edited)"}
		}
		prev = e.GetHash()
	}
	n := uint64(len(entries))
	switch {
	case headSeq > n:
		return &Problem{Sequence: n + 1, Reason: fmt.Sprintf("missing: the log's head is entry %d but the last entry is %d (newest entries deleted)", headSeq, n)}
	case headSeq < n:
		return &Problem{Sequence: headSeq + 1, Reason: fmt.Sprintf("entries after the recorded head %d (appended outside the controller)", headSeq)}
	case n > 0 && headHash != prev:
		return &Problem{Sequence: n, Reason: "does not match the log's recorded head hash"}
	}
	return nil
}

func isNotFound(err error) bool {
	return errors.Is(err, store.ErrNotFound)
}
