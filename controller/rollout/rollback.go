package rollout

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-ops/cairn/controller/cms"
	"github.com/cairn-ops/cairn/controller/rollout/state"
	"github.com/cairn-ops/cairn/internal/diff"
	"github.com/cairn-ops/cairn/internal/stamp"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// startRollback turns the rollout to rolling back: no node starts its
// deployment any more (pending ones are aborted), deployments in flight
// finish, then every node that changed is rolled back. Nodes whose
// rollback failed before get a new one. actor is who the audit log names,
// by what rollback_requested_by says ("policy" for on_failure=rollback).
func (p *pass) startRollback(actor, by, reason string) {
	p.setState(StateRollingBack)
	p.ro.RollbackRequestedBy = by
	p.ro.RollbackStartedAt = stamp.Format(p.now)
	p.ro.Reason = reason
	p.ro.WaitingFor = ""
	p.ro.FinishedAt = ""
	p.roDirty = true
	p.abortPending("not started: the rollout is being rolled back")
	for _, n := range p.nodes {
		if n.GetState() == NodeRollbackFailed {
			clearRollback(n)
			p.touch(n)
		}
	}
	p.record(actor, "rollout.rollback", map[string]string{"requested_by": by, "reason": reason})
	p.log.Warn("rollout rolling back", "requested_by", by, "reason", reason)
}

// clearRollback forgets a failed rollback's commands, so that the node
// is rolled back again with new ones.
func clearRollback(n *controllerv1.RolloutNode) {
	n.RollbackCommand, n.RollbackAuditCommand, n.RollbackAuditId = "", "", ""
	n.RollbackReport, n.RollbackReportJson, n.RollbackDiffJson = nil, nil, nil
}

// rollbackOpen reports whether a rollback_failed node waits for a new
// rollback (its failed one was cleared).
func rollbackOpen(n *controllerv1.RolloutNode) bool {
	return n.GetState() == NodeRollbackFailed && n.GetRollbackCommand() == "" && n.GetRollbackAuditCommand() == ""
}

// abortPending ends the deployment of every node that has not started.
func (p *pass) abortPending(why string) {
	for _, n := range p.nodes {
		if n.GetState() != NodePending {
			continue
		}
		p.phase(n, NodeAborted)
		n.Error = why
		n.FinishedAt = stamp.Format(p.now)
		n.UnreachableSince = ""
	}
}

// rollbackTarget reports whether a node is (or was) rolled back: its
// deployment changed it — including one the agent already undid itself,
// which still needs the audit that proves it — or may have (its
// deployment was sent and no full result came back).
func rollbackTarget(n *controllerv1.RolloutNode) bool {
	switch n.GetState() {
	case NodeRollingBack, NodeRolledBack, NodeRollbackFailed:
		return true
	case NodePassed, NodeFailed:
		if n.GetChanged() {
			return true
		}
		return n.GetDeployReport().StepsChanged()
	case NodeUnreachable, NodeSkipped, NodeAborted, NodeInterrupted:
		// Its deployment was sent and no result came back, or a step was
		// cut off: the agent may have changed the node. Undoing a
		// deployment that never ran changes nothing, and the audit after
		// it proves the node either way.
		return n.GetDeployCommand() != "" && n.GetPreAuditId() != ""
	}
	return false
}

