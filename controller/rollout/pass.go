package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-ops/cairn/controller/auditlog"
	"github.com/cairn-ops/cairn/controller/store"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// pass is one look at one rollout: what the store holds, and the
// decisions taken on it. Decisions change the records in memory; commit
// writes them all, with the commands they issue and their audit-log
// entries, in one transaction, and only then acts on them (notifies the
// fleet, forwards confirmations, reports events and metrics). A pass that
// fails before its commit leaves the store as it was, and the next pass
// decides again from there.
type pass struct {
	e      *Engine
	ctx    context.Context
	now    time.Time
	log    *slog.Logger
	ro     *controllerv1.RolloutRecord
	nodes  []*controllerv1.RolloutNode // by node ID
	byID   map[string]*controllerv1.RolloutNode
	rel    *releaseInfo
	params *Params

	dirty     map[string]bool // node IDs to write
	roDirty   bool
	waiting   []string // what the rollout waits for, most important first
	commands  []*controllerv1.CommandRecord
	notified  map[string]bool
	entries   []logEntry
	baselines []*controllerv1.BaselineRecord
	after     []func()
}

// logEntry is an audit-log entry to append at commit.
type logEntry struct {
	actor, action string
	details       map[string]string
}

// load reads a rollout and its nodes for a pass.
func (e *Engine) load(ctx context.Context, id string) (*pass, error) {
	p := &pass{
		e: e, ctx: ctx, now: e.cfg.Now(),
		log:      e.log.With("rollout_id", id),
		byID:     map[string]*controllerv1.RolloutNode{},
		dirty:    map[string]bool{},
		notified: map[string]bool{},
	}
	err := e.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		if p.ro, err = tx.Rollout(id); err != nil {
			return rolloutError(id, err)
		}
		if p.nodes, err = tx.RolloutNodes(id); err != nil {
			return fmt.Errorf("rollout %s: nodes: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, n := range p.nodes {
		p.byID[n.GetNodeId()] = n
	}
	if p.rel, err = e.release(ctx, p.ro.GetRelease()); err != nil {
		return nil, fmt.Errorf("rollout %s: %w", id, err)
	}
	if p.params, err = Normalize(p.ro.GetSpec(), len(p.nodes)); err != nil {
		return nil, fmt.Errorf("rollout %s: stored spec: %w", id, err)
	}
	return p, nil
}

// touch marks a node to be written.
func (p *pass) touch(n *controllerv1.RolloutNode) { p.dirty[n.GetNodeId()] = true }

// then queues fn to run after the commit.
func (p *pass) then(fn func()) { p.after = append(p.after, fn) }

// record queues an audit-log entry about the rollout.
func (p *pass) record(actor, action string, details map[string]string) {
	p.entries = append(p.entries, logEntry{actor: actor, action: action, details: details})
}

// event queues a webhook event with the rollout's state as it is now
// and its counts as they are at commit.
func (p *pass) event(name string, wave uint32, waveFailed bool) {
	state, reason := p.ro.GetState(), p.ro.GetReason()
	p.then(func() {
		p.e.notify(name, EventPayload{
			Rollout: p.ro.GetId(), Release: refString(p.ro.GetRelease()), State: state, Reason: reason,
			Wave: wave, WaveFailed: waveFailed, Counts: plainCounts(p.ro.GetCounts()), At: stamp(p.now),
		})
	})
}

// phase moves a node to state.
func (p *pass) phase(n *controllerv1.RolloutNode, state string) {
	n.State = state
	n.PhaseStartedAt = stamp(p.now)
	p.touch(n)
}

// newCommand issues a command to a node of the rollout; the fleet is
// told after the commit.
func (p *pass) newCommand(nodeID, kind string) *controllerv1.CommandRecord {
	c := &controllerv1.CommandRecord{
		Id:        newID("cmd_", 8),
		NodeId:    nodeID,
		Kind:      kind,
		State:     controllerv1.CommandRecord_STATE_PENDING,
		CreatedBy: p.ro.GetCreatedBy(),
		CreatedAt: stamp(p.now),
		UpdatedAt: stamp(p.now),
		RolloutId: p.ro.GetId(),
	}
	p.commands = append(p.commands, c)
	if !p.notified[nodeID] && p.e.cfg.Fleet != nil {
		p.notified[nodeID] = true
		p.then(func() { p.e.cfg.Fleet.Notify(nodeID) })
	}
	return c
}

// newAudit issues an audit command that also collects the files the
// release expects.
func (p *pass) newAudit(nodeID string) *controllerv1.CommandRecord {
	c := p.newCommand(nodeID, kindAudit)
	c.Track = p.rel.track
	return c
}

// newDeploy issues a deploy command with action.
func (p *pass) newDeploy(nodeID, action string) *controllerv1.CommandRecord {
	c := p.newCommand(nodeID, kindDeploy)
	c.Deploy = p.rel.deployCommand(p.ro.GetId(), action)
	return c
}

// cancel marks an outstanding command failed, so that it is not
// delivered when its node comes back.
func (p *pass) cancel(c *controllerv1.CommandRecord, why string) {
	c.State = controllerv1.CommandRecord_STATE_FAILED
	c.Error = "cancelled by rollout " + p.ro.GetId() + ": " + why
	c.UpdatedAt = stamp(p.now)
	p.commands = append(p.commands, c)
}

// wait notes what the rollout waits for; commit writes the first noted.
func (p *pass) wait(what string) { p.waiting = append(p.waiting, what) }

// changed reports whether the pass has anything to write.
func (p *pass) changed() bool {
	return p.roDirty || len(p.dirty) > 0 || len(p.commands) > 0 || len(p.entries) > 0 || len(p.baselines) > 0
}

// commit writes the pass's decisions in one transaction, then acts on
// them.
func (p *pass) commit() error {
	if p.ro.GetState() == StateRunning || p.ro.GetState() == StateRollingBack {
		waiting := ""
		if len(p.waiting) > 0 {
			waiting = p.waiting[0]
		}
		if waiting != p.ro.GetWaitingFor() {
			p.ro.WaitingFor = waiting
			p.roDirty = true
		}
	}
	if !p.changed() {
		p.runAfter()
		return nil
	}
	p.ro.Counts = countNodes(p.nodes)
	p.ro.Revision++
	p.ro.UpdatedAt = stamp(p.now)
	err := p.e.cfg.Store.Update(p.ctx, func(tx store.Tx) error {
		for _, c := range p.commands {
			if err := tx.PutCommand(c); err != nil {
				return fmt.Errorf("store command %s for node %s: %w", c.GetId(), c.GetNodeId(), err)
			}
		}
		for _, n := range p.nodes {
			if !p.dirty[n.GetNodeId()] {
				continue
			}
			if err := tx.PutRolloutNode(n); err != nil {
				return fmt.Errorf("store node %s: %w", n.GetNodeId(), err)
			}
		}
		if err := tx.PutRollout(p.ro); err != nil {
			return fmt.Errorf("store rollout: %w", err)
		}
		for _, b := range p.baselines {
			if err := putBaseline(tx, p.now, b); err != nil {
				return err
			}
		}
		for _, le := range p.entries {
			if _, err := auditlog.Append(tx, p.now, le.actor, le.action, object(p.ro.GetId()), le.details); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rollout %s: record pass: %w", p.ro.GetId(), err)
	}
	p.e.signal(p.ro.GetId())
	p.runAfter()
	return nil
}

func (p *pass) runAfter() {
	for _, fn := range p.after {
		fn()
	}
}

// putBaseline stores b as the node's next baseline version, with the
// audit-log entry an accepted baseline gets.
func putBaseline(tx store.Tx, now time.Time, b *controllerv1.BaselineRecord) error {
	prev, err := tx.Baselines(b.GetNodeId())
	if err != nil {
		return fmt.Errorf("baselines of node %s: %w", b.GetNodeId(), err)
	}
	b.Version = uint32(len(prev)) + 1
	if err := tx.PutBaseline(b); err != nil {
		return fmt.Errorf("store baseline %d of node %s: %w", b.GetVersion(), b.GetNodeId(), err)
	}
	_, err = auditlog.Append(tx, now, b.GetAcceptedBy(), "baseline.accept", "node/"+b.GetNodeId(), map[string]string{
		"version":   strconv.FormatUint(uint64(b.GetVersion()), 10),
		"audit_id":  b.GetAuditId(),
		"reason":    b.GetReason(),
		"release":   b.GetRelease(),
		"rollout":   b.GetRolloutId(),
		"approvers": strings.Join(b.GetApprovers(), ","),
	})
	return err
}

// passAll runs one pass over every rollout the loop has work in.
func (e *Engine) passAll(ctx context.Context) {
	reqs := e.takeConfirms()
	ids, err := e.active(ctx)
	if err != nil {
		e.requeueConfirms(reqs)
		if ctx.Err() == nil {
			e.logFailure("", err)
		}
		return
	}
	byRollout := map[string][]confirmRequest{}
	for _, r := range reqs {
		c, err := e.command(ctx, r.commandID)
		switch {
		case err != nil:
			e.log.Warn("confirmation request for an unknown command", "node_id", r.nodeID, "command_id", r.commandID, "err", err)
			continue
		case c.GetNodeId() != r.nodeID || c.GetRolloutId() == "":
			e.log.Warn("confirmation request for a command that is not a rollout's deployment on the node", "node_id", r.nodeID, "command_id", r.commandID)
			continue
		}
		if _, ok := byRollout[c.GetRolloutId()]; !ok && !containsString(ids, c.GetRolloutId()) {
			ids = append(ids, c.GetRolloutId())
		}
		byRollout[c.GetRolloutId()] = append(byRollout[c.GetRolloutId()], r)
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		err := e.advance(ctx, id, byRollout[id])
		if err != nil {
			e.requeueConfirms(byRollout[id])
		}
		if ctx.Err() != nil {
			return
		}
		e.logFailure(id, err)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// active returns the rollouts the loop has work in: running and rolling
// back ones, and others with nodes still in flight.
func (e *Engine) active(ctx context.Context) ([]string, error) {
	var ids []string
	err := e.cfg.Store.View(ctx, func(tx store.Tx) error {
		all, err := tx.Rollouts()
		if err != nil {
			return err
		}
		for _, r := range all {
			switch r.GetState() {
			case StateRunning, StateRollingBack:
				ids = append(ids, r.GetId())
			default:
				if r.GetCounts().GetRunning() > 0 {
					ids = append(ids, r.GetId())
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list rollouts: %w", err)
	}
	return ids, nil
}

// advance runs one pass over rollout id: it handles the confirmation
// requests, moves every node in flight on, then drives the rollout by
// its state, and commits.
func (e *Engine) advance(ctx context.Context, id string, reqs []confirmRequest) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, err := e.load(ctx, id)
	if err != nil {
		return err
	}
	for _, r := range reqs {
		p.confirmationRequested(r)
	}
	for _, n := range p.nodes {
		if !inFlight(n.GetState()) {
			continue
		}
		err := p.progress(n)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		e.logFailure(id+"/"+n.GetNodeId(), err)
	}
	switch p.ro.GetState() {
	case StateRunning:
		p.drive()
	case StatePaused:
		p.checkBudget()
	case StateRollingBack:
		p.driveRollback()
	}
	return p.commit()
}

// startedAt is when the engine's loop started (for ReconnectGrace).
func (e *Engine) startedAt() time.Time { return e.started }

// isNotFound reports whether err says a record does not exist.
func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
