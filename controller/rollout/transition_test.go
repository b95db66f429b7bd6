package rollout

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-ops/cairn/controller/rollout/state"
	"github.com/cairn-ops/cairn/controller/store"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// The state tables (controller/rollout/state) are tested through Step:
// each scenario below drives a rollout with Engine.Step alone (the
// engine's loop does not run; the fake agents answer commands as they
// come) into the transitions it names, and TestEveryTransition checks
// that, between them, the scenarios made every transition the tables
// allow, and nothing else.

// seen collects the transitions the engines made.
type seen struct {
	mu  sync.Mutex
	set map[Transition]bool
}

func (s *seen) add(tr Transition) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.set[tr] = true
}

func (s *seen) has(tr Transition) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.set[tr]
}

// stepper drives one rollout with Step.
type stepper struct {
	t  *testing.T
	w  *world
	id string
}

// newStepper starts a rollout on a world whose engine only moves when
// the test steps it.
func newStepper(t *testing.T, all *seen, nodes int, hosts func(w *world), spec func(s *controllerv1.RolloutSpec)) *stepper {
	t.Helper()
	w := newWorld(t, worldOptions{nodes: nodes, step: true, observe: all.add})
	if hosts != nil {
		hosts(w)
	}
	ro := w.start(spec)
	return &stepper{t: t, w: w, id: ro.GetId()}
}

// step runs one pass.
func (s *stepper) step() {
	s.t.Helper()
	if err := s.w.engine().Step(s.w.ctx, s.id); err != nil {
		s.t.Fatalf("Step: %v", err)
	}
}

// until steps until ok holds and returns the rollout then.
func (s *stepper) until(what string, ok func(ro *controllerv1.RolloutRecord) bool) *controllerv1.RolloutRecord {
	s.t.Helper()
	deadline := time.Now().Add(long)
	for {
		s.step()
		ro := s.w.get(s.id)
		if ok(ro) {
			return ro
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("rollout %s: gave up stepping until %s; it is %s (%s), nodes:\n%s", s.id, what, state.Name(ro.GetState()), ro.GetReason(), describeNodes(ro))
		}
		time.Sleep(time.Millisecond)
	}
}

// rollout steps until the rollout is in st.
func (s *stepper) rollout(st state.Rollout) *controllerv1.RolloutRecord {
	s.t.Helper()
	return s.until("rollout "+state.Name(st), func(ro *controllerv1.RolloutRecord) bool { return ro.GetState() == st })
}

// node steps until the node (hostname) is in st.
func (s *stepper) node(host string, st state.Node) *controllerv1.RolloutRecord {
	s.t.Helper()
	return s.until(host+" "+state.Name(st), func(ro *controllerv1.RolloutRecord) bool { return nodeOf(s.t, ro, host).GetState() == st })
}

// act runs an operator's action and fails the test if it is refused.
func (s *stepper) act(what string, fn func(e *Engine) (*controllerv1.RolloutRecord, error)) {
	s.t.Helper()
	if _, err := fn(s.w.engine()); err != nil {
		s.t.Fatalf("%s: %v", what, err)
	}
}

// The operator's actions, each failing the test if it is refused.
func (s *stepper) pause(why string) {
	s.t.Helper()
	s.act("pause", func(e *Engine) (*controllerv1.RolloutRecord, error) { return e.Pause(s.w.ctx, operator, s.id, why) })
}

func (s *stepper) resume(why string) {
	s.t.Helper()
	s.act("resume", func(e *Engine) (*controllerv1.RolloutRecord, error) { return e.Resume(s.w.ctx, operator, s.id, why) })
}

func (s *stepper) abort(why string) {
	s.t.Helper()
	s.act("abort", func(e *Engine) (*controllerv1.RolloutRecord, error) { return e.Abort(s.w.ctx, operator, s.id, why) })
}

func (s *stepper) rollback(why string) {
	s.t.Helper()
	s.act("rollback", func(e *Engine) (*controllerv1.RolloutRecord, error) { return e.Rollback(s.w.ctx, operator, s.id, why) })
}

func (s *stepper) retry(host, why string) {
	s.t.Helper()
	s.act("retry", func(e *Engine) (*controllerv1.RolloutRecord, error) {
		return e.Retry(s.w.ctx, operator, s.id, host, why)
	})
}

