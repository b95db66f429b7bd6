package integration

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cairn-ops/cairn/controller/rollout/state"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// TestRolloutAbortWaitingRollback: a rollback waits on a node whose
// agent went away. Pause and resume work while it waits, and abort ends
// it: the absent node's rollback is cancelled (rollback failed), the
// other stays proven. Once the agent is back, rolling back again proves
// the node too.
func TestRolloutAbortWaitingRollback(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 2)
	ref := f.release(t, "simple.yaml", nil)
	id := f.start(t, ref, "--strategy", "all-at-once", "--max-parallel", "2")
	f.waitRollout(t, id, state.RolloutCompleted)

	down := f.agents["itest-2"]
	down.p.stop(t, syscall.SIGTERM)
	waitFor(t, startTimeout, "itest-2 to be disconnected", func() bool {
		return f.c.nodeState(t, f.ids["itest-2"]) == "STATE_DISCONNECTED"
	})
	f.must(t, operator, "rollout", "rollback", id, "--note", "undo")
	f.waitFor(t, id, "itest-1 rolled back and itest-2 waiting", func(rec *controllerv1.RolloutRecord) bool {
		two := f.node(t, rec, "itest-2")
		return f.node(t, rec, "itest-1").GetState() == state.NodeRolledBack &&
			two.GetState() == state.NodeRollingBack && two.GetUnreachableSince() != ""
	})
	out := f.must(t, operator, "rollout", "status", id)
	if !strings.Contains(out, "disconnected since") || !strings.Contains(out, "unless it reconnects") {
		t.Errorf("status while the rollback waits does not say itest-2 is disconnected and when it becomes unreachable:\n%s", out)
	}

	f.must(t, operator, "rollout", "pause", id, "--note", "hold on")
	f.waitRollout(t, id, state.RolloutRollbackPaused)
	f.must(t, operator, "rollout", "resume", id, "--note", "go on")
	f.waitRollout(t, id, state.RolloutRollingBack)
	f.must(t, operator, "rollout", "abort", id, "--note", "itest-2 is gone for the day")
	rec := f.waitRollout(t, id, state.RolloutAborted)
	if n := f.node(t, rec, "itest-2"); n.GetState() != state.NodeRollbackFailed || !strings.Contains(n.GetError(), "rollback aborted") {
		t.Errorf("itest-2 after the abort: %s %q; want rollback_failed, saying the rollback was aborted", state.Name(n.GetState()), n.GetError())
	}
	if n := f.node(t, rec, "itest-1"); n.GetState() != state.NodeRolledBack {
		t.Errorf("itest-1 after the abort: %s; want rolled_back (its proof stands)", state.Name(n.GetState()))
	}
	checkCountsAgree(t, f, id)

	down.start(f.c)
	waitFor(t, startTimeout, "itest-2 to reconnect", func() bool {
		return f.c.nodeState(t, f.ids["itest-2"]) == "STATE_CONNECTED"
	})
	f.must(t, operator, "rollout", "rollback", id, "--note", "again, now that it is back")
	rec = f.waitRollout(t, id, state.RolloutRolledBack)
	for _, host := range []string{"itest-1", "itest-2"} {
		if n := f.node(t, rec, host); n.GetState() != state.NodeRolledBack || n.GetRollbackAuditId() == "" {
			t.Errorf("%s: %s, after-rollback audit %q; want rolled back and proven", host, state.Name(n.GetState()), n.GetRollbackAuditId())
		}
	}
	checkCountsAgree(t, f, id)
}

