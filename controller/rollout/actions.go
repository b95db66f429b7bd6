package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cairn-ops/cairn/controller/rollout/state"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/stamp"
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

// stateError says an action is not allowed in the rollout's state, where
// it is, and what the operator can do instead.
func stateError(p *pass, action, instead string, allowed ...state.Rollout) error {
	names := make([]string, len(allowed))
	for i, s := range allowed {
		names[i] = state.Name(s)
	}
	msg := fmt.Sprintf("rollout %s is %s; %s applies to a rollout that is %s",
		p.ro.GetId(), state.Name(p.ro.GetState()), action, orList(names))
	if instead != "" {
		msg += "; " + instead
	}
	return fmt.Errorf("%w: %s", ErrState, msg)
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

// Pause stops a running rollout from starting nodes, or a rollback from
// starting node rollbacks; what is in flight finishes.
func (e *Engine) Pause(ctx context.Context, actor, id, note string) (*controllerv1.RolloutRecord, error) {
	return e.act(ctx, id, func(p *pass) error {
		switch p.ro.GetState() {
		case StateRunning:
			p.setState(StatePaused)
		case StateRollingBack:
			p.setState(StateRollbackPaused)
		default:
			return stateError(p, "pause", pauseHint(p.ro.GetState()), StateRunning, StateRollingBack)
		}
		p.ro.Reason = byWhom("paused", actor, note)
		p.ro.WaitingFor = ""
		p.roDirty = true
		p.record(actor, "rollout.pause", map[string]string{"note": note})
		return nil
	})
}

// pauseHint says what to do with a rollout pause does not apply to.
func pauseHint(s state.Rollout) string {
	switch s {
	case StatePaused, StateRollbackPaused:
		return "it is paused already: resume it with cairnctl rollout resume"
	case StateHalted:
		return "a halted rollout starts nothing: retry or resolve its failed nodes and resume it, abort it, or roll it back"
	}
	return "it is over: nothing starts in it any more"
}

// Resume continues a paused rollout (or one waiting at a gate), a paused
// rollback, or a halted rollout once its failed wave is within its
// budget again (its nodes retried or resolved).
func (e *Engine) Resume(ctx context.Context, actor, id, note string) (*controllerv1.RolloutRecord, error) {
	return e.act(ctx, id, func(p *pass) error {
		switch p.ro.GetState() {
		case StatePaused:
			p.setState(StateRunning)
		case StateRollbackPaused:
			p.setState(StateRollingBack)
		case StateHalted:
			if over := p.failedWaves(); over != "" {
				return fmt.Errorf("%w: rollout %s is halted: %s; retry those nodes (cairnctl rollout retry %s --node NODE) or resolve them after repairing them by hand (cairnctl rollout resolve), or abort or roll back the rollout",
					ErrState, p.ro.GetId(), over, p.ro.GetId())
			}
			p.setState(StateRunning)
			p.ro.FinishedAt = ""
		default:
			return stateError(p, "resume", "", StatePaused, StateRollbackPaused, StateHalted)
		}
		p.ro.Reason = ""
		p.roDirty = true
		p.record(actor, "rollout.resume", map[string]string{"note": note})
		return nil
	})
}

// failedWaves says which failed waves still have more failed nodes than
// their budget allows, "" when none has.
func (p *pass) failedWaves() string {
	var out []string
	for _, w := range p.ro.GetWaves() {
		if w.GetState() != WaveFailed && w.GetState() != WaveRunning {
			continue
		}
		failures, failed, _ := p.tally(w)
		if failures > int(w.GetMaxFailures()) {
			out = append(out, fmt.Sprintf("wave %d has %d failed nodes of %d allowed (%s)", w.GetIndex(), failures, w.GetMaxFailures(), nameList(failed, 10)))
		}
	}
	return strings.Join(out, "; ")
}

// Abort ends a rollout or its rollback: nodes that have not started are
// aborted; deployments in flight finish and their results are still
// recorded; node rollbacks in flight are cancelled (their nodes' rollback
// fails, and `rollback` or `retry` starts them again).
func (e *Engine) Abort(ctx context.Context, actor, id, note string) (*controllerv1.RolloutRecord, error) {
	return e.act(ctx, id, func(p *pass) error {
		switch p.ro.GetState() {
		case StateRunning, StatePaused, StateHalted:
		case StateRollingBack, StateRollbackPaused:
			for _, n := range p.nodes {
				if n.GetState() != NodeRollingBack {
					continue
				}
				if in := p.in[n.GetNodeId()]; in != nil {
					p.cancel(in.cmd, "rollback aborted")
				}
				p.finishRollback(n, false, byWhom("rollback aborted", actor, note))
			}
		default:
			return stateError(p, "abort", "it is over: roll it back, or retry or resolve its nodes", StateRunning, StatePaused, StateHalted, StateRollingBack, StateRollbackPaused)
		}
		p.setState(StateAborted)
		p.ro.Reason = byWhom("aborted", actor, note)
		p.ro.WaitingFor = ""
		p.ro.FinishedAt = stamp.Format(p.now)
		p.roDirty = true
		p.abortPending(byWhom("not started: aborted", actor, note))
		p.closeWaves()
		p.record(actor, "rollout.abort", map[string]string{"note": note})
		return nil
	})
}

// Rollback rolls back every node the rollout changed, in reverse wave
// order, and proves each is back at its pre-audit. A running rollout
// first stops starting nodes. A rollback that failed (or was aborted)
// starts again for the nodes not proven yet.
func (e *Engine) Rollback(ctx context.Context, actor, id, note string) (*controllerv1.RolloutRecord, error) {
	return e.act(ctx, id, func(p *pass) error {
		switch p.ro.GetState() {
		case StateRunning, StatePaused, StateHalted, StateCompleted, StateAborted, StateRollbackFailed:
		default:
			return stateError(p, "rollback", "", StateRunning, StatePaused, StateHalted, StateCompleted, StateAborted, StateRollbackFailed)
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
		if rollbackTarget(n) || state.NodeInDeployment(n.GetState()) {
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
				return fmt.Sprintf("node %s was changed by the later rollout %s of %s@%s", n.Name(), other.GetId(),
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
		if s := n.GetState(); s != NodePending && !state.NodeInDeployment(s) && !rollingBack {
			return fmt.Errorf("%w: node %s is %s in rollout %s (%s); nothing of it waits for a confirmation", ErrState, n.Name(), state.Name(s), p.ro.GetId(), state.Name(p.ro.GetState()))
		}
		c := &controllerv1.StepConfirmation{Step: step, By: actor, Note: note, At: stamp.Format(p.now)}
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

// Retry runs a node's deployment again with new commands (it failed, was
// unreachable or skipped, or was cut off), or its rollback when its
// rollback failed. The
// node must be connected. A completed rollout runs again until the node
// is done; a node of a closed wave reopens its wave.
func (e *Engine) Retry(ctx context.Context, actor, id, node, note string) (*controllerv1.RolloutRecord, error) {
	if node == "" {
		return nil, fmt.Errorf("%w: node: name the node to retry (ID or hostname)", ErrInvalid)
	}
	return e.act(ctx, id, func(p *pass) error {
		n, err := p.findNode(node)
		if err != nil {
			return err
		}
		if !state.NodeRetriable(n.GetState()) {
			return fmt.Errorf("%w: node %s is %s in rollout %s; retry applies to a node that failed, was unreachable, skipped or interrupted, or whose rollback failed",
				ErrState, n.Name(), state.Name(n.GetState()), p.ro.GetId())
		}
		if !p.connected[n.GetNodeId()] {
			return fmt.Errorf("%w: node %s is not connected: retry it when its agent is back (cairnctl node list)", ErrState, n.Name())
		}
		prev := map[string]string{"node": n.GetNodeId(), "note": note, "was": state.Name(n.GetState()), "error": n.GetError()}
		if n.GetState() == NodeRollbackFailed {
			switch p.ro.GetState() {
			case StateRollbackFailed, StateAborted:
				p.setState(StateRollingBack)
				p.ro.FinishedAt = ""
				p.ro.Reason = byWhom("rollback retried on "+n.Name(), actor, note)
			case StateRollingBack, StateRollbackPaused:
			default:
				return stateError(p, "a rollback retry", "", StateRollbackFailed, StateAborted, StateRollingBack, StateRollbackPaused)
			}
			clearRollback(n)
			n.Error = ""
			n.Retries++
			p.startNodeRollback(n)
			p.record(actor, "rollout.retry", prev)
			return nil
		}
		switch p.ro.GetState() {
		case StateRunning, StatePaused, StateHalted:
		case StateCompleted:
			p.setState(StateRunning)
			p.ro.FinishedAt = ""
			p.ro.Reason = ""
		default:
			return stateError(p, "a deployment retry", "roll the rollout back, or start a new rollout", StateRunning, StatePaused, StateHalted, StateCompleted)
		}
		if w := p.waveOf(n); w != nil && (w.GetState() == WaveDone || w.GetState() == WaveFailed) {
			p.setWave(w, WaveRunning)
		}
		resetDeployment(n)
		n.Retries++
		p.startNode(n)
		p.record(actor, "rollout.retry", prev)
		return nil
	})
}

// resetDeployment forgets a node's last deployment, so that it runs
// again from its pre-audit with new commands. What it did stays in the
// audit log and in the agent's journal.
func resetDeployment(n *controllerv1.RolloutNode) {
	n.PreAuditCommand, n.PreAuditId = "", ""
	n.DeployCommand, n.PostAuditCommand, n.PostAuditId = "", "", ""
	n.DeployReport, n.DeployReportJson, n.ComparisonJson = nil, nil, nil
	n.Changed, n.InterruptedStep = false, ""
	n.Error, n.UnreachableSince, n.FinishedAt = "", "", ""
	n.DurationSeconds, n.SlaBreached = 0, false
	n.HasBaseline, n.DriftChanges, n.DriftSummary, n.DriftPathsNotCompared, n.KnownErrors = false, 0, "", 0, nil
	n.WaitingStep, n.WaitingInstructions = "", ""
	n.Confirmations = nil
}

// Resolve records that someone repaired a node by hand: the node is
// audited, and the audit's diff from its pre-audit is recorded in the
// node and the report. The node must be connected. A rollback that
// failed only on nodes resolved this way ends rolled back.
func (e *Engine) Resolve(ctx context.Context, actor, id, node, note string) (*controllerv1.RolloutRecord, error) {
	switch {
	case node == "":
		return nil, fmt.Errorf("%w: node: name the node to resolve (ID or hostname)", ErrInvalid)
	case strings.TrimSpace(note) == "":
		return nil, fmt.Errorf("%w: note: say what was repaired, and how", ErrInvalid)
	}
	return e.act(ctx, id, func(p *pass) error {
		n, err := p.findNode(node)
		if err != nil {
			return err
		}
		if !state.NodeResolvable(n.GetState()) {
			return fmt.Errorf("%w: node %s is %s in rollout %s; resolve applies to a node that failed, was unreachable, skipped or interrupted, or whose rollback failed",
				ErrState, n.Name(), state.Name(n.GetState()), p.ro.GetId())
		}
		if !p.connected[n.GetNodeId()] {
			return fmt.Errorf("%w: node %s is not connected: resolving it takes an audit; resolve it when its agent is back", ErrState, n.Name())
		}
		n.ResolvedFrom = n.GetState()
		n.ResolvedBy, n.ResolvedNote, n.ResolvedAt = actor, note, stamp.Format(p.now)
		n.ResolveAuditCommand, n.ResolveAuditId, n.ResolveDiffJson = p.newAudit(n).GetId(), "", nil
		p.phase(n, NodeResolving)
		p.record(actor, "rollout.resolve", map[string]string{"node": n.GetNodeId(), "note": note, "was": state.Name(n.ResolvedFrom), "retries": strconv.Itoa(int(n.GetRetries()))})
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
