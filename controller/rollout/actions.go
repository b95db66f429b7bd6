package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cairn-ops/cairn/controller/store"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// act runs an operator's action on a rollout as one pass, under the
// engine's lock, and returns the rollout as it is after.
func (e *Engine) act(ctx context.Context, id string, fn func(p *pass) error) (*controllerv1.RolloutRecord, error) {
	if id == "" {
		return nil, fmt.Errorf("%w: id: a rollout ID is required", ErrInvalid)
	}
	err := func() error {
		e.mu.Lock()
		defer e.mu.Unlock()
		p, err := e.load(ctx, id)
		if err != nil {
			return err
		}
		if err := fn(p); err != nil {
			return err
		}
		return p.commit()
	}()
	if err != nil {
		return nil, err
	}
	e.wakeUp()
	return e.Get(ctx, id)
}

// stateError says an action is not allowed in the rollout's state and
// where it is.
func stateError(p *pass, action string, allowed ...string) error {
	return fmt.Errorf("%w: rollout %s is %s; %s applies to a rollout that is %s",
		ErrState, p.ro.GetId(), p.ro.GetState(), action, orList(allowed))
}

func orList(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// byWhom is a reason naming the actor and their note.
func byWhom(what, actor, note string) string {
	if note == "" {
		return what + " by " + actor
	}
	return what + " by " + actor + ": " + note
}

// Pause stops a running rollout from starting nodes; nodes in flight
// finish.
func (e *Engine) Pause(ctx context.Context, actor, id, note string) (*controllerv1.RolloutRecord, error) {
	return e.act(ctx, id, func(p *pass) error {
		if p.ro.GetState() != StateRunning {
			return stateError(p, "pause", StateRunning)
		}
		p.ro.State = StatePaused
		p.ro.Reason = byWhom("paused", actor, note)
		p.ro.WaitingFor = ""
		p.roDirty = true
		p.record(actor, "rollout.pause", map[string]string{"note": note})
		return nil
	})
}

// Resume continues a paused rollout, or one waiting at a gate.
func (e *Engine) Resume(ctx context.Context, actor, id, note string) (*controllerv1.RolloutRecord, error) {
	return e.act(ctx, id, func(p *pass) error {
		if p.ro.GetState() != StatePaused {
			return stateError(p, "resume", StatePaused)
		}
		p.ro.State = StateRunning
		p.ro.Reason = ""
		p.roDirty = true
		p.record(actor, "rollout.resume", map[string]string{"note": note})
		return nil
	})
}

// Abort ends a rollout: nodes that have not started are aborted; nodes
// in flight finish and their results are still recorded.
func (e *Engine) Abort(ctx context.Context, actor, id, note string) (*controllerv1.RolloutRecord, error) {
	return e.act(ctx, id, func(p *pass) error {
		switch p.ro.GetState() {
		case StateRunning, StatePaused, StateHalted:
		default:
			return stateError(p, "abort", StateRunning, StatePaused, StateHalted)
		}
		p.ro.State = StateAborted
		p.ro.Reason = byWhom("aborted", actor, note)
		p.ro.WaitingFor = ""
		p.ro.FinishedAt = stamp(p.now)
		p.roDirty = true
		p.abortPending(byWhom("not started: aborted", actor, note))
		p.record(actor, "rollout.abort", map[string]string{"note": note})
		return nil
	})
}

// Rollback rolls back every node the rollout changed, in reverse wave
// order, and proves each is back at its pre-audit. A running rollout
// first stops starting nodes.
func (e *Engine) Rollback(ctx context.Context, actor, id, note string) (*controllerv1.RolloutRecord, error) {
	return e.act(ctx, id, func(p *pass) error {
		switch p.ro.GetState() {
		case StateRunning, StatePaused, StateHalted, StateCompleted, StateAborted:
		default:
			return stateError(p, "rollback", StateRunning, StatePaused, StateHalted, StateCompleted, StateAborted)
		}
		if err := p.othersWorkOn(); err != nil {
			return err
		}
		p.startRollback(actor, actor, byWhom("rollback requested", actor, note))
		return nil
	})
}

// othersWorkOn refuses a rollback while another rollout works on a node
// this one changed or is changing: the rollback would undo it under the
// other's feet.
func (p *pass) othersWorkOn() error {
	var ids []string
	for _, n := range p.nodes {
		if rollbackTarget(n) || deploying(n.GetState()) {
			ids = append(ids, n.GetNodeId())
		}
	}
	if len(ids) == 0 {
		return nil
	}
	var busy, later string
	err := p.e.cfg.Store.View(p.ctx, func(tx store.Tx) error {
		var err error
		if busy, err = overlap(tx, ids, p.ro.GetId()); err != nil || busy != "" {
			return err
		}
		later, err = changedSince(tx, p.ro, ids)
		return err
	})
	switch {
	case err != nil:
		return fmt.Errorf("rollout %s: check other rollouts: %w", p.ro.GetId(), err)
	case busy != "":
		return fmt.Errorf("%w: %s; wait for it to finish, or abort it, before rolling back %s", ErrState, busy, p.ro.GetId())
	case later != "":
		return fmt.Errorf("%w: %s, so rolling back %s would undo that rollout too, not this one; roll the later rollout back first", ErrState, later, p.ro.GetId())
	}
	return nil
}

// changedSince describes the first of nodeIDs that a rollout created
// after ro has changed and not rolled back ("node web1 was changed by
// rollout ro-… of greeter@1.0.1"), or returns "" when there is none.
func changedSince(tx store.Tx, ro *controllerv1.RolloutRecord, nodeIDs []string) (string, error) {
	all, err := tx.Rollouts()
	if err != nil {
		return "", err
	}
	created := parseStamp(ro.GetCreatedAt())
	for _, other := range all {
		if other.GetId() == ro.GetId() || !parseStamp(other.GetCreatedAt()).After(created) {
			continue
		}
		for _, id := range nodeIDs {
			n, err := tx.RolloutNode(other.GetId(), id)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return "", err
			}
			if n.GetDeployCommand() == "" || n.GetState() == NodeRolledBack {
				continue
			}
			if n.GetChanged() || n.GetState() == NodePassed {
				return fmt.Sprintf("node %s was changed by the later rollout %s of %s@%s", nodeName(n), other.GetId(),
					other.GetRelease().GetName(), other.GetRelease().GetVersion()), nil
			}
		}
	}
	return "", nil
}

