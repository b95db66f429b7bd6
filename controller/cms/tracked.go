package cms

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-ops/cairn/controller/auditlog"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/limits"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// Tracked returns the node's tracked set: the tracked paths of its newest
// baseline, none before its first.
func Tracked(tx store.Tx, nodeID string) ([]string, error) {
	bs, err := tx.Baselines(nodeID)
	if err != nil {
		return nil, fmt.Errorf("baselines of node %s: %w", nodeID, err)
	}
	if len(bs) == 0 {
		return nil, nil
	}
	return bs[len(bs)-1].GetTracked(), nil
}

// AuditTrack returns the paths an audit of the node tracks: the node's
// tracked set and add, less drop, sorted and without duplicates. Every
// audit command the controller issues (cairnctl audit run, a rollout's
// audits) takes its track list from here, so every audit covers what the
// node's baseline tracks.
func AuditTrack(tx store.Tx, nodeID string, add, drop []string) ([]string, error) {
	tracked, err := Tracked(tx, nodeID)
	if err != nil {
		return nil, err
	}
	return union(tracked, add, drop), nil
}

// NextTracked returns the tracked set of a baseline that follows one
// whose set was prev (nil for a node's first): prev, and the paths the
// accepted audit tracked (its files section's patterns), less untrack;
// sorted and without duplicates. Paths are only ever dropped by untrack,
// so a release's paths stay tracked after later releases. A set of more
// than limits.TrackedPaths paths, or a new path longer than limits.Path,
// is refused with ErrTracked.
func NextTracked(prev, patterns, untrack []string) ([]string, error) {
	for _, p := range patterns {
		if slices.Contains(prev, p) {
			continue
		}
		if err := limits.Path.Check(p); err != nil {
			return nil, fmt.Errorf("%w: the audit tracked %v", ErrTracked, err)
		}
	}
	next := union(prev, patterns, untrack)
	if len(next) > limits.TrackedPaths {
		return nil, fmt.Errorf("%w: the node would track %d paths; the limit is %d: stop tracking some with a release's expect.untrack", ErrTracked, len(next), limits.TrackedPaths)
	}
	return next, nil
}

// union returns a and b less drop, sorted and without duplicates.
func union(a, b, drop []string) []string {
	out := make([]string, 0, len(a)+len(b))
	for _, p := range slices.Concat(a, b) {
		if !slices.Contains(drop, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// PutBaseline stores b as its node's next baseline version, with the
// audit-log entry an accepted baseline gets (baseline.accept). Its
// tracked set is NextTracked of the node's current set, patterns (what
// the accepted audit tracked) and b.Untracked. Both the operator's
// acceptance and a rollout's advance go through here.
func PutBaseline(tx store.Tx, now time.Time, b *controllerv1.BaselineRecord, patterns []string) error {
	node := b.GetNodeId()
	prev, err := tx.Baselines(node)
	if err != nil {
		return fmt.Errorf("baselines of node %s: %w", node, err)
	}
	var prevTracked []string
	if len(prev) > 0 {
		prevTracked = prev[len(prev)-1].GetTracked()
	}
	if b.Tracked, err = NextTracked(prevTracked, patterns, b.GetUntracked()); err != nil {
		return fmt.Errorf("baseline of node %s: %w", node, err)
	}
	b.Version = uint32(len(prev)) + 1
	if err := tx.PutBaseline(b); err != nil {
		return fmt.Errorf("store baseline %d of node %s: %w", b.GetVersion(), node, err)
	}
	details := map[string]string{
		"version":       strconv.FormatUint(uint64(b.GetVersion()), 10),
		"audit_id":      b.GetAuditId(),
		"reason":        b.GetReason(),
		"tracked_paths": strconv.Itoa(len(b.GetTracked())),
	}
	if b.GetRelease() != "" {
		details["release"] = b.GetRelease()
		details["rollout"] = b.GetRolloutId()
		details["approvers"] = strings.Join(b.GetApprovers(), ",")
	}
	if added := union(b.GetTracked(), nil, prevTracked); len(added) > 0 {
		details["tracked_added"] = strings.Join(added, ",")
	}
	if len(b.GetUntracked()) > 0 {
		details["untracked"] = strings.Join(b.GetUntracked(), ",")
	}
	_, err = auditlog.Append(tx, now, b.GetAcceptedBy(), "baseline.accept", "node/"+node, details)
	return err
}
