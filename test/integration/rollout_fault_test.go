package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-ops/cairn/controller/rollout/state"
	"github.com/cairn-ops/cairn/controller/store"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// The rollout fault tests: processes killed mid-rollout, and nodes that
// are not there.

// readyServer answers its first request only once release is closed (the
// test kills the agent meanwhile), with 503, and every later one at once
// with 200 "ready". arrived is closed when the first request comes in.
type readyServer struct {
	mu       sync.Mutex
	requests int
	arrived  chan struct{}
	release  chan struct{}
}

func (s *readyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	n := s.requests
	s.mu.Unlock()
	if n == 1 {
		close(s.arrived)
		select {
		case <-s.release:
		case <-r.Context().Done():
		}
		http.Error(w, "not yet", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ready")
}

func (s *readyServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// TestRolloutAgentKilledMidStep kills the agent with SIGKILL while a step
// of its deployment runs, and restarts it on the same data dir: the node
// is not failed for the short absence, the journal re-runs the
// interrupted step (its plugin is idempotent) and skips the one that had
// succeeded, and the node passes. The agent's journal and the outbox
// items the controller stored show each step's attempts.
func TestRolloutAgentKilledMidStep(t *testing.T) {
	t.Parallel()
	srv := &readyServer{arrived: make(chan struct{}), release: make(chan struct{})}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(srv.release) }) }
	t.Cleanup(unblock)

	f := newFleet(t, 1)
	a := f.agents["itest-1"]
	ref := f.release(t, "slow.yaml", map[string]string{"URL": hs.URL + "/ready"})
	id := f.start(t, ref, "--strategy", "all-at-once")

	select {
	case <-srv.arrived:
	case <-time.After(rolloutTimeout):
		t.Fatalf("the wait-ready step never ran:\n%s", f.describe(f.status(t, id)))
	}
	a.kill(t)
	unblock() // let the orphaned plugin's request end
	waitFor(t, startTimeout, "the killed agent's node to be disconnected", func() bool {
		return f.c.nodeState(t, f.ids["itest-1"]) == "STATE_DISCONNECTED"
	})
	rec := f.status(t, id)
	if n := f.node(t, rec, "itest-1"); n.GetState() != state.NodeDeploying {
		t.Errorf("node itest-1 is %s while its agent is down mid-deployment, want still deploying", n.GetState())
	}
	a.start(f.c)
	rec = f.waitRollout(t, id, state.RolloutCompleted)
	n := f.node(t, rec, "itest-1")
	if n.GetState() != state.NodePassed {
		t.Fatalf("node itest-1: %s (%s), want passed", n.GetState(), n.GetError())
	}
	if got := srv.count(); got != 2 {
		t.Errorf("the wait-ready step checked the server %d times, want 2 (the cut-off attempt and the re-run)", got)
	}
	for _, file := range []string{"etc/cairn-itest/before.conf", "etc/cairn-itest/after.conf"} {
		if _, err := os.Stat(filepath.Join(a.root, file)); err != nil {
			t.Errorf("after the deployment: %v", err)
		}
	}

	// The agent's journal: one deployment; before ran once, wait-ready
	// twice, after once.
	if code := a.p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("agent exited with %d on SIGTERM, want 0", code)
	}
	r := agent(t, "journal", "list", "--data-dir", a.dataDir, "-o", "json")
	var list struct {
		Deployments []struct{ ID, State string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Deployments) != 1 {
		t.Fatalf("journal list: %v\n%s%s", err, r.stdout, r.stderr)
	}
	dep := list.Deployments[0]
	if dep.State != "succeeded" {
		t.Errorf("journaled deployment %s: %s, want succeeded", dep.ID, dep.State)
	}
	r = agent(t, "journal", "show", dep.ID, "--data-dir", a.dataDir)
	for _, want := range []string{`steps/before\s+file\s+succeeded\s+1\s+true`, `steps/wait-ready\s+httpcheck\s+succeeded\s+2\s+true`, `steps/after\s+file\s+succeeded\s+1\s+true`} {
		if !regexpMatch(want, r.stdout) {
			t.Errorf("journal show does not match %s:\n%s%s", want, r.stdout, r.stderr)
		}
	}

	// The outbox items the controller stored: each step result once, per
	// attempt that finished, one deployment result, and the restarted
	// agent's report that the first attempt of wait-ready was cut off.
	f.c.stop(t)
	events := agentEvents(t, f.c, f.ids["itest-1"])
	var ids []string
	results := 0
	for _, e := range events {
		if e.GetDeploymentId() != dep.ID {
			continue
		}
		ids = append(ids, strings.TrimPrefix(e.GetId(), dep.ID+"/"))
		if e.GetKind() == "deployment_result" {
			results++
			if e.GetDeploymentResult().GetState() != agentv1.StateSucceeded || len(e.GetPayload()) > 0 {
				t.Errorf("deployment result %s: %v (payload %q), want the typed report of a success", e.GetId(), e.GetDeploymentResult(), e.GetPayload())
			}
		}
	}
	for _, want := range []string{"steps/before/1", "steps/wait-ready/2", "steps/after/1", "interrupted/steps/wait-ready/1"} {
		if !slices.Contains(ids, want) {
			t.Errorf("stored outbox items %q: none for %s", ids, want)
		}
	}
	if results != 1 || slices.Contains(ids, "steps/wait-ready/1") {
		t.Errorf("stored outbox items %q: want exactly one deployment result and no result of the cut-off attempt", ids)
	}
}