// TestRolloutRetryAndResolveAfterRollbackFailed: both nodes' rollbacks
// fail (the release's rollback step refuses). An operator repairs
// itest-1 and retries its rollback, which is then proven; itest-2 is
// resolved by hand: audited, its diff from the pre-audit recorded. The
// rollout ends rolled back, and the report and the audit log say who
// did what.
func TestRolloutRetryAndResolveAfterRollbackFailed(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 2)
	ref := f.release(t, "recover.yaml", nil)
	id := f.start(t, ref, "--strategy", "all-at-once", "--max-parallel", "2")
	f.waitRollout(t, id, state.RolloutCompleted)
	f.must(t, operator, "rollout", "rollback", id)
	rec := f.waitRollout(t, id, state.RolloutRollbackFailed)
	for _, host := range []string{"itest-1", "itest-2"} {
		if n := f.node(t, rec, host); n.GetState() != state.NodeRollbackFailed || !strings.Contains(n.GetError(), "rollback refused") {
			t.Errorf("%s: %s %q; want rollback_failed with the step's error", host, state.Name(n.GetState()), n.GetError())
		}
	}
	if !strings.Contains(rec.GetReason(), "rollout retry") || !strings.Contains(rec.GetReason(), "rollout resolve") {
		t.Errorf("rollback_failed reason %q does not say how to go on", rec.GetReason())
	}
	checkCountsAgree(t, f, id)

	// A retry of a node that is not stuck is refused, and says why.
	if r := f.c.ctlAs(t, f.tokens[operator], "rollout", "retry", id, "--node", "nowhere"); r.code == 0 || !strings.Contains(r.stderr, "not a node of rollout") {
		t.Errorf("retry of an unknown node: exit %d, %s", r.code, r.stderr)
	}

	f.touch(t, "itest-1", "etc/cairn-itest-allow-rollback")
	f.must(t, operator, "rollout", "retry", id, "--node", "itest-1", "--note", "allowed the rollback")
	rec = f.waitFor(t, id, "itest-1 rolled back", func(rec *controllerv1.RolloutRecord) bool {
		return f.node(t, rec, "itest-1").GetState() == state.NodeRolledBack && state.Stopped(rec)
	})
	if rec.GetState() != state.RolloutRollbackFailed {
		t.Errorf("after itest-1's retry the rollout is %s; want rollback_failed (itest-2 is not proven)", state.Name(rec.GetState()))
	}
	checkCountsAgree(t, f, id)

	f.must(t, operator, "rollout", "resolve", id, "--node", "itest-2", "--note", "checked by hand: the config file is gone, INC-42")
	rec = f.waitRollout(t, id, state.RolloutRolledBack)
	n := f.node(t, rec, "itest-2")
	if n.GetState() != state.NodeResolved || n.GetResolveAuditId() == "" || !strings.HasPrefix(n.GetResolvedBy(), "user:"+operator) {
		t.Errorf("itest-2: %s, resolve audit %q, by %q; want resolved, audited, by %s", state.Name(n.GetState()), n.GetResolveAuditId(), n.GetResolvedBy(), operator)
	}
	checkCountsAgree(t, f, id)
	rep := f.reportJSON(t, id)
	res := reportNode(t, rep, "itest-2").Resolution
	if res == nil || !strings.Contains(res.Note, "INC-42") || res.Verdict != "equals the pre-audit" {
		t.Errorf("report's resolution of itest-2: %+v; want the note and a verdict that the node equals its pre-audit", res)
	}
	if n := reportNode(t, rep, "itest-1"); n.Retries != 1 || n.Rollback == nil || !n.Rollback.Proven {
		t.Errorf("report's itest-1: %d retries, rollback %+v; want 1 retry and a proven rollback", n.Retries, n.Rollback)
	}
	log := f.c.mustCtl(t, "auditlog", "list")
	for _, want := range []string{"rollout.retry", "rollout.resolve", "INC-42"} {
		if !strings.Contains(log, want) {
			t.Errorf("the audit log lacks %q", want)
		}
	}
}

