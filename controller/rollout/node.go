package rollout

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cairn-ops/cairn/controller/cms"
	"github.com/cairn-ops/cairn/controller/rollout/state"
	"github.com/cairn-ops/cairn/internal/audit"
	"github.com/cairn-ops/cairn/internal/compare"
	"github.com/cairn-ops/cairn/internal/diff"
	"github.com/cairn-ops/cairn/internal/stamp"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// How many items an error message lists before "and N more".
const listInError = 3

// progress moves a node in flight on when the command it waits for has
// finished, and watches its connection while it has not. Everything the
// node did is recorded on the node.
func (p *pass) progress(n *controllerv1.RolloutNode, in *nodeInput) {
	if in == nil || in.cmd == nil {
		why := "internal: nothing loaded for the node"
		if in != nil {
			why = in.missing
		}
		p.fail(n, why)
		return
	}
	c := in.cmd
	if !finished(c) {
		p.watchReachable(n, c)
		return
	}
	if n.GetUnreachableSince() != "" {
		n.UnreachableSince = ""
		p.touch(n)
	}
	switch n.GetState() {
	case NodePreAudit:
		p.preAuditDone(n, in)
	case NodeDeploying, NodeWaitingConfirmation:
		p.deployDone(n, c)
	case NodePostAudit:
		p.postAuditDone(n, in)
	case NodeRollingBack:
		p.rollbackStepDone(n, in)
	case NodeResolving:
		p.resolveDone(n, in)
	}
}

// fail ends a node's deployment (or its rollback, or its resolution)
// with an error.
func (p *pass) fail(n *controllerv1.RolloutNode, why string) {
	switch n.GetState() {
	case NodeRollingBack:
		p.finishRollback(n, false, why)
	case NodeResolving:
		p.resolveFailed(n, why)
	default:
		p.finish(n, NodeFailed, joinErr(n.GetError(), why), OutcomeFailed)
	}
}

// lostAfter is how long a node in flight may stay disconnected before
// the unreachable policy applies to it: wait:D's D, else lost_after.
func (p *pass) lostAfter() time.Duration {
	if p.params.Unreachable == UnreachableWait {
		return p.params.UnreachableWait
	}
	if p.params.LostAfter > 0 {
		return p.params.LostAfter
	}
	return p.e.cfg.LostAfter
}

// watchReachable notes when a node with an outstanding command went
// away, and applies the unreachable policy when it stays away longer
// than lostAfter, whatever the phase: the node becomes unreachable (fail
// and wait policies) or skipped (skip), and a rollback or resolution in
// flight fails. Time before the engine started does not count: agents
// need a moment to reconnect to a restarted controller.
func (p *pass) watchReachable(n *controllerv1.RolloutNode, c *controllerv1.CommandRecord) {
	if p.connected[n.GetNodeId()] {
		if n.GetUnreachableSince() != "" {
			n.UnreachableSince = ""
			p.touch(n)
		}
		return
	}
	if n.GetUnreachableSince() == "" {
		n.UnreachableSince = stamp.Format(p.now)
		p.touch(n)
		return
	}
	wait := p.lostAfter()
	since := parseStamp(n.GetUnreachableSince())
	if since.Before(p.started) {
		since = p.started
	}
	if p.now.Sub(since) < wait {
		return
	}
	what := fmt.Sprintf("disconnected for more than %s during %s", wait, strings.ReplaceAll(state.Name(n.GetState()), "_", " "))
	p.cancel(c, "node unreachable")
	switch n.GetState() {
	case NodeRollingBack:
		p.finishRollback(n, false, "unreachable: "+what)
	case NodeResolving:
		p.resolveFailed(n, "unreachable: "+what)
	default:
		p.unreachable(n, what)
	}
}

// unreachable ends a node's deployment as unreachable; under the skip
// policy it is skipped, which does not count against the failure budget.
func (p *pass) unreachable(n *controllerv1.RolloutNode, why string) {
	if p.params.Unreachable == UnreachableSkip {
		p.finish(n, NodeSkipped, joinErr("unreachable, skipped by policy", why), OutcomeSkipped)
		return
	}
	p.finish(n, NodeUnreachable, "unreachable: "+why, OutcomeUnreachable)
}

