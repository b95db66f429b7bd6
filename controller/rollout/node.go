package rollout

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cairn-ops/cairn/controller/cms"
	"github.com/cairn-ops/cairn/internal/audit"
	"github.com/cairn-ops/cairn/internal/compare"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// How many items an error message lists before "and N more".
const listInError = 3

// currentCommand is the command a node in flight waits for.
func currentCommand(n *controllerv1.RolloutNode) string {
	switch n.GetState() {
	case NodePreAudit:
		return n.GetPreAuditCommand()
	case NodeDeploying, NodeWaitingConfirmation:
		return n.GetDeployCommand()
	case NodePostAudit:
		return n.GetPostAuditCommand()
	case NodeRollingBack:
		if n.GetRollbackAuditCommand() != "" {
			return n.GetRollbackAuditCommand()
		}
		return n.GetRollbackCommand()
	}
	return ""
}

// progress moves a node in flight on when the command it waits for has
// finished, and watches its connection while it has not. An error is
// one to retry (the store could not be read); everything the node did is
// recorded on the node.
func (p *pass) progress(n *controllerv1.RolloutNode) error {
	id := currentCommand(n)
	if id == "" {
		p.fail(n, fmt.Sprintf("internal: no command recorded for state %s", n.GetState()))
		return nil
	}
	c, err := p.e.command(p.ctx, id)
	if isNotFound(err) {
		p.fail(n, fmt.Sprintf("command %s is missing from the store", id))
		return nil
	}
	if err != nil {
		return err
	}
	if !finished(c) {
		p.watchReachable(n, c)
		return nil
	}
	if n.GetUnreachableSince() != "" {
		n.UnreachableSince = ""
		p.touch(n)
	}
	switch n.GetState() {
	case NodePreAudit:
		return p.preAuditDone(n, c)
	case NodeDeploying, NodeWaitingConfirmation:
		return p.deployDone(n, c)
	case NodePostAudit:
		return p.postAuditDone(n, c)
	case NodeRollingBack:
		return p.rollbackStepDone(n, c)
	}
	return nil
}

// fail ends a node's deployment (or its rollback) with an error.
func (p *pass) fail(n *controllerv1.RolloutNode, why string) {
	if n.GetState() == NodeRollingBack {
		p.finishRollback(n, false, why)
		return
	}
	p.finish(n, NodeFailed, joinErr(n.GetError(), why), OutcomeFailed)
}

// watchReachable notes when a node with an outstanding command went
// away, and gives up on it when it stays away longer than the policy's
// wait. Time before the engine started does not count: agents need a
// moment to reconnect to a restarted controller.
func (p *pass) watchReachable(n *controllerv1.RolloutNode, c *controllerv1.CommandRecord) {
	if p.e.cfg.Fleet == nil || p.e.cfg.Fleet.IsConnected(n.GetNodeId()) {
		if n.GetUnreachableSince() != "" {
			n.UnreachableSince = ""
			p.touch(n)
		}
		return
	}
	if n.GetUnreachableSince() == "" {
		n.UnreachableSince = stamp(p.now)
		p.touch(n)
		return
	}
	wait := p.e.cfg.UnreachableAfter
	if p.params.Unreachable == UnreachableWait {
		wait = p.params.UnreachableWait
	}
	since := parseStamp(n.GetUnreachableSince())
	if s := p.e.startedAt(); since.Before(s) {
		since = s
	}
	if p.now.Sub(since) < wait {
		return
	}
	what := fmt.Sprintf("disconnected for more than %s during %s", wait, strings.ReplaceAll(n.GetState(), "_", " "))
	p.cancel(c, "node unreachable")
	if n.GetState() == NodeRollingBack {
		p.finishRollback(n, false, "unreachable: "+what)
		return
	}
	p.unreachable(n, what)
}

// unreachable ends a node's deployment as unreachable; under the skip
// policy it does not count against the failure budget.
func (p *pass) unreachable(n *controllerv1.RolloutNode, why string) {
	if p.params.Unreachable == UnreachableSkip {
		p.finish(n, NodeUnreachable, joinErr(skippedByPolicy, why), OutcomeSkipped)
		return
	}
	p.finish(n, NodeUnreachable, "unreachable: "+why, OutcomeUnreachable)
}