// TestRolloutOldDataDirMigrates: a controller's data dir whose store was
// written by schema version 5 (rollouts, waves and nodes in every state
// that version stored, as strings: controller/store/testdata/v5) is
// migrated when cairn-controller serve opens it, and every rollout reads
// back in its state, through cairnctl, with counts that add up.
func TestRolloutOldDataDirMigrates(t *testing.T) {
	t.Parallel()
	c := startController(t)
	c.stop(t)
	old, err := bolt.Open(filepath.Join(repoRoot(), "controller/store/testdata/v5/cairn.db"), 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	db, err := bolt.Open(filepath.Join(c.dataDir, "cairn.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = old.View(func(otx *bolt.Tx) error {
		return db.Update(func(tx *bolt.Tx) error {
			for _, name := range []string{"rollouts", "rollout_nodes"} {
				err := otx.Bucket([]byte(name)).ForEach(func(k, v []byte) error {
					return tx.Bucket([]byte(name)).Put(k, v)
				})
				if err != nil {
					return err
				}
			}
			return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), binary.BigEndian.AppendUint64(nil, 5))
		})
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	c.start(t)

	want := map[string]state.Rollout{
		"ro-running": state.RolloutRunning, "ro-paused": state.RolloutPaused, "ro-halted": state.RolloutHalted,
		"ro-completed": state.RolloutCompleted, "ro-aborted": state.RolloutAborted, "ro-rolling-back": state.RolloutRollingBack,
		"ro-rolled-back": state.RolloutRolledBack, "ro-rollback-failed": state.RolloutRollbackFailed,
	}
	list := &controllerv1.ListRolloutsResponse{}
	c.ctlProtoAs(t, c.token, list, "rollout", "list")
	if len(list.GetRollouts()) != len(want) {
		t.Fatalf("rollout list after the migration: %d rollouts, want %d", len(list.GetRollouts()), len(want))
	}
	for id, st := range want {
		rec := &controllerv1.RolloutRecord{}
		c.ctlProtoAs(t, c.token, rec, "rollout", "status", id)
		if rec.GetState() != st || rec.GetLegacyState() != "" {
			t.Errorf("rollout %s after the migration: %s (legacy %q), want %s", id, state.Name(rec.GetState()), rec.GetLegacyState(), state.Name(st))
		}
		cnt := rec.GetCounts()
		if cnt.GetNodes() != uint32(len(rec.GetNodes())) || state.Sum(cnt) != cnt.GetNodes() {
			t.Errorf("rollout %s after the migration: counts %v do not add up to its %d nodes", id, cnt, len(rec.GetNodes()))
		}
		for _, n := range rec.GetNodes() {
			if n.GetState() == 0 || n.GetLegacyState() != "" {
				t.Errorf("rollout %s node %s after the migration: %s (legacy %q)", id, n.GetNodeId(), state.Name(n.GetState()), n.GetLegacyState())
			}
		}
		if out := c.mustCtl(t, "rollout", "status", id); !strings.Contains(out, "state:        "+state.Name(st)) {
			t.Errorf("rollout status %s does not say %s:\n%s", id, state.Name(st), out)
		}
	}
}

// TestRolloutRollForwardToAnEarlierRelease: a deployment is identified
// by its command, so a rollout of a release the nodes had before runs
// its steps again. 1.0.1 → 1.0.2 → back to 1.0.1 by a new rollout (no
// rollback: dpkg downgrades); and 1.0.1 → 1.0.2 → rollback → 1.0.1 again.
// Each ends with the version the last rollout installed on every node.
func TestRolloutRollForwardToAnEarlierRelease(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 2)
	v1 := f.release(t, "versioned.yaml", map[string]string{"Version": "1.0.1"})
	v2 := f.release(t, "versioned.yaml", map[string]string{"Version": "1.0.2"})
	installed := func(want string) {
		t.Helper()
		for _, host := range []string{"itest-1", "itest-2"} {
			got := dpkgVersion(t, f.agents[host].root, "cairn-itest-app")
			if got != want {
				t.Errorf("%s has cairn-itest-app %q, want %s", host, got, want)
			}
			conf, _ := os.ReadFile(filepath.Join(f.agents[host].root, "etc/cairn-itest/app.conf"))
			if string(conf) != "version = "+want+"\n" {
				t.Errorf("%s's app.conf is %q, want version %s", host, conf, want)
			}
		}
	}
	rollout := func(ref string) string {
		t.Helper()
		id := f.start(t, ref, "--strategy", "all-at-once", "--max-parallel", "2")
		rec := f.waitRollout(t, id, state.RolloutCompleted, state.RolloutHalted)
		if rec.GetState() != state.RolloutCompleted || rec.GetCounts().GetPassed() != 2 {
			t.Fatalf("rollout %s of %s: %s\n%s", id, ref, state.Name(rec.GetState()), f.describe(rec))
		}
		checkCountsAgree(t, f, id)
		return id
	}
	rollout(v1)
	installed("1.0.1")
	rollout(v2)
	installed("1.0.2")
	// Forward to the earlier release: its steps run again (the agent's
	// journal has its first deployment, succeeded, which must not count).
	rollout(v1)
	installed("1.0.1")

	id := rollout(v2)
	installed("1.0.2")
	f.must(t, operator, "rollout", "rollback", id)
	f.waitRollout(t, id, state.RolloutRolledBack)
	installed("1.0.1")
	rollout(v1)
	installed("1.0.1")
}