// TestRolloutAgentKilledMidExecStep kills the agent while an exec step
// runs. exec is not idempotent, so after the restart the journal does not
// guess: the node is interrupted, naming the step, the step ran exactly
// once, and the rollout halts.
func TestRolloutAgentKilledMidExecStep(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 1)
	a := f.agents["itest-1"]
	runs := filepath.Join(a.root, "var/log/cairn-itest-runs")
	ref := f.release(t, "once.yaml", map[string]string{"Sleep": "60"})
	id := f.start(t, ref, "--strategy", "all-at-once")
	waitFor(t, rolloutTimeout, "the exec step to run", func() bool { return lines(runs) > 0 })
	a.kill(t)
	a.start(f.c)
	rec := f.waitRollout(t, id, state.RolloutHalted)
	n := f.node(t, rec, "itest-1")
	if n.GetState() != state.NodeInterrupted || n.GetInterruptedStep() == "" || !strings.Contains(n.GetError(), "interrupted") {
		t.Errorf("node itest-1: %s at step %q, error %q; want interrupted, naming the step", state.Name(n.GetState()), n.GetInterruptedStep(), n.GetError())
	}
	checkCountsAgree(t, f, id)
	if got := lines(runs); got != 1 {
		t.Errorf("the exec step ran %d times, want exactly once", got)
	}
	if code := a.p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("agent exited with %d on SIGTERM, want 0", code)
	}
	r := agent(t, "journal", "list", "--data-dir", a.dataDir, "-o", "json")
	var list struct {
		Deployments []struct{ ID, State string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Deployments) != 1 {
		t.Fatalf("journal list: %v\n%s%s", err, r.stdout, r.stderr)
	}
	r = agent(t, "journal", "show", list.Deployments[0].ID, "--data-dir", a.dataDir)
	if !regexpMatch(`steps/count\s+exec\s+interrupted\s+1\s+false`, r.stdout) {
		t.Errorf("journal show: want steps/count interrupted after 1 attempt:\n%s%s", r.stdout, r.stderr)
	}
}

// agentEvents opens the stopped controller's store and returns the
// node's stored outbox items.
func agentEvents(t *testing.T, c *controller, nodeID string) []*controllerv1.AgentEventRecord {
	t.Helper()
	var events []*controllerv1.AgentEventRecord
	withStore(t, c, func(tx store.Tx) error {
		var err error
		events, err = tx.AgentEvents(nodeID)
		return err
	})
	return events
}

