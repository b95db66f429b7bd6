package rollout

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/controller/cms"
	"github.com/cairn-ops/cairn/controller/rollout/state"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/compare"
	"github.com/cairn-ops/cairn/internal/diff"
	"github.com/cairn-ops/cairn/internal/limits"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// oldConf is a file an earlier release installed and tracked.
const oldConf = "/etc/webshop/old.conf"

// auditTracks returns the track lists of the audit commands a rollout
// issued to a node, in the order it issued them.
func (w *world) auditTracks(rolloutID, nodeID string) [][]string {
	w.t.Helper()
	var out [][]string
	err := w.store().View(w.ctx, func(tx store.Tx) error {
		cmds, err := tx.NodeCommands(nodeID)
		for _, c := range cmds {
			if c.GetRolloutId() == rolloutID && c.GetKind() == controllerv1.CommandKindAudit {
				out = append(out, c.GetTrack())
			}
		}
		return err
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return out
}

// TestRolloutTracksEarlierReleases: a node's tracked paths accumulate.
// The rollout of a release audits what the node's baseline tracks besides
// the release's files, and its post-audit becomes a baseline that still
// tracks an earlier release's file; across a controller restart, a later
// release that stops tracking the file leaves it out of its post-audit
// and of the baseline, and the comparison lists it as not compared.
func TestRolloutTracksEarlierReleases(t *testing.T) {
	w := newWorld(t, worldOptions{nodes: 1, bolt: true})
	node := w.nodes[0]
	w.agent.update(node, func(h *host) { h.files[oldConf] = sum("legacy\n") })

	// An earlier release's rollout left a baseline tracking oldConf.
	a := w.agent
	a.mu.Lock()
	a.seq++
	doc := a.hosts[node].audit(node, []string{oldConf}, a.seq)
	a.mu.Unlock()
	first := w.storeAudit(w.ctx, node, "", doc)
	err := w.store().Update(w.ctx, func(tx store.Tx) error {
		return cms.PutBaseline(tx, time.Now(), &controllerv1.BaselineRecord{NodeId: node, AuditId: first, AcceptedBy: actorSystem, Reason: "rollout of an earlier release"}, []string{oldConf})
	})
	if err != nil {
		t.Fatal(err)
	}

	ro := w.start(nil)
	w.waitState(ro.GetId(), StateCompleted)
	both := []string{oldConf, confPath}
	if diff := cmp.Diff([][]string{both, both}, w.auditTracks(ro.GetId(), node)); diff != "" {
		t.Errorf("pre- and post-audit track (-want +got):\n%s", diff)
	}
	n := nodeOf(t, w.get(ro.GetId()), "web1")
	if want := "no changes where both audits looked; 1 tracked path not compared: " + confPath; n.GetDriftSummary() != want || n.GetDriftChanges() != 0 || n.GetDriftPathsNotCompared() != 1 {
		t.Errorf("drift pre-check: %d changes, %d paths not compared, %q; want 0, 1, %q", n.GetDriftChanges(), n.GetDriftPathsNotCompared(), n.GetDriftSummary(), want)
	}
	bs := w.baselines(node)
	if got := bs[len(bs)-1]; got.GetVersion() != 2 || got.GetAuditId() != n.GetPostAuditId() || !cmp.Equal(both, got.GetTracked()) {
		t.Errorf("baseline after the rollout: version %d of audit %s tracking %q; want 2 of the post-audit tracking %q", got.GetVersion(), got.GetAuditId(), got.GetTracked(), both)
	}

	// The tracked set is in the store: a restarted controller uses it.
	w.restart()
	rel := w.createRelease("release-untrack.yaml", true)
	ro2 := w.start(func(s *controllerv1.RolloutSpec) {
		s.Release = &controllerv1.ReleaseRef{Name: rel.GetName(), Version: rel.GetVersion()}
	})
	w.waitState(ro2.GetId(), StateCompleted)
	if diff := cmp.Diff([][]string{both, {confPath}}, w.auditTracks(ro2.GetId(), node)); diff != "" {
		t.Errorf("pre- and post-audit track of the release that untracks %s (-want +got):\n%s", oldConf, diff)
	}
	n = nodeOf(t, w.get(ro2.GetId()), "web1")
	if n.GetState() != NodePassed {
		t.Fatalf("node %s: %s", state.Name(n.GetState()), n.GetError())
	}
	var res compare.Result
	if err := json.Unmarshal(n.GetComparisonJson(), &res); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]diff.PathNotCompared{{Path: oldConf, TrackedBy: diff.SideBefore, Files: 1}}, res.Diff.PathsNotCompared()); diff != "" {
		t.Errorf("the comparison's paths not compared (-want +got):\n%s", diff)
	}
	bs = w.baselines(node)
	got := bs[len(bs)-1]
	if got.GetVersion() != 3 || !cmp.Equal([]string{confPath}, got.GetTracked()) || !cmp.Equal([]string{oldConf}, got.GetUntracked()) {
		t.Errorf("baseline after the untracking release: version %d tracking %q, untracked %q; want 3 tracking %s, untracked %s",
			got.GetVersion(), got.GetTracked(), got.GetUntracked(), confPath, oldConf)
	}
}

