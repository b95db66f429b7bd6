package rollout

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cairn-ops/cairn/controller/auditlog"
	"github.com/cairn-ops/cairn/controller/rollout/state"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/stamp"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// busy reports whether a rollout in state s still works on all its
// nodes, so that no other rollout may take them.
func busy(s state.Rollout) bool {
	switch s {
	case StateRunning, StatePaused, StateRollingBack, StateRollbackPaused:
		return true
	}
	return false
}

// Start creates a rollout of an approved release and returns it, after
// checking everything Plan checks (without the dry run). A rollout whose
// nodes overlap those of a rollout that is still running, paused or
// rolling back is refused.
func (e *Engine) Start(ctx context.Context, actor string, spec *controllerv1.RolloutSpec) (*controllerv1.RolloutRecord, error) {
	pr, err := e.prepare(ctx, spec)
	if err != nil {
		return nil, err
	}
	now := e.cfg.Now()
	id := newID("ro-", 6)
	s := pr.params.Spec
	s.SkipDryRun = false
	if s.LostAfter == "" {
		s.LostAfter = e.cfg.LostAfter.String()
	}
	ro := &controllerv1.RolloutRecord{
		Id:            id,
		Release:       &controllerv1.ReleaseRef{Name: pr.rel.rec.GetName(), Version: pr.rel.rec.GetVersion()},
		ReleaseDigest: pr.rel.rec.GetDigest(),
		Spec:          s,
		State:         StateRunning,
		CreatedBy:     actor,
		CreatedAt:     stamp.Format(now),
		UpdatedAt:     stamp.Format(now),
		Approvers:     slices.Clone(pr.rel.approvers),
		MaxParallel:   uint32(pr.params.MaxParallel),
		Revision:      1,
	}
	var nodes []*controllerv1.RolloutNode
	for i, w := range pr.waves {
		rw := &controllerv1.RolloutWave{
			Index:       uint32(i + 1),
			State:       WavePending,
			MaxFailures: uint32(pr.params.WaveMaxFailures(len(w))),
			GateAfter:   pr.params.gate(i + 1),
		}
		for _, n := range w {
			rw.NodeIds = append(rw.NodeIds, n.GetId())
			nodes = append(nodes, &controllerv1.RolloutNode{
				RolloutId: id,
				NodeId:    n.GetId(),
				Hostname:  n.GetHostname(),
				Wave:      uint32(i + 1),
				State:     NodePending,
			})
		}
		ro.Waves = append(ro.Waves, rw)
	}
	ro.Counts = state.Count(nodes)
	err = e.cfg.Store.Update(ctx, func(tx store.Tx) error {
		ids := make([]string, len(nodes))
		for i, n := range nodes {
			ids[i] = n.GetNodeId()
		}
		switch busy, err := overlap(tx, ids, ""); {
		case err != nil:
			return fmt.Errorf("check other rollouts: %w", err)
		case busy != "":
			return fmt.Errorf("%w: %s; wait for it to finish, or abort it", ErrState, busy)
		}
		if err := tx.PutRollout(ro); err != nil {
			return fmt.Errorf("store rollout %s: %w", id, err)
		}
		for _, n := range nodes {
			if err := tx.PutRolloutNode(n); err != nil {
				return fmt.Errorf("store rollout %s node %s: %w", id, n.GetNodeId(), err)
			}
		}
		waves := make([]string, len(pr.params.Waves))
		for i, n := range pr.params.Waves {
			waves[i] = strconv.Itoa(n)
		}
		_, err := auditlog.Append(tx, now, actor, "rollout.start", object(id), map[string]string{
			"release":     refString(ro.GetRelease()),
			"digest":      ro.GetReleaseDigest(),
			"nodes":       strconv.Itoa(len(nodes)),
			"strategy":    s.GetStrategy(),
			"waves":       strings.Join(waves, ","),
			"on_failure":  s.GetOnFailure(),
			"unreachable": s.GetUnreachable(),
			"lost_after":  s.GetLostAfter(),
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	e.relMu.Lock()
	e.releases[refString(ro.GetRelease())] = pr.rel
	e.relMu.Unlock()
	e.log.Info("rollout started", "rollout_id", id, "release", refString(ro.GetRelease()), "nodes", len(nodes), "waves", len(ro.GetWaves()))
	e.notify(EventStarted, EventPayload{Rollout: id, Release: refString(ro.GetRelease()), State: state.Name(ro.GetState()), Counts: plainCounts(ro.GetCounts()), At: stamp.Format(now)})
	e.signal(id)
	e.wakeUp()
	sortForDisplay(nodes)
	ro.Nodes = nodes
	return ro, nil
}

// overlap says which other rollout (not exclude) still works on some of
// nodes, "" when none does: a running, paused or rolling back rollout
// works on all its nodes, a halted or aborted one on those still in
// flight.
func overlap(tx store.Tx, nodes []string, exclude string) (string, error) {
	want := map[string]bool{}
	for _, id := range nodes {
		want[id] = true
	}
	all, err := tx.Rollouts()
	if err != nil {
		return "", err
	}
	for _, r := range all {
		whole := busy(r.GetState())
		if r.GetId() == exclude || (!whole && r.GetCounts().GetRunning() == 0) {
			continue
		}
		theirs, err := tx.RolloutNodes(r.GetId())
		if err != nil {
			return "", err
		}
		var both []string
		for _, n := range theirs {
			if want[n.GetNodeId()] && (whole || state.NodeInFlight(n.GetState())) {
				both = append(both, n.Name())
			}
		}
		if len(both) > 0 {
			return fmt.Sprintf("rollout %s of %s is %s and includes %d of these nodes: %s",
				r.GetId(), refString(r.GetRelease()), state.Name(r.GetState()), len(both), nameList(both, 10)), nil
		}
	}
	return "", nil
}
