package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/cairn-ops/cairn/controller/auditlog"
	"github.com/cairn-ops/cairn/controller/cms"
	"github.com/cairn-ops/cairn/controller/dml"
	"github.com/cairn-ops/cairn/controller/rollout/state"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/stamp"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// pass is one look at one rollout, in three parts. load reads what the
// store holds and everything the nodes in flight need (their commands,
// audits and baselines: load.go) and which nodes are connected; decide
// changes the records in memory as a function of what was loaded and the
// state tables (controller/rollout/state), collecting the commands,
// baselines, install records and audit-log entries it issues; commit
// writes all of it in one transaction and only then acts (notifies the
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

	// What load read for decide.
	in        map[string]*nodeInput // nodes in flight, by node ID
	connected map[string]bool
	// started is when the engine's loop started (ReconnectGrace).
	started time.Time

	dirty     map[string]bool // node IDs to write
	roDirty   bool
	waiting   []string // what the rollout waits for, most important first
	commands  []*controllerv1.CommandRecord
	notified  map[string]bool
	entries   []logEntry
	audits    []pendingAudit
	baselines []advance
	installs  []install
	after     []func()
	// fault is a transition the state tables do not allow: the pass
	// commits nothing.
	fault error
}

// logEntry is an audit-log entry to append at commit.
type logEntry struct {
	actor, action string
	details       map[string]string
}

// pendingAudit is an audit command the pass issued, whose track list
// commit completes in its transaction (cms.AuditTrack): the node's
// tracked set then, the release's paths and what the node's pre-audit
// tracked (add, pre), less drop.
type pendingAudit struct {
	cmd       *controllerv1.CommandRecord
	add, drop []string
	// pre is the node's pre-audit command, whose track list later audits
	// of the rollout cover too; "" for the pre-audit itself.
	pre string
}

// advance is a baseline to store at commit (cms.PutBaseline) and the
// paths its audit tracked.
type advance struct {
	rec      *controllerv1.BaselineRecord
	patterns []string
}

// install is a DML install record to write at commit.
type install struct {
	digest string
	rec    *controllerv1.InstallRecord
}

// load reads a rollout and its nodes for a pass, and what its nodes in
// flight need.
func (e *Engine) load(ctx context.Context, id string) (*pass, error) {
	p := &pass{
		e: e, ctx: ctx, now: e.cfg.Now(),
		log:       e.log.With("rollout_id", id),
		byID:      map[string]*controllerv1.RolloutNode{},
		in:        map[string]*nodeInput{},
		connected: map[string]bool{},
		started:   e.started,
		dirty:     map[string]bool{},
		notified:  map[string]bool{},
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
		p.connected[n.GetNodeId()] = e.cfg.Fleet != nil && e.cfg.Fleet.IsConnected(n.GetNodeId())
	}
	if p.rel, err = e.release(ctx, p.ro.GetRelease()); err != nil {
		return nil, fmt.Errorf("rollout %s: %w", id, err)
	}
	if p.params, err = Normalize(p.ro.GetSpec(), len(p.nodes)); err != nil {
		return nil, fmt.Errorf("rollout %s: stored spec: %w", id, err)
	}
	if err := p.loadInputs(); err != nil {
		return nil, err
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
	st, reason := p.ro.GetState(), p.ro.GetReason()
	p.then(func() {
		p.e.notify(name, EventPayload{
			Rollout: p.ro.GetId(), Release: refString(p.ro.GetRelease()), State: state.Name(st), Reason: reason,
			Wave: wave, WaveFailed: waveFailed, Counts: plainCounts(p.ro.GetCounts()), At: stamp.Format(p.now),
		})
	})
}

// setState moves the rollout to to, as the state table allows.
func (p *pass) setState(to state.Rollout) {
	from := p.ro.GetState()
	if from == to {
		return
	}
	if err := state.CheckRollout(from, to); err != nil {
		p.faulty(err)
		return
	}
	p.ro.State = to
	p.roDirty = true
	p.observe("rollout", state.Name(from), state.Name(to))
}

// observe tells Config.Observe of a transition once the pass is
// committed.
func (p *pass) observe(kind, from, to string) {
	if fn := p.e.cfg.Observe; fn != nil {
		p.then(func() { fn(Transition{Kind: kind, From: from, To: to}) })
	}
}

// setWave moves a wave to to, as the state table allows.
func (p *pass) setWave(w *controllerv1.RolloutWave, to state.Wave) {
	from := w.GetState()
	if from == to {
		return
	}
	if err := state.CheckWave(from, to); err != nil {
		p.faulty(fmt.Errorf("wave %d: %w", w.GetIndex(), err))
		return
	}
	w.State = to
	p.roDirty = true
	p.observe("wave", state.Name(from), state.Name(to))
}

// phase moves a node to to, as the state table allows, and notes when.
func (p *pass) phase(n *controllerv1.RolloutNode, to state.Node) {
	from := n.GetState()
	if from == to {
		p.touch(n)
		return
	}
	if err := state.CheckNode(from, to); err != nil {
		p.faulty(fmt.Errorf("node %s: %w", n.Name(), err))
		return
	}
	n.State = to
	n.PhaseStartedAt = stamp.Format(p.now)
	p.touch(n)
	p.observe("node", state.Name(from), state.Name(to))
}

// faulty records a transition the tables refuse: a defect in the engine,
// which must not be written.
func (p *pass) faulty(err error) {
	p.fault = errors.Join(p.fault, err)
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
		CreatedAt: stamp.Format(p.now),
		UpdatedAt: stamp.Format(p.now),
		RolloutId: p.ro.GetId(),
	}
	p.commands = append(p.commands, c)
	if !p.notified[nodeID] && p.e.cfg.Fleet != nil {
		p.notified[nodeID] = true
		p.then(func() { p.e.cfg.Fleet.Notify(nodeID) })
	}
	return c
}