// withStore opens the stopped controller's bbolt store and runs fn in a
// read transaction.
func withStore(t *testing.T, c *controller, fn func(store.Tx) error) {
	t.Helper()
	db, err := store.OpenBolt(filepath.Join(c.dataDir, "cairn.db"), store.BoltOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

// TestRolloutControllerKilledMidWave kills the controller with SIGKILL
// while the second wave's nodes deploy, and restarts it: the rollout
// completes, and every node ran the release's steps exactly once — the
// step appends a line to a file in the node's root — from exactly one
// deploy command.
func TestRolloutControllerKilledMidWave(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 3)
	ref := f.release(t, "once.yaml", map[string]string{"Sleep": "2"})
	id := f.start(t, ref, "--waves", "1,100%", "--max-parallel", "2")
	runs := func(host string) int { return lines(filepath.Join(f.agents[host].root, "var/log/cairn-itest-runs")) }

	rec := f.status(t, id)
	if len(rec.GetWaves()) != 2 {
		t.Fatalf("rollout waves %v, want 2", rec.GetWaves())
	}
	var second []string
	for _, nid := range rec.GetWaves()[1].GetNodeIds() {
		second = append(second, f.hostOf(nid))
	}
	waitFor(t, rolloutTimeout, "a node of wave 2 to run the step", func() bool {
		for _, h := range second {
			if runs(h) > 0 {
				return true
			}
		}
		return false
	})
	f.c.serve.stop(t, syscall.SIGKILL)
	f.c.start(t)
	rec = f.waitRollout(t, id, state.RolloutCompleted)
	t.Logf("rollout %s completed after the controller restarted:\n%s", id, f.describe(rec))

	for host := range f.agents {
		if n := f.node(t, rec, host); n.GetState() != state.NodePassed {
			t.Errorf("node %s: %s (%s), want passed", host, n.GetState(), n.GetError())
		}
		if got := runs(host); got != 1 {
			t.Errorf("node %s ran the step %d times, want exactly once", host, got)
		}
	}
	f.c.stop(t)
	withStore(t, f.c, func(tx store.Tx) error {
		for host, nid := range f.ids {
			cmds, err := tx.NodeCommands(nid)
			if err != nil {
				return err
			}
			applies := 0
			for _, c := range cmds {
				if c.GetKind() == "deploy" && c.GetDeploy().GetRolloutId() == id && c.GetDeploy().GetAction() == "apply" {
					applies++
				}
			}
			if applies != 1 {
				t.Errorf("node %s got %d deploy commands of the rollout, want 1", host, applies)
			}
		}
		return nil
	})
}

// TestRolloutUnreachable stops one of two agents before the rollout and
// shows each --unreachable policy: fail counts the node as a failure
// (halting under a budget of none), skip leaves it out without counting
// it, and wait:DURATION waits for it — deploying when it comes back in
// time, counting it as a failure when it does not. Every report counts
// unreachable nodes on their own.
func TestRolloutUnreachable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, policy string
		// back restarts the agent once the rollout waits for it.
		back bool
		// state is the rollout's and offline the stopped node's at the end.
		state                state.Rollout
		offline              state.Node
		unreachable, skipped uint32
		errorSays            string
	}{
		{name: "fail", policy: "fail", state: state.RolloutHalted, offline: state.NodeUnreachable, unreachable: 1, errorSays: "unreachable"},
		{name: "skip", policy: "skip", state: state.RolloutCompleted, offline: state.NodeSkipped, skipped: 1, errorSays: "skip"},
		{name: "wait, back in time", policy: "wait:2m", back: true, state: state.RolloutCompleted, offline: state.NodePassed},
		{name: "wait in vain", policy: "wait:3s", state: state.RolloutHalted, offline: state.NodeUnreachable, unreachable: 1, errorSays: "unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFleet(t, 2)
			ref := f.release(t, "simple.yaml", nil)
			down := f.agents["itest-2"]
			down.p.stop(t, syscall.SIGTERM)
			waitFor(t, startTimeout, "the stopped agent's node to be disconnected", func() bool {
				return f.c.nodeState(t, f.ids["itest-2"]) == "STATE_DISCONNECTED"
			})
			id := f.start(t, ref, "--strategy", "all-at-once", "--max-parallel", "2", "--unreachable", tt.policy)
			if tt.back {
				rec := f.waitFor(t, id, "itest-2 waiting for its agent", func(rec *controllerv1.RolloutRecord) bool {
					return f.node(t, rec, "itest-2").GetUnreachableSince() != ""
				})
				if n := f.node(t, rec, "itest-2"); n.GetState() != state.NodePending {
					t.Errorf("while waiting for its agent, itest-2 is %s, want pending", n.GetState())
				}
				down.start(f.c)
			}
			rec := f.waitRollout(t, id, tt.state)
			t.Logf("rollout %s:\n%s", id, f.describe(rec))
			n := f.node(t, rec, "itest-2")
			if n.GetState() != tt.offline || !strings.Contains(n.GetError(), tt.errorSays) {
				t.Errorf("node itest-2: state %s, error %q; want %s, an error saying %q", n.GetState(), n.GetError(), tt.offline, tt.errorSays)
			}
			if on := f.node(t, rec, "itest-1"); on.GetState() == state.NodeFailed || on.GetState() == state.NodeUnreachable ||
				tt.state == state.RolloutCompleted && on.GetState() != state.NodePassed {
				t.Errorf("node itest-1 (connected): %s (%s)", on.GetState(), on.GetError())
			}
			c := rec.GetCounts()
			if c.GetUnreachable() != tt.unreachable || c.GetSkipped() != tt.skipped || c.GetFailed() != 0 {
				t.Errorf("counts %+v; want %d unreachable and %d skipped, counted apart from failed (0)", c, tt.unreachable, tt.skipped)
			}
			checkCountsAgree(t, f, id)
			if tt.state == state.RolloutHalted && !strings.Contains(rec.GetReason(), "itest-2") && !strings.Contains(rec.GetReason(), f.ids["itest-2"]) {
				t.Errorf("halted with reason %q, want it to name itest-2", rec.GetReason())
			}
			if tt.unreachable == 0 {
				return
			}
			if c := f.reportJSON(t, id).Summary.Counts; c.Unreachable != 1 || c.Failed != 0 {
				t.Errorf("report -o json counts %+v; want 1 unreachable, counted apart from failed (0)", c)
			}
			if text := f.report(t, id, "text"); !regexp.MustCompile(`(?i)\b1\s+unreachable|unreachable:?\s+1\b`).MatchString(text) {
				t.Errorf("report does not count 1 unreachable:\n%s", text)
			}
		})
	}
}