func (s *stepper) resolve(host, why string) {
	s.t.Helper()
	s.act("resolve", func(e *Engine) (*controllerv1.RolloutRecord, error) {
		return e.Resolve(s.w.ctx, operator, s.id, host, why)
	})
}

// host changes a node's simulated host.
func (s *stepper) host(id string, fn func(h *host)) { s.w.agent.update(id, fn) }

// later moves the engine's clock d ahead of now.
func (s *stepper) later(d time.Duration) { s.w.clock.set(time.Now().Add(d)) }

// corrupt points a node at a command the store does not have.
func (s *stepper) corrupt(host string, set func(n *controllerv1.RolloutNode)) {
	s.t.Helper()
	n := nodeOf(s.t, s.w.get(s.id), host)
	set(n)
	if err := s.w.store().Update(s.w.ctx, func(tx store.Tx) error { return tx.PutRolloutNode(n) }); err != nil {
		s.t.Fatal(err)
	}
}

// failCommand finishes the node's current command as failed, as an
// agent that gave up on it would.
func (s *stepper) failCommand(host, msg string) {
	s.t.Helper()
	n := nodeOf(s.t, s.w.get(s.id), host)
	s.w.finishCommand(s.w.ctx, n.GetNodeId(), currentCommand(n), false, msg, "", nil)
}

const (
	web1, web2 = "web1", "web2"
	node1      = "node-01"
	node2      = "node-02"
)