// newAudit issues an audit command that collects the node's tracked set,
// the files the release expects and what the node's pre-audit tracked:
// the pre-audit, and the audits after a rollback or a resolution, which
// are compared with the pre-audit. Commit completes its track list.
func (p *pass) newAudit(n *controllerv1.RolloutNode) *controllerv1.CommandRecord {
	c := p.newCommand(n.GetNodeId(), controllerv1.CommandKindAudit)
	p.audits = append(p.audits, pendingAudit{cmd: c, add: p.rel.track, pre: n.GetPreAuditCommand()})
	return c
}

// newPostAudit issues the post-audit: newAudit's paths less those the
// release stops tracking, so that the baseline it becomes no longer
// covers them.
func (p *pass) newPostAudit(n *controllerv1.RolloutNode) *controllerv1.CommandRecord {
	c := p.newAudit(n)
	p.audits[len(p.audits)-1].drop = p.rel.untrack
	return c
}

// auditTrack is a pending audit's track list, read in commit's
// transaction.
func auditTrack(tx store.Tx, a pendingAudit) ([]string, error) {
	add := a.add
	if a.pre != "" {
		pre, err := tx.Command(a.pre)
		if err != nil && !isNotFound(err) {
			return nil, fmt.Errorf("pre-audit command %s: %w", a.pre, err)
		}
		add = slices.Concat(add, pre.GetTrack())
	}
	return cms.AuditTrack(tx, a.cmd.GetNodeId(), add, a.drop)
}

// newDeploy issues a deploy command with action.
func (p *pass) newDeploy(nodeID, action string) *controllerv1.CommandRecord {
	c := p.newCommand(nodeID, controllerv1.CommandKindDeploy)
	c.Deploy = p.rel.deployCommand(p.ro.GetId(), action)
	return c
}

// cancel marks an outstanding command failed, so that it is not
// delivered when its node comes back.
func (p *pass) cancel(c *controllerv1.CommandRecord, why string) {
	if c == nil || !unfinished(c) {
		return
	}
	c.State = controllerv1.CommandRecord_STATE_FAILED
	c.Error = "cancelled by rollout " + p.ro.GetId() + ": " + why
	c.UpdatedAt = stamp.Format(p.now)
	p.commands = append(p.commands, c)
}

// wait notes what the rollout waits for; commit writes the first noted.
func (p *pass) wait(what string) { p.waiting = append(p.waiting, what) }

// changed reports whether the pass has anything to write.
func (p *pass) changed() bool {
	return p.roDirty || len(p.dirty) > 0 || len(p.commands) > 0 || len(p.entries) > 0 || len(p.baselines) > 0 || len(p.installs) > 0
}