// finish ends a node's deployment in st with an error (empty when it
// passed).
func (p *pass) finish(n *controllerv1.RolloutNode, st state.Node, why, outcome string) {
	p.phase(n, st)
	n.Error = why
	n.FinishedAt = stamp.Format(p.now)
	n.WaitingStep, n.WaitingInstructions = "", ""
	var d time.Duration
	if started := parseStamp(n.GetStartedAt()); !started.IsZero() {
		d = p.now.Sub(started)
	}
	n.DurationSeconds = d.Seconds()
	breached := false
	if max := p.rel.manifest.SLA.MaxNodeDuration; max > 0 && d > max && (st == NodePassed || st == NodeFailed) {
		n.SlaBreached = true
		breached = true
	}
	p.log.Info("node finished", "node_id", n.GetNodeId(), "state", state.Name(st), "err", why)
	m := p.e.metrics()
	p.then(func() {
		m.NodeFinished(outcome, d)
		if breached {
			m.SLABreach(BreachNodeDuration)
		}
	})
}

// confirmationRequested handles an agent's request for a manual step's
// confirmation: one the node already holds is forwarded at once,
// otherwise the node waits for an operator.
func (p *pass) confirmationRequested(r confirmRequest) {
	n := p.byID[r.nodeID]
	if n == nil {
		return
	}
	if rollbackWaits(n, r.commandID) {
		// A manual rollback step: the node stays rolling back, and only a
		// confirmation given since its rollback began counts (not one of
		// a deployment step of the same name).
		if c := confirmationFor(n, r.step); c != nil && c.GetAt() >= n.GetPhaseStartedAt() {
			n.WaitingStep, n.WaitingInstructions = "", ""
			p.touch(n)
			p.forward(n, r.commandID, c)
			return
		}
		if n.GetWaitingStep() != r.step || n.GetWaitingInstructions() != r.instructions {
			n.WaitingStep, n.WaitingInstructions = r.step, r.instructions
			p.touch(n)
		}
		return
	}
	if n.GetDeployCommand() != r.commandID {
		return
	}
	if n.GetState() != NodeDeploying && n.GetState() != NodeWaitingConfirmation {
		return
	}
	if c := confirmationFor(n, r.step); c != nil {
		if n.GetState() == NodeWaitingConfirmation {
			p.phase(n, NodeDeploying)
			n.WaitingStep, n.WaitingInstructions = "", ""
		}
		p.forward(n, n.GetDeployCommand(), c)
		return
	}
	p.phase(n, NodeWaitingConfirmation)
	if n.GetWaitingStep() != r.step || n.GetWaitingInstructions() != r.instructions {
		n.WaitingStep, n.WaitingInstructions = r.step, r.instructions
		p.touch(n)
	}
}

// interrupted handles an agent's report that a crash cut off a step of
// one of its deploy commands. A command still outstanding is left to
// run: the agent carries on when it is delivered again (an idempotent
// step re-runs) or reports the deployment interrupted in its result. A
// node whose deployment the rollout already gave up on (unreachable,
// skipped, failed because its command was cancelled) becomes interrupted,
// with the step, for an operator to retry, resolve or roll back; a node
// whose rollback was cut off has its rollback fail.
func (p *pass) interrupted(in interruption) {
	n := p.byID[in.nodeID]
	if n == nil {
		return
	}
	switch {
	case n.GetDeployCommand() == in.commandID:
		switch n.GetState() {
		case NodeUnreachable, NodeSkipped, NodeFailed:
		default:
			return
		}
		if c := p.in[n.GetNodeId()]; c != nil && unfinished(c.cmd) {
			return
		}
		n.InterruptedStep = in.step
		p.phase(n, NodeInterrupted)
		n.Error = joinErr(n.GetError(), fmt.Sprintf("the agent restarted and found step %s cut off", in.step))
		p.record(actorSystem, "rollout.node_interrupted", map[string]string{"node": n.GetNodeId(), "step": in.step, "command": in.commandID})
	case n.GetRollbackCommand() == in.commandID && n.GetState() == NodeRollingBack:
		// Its rollback command's result says how it ended; nothing to do
		// until it comes.
	}
}