// driveRollback rolls back the changed nodes in reverse wave order: every
// node of the last wave that changed anything is proven (or fails to be)
// before the wave before it starts, max_parallel at a time. Deployments
// still in flight finish first.
func (p *pass) driveRollback() {
	var busy []string
	for _, n := range p.nodes {
		if state.NodeInDeployment(n.GetState()) {
			busy = append(busy, fmt.Sprintf("%s (%s)", n.Name(), state.Name(n.GetState())))
		}
	}
	if len(busy) > 0 {
		p.wait(fmt.Sprintf("the rollback waits for %s in flight to finish: %s", plural(len(busy), "deployment", "deployments"), nameList(busy, 10)))
		return
	}
	byWave := map[uint32][]*controllerv1.RolloutNode{}
	var waves []uint32
	slots := p.slots()
	for _, n := range p.nodes {
		if !rollbackTarget(n) {
			continue
		}
		if byWave[n.GetWave()] == nil {
			waves = append(waves, n.GetWave())
		}
		byWave[n.GetWave()] = append(byWave[n.GetWave()], n)
		if n.GetState() == NodeRollingBack {
			slots--
		}
	}
	slices.Sort(waves)
	slices.Reverse(waves)
	for _, w := range waves {
		open := 0
		for _, n := range byWave[w] {
			switch {
			case n.GetState() == NodeRolledBack:
				continue
			case n.GetState() == NodeRollbackFailed && !rollbackOpen(n):
				continue
			case n.GetState() != NodeRollingBack:
				if slots > 0 {
					p.startNodeRollback(n)
					slots--
				}
			}
			open++
		}
		if open > 0 {
			for _, n := range byWave[w] {
				if n.GetState() == NodeRollingBack && n.GetWaitingStep() != "" {
					p.wait(fmt.Sprintf("confirmation of step %s on %s: run cairnctl rollout confirm %s --node %s --step %s --note TEXT",
						n.GetWaitingStep(), n.Name(), p.ro.GetId(), n.Name(), n.GetWaitingStep()))
				}
			}
			p.wait(fmt.Sprintf("rolling back wave %d", w))
			return
		}
	}
	p.finishRollout()
}

// startNodeRollback sends a node its rollback, or — when the agent
// already undid the failed deployment itself — only the audit that
// proves it.
func (p *pass) startNodeRollback(n *controllerv1.RolloutNode) {
	switch {
	case n.GetDeployReport().GetState() == agentv1.StateRolledBack:
		if n.GetRollbackAuditCommand() == "" {
			n.RollbackAuditCommand = p.newAudit(n).GetId()
		}
	case n.GetRollbackCommand() == "":
		n.RollbackCommand = p.newRollback(n).GetId()
	}
	n.UnreachableSince = ""
	p.phase(n, NodeRollingBack)
}

// newRollback issues the command that undoes the node's deployment: the
// agent's deployment of the node's deploy command (agents identify a
// deployment by its command).
func (p *pass) newRollback(n *controllerv1.RolloutNode) *controllerv1.CommandRecord {
	c := p.newDeploy(n.GetNodeId(), agentv1.ActionRollback)
	c.Deploy.UndoCommandId = n.GetDeployCommand()
	return c
}

// rollbackStepDone: after the rollback command, the node is audited;
// after the audit, the audit is compared with the pre-audit. No
// difference proves the rollback; a passed node's CMS baseline then
// moves to the after-rollback audit.
func (p *pass) rollbackStepDone(n *controllerv1.RolloutNode, in *nodeInput) {
	c := in.cmd
	if c.GetId() == n.GetRollbackCommand() && n.GetRollbackAuditCommand() == "" {
		n.WaitingStep, n.WaitingInstructions = "", ""
		n.RollbackReport = c.GetApplyReport()
		if c.GetState() == controllerv1.CommandRecord_STATE_FAILED {
			why := failure(c.GetApplyReport())
			if why == "" {
				why = orUnknown(c.GetError())
			}
			n.Error = joinErr(n.GetError(), "rollback failed: "+why)
		}
		n.RollbackAuditCommand = p.newAudit(n).GetId()
		p.touch(n)
		return
	}
	if c.GetState() == controllerv1.CommandRecord_STATE_FAILED {
		p.finishRollback(n, false, "after-rollback audit failed: "+orUnknown(c.GetError()))
		return
	}
	p.auditTook(c)
	if in.audit.err != nil {
		p.finishRollback(n, false, fmt.Sprintf("after-rollback audit: %v", in.audit.err))
		return
	}
	if in.pre.err != nil {
		p.finishRollback(n, false, fmt.Sprintf("pre-audit: %v", in.pre.err))
		return
	}
	rep := diff.Compare(in.pre.doc, in.audit.doc)
	var js bytes.Buffer
	if err := diff.WriteJSON(&js, rep); err != nil {
		p.faulty(fmt.Errorf("encode the rollback diff of node %s: %w", n.GetNodeId(), err))
		return
	}
	n.RollbackAuditId = in.audit.rec.GetId()
	n.RollbackDiffJson = js.Bytes()

	stepsFailed := n.GetRollbackCommand() != "" &&
		(in.rollback == nil || in.rollback.GetState() != controllerv1.CommandRecord_STATE_SUCCEEDED)
	var why []string
	if changes := cms.Changes(rep); changes > 0 {
		why = append(why, fmt.Sprintf("after the rollback the node differs from its pre-audit: %s", rep.Summary))
	}
	if nc := rep.NotComparable(); len(nc) > 0 {
		why = append(why, "not comparable with the pre-audit: "+strings.Join(nc, ", "))
	}
	if nc := rep.PathsNotCompared(); len(nc) > 0 {
		paths := make([]string, len(nc))
		for i, pc := range nc {
			paths[i] = pc.Path
		}
		why = append(why, "tracked paths not compared with the pre-audit: "+nameList(paths, listInError))
	}
	if stepsFailed || len(why) > 0 {
		p.finishRollback(n, false, strings.Join(why, "; "))
		return
	}
	if b := in.baseline; b != nil && b.GetRolloutId() == p.ro.GetId() && b.GetAuditId() == n.GetPostAuditId() {
		if err := p.advanceBaseline(n, in, "rolled back by "+p.ro.GetId(), nil); err != nil {
			p.finishRollback(n, false, "the CMS baseline cannot move to the after-rollback audit: "+err.Error())
			return
		}
	}
	p.finishRollback(n, true, "")
}