// finish ends a node's deployment in state with an error (empty when it
// passed).
func (p *pass) finish(n *controllerv1.RolloutNode, state, why, outcome string) {
	p.phase(n, state)
	n.Error = why
	n.FinishedAt = stamp(p.now)
	n.WaitingStep, n.WaitingInstructions = "", ""
	var d time.Duration
	if started := parseStamp(n.GetStartedAt()); !started.IsZero() {
		d = p.now.Sub(started)
	}
	n.DurationSeconds = d.Seconds()
	breached := false
	if max := p.rel.manifest.SLA.MaxNodeDuration; max > 0 && d > max && (state == NodePassed || state == NodeFailed) {
		n.SlaBreached = true
		breached = true
	}
	p.log.Info("node finished", "node_id", n.GetNodeId(), "state", state, "err", why)
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
	if n.GetState() != NodeWaitingConfirmation {
		p.phase(n, NodeWaitingConfirmation)
	}
	if n.GetWaitingStep() != r.step || n.GetWaitingInstructions() != r.instructions {
		n.WaitingStep, n.WaitingInstructions = r.step, r.instructions
		p.touch(n)
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
func (p *pass) preAuditDone(n *controllerv1.RolloutNode, c *controllerv1.CommandRecord) error {
	if c.GetState() == controllerv1.CommandRecord_STATE_FAILED {
		p.fail(n, "pre-audit failed: "+orUnknown(c.GetError()))
		return nil
	}
	p.auditTook(c)
	rec, doc, err := p.e.loadAudit(p.ctx, c.GetAuditId())
	if err != nil {
		if p.ctx.Err() != nil {
			return err
		}
		p.fail(n, fmt.Sprintf("pre-audit: %v", err))
		return nil
	}
	n.PreAuditId = rec.GetId()
	if failed := audit.Failed(doc); len(failed) > 0 {
		// The post-audit could not be compared with it: a deployment
		// would change the node without proof.
		p.fail(n, fmt.Sprintf("pre-audit incomplete: %s failed (%s), so the deployment could not be proven; nothing was deployed",
			plural(len(failed), "collector", "collectors"), strings.Join(failed, ", ")))
		return nil
	}
	if err := p.driftCheck(n, doc); err != nil {
		p.log.Warn("drift pre-check failed", "node_id", n.GetNodeId(), "err", err)
		n.DriftSummary = "drift pre-check failed: " + err.Error()
	}
	n.KnownErrors = matchKnownErrors(p.rel.manifest.KnownErrors, doc)
	if n.GetDriftChanges() > 0 && p.params.OnDrift == OnDriftBlock {
		// Unauthorized change on the node: deploying over it would make
		// the post-audit prove nothing about what the release did.
		p.fail(n, fmt.Sprintf("drift from the CMS baseline (%s); nothing was deployed: accept the node's state with 'cairnctl cms baseline accept %s --reason ...' or roll out with --on-drift ignore",
			n.GetDriftSummary(), nodeName(n)))
		return nil
	}
	if n.GetDeployCommand() == "" {
		n.DeployCommand = p.newDeploy(n.GetNodeId(), actionApply).GetId()
	}
	p.phase(n, NodeDeploying)
	return nil
}

// driftCheck compares the pre-audit with the node's CMS baseline and
// records the drift; preAuditDone decides what it does (on_drift).
func (p *pass) driftCheck(n *controllerv1.RolloutNode, pre *inventoryv1.Audit) error {
	n.HasBaseline, n.DriftChanges, n.DriftSummary = false, 0, ""
	b, err := p.e.latestBaseline(p.ctx, n.GetNodeId())
	if err != nil || b == nil {
		return err
	}
	_, base, err := p.e.loadAudit(p.ctx, b.GetAuditId())
	if err != nil {
		return fmt.Errorf("baseline %d: %w", b.GetVersion(), err)
	}
	rep := cms.Diff(base, pre)
	n.HasBaseline = true
	n.DriftChanges = uint32(cms.Changes(rep))
	n.DriftSummary = rep.Summary
	return nil
}

// deployDone: the deployment's report is stored and the post-audit sent,
// whether the deployment succeeded or not (the post-audit shows what a
// failed deployment left).
func (p *pass) deployDone(n *controllerv1.RolloutNode, c *controllerv1.CommandRecord) error {
	n.DeployReportJson = c.GetResultJson()
	rep, err := decodeApplyReport(c.GetResultJson())
	if err != nil {
		p.log.Warn("unreadable deployment report", "node_id", n.GetNodeId(), "err", err)
	}
	n.Changed = rep.changed()
	if c.GetState() == controllerv1.CommandRecord_STATE_FAILED {
		why := rep.failure()
		if why == "" {
			why = "the deployment failed: " + orUnknown(c.GetError())
		}
		n.Error = why
	}
	n.WaitingStep, n.WaitingInstructions = "", ""
	if n.GetPostAuditCommand() == "" {
		n.PostAuditCommand = p.newAudit(n.GetNodeId()).GetId()
	}
	p.phase(n, NodePostAudit)
	return nil
}

// postAuditDone: the pre- and post-audit are compared with the release's
// expected changes. The node passes when its deployment succeeded and
// nothing is missing, unexpected or not comparable; a passing node's CMS
// baseline advances to the post-audit and the DML learns where the
// release's components are installed.
func (p *pass) postAuditDone(n *controllerv1.RolloutNode, c *controllerv1.CommandRecord) error {
	deploy, err := p.e.command(p.ctx, n.GetDeployCommand())
	if err != nil && !isNotFound(err) {
		return err
	}
	deployOK := err == nil && deploy.GetState() == controllerv1.CommandRecord_STATE_SUCCEEDED
	if c.GetState() == controllerv1.CommandRecord_STATE_FAILED {
		p.fail(n, "post-audit failed: "+orUnknown(c.GetError()))
		return nil
	}
	p.auditTook(c)
	postRec, post, err := p.e.loadAudit(p.ctx, c.GetAuditId())
	if err != nil {
		if p.ctx.Err() != nil {
			return err
		}
		p.fail(n, fmt.Sprintf("post-audit: %v", err))
		return nil
	}
	_, pre, err := p.e.loadAudit(p.ctx, n.GetPreAuditId())
	if err != nil {
		if p.ctx.Err() != nil {
			return err
		}
		p.fail(n, fmt.Sprintf("pre-audit: %v", err))
		return nil
	}
	res := compare.Classify(pre, post, p.rel.expect, p.rel.components)
	js, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encode the comparison of node %s: %w", n.GetNodeId(), err)
	}
	n.PostAuditId = postRec.GetId()
	n.ComparisonJson = js
	if !deployOK {
		why := n.GetError()
		if why == "" {
			why = "the deployment failed"
		}
		// What the failed deployment left; missing changes are implied.
		p.finish(n, NodeFailed, joinErr(why, unexpected(res), notComparable(res)), OutcomeFailed)
		return nil
	}
	if !res.OK() {
		p.finish(n, NodeFailed, joinErr(unexpected(res), missing(res), notComparable(res)), OutcomeFailed)
		return nil
	}
	if err := p.recordInstalls(n); err != nil {
		return err
	}
	p.advanceBaseline(n, postRec, fmt.Sprintf("rollout %s of %s", p.ro.GetId(), p.rel.ref()))
	p.finish(n, NodePassed, "", OutcomePassed)
	return nil
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

// recordInstalls tells the DML that the release's components are on the
// node. It runs before the node's pass is committed: a record for the
// same node and release is replaced, so doing it again after a crash is
// harmless, and it is never lost.
func (p *pass) recordInstalls(n *controllerv1.RolloutNode) error {
	if p.e.cfg.DML == nil {
		return nil
	}
	for _, c := range p.rel.rec.GetComponents() {
		err := p.e.cfg.DML.RecordInstall(p.ctx, actorSystem, c.GetDigest(), &controllerv1.InstallRecord{
			NodeId:      n.GetNodeId(),
			Release:     p.rel.ref(),
			RolloutId:   p.ro.GetId(),
			InstalledAt: stamp(p.now),
		})
		if err != nil {
			return fmt.Errorf("record install of %s on node %s: %w", c.GetName(), n.GetNodeId(), err)
		}
	}
	return nil
}

// advanceBaseline makes an audit the node's next CMS baseline, with the
// rollout's provenance, at commit.
func (p *pass) advanceBaseline(n *controllerv1.RolloutNode, a *controllerv1.AuditRecord, reason string) {
	p.baselines = append(p.baselines, &controllerv1.BaselineRecord{
		NodeId:      n.GetNodeId(),
		AuditId:     a.GetId(),
		AcceptedBy:  actorSystem,
		AcceptedAt:  stamp(p.now),
		Reason:      reason,
		ContentHash: a.GetContentHash(),
		Release:     p.rel.ref(),
		RolloutId:   p.ro.GetId(),
		Approvers:   p.ro.GetApprovers(),
	})
}

func orUnknown(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}

// nodeName is how an operator names the node: its hostname, else its ID.
func nodeName(n *controllerv1.RolloutNode) string {
	if h := n.GetHostname(); h != "" {
		return h
	}
	return n.GetNodeId()
}