// Confirm records actor's confirmation of a manual step on a node (ID or
// hostname) and passes it to the agent if it is waiting. A confirmation
// given before the agent asks is kept and sent when it does.
func (e *Engine) Confirm(ctx context.Context, actor, id, node, step, note string) (*controllerv1.RolloutRecord, error) {
	switch {
	case node == "":
		return nil, fmt.Errorf("%w: node: name the node (ID or hostname)", ErrInvalid)
	case step == "":
		return nil, fmt.Errorf("%w: step: name the step to confirm", ErrInvalid)
	case strings.TrimSpace(note) == "":
		return nil, fmt.Errorf("%w: note: say what was done", ErrInvalid)
	}
	return e.act(ctx, id, func(p *pass) error {
		n, err := p.findNode(node)
		if err != nil {
			return err
		}
		if names := p.rel.stepNames(); !slices.Contains(names, step) {
			return fmt.Errorf("%w: step %q: release %s has no such step (its steps: %s)", ErrInvalid, step, p.rel.ref(), strings.Join(names, ", "))
		}
		// A node that has not started or is deploying may still run the
		// step, whatever the rollout's state (a rollback waits for it), and
		// one rolling back may run a manual rollback step.
		rollingBack := rollbackWaits(n, n.GetRollbackCommand())
		if s := n.GetState(); s != NodePending && !deploying(s) && !rollingBack {
			return fmt.Errorf("%w: node %s is %s in rollout %s (%s); nothing of it waits for a confirmation", ErrState, hostname(n), s, p.ro.GetId(), p.ro.GetState())
		}
		c := &controllerv1.StepConfirmation{Step: step, By: actor, Note: note, At: stamp(p.now)}
		n.Confirmations = append(n.Confirmations, c)
		p.touch(n)
		switch {
		case rollingBack && n.GetWaitingStep() == step:
			n.WaitingStep, n.WaitingInstructions = "", ""
			p.forward(n, n.GetRollbackCommand(), c)
		case n.GetState() == NodeWaitingConfirmation && n.GetWaitingStep() == step:
			p.phase(n, NodeDeploying)
			n.WaitingStep, n.WaitingInstructions = "", ""
			p.forward(n, n.GetDeployCommand(), c)
		}
		p.record(actor, "rollout.confirm", map[string]string{"node": n.GetNodeId(), "step": step, "note": note})
		return nil
	})
}

// findNode finds a node of the rollout by ID or hostname.
func (p *pass) findNode(ref string) (*controllerv1.RolloutNode, error) {
	if n := p.byID[ref]; n != nil {
		return n, nil
	}
	var found []*controllerv1.RolloutNode
	for _, n := range p.nodes {
		if n.GetHostname() == ref {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return nil, fmt.Errorf("%w: node %q: not a node of rollout %s", ErrInvalid, ref, p.ro.GetId())
	}
	return nil, fmt.Errorf("%w: node %q: %d nodes of rollout %s have that hostname; use the node ID", ErrInvalid, ref, len(found), p.ro.GetId())
}
