package rollout

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-ops/cairn/controller/cms"
	"github.com/cairn-ops/cairn/internal/diff"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// startRollback turns the rollout to rolling back: no node starts its
// deployment any more (pending ones are aborted), deployments in flight
// finish, then every node that changed is rolled back. actor is who the
// audit log names, by what rollback_requested_by says ("policy" for
// on_failure=rollback).
func (p *pass) startRollback(actor, by, reason string) {
	p.ro.State = StateRollingBack
	p.ro.RollbackRequestedBy = by
	p.ro.RollbackStartedAt = stamp(p.now)
	p.ro.Reason = reason
	p.ro.WaitingFor = ""
	p.ro.FinishedAt = ""
	p.roDirty = true
	p.abortPending("not started: the rollout is being rolled back")
	p.record(actor, "rollout.rollback", map[string]string{"requested_by": by, "reason": reason})
	p.log.Warn("rollout rolling back", "requested_by", by, "reason", reason)
}

// abortPending ends the deployment of every node that has not started.
func (p *pass) abortPending(why string) {
	for _, n := range p.nodes {
		if n.GetState() != NodePending {
			continue
		}
		p.phase(n, NodeAborted)
		n.Error = why
		n.FinishedAt = stamp(p.now)
		n.UnreachableSince = ""
	}
}

// rollbackTarget reports whether a node is (or was) rolled back: its
// deployment changed it — including one the agent already undid itself,
// which still needs the audit that proves it.
func rollbackTarget(n *controllerv1.RolloutNode) bool {
	switch n.GetState() {
	case NodeRollingBack, NodeRolledBack, NodeRollbackFailed:
		return true
	case NodePassed, NodeFailed:
		if n.GetChanged() {
			return true
		}
		rep, _ := decodeApplyReport(n.GetDeployReportJson())
		return rep.stepsChanged()
	case NodeUnreachable, NodeAborted:
		// Its deployment was sent and no result came back: the agent may
		// have run it (it carries on through a lost session). Undoing a
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
		if deploying(n.GetState()) {
			busy = append(busy, fmt.Sprintf("%s (%s)", hostname(n), n.GetState()))
		}
	}
	if len(busy) > 0 {
		p.wait(fmt.Sprintf("the rollback waits for %s in flight to finish: %s", plural(len(busy), "deployment", "deployments"), nameList(busy, 10)))
		return
	}
	byWave := map[uint32][]*controllerv1.RolloutNode{}
	var waves []uint32
	slots := int(p.ro.GetMaxParallel())
	if slots <= 0 {
		slots = p.params.MaxParallel
	}
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
			switch n.GetState() {
			case NodeRolledBack, NodeRollbackFailed:
				continue
			case NodePassed, NodeFailed, NodeUnreachable, NodeAborted:
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
						n.GetWaitingStep(), hostname(n), p.ro.GetId(), hostname(n), n.GetWaitingStep()))
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
	rep, _ := decodeApplyReport(n.GetDeployReportJson())
	switch {
	case rep != nil && rep.State == reportRolledBack:
		if n.GetRollbackAuditCommand() == "" {
			n.RollbackAuditCommand = p.newAudit(n.GetNodeId()).GetId()
		}
	case n.GetRollbackCommand() == "":
		n.RollbackCommand = p.newDeploy(n.GetNodeId(), actionRollback).GetId()
	}
	p.phase(n, NodeRollingBack)
}