// rollbackWaits reports whether commandID is the node's rollback command
// and the node waits for it (a manual rollback step can ask).
func rollbackWaits(n *controllerv1.RolloutNode, commandID string) bool {
	return n.GetState() == NodeRollingBack && commandID != "" && n.GetRollbackCommand() == commandID && n.GetRollbackAuditCommand() == ""
}

// confirmationFor returns the node's latest confirmation of step.
func confirmationFor(n *controllerv1.RolloutNode, step string) *controllerv1.StepConfirmation {
	cs := n.GetConfirmations()
	for i := len(cs) - 1; i >= 0; i-- {
		if cs[i].GetStep() == step {
			return cs[i]
		}
	}
	return nil
}

// forward sends a confirmation of a step of the node's command commandID
// to its agent after the commit. A node that is not connected asks again
// when it reconnects.
func (p *pass) forward(n *controllerv1.RolloutNode, commandID string, c *controllerv1.StepConfirmation) {
	if p.e.cfg.Fleet == nil {
		return
	}
	nodeID := n.GetNodeId()
	msg := &agentv1.Confirmation{CommandId: commandID, Step: c.GetStep(), By: c.GetBy(), Note: c.GetNote(), At: c.GetAt()}
	p.then(func() {
		if !p.e.cfg.Fleet.Confirm(nodeID, msg) {
			p.log.Info("confirmation not delivered: the node is not connected; it asks again when it reconnects", "node_id", nodeID, "step", msg.GetStep())
		}
	})
}

// auditTook reports a finished audit command's duration.
func (p *pass) auditTook(c *controllerv1.CommandRecord) {
	d := commandDuration(c)
	m := p.e.metrics()
	p.then(func() { m.AuditFinished(d) })
}

// preAuditDone: with the pre-audit in, the drift from the node's CMS
// baseline and the known errors that match are recorded, and the
// deployment is sent.
func (p *pass) preAuditDone(n *controllerv1.RolloutNode, in *nodeInput) {
	c := in.cmd
	if c.GetState() == controllerv1.CommandRecord_STATE_FAILED {
		p.fail(n, "pre-audit failed: "+orUnknown(c.GetError()))
		return
	}
	p.auditTook(c)
	if in.audit.err != nil {
		p.fail(n, fmt.Sprintf("pre-audit: %v", in.audit.err))
		return
	}
	doc := in.audit.doc
	n.PreAuditId = in.audit.rec.GetId()
	if failed := audit.Failed(doc); len(failed) > 0 {
		// The post-audit could not be compared with it: a deployment
		// would change the node without proof.
		p.fail(n, fmt.Sprintf("pre-audit incomplete: %s failed (%s), so the deployment could not be proven; nothing was deployed",
			plural(len(failed), "collector", "collectors"), strings.Join(failed, ", ")))
		return
	}
	p.driftCheck(n, in)
	n.KnownErrors = matchKnownErrors(p.rel.manifest.KnownErrors, doc)
	if n.GetDriftChanges() > 0 && p.params.OnDrift == OnDriftBlock {
		// Unauthorized change on the node: deploying over it would make
		// the post-audit prove nothing about what the release did.
		p.fail(n, fmt.Sprintf("drift from the CMS baseline (%s); nothing was deployed: accept the node's state with 'cairnctl cms baseline accept %s --reason ...' or roll out with --on-drift ignore",
			n.GetDriftSummary(), n.Name()))
		return
	}
	if n.GetDeployCommand() == "" {
		n.DeployCommand = p.newDeploy(n.GetNodeId(), agentv1.ActionApply).GetId()
	}
	p.phase(n, NodeDeploying)
}

// driftCheck compares the pre-audit with the node's CMS baseline and
// records the drift; preAuditDone decides what it does (on_drift).
func (p *pass) driftCheck(n *controllerv1.RolloutNode, in *nodeInput) {
	n.HasBaseline, n.DriftChanges, n.DriftSummary, n.DriftPathsNotCompared = false, 0, "", 0
	if in.baseline == nil {
		return
	}
	if in.baselineErr != nil {
		p.log.Warn("drift pre-check failed", "node_id", n.GetNodeId(), "err", in.baselineErr)
		n.DriftSummary = fmt.Sprintf("drift pre-check failed: baseline %d: %v", in.baseline.GetVersion(), in.baselineErr)
		return
	}
	rep := diff.Compare(in.baselineDoc, in.audit.doc)
	n.HasBaseline = true
	n.DriftChanges = uint32(cms.Changes(rep))
	n.DriftSummary = rep.Summary
	n.DriftPathsNotCompared = uint32(rep.Counts.PathsNotCompared)
}