// commit writes the pass's decisions in one transaction, then acts on
// them.
func (p *pass) commit() error {
	if p.fault != nil {
		return fmt.Errorf("rollout %s: the pass made a transition the state tables do not allow, and is not recorded: %w", p.ro.GetId(), p.fault)
	}
	waiting := ""
	if state.RolloutDriven(p.ro.GetState()) && len(p.waiting) > 0 {
		waiting = p.waiting[0]
	}
	if waiting != p.ro.GetWaitingFor() {
		p.ro.WaitingFor = waiting
		p.roDirty = true
	}
	if !p.changed() {
		p.runAfter()
		return nil
	}
	p.ro.Counts = state.Count(p.nodes)
	p.ro.Revision++
	p.ro.UpdatedAt = stamp.Format(p.now)
	err := p.e.cfg.Store.Update(p.ctx, func(tx store.Tx) error {
		for _, a := range p.audits {
			track, err := auditTrack(tx, a)
			if err != nil {
				return fmt.Errorf("track list of audit command %s for node %s: %w", a.cmd.GetId(), a.cmd.GetNodeId(), err)
			}
			a.cmd.Track = track
		}
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
			if err := cms.PutBaseline(tx, p.now, b.rec, b.patterns); err != nil {
				return err
			}
		}
		for _, in := range p.installs {
			if err := dml.PutInstall(tx, p.now, actorSystem, in.digest, in.rec); err != nil {
				return fmt.Errorf("record install on node %s: %w", in.rec.GetNodeId(), err)
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

// passAll runs one pass over every rollout the loop has work in.
func (e *Engine) passAll(ctx context.Context) {
	reqs := e.takeConfirms()
	ints := e.takeInterrupts()
	ids, err := e.active(ctx)
	if err != nil {
		e.requeueConfirms(reqs)
		e.requeueInterrupts(ints)
		if ctx.Err() == nil {
			e.logFailure("", err)
		}
		return
	}
	byRollout := map[string]*events{}
	add := func(rollout string) *events {
		ev := byRollout[rollout]
		if ev == nil {
			ev = &events{}
			byRollout[rollout] = ev
			if !containsString(ids, rollout) {
				ids = append(ids, rollout)
			}
		}
		return ev
	}
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
		ev := add(c.GetRolloutId())
		ev.confirms = append(ev.confirms, r)
	}
	for _, in := range ints {
		c, err := e.command(ctx, in.commandID)
		switch {
		case err != nil:
			e.log.Warn("interruption report for an unknown command", "node_id", in.nodeID, "command_id", in.commandID, "err", err)
			continue
		case c.GetNodeId() != in.nodeID || c.GetRolloutId() == "":
			e.log.Info("interruption report for a command that is not a rollout's deployment on the node", "node_id", in.nodeID, "command_id", in.commandID)
			continue
		}
		ev := add(c.GetRolloutId())
		ev.interrupts = append(ev.interrupts, in)
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		ev := byRollout[id]
		if ev == nil {
			ev = &events{}
		}
		err := e.advance(ctx, id, ev)
		if err != nil {
			e.requeueConfirms(ev.confirms)
			e.requeueInterrupts(ev.interrupts)
		}
		if ctx.Err() != nil {
			return
		}
		e.logFailure(id, err)
	}
}

// events are what agents reported for one rollout since its last pass.
type events struct {
	confirms   []confirmRequest
	interrupts []interruption
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// active returns the rollouts the loop has work in: those the engine
// drives, and others with nodes still in flight.
func (e *Engine) active(ctx context.Context) ([]string, error) {
	var ids []string
	err := e.cfg.Store.View(ctx, func(tx store.Tx) error {
		all, err := tx.Rollouts()
		if err != nil {
			return err
		}
		for _, r := range all {
			if state.RolloutDriven(r.GetState()) || r.GetCounts().GetRunning() > 0 || wavesOpen(r) {
				ids = append(ids, r.GetId())
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list rollouts: %w", err)
	}
	return ids, nil
}

// wavesOpen reports whether a rollout that is over still has a wave to
// close (its record predates the cancelled state, or a pass was cut off).
func wavesOpen(r *controllerv1.RolloutRecord) bool {
	if !state.RolloutOver(r.GetState()) {
		return false
	}
	for _, w := range r.GetWaves() {
		if w.GetState() == WavePending || w.GetState() == WaveRunning || w.GetState() == WaveBaking {
			return true
		}
	}
	return false
}

// Step runs one pass over rollout id now, with the agents' reports
// queued for it, as the loop would: tests drive the engine with it.
func (e *Engine) Step(ctx context.Context, id string) error {
	ev := &events{}
	var rest []confirmRequest
	for _, r := range e.takeConfirms() {
		if c, err := e.command(ctx, r.commandID); err == nil && c.GetRolloutId() == id && c.GetNodeId() == r.nodeID {
			ev.confirms = append(ev.confirms, r)
		} else {
			rest = append(rest, r)
		}
	}
	e.requeueConfirms(rest)
	var other []interruption
	for _, in := range e.takeInterrupts() {
		if c, err := e.command(ctx, in.commandID); err == nil && c.GetRolloutId() == id && c.GetNodeId() == in.nodeID {
			ev.interrupts = append(ev.interrupts, in)
		} else {
			other = append(other, in)
		}
	}
	e.requeueInterrupts(other)
	err := e.advance(ctx, id, ev)
	if err != nil {
		e.requeueConfirms(ev.confirms)
		e.requeueInterrupts(ev.interrupts)
	}
	return err
}

// advance runs one pass over rollout id: load, decide, commit.
func (e *Engine) advance(ctx context.Context, id string, ev *events) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, err := e.load(ctx, id)
	if err != nil {
		return err
	}
	p.decide(ev)
	return p.commit()
}

// decide is the pass's decisions on what load read: the agents' reports,
// the nodes in flight, then the rollout by its state.
func (p *pass) decide(ev *events) {
	for _, r := range ev.confirms {
		p.confirmationRequested(r)
	}
	for _, in := range ev.interrupts {
		p.interrupted(in)
	}
	for _, n := range p.nodes {
		if state.NodeInFlight(n.GetState()) {
			p.progress(n, p.in[n.GetNodeId()])
		}
	}
	switch p.ro.GetState() {
	case StateRunning:
		p.drive()
	case StatePaused:
		p.checkBudget()
	case StateRollingBack:
		p.driveRollback()
	}
	if state.RolloutOver(p.ro.GetState()) {
		p.closeWaves()
	}
}

// isNotFound reports whether err says a record does not exist.
func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