// finishRollback ends a node's rollback: rolled_back when proven, else
// rollback_failed with why added to its error.
func (p *pass) finishRollback(n *controllerv1.RolloutNode, ok bool, why string) {
	var d time.Duration
	if s := parseStamp(n.GetPhaseStartedAt()); !s.IsZero() {
		d = p.now.Sub(s)
	}
	to, outcome := NodeRolledBack, OutcomeRolledBack
	n.WaitingStep, n.WaitingInstructions = "", ""
	n.UnreachableSince = ""
	if !ok {
		to, outcome = NodeRollbackFailed, OutcomeRollbackFailed
		if why == "" && !strings.Contains(n.GetError(), "rollback failed") {
			why = "rollback failed"
		}
		n.Error = joinErr(n.GetError(), why)
	}
	p.phase(n, to)
	p.log.Info("node rollback finished", "node_id", n.GetNodeId(), "state", state.Name(to), "err", why)
	m := p.e.metrics()
	p.then(func() { m.NodeFinished(outcome, d) })
}

// finishRollout ends a rollback: rolled_back when every changed node is
// proven back at its pre-audit (or was resolved by hand), else
// rollback_failed.
func (p *pass) finishRollout() {
	var failed []string
	proven, resolved := 0, 0
	for _, n := range p.nodes {
		switch n.GetState() {
		case NodeRollbackFailed:
			failed = append(failed, n.Name())
		case NodeRolledBack:
			proven++
		case NodeResolved:
			resolved++
		}
	}
	p.ro.WaitingFor = ""
	p.ro.FinishedAt = stamp.Format(p.now)
	p.roDirty = true
	action := "rollout.rolled_back"
	if len(failed) == 0 {
		p.setState(StateRolledBack)
	} else {
		p.setState(StateRollbackFailed)
		action = "rollout.rollback_failed"
		p.ro.Reason = joinErr(fmt.Sprintf("rollback not proven on %s: retry them (cairnctl rollout retry %s --node NODE), resolve them after repairing them by hand (cairnctl rollout resolve), or roll back again",
			nameList(failed, 10), p.ro.GetId()), p.ro.GetReason())
	}
	p.record(actorSystem, action, map[string]string{
		"rolled_back":     strconv.Itoa(proven),
		"rollback_failed": strconv.Itoa(len(failed)),
		"resolved":        strconv.Itoa(resolved),
	})
	p.event(EventRolledBack, 0, false)
	p.log.Info("rollback finished", "state", state.Name(p.ro.GetState()), "proven", proven, "failed", len(failed))
}

// afterResolution: a rollback that failed only on nodes now resolved by
// hand is over: rolled back.
func (p *pass) afterResolution() {
	if p.ro.GetState() != StateRollbackFailed {
		return
	}
	for _, n := range p.nodes {
		if n.GetState() == NodeRollbackFailed || n.GetState() == NodeRollingBack || n.GetState() == NodeResolving {
			return
		}
	}
	p.setState(StateRolledBack)
	p.ro.Reason = "rolled back; nodes whose rollback failed were repaired by hand and resolved"
	p.ro.FinishedAt = stamp.Format(p.now)
	p.record(actorSystem, "rollout.rolled_back", map[string]string{"resolved": "true"})
	p.event(EventRolledBack, 0, false)
}