// scenarios are the ways through the state tables.
var scenarios = []struct {
	name string
	run  func(t *testing.T, all *seen)
}{
	{"waves, bake and a gate, to completion", func(t *testing.T, all *seen) {
		s := newStepper(t, all, 2, nil, func(sp *controllerv1.RolloutSpec) {
			sp.Waves, sp.Bake, sp.GatesAfterWave = []string{"1", "100%"}, "1h", []uint32{1}
		})
		s.until("wave 1 baking", func(ro *controllerv1.RolloutRecord) bool { return ro.GetWaves()[0].GetState() == WaveBaking })
		s.later(2 * time.Hour)
		s.rollout(StatePaused)
		s.resume("go")
		ro := s.rollout(StateCompleted)
		if c := ro.GetCounts(); c.GetPassed() != 2 {
			t.Errorf("counts %v, want 2 passed", c)
		}
	}},
	{"a manual step, confirmed", func(t *testing.T, all *seen) {
		s := newStepper(t, all, 1, func(w *world) { w.agent.update(node1, func(h *host) { h.manual = true }) }, nil)
		s.node(web1, NodeWaitingConfirmation)
		s.act("confirm", func(e *Engine) (*controllerv1.RolloutRecord, error) {
			return e.Confirm(s.w.ctx, operator, s.id, web1, manualStep, "drained")
		})
		s.rollout(StateCompleted)
	}},
	{"a manual step nobody confirms: the deployment times out", func(t *testing.T, all *seen) {
		s := newStepper(t, all, 1, func(w *world) { w.agent.update(node1, func(h *host) { h.manual = true }) }, nil)
		s.node(web1, NodeWaitingConfirmation)
		s.failCommand(web1, "step check-balancer: no operator confirmed it within the step's timeout")
		s.node(web1, NodeFailed)
	}},
	{"the canary fails: halted, rolled back", func(t *testing.T, all *seen) {
		s := newStepper(t, all, 2, func(w *world) { w.agent.update(node1, func(h *host) { h.behavior = deployExtra }) }, nil)
		s.rollout(StateHalted)
		s.rollback("undo")
		ro := s.rollout(StateRolledBack)
		if n := nodeOf(t, ro, web2); n.GetState() != NodeAborted {
			t.Errorf("web2 %s, want aborted (never started)", state.Name(n.GetState()))
		}
		for _, wv := range ro.GetWaves()[1:] {
			if wv.GetState() != WaveCancelled {
				t.Errorf("wave %d %s, want cancelled", wv.GetIndex(), state.Name(wv.GetState()))
			}
		}
	}},
	{"paused at a gate, aborted, then rolled back", func(t *testing.T, all *seen) {
		s := newStepper(t, all, 2, nil, func(sp *controllerv1.RolloutSpec) { sp.GatesAfterWave = []uint32{1} })
		s.rollout(StatePaused)
		s.abort("stop")
		s.rollout(StateAborted)
		s.rollback("undo")
		s.rollout(StateRolledBack)
	}},
	{"aborted while a node deploys", func(t *testing.T, all *seen) {
		s := newStepper(t, all, 1, func(w *world) { w.agent.update(node1, func(h *host) { h.hold = true }) }, nil)
		s.node(web1, NodeDeploying)
		s.abort("stop")
		s.host(node1, func(h *host) { h.hold = false })
		ro := s.node(web1, NodePassed)
		if ro.GetState() != StateAborted || !state.Settled(ro) {
			t.Errorf("rollout %s, settled %v; want aborted with its deployment recorded", state.Name(ro.GetState()), state.Settled(ro))
		}
	}},
	{"rolled back while running, and while paused", func(t *testing.T, all *seen) {
		s := newStepper(t, all, 1, func(w *world) { w.agent.update(node1, func(h *host) { h.hold = true }) }, nil)
		s.node(web1, NodeDeploying)
		s.rollback("undo")
		s.host(node1, func(h *host) { h.hold = false })
		s.rollout(StateRolledBack)

		p := newStepper(t, all, 1, func(w *world) { w.agent.update(node1, func(h *host) { h.hold = true }) }, nil)
		p.node(web1, NodeDeploying)
		p.pause("wait")
		p.rollback("undo")
		p.host(node1, func(h *host) { h.hold = false })
		p.rollout(StateRolledBack)
	}},
	{"a node fails while paused: halted; on_failure=rollback", func(t *testing.T, all *seen) {
		s := newStepper(t, all, 2, func(w *world) {
			w.agent.update(node1, func(h *host) { h.hold, h.behavior = true, deployExtra })
		}, nil)
		s.node(web1, NodeDeploying)
		s.pause("wait")
		s.host(node1, func(h *host) { h.hold = false })
		s.rollout(StateHalted)

		r := newStepper(t, all, 2, func(w *world) { w.agent.update(node1, func(h *host) { h.behavior = deployExtra }) },
			func(sp *controllerv1.RolloutSpec) { sp.OnFailure = OnFailureRollback })
		r.rollout(StateRolledBack)
	}},
	{"halted, retried, resumed", func(t *testing.T, all *seen) {
		s := newStepper(t, all, 2, func(w *world) { w.agent.update(node1, func(h *host) { h.behavior = deployExtra }) },
			func(sp *controllerv1.RolloutSpec) { sp.OnDrift = OnDriftIgnore })
		s.rollout(StateHalted)
		if _, err := s.w.engine().Resume(s.w.ctx, operator, s.id, "go"); err == nil || !strings.Contains(err.Error(), "retry those nodes") {
			t.Errorf("resume of a halted rollout over its budget = %v, want refused, pointing at retry", err)
		}
		s.host(node1, func(h *host) { h.behavior = deployGood })
		s.retry(web1, "fixed")
		ro := s.node(web1, NodePassed)
		if n := nodeOf(t, ro, web1); n.GetRetries() != 1 {
			t.Errorf("web1 retries %d, want 1", n.GetRetries())
		}
		s.resume("go")
		s.rollout(StateCompleted)

		a := newStepper(t, all, 2, func(w *world) { w.agent.update(node1, func(h *host) { h.behavior = deployExtra }) }, nil)
		a.rollout(StateHalted)
		a.abort("give up")
		a.rollout(StateAborted)
	}},
	{"completed with a failure, retried, then rolled back", func(t *testing.T, all *seen) {
		s := newStepper(t, all, 1, func(w *world) { w.agent.update(node1, func(h *host) { h.behavior = deployExtra }) },
			func(sp *controllerv1.RolloutSpec) { sp.MaxFailures, sp.OnDrift = "1", OnDriftIgnore })
		s.rollout(StateCompleted)
		s.host(node1, func(h *host) { h.behavior = deployGood })
		s.retry(web1, "")
		s.rollout(StateRunning)
		s.rollout(StateCompleted)
		s.rollback("undo")
		s.rollout(StateRolledBack)
	}},
	{"a rollback paused, resumed, paused and aborted", func(t *testing.T, all *seen) {
		s := newStepper(t, all, 1, nil, nil)
		s.rollout(StateCompleted)
		s.host(node1, func(h *host) { h.deaf = true })
		s.rollback("undo")
		s.node(web1, NodeRollingBack)
		s.pause("hold on")
		s.resume("go on")
		s.pause("hold on")
		s.abort("give up")
		ro := s.node(web1, NodeRollbackFailed)
		if ro.GetState() != StateAborted {
			t.Errorf("rollout %s, want aborted", state.Name(ro.GetState()))
		}
		// Rolling back again picks up where the aborted rollback left.
		s.host(node1, func(h *host) { h.deaf = false })
		s.rollback("again")
		s.rollout(StateRolledBack)
	}},
	{"a rollback that waits on a node that went away is aborted", func(t *testing.T, all *seen) {
		s := newStepper(t, all, 1, nil, nil)
		s.rollout(StateCompleted)
		s.host(node1, func(h *host) { h.deaf = true })
		s.rollback("undo")
		s.node(web1, NodeRollingBack)
		s.w.fleet.setConnected(node1, false)
		s.abort("give up")
		s.rollout(StateAborted)
	}},
	{"a rollback fails, is retried, and proven", func(t *testing.T, all *seen) {
		s := newStepper(t, all, 1, nil, nil)
		s.rollout(StateCompleted)
		s.host(node1, func(h *host) { h.rollbackFails = true })
		s.rollback("undo")
		s.rollout(StateRollbackFailed)
		s.host(node1, func(h *host) { h.rollbackFails = false })
		s.retry(web1, "")
		s.rollout(StateRolledBack)
	}},
	{"a rollback fails, and the node is resolved by hand", func(t *testing.T, all *seen) {
		s := newStepper(t, all, 1, nil, nil)
		s.rollout(StateCompleted)
		s.host(node1, func(h *host) { h.rollbackFails = true })
		s.rollback("undo")
		s.rollout(StateRollbackFailed)
		// The operator removes the package by hand.
		s.host(node1, func(h *host) { h.packages, h.files = h.saved.packages, h.saved.files })
		s.resolve(web1, "removed webshop 2.4.0 by hand")
		ro := s.rollout(StateRolledBack)
		n := nodeOf(t, ro, web1)
		if n.GetState() != NodeResolved || n.GetResolveAuditId() == "" || len(n.GetResolveDiffJson()) == 0 || n.GetResolvedBy() != operator {
			t.Errorf("web1 %s, resolve audit %q, diff %d bytes, by %q; want resolved with its audit and diff", state.Name(n.GetState()),
				n.GetResolveAuditId(), len(n.GetResolveDiffJson()), n.GetResolvedBy())
		}
	}},
	{"nodes that are not connected when their turn comes", func(t *testing.T, all *seen) {
		for _, policy := range []string{UnreachableFail, UnreachableSkip} {
			s := newStepper(t, all, 1, func(w *world) { w.fleet.setConnected(node1, false) },
				func(sp *controllerv1.RolloutSpec) { sp.Unreachable = policy })
			want := NodeUnreachable
			if policy == UnreachableSkip {
				want = NodeSkipped
			}
			s.node(web1, want)
		}
	}},
	{"nodes that go away in every phase, under fail and skip", func(t *testing.T, all *seen) {
		for _, policy := range []string{UnreachableFail, UnreachableSkip} {
			want := NodeUnreachable
			if policy == UnreachableSkip {
				want = NodeSkipped
			}
			spec := func(sp *controllerv1.RolloutSpec) { sp.Unreachable, sp.LostAfter = policy, "1m" }
			gone := func(s *stepper) {
				s.w.fleet.setConnected(node1, false)
				s.step()
				s.later(2 * time.Minute)
				s.node(web1, want)
			}
			// pre-audit
			s := newStepper(t, all, 1, func(w *world) { w.agent.update(node1, func(h *host) { h.deaf = true }) }, spec)
			s.node(web1, NodePreAudit)
			gone(s)
			// deploying
			s = newStepper(t, all, 1, func(w *world) { w.agent.update(node1, func(h *host) { h.hold = true }) }, spec)
			s.node(web1, NodeDeploying)
			gone(s)
			// waiting for a confirmation
			s = newStepper(t, all, 1, func(w *world) { w.agent.update(node1, func(h *host) { h.manual = true }) }, spec)
			s.node(web1, NodeWaitingConfirmation)
			gone(s)
			// post-audit
			s = newStepper(t, all, 1, func(w *world) { w.agent.update(node1, func(h *host) { h.hold = true }) }, spec)
			s.node(web1, NodeDeploying)
			s.host(node1, func(h *host) { h.hold, h.deaf = false, true })
			n := nodeOf(t, s.w.get(s.id), web1)
			s.w.finishCommand(s.w.ctx, node1, n.GetDeployCommand(), true, "", "", okReport())
			s.node(web1, NodePostAudit)
			gone(s)
		}
	}},
	{"a pre-audit that cannot be proven, and lost commands", func(t *testing.T, all *seen) {
		s := newStepper(t, all, 1, func(w *world) { w.agent.update(node1, func(h *host) { h.broken = "packages" }) }, nil)
		s.node(web1, NodeFailed)
		// A node whose command is missing from the store fails, in any
		// phase it waits in.
		for _, phase := range []state.Node{NodeDeploying, NodeWaitingConfirmation} {
			s := newStepper(t, all, 1, func(w *world) {
				w.agent.update(node1, func(h *host) {
					h.hold, h.manual = phase == NodeDeploying, phase == NodeWaitingConfirmation
				})
			}, nil)
			s.node(web1, phase)
			s.corrupt(web1, func(n *controllerv1.RolloutNode) { n.DeployCommand = "cmd_lost" })
			ro := s.node(web1, NodeFailed)
			if n := nodeOf(t, ro, web1); !strings.Contains(n.GetError(), "missing from the store") {
				t.Errorf("web1's error %q does not say its command is missing", n.GetError())
			}
		}
	}},
	{"an interrupted deployment: retried, resolved, rolled back", func(t *testing.T, all *seen) {
		interrupted := func() *stepper {
			s := newStepper(t, all, 1, func(w *world) { w.agent.update(node1, func(h *host) { h.behavior = deployInterrupted }) },
				func(sp *controllerv1.RolloutSpec) { sp.OnDrift = OnDriftIgnore })
			ro := s.node(web1, NodeInterrupted)
			if n := nodeOf(t, ro, web1); n.GetInterruptedStep() != "steps/install" {
				t.Errorf("web1 interrupted at %q, want steps/install", n.GetInterruptedStep())
			}
			s.host(node1, func(h *host) { h.behavior = deployGood })
			return s
		}
		s := interrupted()
		s.retry(web1, "")
		s.node(web1, NodePassed)
		s = interrupted()
		s.resolve(web1, "checked by hand")
		s.node(web1, NodeResolved)
		s = interrupted()
		s.rollback("undo")
		s.node(web1, NodeRolledBack)
	}},
	{"an agent reports a cut-off deployment after the rollout gave up on it", func(t *testing.T, all *seen) {
		for _, start := range []state.Node{NodeUnreachable, NodeSkipped, NodeFailed, NodeInterrupted} {
			s := lostOrFailed(t, all, start)
			n := nodeOf(t, s.w.get(s.id), web1)
			s.w.engine().DeploymentInterrupted(n.GetNodeId(), n.GetDeployCommand(), "steps/install")
			ro := s.node(web1, NodeInterrupted)
			if n := nodeOf(t, ro, web1); n.GetInterruptedStep() == "" {
				t.Errorf("web1 (was %s) interrupted without a step", state.Name(start))
			}
		}
	}},
	{"unreachable, skipped and failed nodes: retried, resolved, rolled back", func(t *testing.T, all *seen) {
		for _, start := range []state.Node{NodeUnreachable, NodeSkipped, NodeFailed} {
			s := lostOrFailed(t, all, start)
			s.retry(web1, "")
			s.node(web1, NodePassed)
			s = lostOrFailed(t, all, start)
			s.resolve(web1, "by hand")
			s.node(web1, NodeResolved)
			s = lostOrFailed(t, all, start)
			s.rollback("undo")
			s.rollout(StateRolledBack)
		}
	}},
	{"a resolution whose audit fails goes back", func(t *testing.T, all *seen) {
		for _, start := range []state.Node{NodeUnreachable, NodeSkipped, NodeFailed, NodeInterrupted, NodeRollbackFailed} {
			s := lostOrFailed(t, all, start)
			s.host(node1, func(h *host) { h.deaf = true })
			s.resolve(web1, "by hand")
			s.node(web1, NodeResolving)
			s.failCommand(web1, "collector packages: permission denied")
			ro := s.node(web1, start)
			if n := nodeOf(t, ro, web1); !strings.Contains(n.GetError(), "resolve again") || n.GetResolvedBy() != "" {
				t.Errorf("web1 back at %s: error %q, resolved by %q; want the failure and no resolution", state.Name(start), n.GetError(), n.GetResolvedBy())
			}
		}
	}},
}