// deployDone: the deployment's report is stored and the post-audit sent,
// whether the deployment succeeded or not (the post-audit shows what a
// failed or interrupted deployment left).
func (p *pass) deployDone(n *controllerv1.RolloutNode, c *controllerv1.CommandRecord) {
	rep := c.GetApplyReport()
	n.DeployReport = rep
	n.Changed = rep.Changed()
	if c.GetState() == controllerv1.CommandRecord_STATE_FAILED {
		why := failure(rep)
		if why == "" {
			why = "the deployment failed: " + orUnknown(c.GetError())
		}
		n.Error = why
		if step := interruptedStep(rep); step != "" {
			n.InterruptedStep = step
		}
	}
	n.WaitingStep, n.WaitingInstructions = "", ""
	if n.GetPostAuditCommand() == "" {
		n.PostAuditCommand = p.newPostAudit(n).GetId()
	}
	p.phase(n, NodePostAudit)
}

// postAuditDone: the pre- and post-audit are compared with the release's
// expected changes. The node passes when its deployment succeeded and
// nothing is missing, unexpected or not comparable; a passing node's CMS
// baseline advances to the post-audit and the DML learns where the
// release's components are installed (both in the pass's commit). A
// deployment a crash cut off ends interrupted.
func (p *pass) postAuditDone(n *controllerv1.RolloutNode, in *nodeInput) {
	c := in.cmd
	deployOK := in.deploy != nil && in.deploy.GetState() == controllerv1.CommandRecord_STATE_SUCCEEDED
	if c.GetState() == controllerv1.CommandRecord_STATE_FAILED {
		p.fail(n, "post-audit failed: "+orUnknown(c.GetError()))
		return
	}
	p.auditTook(c)
	if in.audit.err != nil {
		p.fail(n, fmt.Sprintf("post-audit: %v", in.audit.err))
		return
	}
	if in.pre.err != nil {
		p.fail(n, fmt.Sprintf("pre-audit: %v", in.pre.err))
		return
	}
	res := compare.Classify(in.pre.doc, in.audit.doc, p.rel.expect, p.rel.components)
	js, err := json.Marshal(res)
	if err != nil {
		p.faulty(fmt.Errorf("encode the comparison of node %s: %w", n.GetNodeId(), err))
		return
	}
	n.PostAuditId = in.audit.rec.GetId()
	n.ComparisonJson = js
	if !deployOK {
		why := n.GetError()
		if why == "" {
			why = "the deployment failed"
		}
		// What the failed deployment left; missing changes are implied.
		why = joinErr(why, unexpected(res), notComparable(res))
		if n.GetInterruptedStep() != "" {
			p.finish(n, NodeInterrupted, why, OutcomeInterrupted)
			return
		}
		p.finish(n, NodeFailed, why, OutcomeFailed)
		return
	}
	if !res.OK() {
		p.finish(n, NodeFailed, joinErr(unexpected(res), missing(res), notComparable(res)), OutcomeFailed)
		return
	}
	if err := p.advanceBaseline(n, in, fmt.Sprintf("rollout %s of %s", p.ro.GetId(), p.rel.ref()), p.rel.untrack); err != nil {
		p.finish(n, NodeFailed, "the CMS baseline cannot advance to the post-audit: "+err.Error(), OutcomeFailed)
		return
	}
	p.recordInstalls(n)
	p.finish(n, NodePassed, "", OutcomePassed)
}

