package rollout

import (
	"fmt"
	"strconv"

	"github.com/cairn-ops/cairn/controller/rollout/state"
	"github.com/cairn-ops/cairn/internal/stamp"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// waveOver reports whether a wave is closed.
func waveOver(w *controllerv1.RolloutWave) bool {
	switch w.GetState() {
	case WaveDone, WaveFailed, WaveCancelled:
		return true
	}
	return false
}

// currentWave is the first wave that is not over, nil when all are.
func (p *pass) currentWave() *controllerv1.RolloutWave {
	for _, w := range p.ro.GetWaves() {
		if !waveOver(w) {
			return w
		}
	}
	return nil
}

// waveOf returns the wave a node belongs to.
func (p *pass) waveOf(n *controllerv1.RolloutNode) *controllerv1.RolloutWave {
	for _, w := range p.ro.GetWaves() {
		if w.GetIndex() == n.GetWave() {
			return w
		}
	}
	return nil
}

// tally counts a wave's failures (against its budget) and whether every
// node of it is done with its deployment.
func (p *pass) tally(w *controllerv1.RolloutWave) (failures int, failed []string, final bool) {
	final = true
	for _, id := range w.GetNodeIds() {
		n := p.byID[id]
		if n == nil {
			continue
		}
		if state.NodeCountsFailed(n.GetState()) {
			failures++
			failed = append(failed, n.Name())
		}
		if !state.NodeDeployOver(n.GetState()) {
			final = false
		}
	}
	return failures, failed, final
}

// drive moves a running rollout on: it halts a wave over its failure
// budget (before any node starts, so no node starts after the failure
// that exceeded it), closes finished waves with their bake time and
// gate, starts the next wave, and starts the current wave's nodes.
func (p *pass) drive() {
	for p.ro.GetState() == StateRunning && p.fault == nil {
		w := p.currentWave()
		if w == nil {
			p.complete()
			return
		}
		switch w.GetState() {
		case WavePending:
			if p.windowClosed() {
				return
			}
			p.setWave(w, WaveRunning)
			w.StartedAt = stamp.Format(p.now)
			p.log.Info("wave started", "wave", w.GetIndex(), "nodes", len(w.GetNodeIds()))
		case WaveBaking:
			until := parseStamp(w.GetBakeUntil())
			if p.now.Before(until) {
				p.wait("bake until " + stamp.HumanTime(until, p.e.cfg.Location))
				return
			}
			p.closeWave(w, WaveDone)
			continue
		}
		if p.overBudget(w) {
			return
		}
		_, _, final := p.tally(w)
		if final {
			p.waveFinished(w)
			continue
		}
		p.waitingNodes()
		p.startNodes(w)
		return
	}
}

// checkBudget halts a paused rollout whose current wave went over its
// failure budget while its nodes in flight finished.
func (p *pass) checkBudget() {
	if w := p.currentWave(); w != nil && w.GetState() == WaveRunning {
		p.overBudget(w)
	}
}

// overBudget fails the wave and halts the rollout (and rolls it back
// under on_failure=rollback) when the wave's failures exceed its budget.
// Under on_failure=continue the wave goes on; it is marked failed when
// it finishes.
func (p *pass) overBudget(w *controllerv1.RolloutWave) bool {
	failures, failed, _ := p.tally(w)
	if failures <= int(w.GetMaxFailures()) || p.params.OnFailure == OnFailureContinue {
		return false
	}
	p.setWave(w, WaveFailed)
	w.Failures = uint32(failures)
	w.FinishedAt = stamp.Format(p.now)
	reason := fmt.Sprintf("wave %d failed: %d of %d nodes failed, %d allowed: %s",
		w.GetIndex(), failures, len(w.GetNodeIds()), w.GetMaxFailures(), nameList(failed, 10))
	p.halt(reason)
	if p.params.OnFailure == OnFailureRollback {
		p.startRollback(actorSystem, "policy", "on_failure=rollback: "+reason)
	}
	return true
}

// halt stops a rollout: no node starts any more; nodes in flight finish.
func (p *pass) halt(reason string) {
	p.setState(StateHalted)
	p.ro.Reason = reason
	p.ro.WaitingFor = ""
	p.ro.FinishedAt = stamp.Format(p.now)
	p.roDirty = true
	p.record(actorSystem, "rollout.halt", map[string]string{"reason": reason})
	p.event(EventHalted, 0, false)
	p.log.Warn("rollout halted", "reason", reason)
}

// waveFinished closes a wave whose nodes are all done: it reports the
// wave, then bakes (unless it is the last wave) or closes it.
func (p *pass) waveFinished(w *controllerv1.RolloutWave) {
	failures, failed, _ := p.tally(w)
	overBudget := failures > int(w.GetMaxFailures())
	w.FinishedAt = stamp.Format(p.now)
	w.Failures = uint32(failures)
	p.roDirty = true
	details := map[string]string{"wave": strconv.Itoa(int(w.GetIndex())), "failures": strconv.Itoa(failures)}
	if overBudget {
		details["failed"] = nameList(failed, 10)
	}
	p.record(actorSystem, "rollout.wave_done", details)
	p.event(EventWaveDone, w.GetIndex(), overBudget)
	p.log.Info("wave done", "wave", w.GetIndex(), "failures", failures)
	if overBudget {
		p.closeWave(w, WaveFailed)
		return
	}
	if p.params.Bake > 0 && int(w.GetIndex()) < len(p.ro.GetWaves()) {
		p.setWave(w, WaveBaking)
		w.BakeUntil = stamp.Format(p.now.Add(p.params.Bake))
		return
	}
	p.closeWave(w, WaveDone)
}

// closeWave ends a wave; a gate after it pauses the rollout until an
// operator resumes it.
func (p *pass) closeWave(w *controllerv1.RolloutWave, to state.Wave) {
	p.setWave(w, to)
	if !w.GetGateAfter() || p.ro.GetState() != StateRunning {
		return
	}
	reason := fmt.Sprintf("gate after wave %d: run cairnctl rollout resume %s", w.GetIndex(), p.ro.GetId())
	p.setState(StatePaused)
	p.ro.Reason = reason
	p.ro.WaitingFor = ""
	p.record(actorSystem, "rollout.gate", map[string]string{"wave": strconv.Itoa(int(w.GetIndex())), "reason": reason})
	p.log.Info("rollout paused at a gate", "wave", w.GetIndex())
}

// closeWaves gives every wave of a rollout that is over its final state:
// a wave that never started is cancelled; one whose nodes have all
// finished is done or failed by its budget (a bake is cut short). A wave
// with nodes still in flight closes in a later pass.
func (p *pass) closeWaves() {
	for _, w := range p.ro.GetWaves() {
		switch w.GetState() {
		case WavePending:
			p.setWave(w, WaveCancelled)
		case WaveRunning, WaveBaking:
			failures, _, final := p.tally(w)
			if !final {
				continue
			}
			if w.GetState() == WaveRunning {
				w.Failures = uint32(failures)
				w.FinishedAt = stamp.Format(p.now)
				if failures > int(w.GetMaxFailures()) {
					p.setWave(w, WaveFailed)
					continue
				}
			}
			p.setWave(w, WaveDone)
		}
	}
}

// complete ends a rollout whose waves are all over and checks its SLA.
func (p *pass) complete() {
	p.setState(StateCompleted)
	p.ro.WaitingFor = ""
	p.ro.FinishedAt = stamp.Format(p.now)
	p.ro.Reason = ""
	c := state.Count(p.nodes)
	if bad := c.GetNodes() - c.GetPassed() - c.GetResolved(); bad > 0 {
		p.ro.Reason = fmt.Sprintf("completed with %s of %d nodes not passed (%d failed, %d unreachable, %d skipped, %d interrupted)",
			plural(int(bad), "node", "nodes"), c.GetNodes(), c.GetFailed(), c.GetUnreachable(), c.GetSkipped(), c.GetInterrupted())
	}
	p.record(actorSystem, "rollout.complete", map[string]string{
		"passed":      strconv.Itoa(int(c.GetPassed())),
		"failed":      strconv.Itoa(int(c.GetFailed())),
		"unreachable": strconv.Itoa(int(c.GetUnreachable())),
		"skipped":     strconv.Itoa(int(c.GetSkipped())),
		"interrupted": strconv.Itoa(int(c.GetInterrupted())),
		"resolved":    strconv.Itoa(int(c.GetResolved())),
	})
	p.event(EventCompleted, 0, false)
	sla := p.rel.manifest.SLA
	var breaches []string
	if d := p.now.Sub(parseStamp(p.ro.GetCreatedAt())); sla.MaxRolloutDuration > 0 && d > sla.MaxRolloutDuration {
		breaches = append(breaches, BreachRolloutDuration)
	}
	if sla.MinSuccessRate > 0 && c.GetNodes() > 0 && float64(c.GetPassed())/float64(c.GetNodes()) < sla.MinSuccessRate {
		breaches = append(breaches, BreachSuccessRate)
	}
	m := p.e.metrics()
	p.then(func() {
		for _, b := range breaches {
			m.SLABreach(b)
		}
	})
	p.log.Info("rollout completed", "passed", c.GetPassed(), "failed", c.GetFailed(), "unreachable", c.GetUnreachable())
}

// startNodes starts the wave's pending nodes, in order, while the window
// is open and fewer than max_parallel nodes are in flight. A node that is
// not connected when its turn comes is handled by the unreachable
// policy and takes no slot.
func (p *pass) startNodes(w *controllerv1.RolloutWave) {
	if p.windowClosed() {
		return
	}
	slots := p.slots()
	for _, n := range p.nodes {
		if state.NodeInDeployment(n.GetState()) {
			slots--
		}
	}
	var away []string
	for _, id := range w.GetNodeIds() {
		n := p.byID[id]
		if n == nil || n.GetState() != NodePending {
			continue
		}
		// A node already waiting to reconnect is watched even when no
		// slot is free; others wait for their turn.
		if slots <= 0 && n.GetUnreachableSince() == "" {
			continue
		}
		if !p.connected[id] {
			if p.notConnected(n) {
				away = append(away, n.Name())
			}
			continue
		}
		if slots <= 0 {
			continue
		}
		p.startNode(n)
		slots--
	}
	if len(away) > 0 {
		p.wait(fmt.Sprintf("%s to reconnect: %s", plural(len(away), "node", "nodes"), nameList(away, 10)))
	}
}

// slots is the rollout's max_parallel.
func (p *pass) slots() int {
	if s := int(p.ro.GetMaxParallel()); s > 0 {
		return s
	}
	return p.params.MaxParallel
}

// windowClosed reports whether the rollout's window is closed now, and
// then notes when it opens.
func (p *pass) windowClosed() bool {
	local := p.now.In(p.e.cfg.Location)
	if p.params.Window.Open(local) {
		return false
	}
	p.wait("window opens at " + stamp.HumanTime(p.params.Window.Next(local), p.e.cfg.Location))
	return true
}

// notConnected applies the unreachable policy to a node that is not
// connected when its turn comes. It reports whether the node still
// waits to reconnect.
func (p *pass) notConnected(n *controllerv1.RolloutNode) bool {
	if n.GetUnreachableSince() == "" {
		n.UnreachableSince = stamp.Format(p.now)
		p.touch(n)
	}
	since := parseStamp(n.GetUnreachableSince())
	if since.Before(p.started) {
		since = p.started
	}
	switch p.params.Unreachable {
	case UnreachableWait:
		if d := p.params.UnreachableWait; p.now.Sub(since) >= d {
			p.unreachable(n, fmt.Sprintf("not connected within the wait of %s", d))
			return false
		}
		return true
	default:
		// Right after the engine starts, agents are still reconnecting.
		if p.now.Sub(p.started) < p.e.cfg.ReconnectGrace {
			return true
		}
		p.unreachable(n, "not connected when its turn came")
		return false
	}
}

// startNode begins a node's deployment with its pre-audit.
func (p *pass) startNode(n *controllerv1.RolloutNode) {
	n.StartedAt = stamp.Format(p.now)
	n.UnreachableSince = ""
	n.Error = ""
	if n.GetPreAuditCommand() == "" {
		n.PreAuditCommand = p.newAudit(n).GetId()
	}
	p.phase(n, NodePreAudit)
}

// waitingNodes notes the nodes that wait for an operator's confirmation.
func (p *pass) waitingNodes() {
	for _, n := range p.nodes {
		if n.GetState() == NodeWaitingConfirmation {
			p.wait(fmt.Sprintf("confirmation of step %s on %s: run cairnctl rollout confirm %s --node %s --step %s --note TEXT",
				n.GetWaitingStep(), n.Name(), p.ro.GetId(), n.Name(), n.GetWaitingStep()))
			return
		}
	}
}