// lostOrFailed is a one-node rollout whose node ended its deployment in
// st (unreachable, skipped, failed or interrupted: its deployment sent
// and changed nothing; rollback_failed: passed, then its rollback
// failed), connected again and answering.
func lostOrFailed(t *testing.T, all *seen, st state.Node) *stepper {
	t.Helper()
	switch st {
	case NodeUnreachable, NodeSkipped:
		policy := UnreachableFail
		if st == NodeSkipped {
			policy = UnreachableSkip
		}
		s := newStepper(t, all, 1, func(w *world) { w.agent.update(node1, func(h *host) { h.hold = true }) },
			func(sp *controllerv1.RolloutSpec) {
				sp.Unreachable, sp.LostAfter, sp.OnDrift = policy, "1m", OnDriftIgnore
			})
		s.node(web1, NodeDeploying)
		s.w.fleet.setConnected(node1, false)
		s.step()
		s.later(2 * time.Minute)
		s.node(web1, st)
		s.w.clock.set(time.Time{})
		s.host(node1, func(h *host) { h.hold = false })
		s.w.fleet.setConnected(node1, true)
		return s
	case NodeFailed:
		s := newStepper(t, all, 1, func(w *world) { w.agent.update(node1, func(h *host) { h.behavior = deployFails }) },
			func(sp *controllerv1.RolloutSpec) { sp.OnDrift = OnDriftIgnore })
		s.node(web1, NodeFailed)
		s.host(node1, func(h *host) { h.behavior = deployGood })
		return s
	case NodeInterrupted:
		s := newStepper(t, all, 1, func(w *world) { w.agent.update(node1, func(h *host) { h.behavior = deployInterrupted }) },
			func(sp *controllerv1.RolloutSpec) { sp.OnDrift = OnDriftIgnore })
		s.node(web1, NodeInterrupted)
		s.host(node1, func(h *host) { h.behavior = deployGood })
		return s
	case NodeRollbackFailed:
		s := newStepper(t, all, 1, nil, nil)
		s.rollout(StateCompleted)
		s.host(node1, func(h *host) { h.rollbackFails = true })
		s.rollback("undo")
		s.node(web1, NodeRollbackFailed)
		s.host(node1, func(h *host) { h.rollbackFails = false })
		return s
	}
	t.Fatalf("lostOrFailed: no way to %s", state.Name(st))
	return nil
}