// dpkgVersion is the installed version of pkg in root's dpkg database,
// "" when it is not installed.
func dpkgVersion(t *testing.T, root, pkg string) string {
	t.Helper()
	out, err := exec.Command("dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W", "-f=${Status} ${Version}", pkg).CombinedOutput()
	if err != nil {
		return ""
	}
	status, version, _ := strings.Cut(strings.TrimPrefix(string(out), "install ok "), " ")
	if status != "installed" {
		return ""
	}
	return version
}

// TestRolloutAgentKilledUnderEachPolicy kills the agent in the middle of
// a step that is not idempotent and keeps it away past --lost-after: the
// node is unreachable (fail, wait) or skipped (skip), whatever phase it
// was in. When the agent comes back it reports the cut-off step at once,
// and the node is interrupted, naming it. Under fail, an operator then
// retries the node (a new deployment: the step runs again) and resumes
// the rollout, which completes.
func TestRolloutAgentKilledUnderEachPolicy(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		policy  string
		flags   []string
		gone    state.Node
		rollout state.Rollout
	}{
		{policy: "fail", flags: []string{"--unreachable", "fail", "--lost-after", "3s"}, gone: state.NodeUnreachable, rollout: state.RolloutHalted},
		{policy: "skip", flags: []string{"--unreachable", "skip", "--lost-after", "3s"}, gone: state.NodeSkipped, rollout: state.RolloutCompleted},
		{policy: "wait", flags: []string{"--unreachable", "wait:3s"}, gone: state.NodeUnreachable, rollout: state.RolloutHalted},
	} {
		t.Run(tt.policy, func(t *testing.T) {
			t.Parallel()
			f := newFleet(t, 1)
			a := f.agents["itest-1"]
			runs := filepath.Join(a.root, "var/log/cairn-itest-runs")
			f.touch(t, "itest-1", "etc/cairn-itest-hold")
			ref := f.release(t, "hold.yaml", nil)
			id := f.start(t, ref, append([]string{"--strategy", "all-at-once"}, tt.flags...)...)
			waitFor(t, rolloutTimeout, "the exec step to run", func() bool { return lines(runs) > 0 })
			a.kill(t)
			rec := f.waitRollout(t, id, tt.rollout)
			if n := f.node(t, rec, "itest-1"); n.GetState() != tt.gone || !strings.Contains(n.GetError(), "during deploying") {
				t.Errorf("with the agent away: itest-1 %s %q; want %s, lost during deploying", state.Name(n.GetState()), n.GetError(), state.Name(tt.gone))
			}
			checkCountsAgree(t, f, id)

			a.start(f.c)
			// The rollout may be over (skip): wait on the node alone.
			waitFor(t, rolloutTimeout, "itest-1 to be interrupted", func() bool {
				rec = f.status(t, id)
				return f.node(t, rec, "itest-1").GetState() == state.NodeInterrupted
			})
			if n := f.node(t, rec, "itest-1"); n.GetInterruptedStep() != "steps/count" {
				t.Errorf("itest-1 interrupted at %q, want steps/count", n.GetInterruptedStep())
			}
			if got := lines(runs); got != 1 {
				t.Errorf("the step ran %d times, want once: an interrupted step is not re-run by itself", got)
			}
			checkCountsAgree(t, f, id)
			if tt.policy != "fail" {
				return
			}
			if err := os.Remove(filepath.Join(a.root, "etc/cairn-itest-hold")); err != nil {
				t.Fatal(err)
			}
			f.must(t, operator, "rollout", "retry", id, "--node", "itest-1", "--note", "checked: the step can run again")
			f.waitNode(t, id, "itest-1", state.NodePassed)
			f.must(t, operator, "rollout", "resume", id)
			f.waitRollout(t, id, state.RolloutCompleted)
			if got := lines(runs); got != 2 {
				t.Errorf("after the retry the step ran %d times, want 2", got)
			}
			checkCountsAgree(t, f, id)
		})
	}
}