// rollbackStepDone: after the rollback command, the node is audited;
// after the audit, the audit is compared with the pre-audit. No
// difference proves the rollback; a passed node's CMS baseline then
// moves to the after-rollback audit.
func (p *pass) rollbackStepDone(n *controllerv1.RolloutNode, c *controllerv1.CommandRecord) error {
	if c.GetId() == n.GetRollbackCommand() && n.GetRollbackAuditCommand() == "" {
		n.WaitingStep, n.WaitingInstructions = "", ""
		n.RollbackReportJson = c.GetResultJson()
		if c.GetState() == controllerv1.CommandRecord_STATE_FAILED {
			rep, _ := decodeApplyReport(c.GetResultJson())
			why := rep.failure()
			if why == "" {
				why = orUnknown(c.GetError())
			}
			n.Error = joinErr(n.GetError(), "rollback failed: "+why)
		}
		n.RollbackAuditCommand = p.newAudit(n.GetNodeId()).GetId()
		p.touch(n)
		return nil
	}
	if c.GetState() == controllerv1.CommandRecord_STATE_FAILED {
		p.finishRollback(n, false, "after-rollback audit failed: "+orUnknown(c.GetError()))
		return nil
	}
	p.auditTook(c)
	after, err := p.e.auditRecord(p.ctx, c.GetAuditId())
	if err != nil {
		if p.ctx.Err() != nil {
			return err
		}
		p.finishRollback(n, false, fmt.Sprintf("after-rollback audit: %v", err))
		return nil
	}
	pre, err := p.e.auditRecord(p.ctx, n.GetPreAuditId())
	if err != nil {
		if p.ctx.Err() != nil {
			return err
		}
		p.finishRollback(n, false, fmt.Sprintf("pre-audit: %v", err))
		return nil
	}
	rep, err := cms.Compare(p.e.cfg.Blobs, pre, after)
	if err != nil {
		p.finishRollback(n, false, fmt.Sprintf("compare with the pre-audit: %v", err))
		return nil
	}
	var js bytes.Buffer
	if err := diff.WriteJSON(&js, rep); err != nil {
		return fmt.Errorf("encode the rollback diff of node %s: %w", n.GetNodeId(), err)
	}
	n.RollbackAuditId = after.GetId()
	n.RollbackDiffJson = js.Bytes()

	stepsFailed := false
	if id := n.GetRollbackCommand(); id != "" {
		rc, err := p.e.command(p.ctx, id)
		if err != nil && !isNotFound(err) {
			return err
		}
		stepsFailed = err != nil || rc.GetState() != controllerv1.CommandRecord_STATE_SUCCEEDED
	}
	var why []string
	if changes := cms.Changes(rep); changes > 0 {
		why = append(why, fmt.Sprintf("after the rollback the node differs from its pre-audit: %s", rep.Summary))
	}
	if nc := rep.NotComparable(); len(nc) > 0 {
		why = append(why, "not comparable with the pre-audit: "+strings.Join(nc, ", "))
	}
	if stepsFailed || len(why) > 0 {
		p.finishRollback(n, false, strings.Join(why, "; "))
		return nil
	}
	b, err := p.e.latestBaseline(p.ctx, n.GetNodeId())
	if err != nil {
		return err
	}
	if b != nil && b.GetRolloutId() == p.ro.GetId() && b.GetAuditId() == n.GetPostAuditId() {
		p.advanceBaseline(n, after, "rolled back by "+p.ro.GetId())
	}
	p.finishRollback(n, true, "")
	return nil
}

// finishRollback ends a node's rollback: rolled_back when proven, else
// rollback_failed with why added to its error.
func (p *pass) finishRollback(n *controllerv1.RolloutNode, ok bool, why string) {
	var d time.Duration
	if s := parseStamp(n.GetPhaseStartedAt()); !s.IsZero() {
		d = p.now.Sub(s)
	}
	state, outcome := NodeRolledBack, OutcomeRolledBack
	n.WaitingStep, n.WaitingInstructions = "", ""
	if !ok {
		state, outcome = NodeRollbackFailed, OutcomeRollbackFailed
		if why == "" && !strings.Contains(n.GetError(), "rollback failed") {
			why = "rollback failed"
		}
		n.Error = joinErr(n.GetError(), why)
	}
	p.phase(n, state)
	p.log.Info("node rollback finished", "node_id", n.GetNodeId(), "state", state, "err", why)
	m := p.e.metrics()
	p.then(func() { m.NodeFinished(outcome, d) })
}

// finishRollout ends a rollback: rolled_back when every changed node is
// proven back at its pre-audit, else rollback_failed.
func (p *pass) finishRollout() {
	var failed []string
	proven := 0
	for _, n := range p.nodes {
		switch n.GetState() {
		case NodeRollbackFailed:
			failed = append(failed, hostname(n))
		case NodeRolledBack:
			proven++
		}
	}
	p.ro.WaitingFor = ""
	p.ro.FinishedAt = stamp(p.now)
	p.roDirty = true
	action := "rollout.rolled_back"
	if len(failed) == 0 {
		p.ro.State = StateRolledBack
	} else {
		p.ro.State = StateRollbackFailed
		action = "rollout.rollback_failed"
		p.ro.Reason = joinErr(fmt.Sprintf("rollback not proven on %s", nameList(failed, 10)), p.ro.GetReason())
	}
	p.record(actorSystem, action, map[string]string{
		"rolled_back":     strconv.Itoa(proven),
		"rollback_failed": strconv.Itoa(len(failed)),
	})
	p.event(EventRolledBack, 0, false)
	p.log.Info("rollback finished", "state", p.ro.GetState(), "proven", proven, "failed", len(failed))
}