// okReport is a successful deployment report of the fake release.
func okReport() *agentv1.ApplyReport {
	a := &fakeAgent{hosts: map[string]*host{"x": newHost("x")}}
	_, _, rep := a.apply("x")
	return rep
}

// TestEveryTransition runs the scenarios and checks that, between them,
// they made every transition the state tables allow and none they do
// not.
func TestEveryTransition(t *testing.T) {
	all := &seen{set: map[Transition]bool{}}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { sc.run(t, all) })
	}
	if t.Failed() {
		return
	}
	allowed := map[Transition]bool{}
	for _, from := range state.RolloutStates() {
		for _, to := range state.NextRollout(from) {
			allowed[Transition{"rollout", state.Name(from), state.Name(to)}] = true
		}
	}
	for _, from := range state.WaveStates() {
		for _, to := range state.NextWave(from) {
			allowed[Transition{"wave", state.Name(from), state.Name(to)}] = true
		}
	}
	for _, from := range state.NodeStates() {
		for _, to := range state.NextNode(from) {
			allowed[Transition{"node", state.Name(from), state.Name(to)}] = true
		}
	}
	var missing, extra []string
	for tr := range allowed {
		if !all.has(tr) {
			missing = append(missing, fmt.Sprintf("%s %s → %s", tr.Kind, tr.From, tr.To))
		}
	}
	all.mu.Lock()
	for tr := range all.set {
		if !allowed[tr] {
			extra = append(extra, fmt.Sprintf("%s %s → %s", tr.Kind, tr.From, tr.To))
		}
	}
	all.mu.Unlock()
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("no scenario makes these transitions of the state tables (add one, or take the transition out of the table):\n  %s", strings.Join(missing, "\n  "))
	}
	if len(extra) > 0 {
		t.Errorf("the engine made transitions the tables do not allow (the commit should have refused them):\n  %s", strings.Join(extra, "\n  "))
	}
}