// TestRolloutTrackedLimit: a node whose baseline would track more than
// limits.TrackedPaths paths fails with the reason, and its baseline stays.
func TestRolloutTrackedLimit(t *testing.T) {
	w := newWorld(t, worldOptions{nodes: 1})
	node := w.nodes[0]
	full := make([]string, limits.TrackedPaths)
	for i := range full {
		full[i] = fmt.Sprintf("/etc/many/%03d", i)
	}
	base := w.auditNow(node)
	err := w.store().Update(w.ctx, func(tx store.Tx) error {
		return cms.PutBaseline(tx, time.Now(), &controllerv1.BaselineRecord{NodeId: node, AuditId: base, AcceptedBy: "user:auditor", Reason: "full"}, full)
	})
	if err != nil {
		t.Fatal(err)
	}
	ro := w.start(nil)
	w.waitState(ro.GetId(), StateHalted)
	n := nodeOf(t, w.get(ro.GetId()), "web1")
	if want := fmt.Sprintf("the CMS baseline cannot advance to the post-audit: tracked set refused: the node would track %d paths; the limit is %d", limits.TrackedPaths+1, limits.TrackedPaths); n.GetState() != NodeFailed || !strings.HasPrefix(n.GetError(), want) {
		t.Errorf("node %s: %q; want failed: %q", state.Name(n.GetState()), n.GetError(), want)
	}
	if bs := w.baselines(node); len(bs) != 1 {
		t.Errorf("%d baselines, want the 1 it had", len(bs))
	}
}

// TestRollbackNotProvenWithPathNotCompared: a path the node's tracked set
// gained after its pre-audit is in the audit after the rollback only, so
// that audit cannot be shown equal to the pre-audit: the rollback is not
// proven, and says which path.
func TestRollbackNotProvenWithPathNotCompared(t *testing.T) {
	const extra = "/etc/webshop/extra.conf"
	w := newWorld(t, worldOptions{nodes: 1})
	node := w.nodes[0]
	w.agent.update(node, func(h *host) { h.behavior, h.hold, h.files[extra] = deployExtra, true, sum("x\n") })
	ro := w.start(func(s *controllerv1.RolloutSpec) { s.OnFailure = OnFailureRollback })
	w.waitFor(ro.GetId(), "web1 deploying", func(ro *controllerv1.RolloutRecord) bool {
		return nodeOf(t, ro, "web1").GetState() == NodeDeploying
	})
	// Meanwhile an operator accepts an audit that tracked extra.
	base := w.auditNow(node)
	err := w.store().Update(w.ctx, func(tx store.Tx) error {
		return cms.PutBaseline(tx, time.Now(), &controllerv1.BaselineRecord{NodeId: node, AuditId: base, AcceptedBy: "user:auditor", Reason: "CHG-2"}, []string{extra})
	})
	if err != nil {
		t.Fatal(err)
	}
	w.agent.update(node, func(h *host) { h.hold = false })
	ro = w.waitState(ro.GetId(), StateRollbackFailed)
	n := nodeOf(t, ro, "web1")
	if want := "tracked paths not compared with the pre-audit: " + extra; n.GetState() != NodeRollbackFailed || !strings.Contains(n.GetError(), want) {
		t.Errorf("web1 %s: %q; want rollback_failed saying %q", state.Name(n.GetState()), n.GetError(), want)
	}
}