// resolveDone: the audit taken after an operator's resolution is in; its
// diff from the pre-audit is the record of what the node is now.
func (p *pass) resolveDone(n *controllerv1.RolloutNode, in *nodeInput) {
	c := in.cmd
	if c.GetState() == controllerv1.CommandRecord_STATE_FAILED {
		p.resolveFailed(n, "the audit after the resolution failed: "+orUnknown(c.GetError()))
		return
	}
	p.auditTook(c)
	if in.audit.err != nil {
		p.resolveFailed(n, fmt.Sprintf("the audit after the resolution: %v", in.audit.err))
		return
	}
	n.ResolveAuditId = in.audit.rec.GetId()
	if in.pre != nil && in.pre.err == nil {
		var js bytes.Buffer
		if err := diff.WriteJSON(&js, diff.Compare(in.pre.doc, in.audit.doc)); err != nil {
			p.faulty(fmt.Errorf("encode the resolution diff of node %s: %w", n.GetNodeId(), err))
			return
		}
		n.ResolveDiffJson = js.Bytes()
	}
	p.phase(n, NodeResolved)
	n.FinishedAt = stamp.Format(p.now)
	p.log.Info("node resolved", "node_id", n.GetNodeId(), "by", n.GetResolvedBy())
	m := p.e.metrics()
	p.then(func() { m.NodeFinished(OutcomeResolved, 0) })
	p.afterResolution()
}

// resolveFailed returns a node whose resolution's audit failed to where
// it was, with why: the operator resolves again once the node answers.
func (p *pass) resolveFailed(n *controllerv1.RolloutNode, why string) {
	back := n.GetResolvedFrom()
	if back == 0 {
		back = NodeFailed
	}
	p.phase(n, back)
	n.Error = joinErr(n.GetError(), why+"; resolve again when the node answers")
	n.ResolvedBy, n.ResolvedNote, n.ResolvedAt = "", "", ""
}

// unexpected, missing and notComparable say what is wrong with a
// comparison, "" when nothing is: "1 unexpected change: package curl
// added".
func unexpected(r *compare.Result) string {
	return itemList(r.Unexpected, "unexpected change", "unexpected changes")
}

func missing(r *compare.Result) string {
	return itemList(r.Missing, "expected change missing", "expected changes missing")
}

func notComparable(r *compare.Result) string {
	if len(r.NotComparable) == 0 {
		return ""
	}
	return fmt.Sprintf("%s: %s", plural(len(r.NotComparable), "section not comparable", "sections not comparable"), nameList(r.NotComparable, listInError))
}

func itemList(items []compare.Item, one, many string) string {
	if len(items) == 0 {
		return ""
	}
	whats := make([]string, len(items))
	for i, it := range items {
		whats[i] = it.What
	}
	return fmt.Sprintf("%s: %s", plural(len(items), one, many), nameList(whats, listInError))
}

// recordInstalls tells the DML, at commit, that the release's components
// are on the node.
func (p *pass) recordInstalls(n *controllerv1.RolloutNode) {
	if p.e.cfg.DML == nil {
		return
	}
	for _, c := range p.rel.rec.GetComponents() {
		p.installs = append(p.installs, install{digest: c.GetDigest(), rec: &controllerv1.InstallRecord{
			NodeId:      n.GetNodeId(),
			Release:     p.rel.ref(),
			RolloutId:   p.ro.GetId(),
			InstalledAt: stamp.Format(p.now),
		}})
	}
}

// advanceBaseline makes the audit in.audit the node's next CMS baseline,
// with the rollout's provenance, at commit. The baseline tracks what the
// node's baseline tracked (in.baseline) and what the audit tracked, less
// untrack (cms.NextTracked); a tracked set that would be refused is
// returned, and nothing is advanced.
func (p *pass) advanceBaseline(n *controllerv1.RolloutNode, in *nodeInput, reason string, untrack []string) error {
	a := in.audit.rec
	patterns := in.audit.doc.GetFiles().GetPatterns()
	if _, err := cms.NextTracked(in.baseline.GetTracked(), patterns, untrack); err != nil {
		return err
	}
	p.baselines = append(p.baselines, advance{patterns: patterns, rec: &controllerv1.BaselineRecord{
		NodeId:      n.GetNodeId(),
		AuditId:     a.GetId(),
		AcceptedBy:  actorSystem,
		AcceptedAt:  stamp.Format(p.now),
		Reason:      reason,
		ContentHash: a.GetContentHash(),
		Release:     p.rel.ref(),
		RolloutId:   p.ro.GetId(),
		Approvers:   p.ro.GetApprovers(),
		Untracked:   untrack,
	}})
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}
