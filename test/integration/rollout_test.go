package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/controller/report"
	"github.com/cairn-ops/cairn/controller/rollout/state"
	"github.com/cairn-ops/cairn/internal/diff"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// The rollout tests run a real controller, real agents on fixture roots
// and cairnctl as the release manager, the tester, the approver and an
// operator, and check what the rollout stored: its status and report,
// the CMS baselines, the DML's install records and the agents' roots.
// Each test has its own controller and agents, so they run in parallel.

// TestRolloutWaves rolls a release with a real .deb out to four nodes in
// three waves: every node passes, the waves run one after another,
// baselines advance with the rollout's provenance, the DML knows where
// the package went, and the report shows the classified diff.
func TestRolloutWaves(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 4)
	f.acceptBaselines(t) // so the rollout's baselines are version 2
	ref := f.release(t, "app.yaml", nil)
	rel := f.releaseRecord(t, ref)
	hosts := []string{"itest-1", "itest-2", "itest-3", "itest-4"}
	flags := []string{"--waves", "1,50%,100%", "--max-parallel", "2"}

	plan := f.plan(t, ref, flags...)
	var planned [][]string
	for _, w := range plan.GetWaves() {
		var hs []string
		for _, id := range w.GetNodeIds() {
			hs = append(hs, f.hostOf(id))
		}
		planned = append(planned, hs)
	}
	wantWaves := [][]string{{"itest-1"}, {"itest-2"}, {"itest-3", "itest-4"}}
	if diff := cmp.Diff(wantWaves, planned); diff != "" {
		t.Errorf("planned waves (-want +got):\n%s", diff)
	}
	if len(plan.GetNodes()) != 4 {
		t.Fatalf("plan has %d nodes, want 4", len(plan.GetNodes()))
	}
	for _, n := range plan.GetNodes() {
		if !n.GetConnected() || !n.GetDryRunDone() || !n.GetDryRunOk() || !n.GetWouldChange() {
			t.Errorf("plan of %s: connected %v, dry run done %v ok %v (%s), would change %v; want all true",
				n.GetHostname(), n.GetConnected(), n.GetDryRunDone(), n.GetDryRunOk(), n.GetDryRunError(), n.GetWouldChange())
		}
		if !n.GetHasBaseline() || n.GetDriftChanges() != 0 {
			t.Errorf("plan of %s: has baseline %v, %d drift changes (%s); want a baseline and no drift",
				n.GetHostname(), n.GetHasBaseline(), n.GetDriftChanges(), n.GetDriftSummary())
		}
	}
	if sum := plan.GetSummary(); !strings.Contains(sum, "4 nodes") || !strings.Contains(sum, "cairn-itest-app") || !strings.Contains(sum, "→ 1.0.0") {
		t.Errorf("plan summary %q; want the 4 nodes and cairn-itest-app → 1.0.0", sum)
	}

	id := f.start(t, ref, flags...)
	rec := f.waitRollout(t, id, state.RolloutCompleted)
	t.Logf("rollout %s completed:\n%s", id, f.describe(rec))

	c := rec.GetCounts()
	if c.GetNodes() != 4 || c.GetPassed() != 4 || c.GetFailed() != 0 || c.GetUnreachable() != 0 {
		t.Errorf("counts: %+v, want 4 nodes, 4 passed", c)
	}
	var approvers []string
	for _, d := range rel.GetDecisions() {
		if d.GetDecision() == "approve" {
			approvers = append(approvers, d.GetBy())
		}
	}
	if len(approvers) != 1 {
		t.Fatalf("release decisions %v: want one approval", rel.GetDecisions())
	}
	if diff := cmp.Diff(approvers, rec.GetApprovers()); diff != "" {
		t.Errorf("rollout approvers (-release's approvers +rollout's):\n%s", diff)
	}

	var list controllerv1.ListRolloutsResponse
	f.c.ctlProtoAs(t, f.tokens[operator], &list, "rollout", "list", "--release", "itest-app")
	if len(list.GetRollouts()) != 1 || list.GetRollouts()[0].GetId() != id || list.GetRollouts()[0].GetState() != state.RolloutCompleted {
		t.Errorf("rollout list --release itest-app: %v, want just %s, completed", list.GetRollouts(), id)
	}

	// The waves ran in order: each started after the one before finished,
	// and so did each of its nodes.
	if len(rec.GetWaves()) != 3 {
		t.Fatalf("rollout has %d waves, want 3", len(rec.GetWaves()))
	}
	var prevDone time.Time
	for i, w := range rec.GetWaves() {
		var hs []string
		for _, nid := range w.GetNodeIds() {
			hs = append(hs, f.hostOf(nid))
		}
		if !slices.Equal(hs, wantWaves[i]) || w.GetState() != state.WaveDone {
			t.Errorf("wave %d: nodes %v, state %s; want %v, done", w.GetIndex(), hs, w.GetState(), wantWaves[i])
		}
		started := parseTime(t, "wave started_at", w.GetStartedAt())
		finished := parseTime(t, "wave finished_at", w.GetFinishedAt())
		if started.Before(prevDone) {
			t.Errorf("wave %d started at %s, before wave %d finished at %s", w.GetIndex(), started, i, prevDone)
		}
		for _, nid := range w.GetNodeIds() {
			n := f.node(t, rec, f.hostOf(nid))
			if s := parseTime(t, "node started_at", n.GetStartedAt()); s.Before(prevDone) {
				t.Errorf("node %s of wave %d started at %s, before wave %d finished at %s", f.hostOf(nid), i+1, s, i, prevDone)
			}
			if e := parseTime(t, "node finished_at", n.GetFinishedAt()); e.After(finished) {
				t.Errorf("node %s finished at %s, after its wave %d finished at %s", f.hostOf(nid), e, i+1, finished)
			}
		}
		prevDone = finished
	}

	var appDigest string
	for _, comp := range rel.GetComponents() {
		if comp.GetName() == "app" {
			appDigest = comp.GetDigest()
		}
	}
	for _, host := range hosts {
		n := f.node(t, rec, host)
		if n.GetState() != state.NodePassed || !n.GetChanged() || n.GetError() != "" {
			t.Errorf("node %s: state %s, changed %v, error %q; want passed, changed", host, n.GetState(), n.GetChanged(), n.GetError())
		}
		if n.GetPreAuditId() == "" || n.GetPostAuditId() == "" || n.GetPreAuditId() == n.GetPostAuditId() {
			t.Errorf("node %s: pre-audit %q, post-audit %q; want two audits", host, n.GetPreAuditId(), n.GetPostAuditId())
		}
		if !n.GetHasBaseline() || n.GetDriftChanges() != 0 {
			t.Errorf("node %s: drift pre-check: has baseline %v, %d changes (%s); want a baseline without drift",
				host, n.GetHasBaseline(), n.GetDriftChanges(), n.GetDriftSummary())
		}
		if !slices.ContainsFunc(n.GetKnownErrors(), func(s string) bool { return strings.HasPrefix(s, "KE-ITEST-1") }) {
			t.Errorf("node %s: known errors %q, want KE-ITEST-1 (its signature matches every test host)", host, n.GetKnownErrors())
		}
		cmpr := comparison(t, n)
		if !cmpr.OK() || !containsItem(cmpr.Expected, "packages", "cairn-itest-app") || !containsItem(cmpr.Expected, "files", "/etc/cairn-itest/app.conf") {
			t.Errorf("node %s: comparison %q: expected %v, missing %v, unexpected %v, not comparable %v; want the package and the file expected, nothing else",
				host, cmpr.Summary, items(cmpr.Expected), items(cmpr.Missing), items(cmpr.Unexpected), cmpr.NotComparable)
		}

		// The CMS: the baseline advanced to the post-audit, with provenance.
		bl := f.baselines(t, host)
		if len(bl) != 2 {
			t.Errorf("node %s: %d baselines, want 2 (the accepted one and the rollout's)", host, len(bl))
		} else {
			b := bl[1]
			got := []any{b.GetVersion(), b.GetAuditId(), b.GetRelease(), b.GetRolloutId(), b.GetApprovers()}
			want := []any{uint32(2), n.GetPostAuditId(), ref, id, approvers}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("node %s: baseline 2 [version audit release rollout approvers] (-want +got):\n%s", host, diff)
			}
		}

		// The node's root: the package is installed, the config written.
		root := f.agents[host].root
		if got := dpkgState(t, root, "cairn-itest-app"); got != "1.0.0 installed" {
			t.Errorf("node %s: dpkg says %q for cairn-itest-app, want 1.0.0 installed", host, got)
		}
		if b, err := os.ReadFile(filepath.Join(root, "etc/cairn-itest/app.conf")); err != nil || string(b) != "greeting = hello\n" {
			t.Errorf("node %s: app.conf: %q, %v", host, b, err)
		}
	}

	// The advanced baselines are the CMS's authorized state: a routine
	// audit of the nodes, which nothing changed since, shows no drift.
	f.c.mustCtl(t, "audit", "run", "--wait", "--wait-timeout", "90s", "--selector", "env=itest")
	var drift driftJSON
	f.c.ctlJSON(t, &drift, "cms", "drift", "--selector", "env=itest")
	if drift.NodesDrifted != 0 || drift.NodesWithoutBaseline != 0 {
		for _, n := range drift.Nodes {
			t.Errorf("cms drift after the rollout: node %s: %d changes from its new baseline (%s), want none", n.Hostname, n.Changes, n.Summary)
		}
	}

	// The DML knows where the package is installed.
	var where struct {
		Installs []struct {
			NodeID    string `json:"node_id"`
			Release   string `json:"release"`
			RolloutID string `json:"rollout_id"`
		} `json:"installs"`
	}
	f.c.ctlJSON(t, &where, "artifact", "where", appDigest)
	var installedOn []string
	for _, in := range where.Installs {
		if in.Release != ref || in.RolloutID != id {
			t.Errorf("artifact where: install %+v, want release %s, rollout %s", in, ref, id)
		}
		installedOn = append(installedOn, f.hostOf(in.NodeID))
	}
	slices.Sort(installedOn)
	if diff := cmp.Diff(hosts, installedOn); diff != "" {
		t.Errorf("artifact where %s: nodes (-want +got):\n%s", appDigest, diff)
	}

	// The report, in every format, from the same facts.
	rep := f.reportJSON(t, id)
	sum := rep.Summary
	if sum.RolloutID != id || sum.Release != ref || sum.State != "completed" || sum.Counts.Passed != 4 || sum.Counts.Nodes != 4 ||
		!slices.Equal(sum.Approvers, approvers) {
		t.Errorf("report summary: rollout %s, release %s, state %s, counts %+v, approvers %v; want %s, %s, completed, 4 of 4 passed, %v",
			sum.RolloutID, sum.Release, sum.State, sum.Counts, sum.Approvers, id, ref, approvers)
	}
	for _, host := range hosts {
		rn := reportNode(t, rep, host)
		if rn.State != "passed" || rn.Comparison == nil || !rn.Comparison.OK() ||
			!containsItem(rn.Comparison.Expected, "packages", "cairn-itest-app") || !containsItem(rn.Comparison.Expected, "files", "/etc/cairn-itest/app.conf") {
			t.Errorf("report node %s: %s, comparison %+v; want passed with the package and the file expected", host, rn.State, rn.Comparison)
		}
	}
	if len(rep.KnownErrors) != 1 || rep.KnownErrors[0].ID != "KE-ITEST-1" || len(rep.KnownErrors[0].Nodes) != 4 {
		t.Errorf("report known errors %+v; want KE-ITEST-1 matched on the 4 nodes", rep.KnownErrors)
	}
	if len(rep.SLA.Targets) == 0 || rep.SLA.Breached {
		t.Errorf("report SLA %+v; want targets, none breached", rep.SLA)
	}
	for _, tg := range rep.SLA.Targets {
		if tg.Status != "met" {
			t.Errorf("report SLA target %s: %s (measured %s, target %s); want met", tg.Kind, tg.Status, tg.Measured, tg.Target)
		}
	}
	for _, format := range []string{"text", "markdown"} {
		out := f.report(t, id, format)
		for _, want := range []string{id, ref, "itest-1", "itest-4", "passed", "cairn-itest-app", "KE-ITEST-1"} {
			if !strings.Contains(out, want) {
				t.Errorf("report -o %s does not mention %q:\n%.3000s", format, want, out)
			}
		}
	}
	htmlFile := filepath.Join(t.TempDir(), "report.html")
	if out := f.must(t, operator, "rollout", "report", id, "-o", "html", "--out", htmlFile); !strings.Contains(out, htmlFile) {
		t.Errorf("report --out printed %q, want it to name %s", out, htmlFile)
	}
	b, err := os.ReadFile(htmlFile)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	if !strings.HasPrefix(strings.ToLower(strings.TrimSpace(page)), "<!doctype html>") || !strings.Contains(page, "<style") {
		t.Errorf("report.html is not an HTML page with its own style:\n%.500s", page)
	}
	if refs := externalRefs(page); len(refs) > 0 {
		t.Errorf("report.html is not self-contained: it loads %q", refs)
	}
	for _, want := range []string{"cairn-itest-app", "/etc/cairn-itest/app.conf", "itest-3", "expected", "KE-ITEST-1"} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html does not mention %q", want)
		}
	}
}

// TestRolloutCanaryFailureHalts puts a file that makes the release's check
// fail on the canary only: the canary fails, the rollout halts with its
// budget of no failures exceeded, and no node of the next wave starts.
func TestRolloutCanaryFailureHalts(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 3)
	ref := f.release(t, "canary.yaml", nil)
	flags := []string{"--waves", "1,100%", "--max-parallel", "2"}
	plan := f.plan(t, ref, flags...)
	if len(plan.GetWaves()) != 2 || len(plan.GetWaves()[0].GetNodeIds()) != 1 {
		t.Fatalf("plan waves %v, want a canary wave of one node and a second wave", plan.GetWaves())
	}
	canary := f.hostOf(plan.GetWaves()[0].GetNodeIds()[0])
	f.touch(t, canary, "etc/cairn-itest-broken")

	id := f.start(t, ref, flags...)
	rec := f.waitRollout(t, id, state.RolloutHalted)
	t.Logf("rollout %s halted:\n%s", id, f.describe(rec))
	n := f.node(t, rec, canary)
	if n.GetState() != state.NodeFailed || !strings.Contains(n.GetError(), "check-host") {
		t.Errorf("canary %s: state %s, error %q; want failed naming the step check-host", canary, n.GetState(), n.GetError())
	}
	if !strings.Contains(rec.GetReason(), "wave 1") || !strings.Contains(rec.GetReason(), canary) && !strings.Contains(rec.GetReason(), f.ids[canary]) {
		t.Errorf("halted rollout's reason %q does not name wave 1 and the canary %s", rec.GetReason(), canary)
	}
	if w := rec.GetWaves(); len(w) != 2 || w[0].GetState() != state.WaveFailed || w[1].GetState() != state.WavePending || w[1].GetStartedAt() != "" {
		t.Errorf("waves after the canary failed: %v; want wave 1 failed, wave 2 pending and never started", w)
	}
	// The promise: the rollout halts within a second of the
	// failure that exceeded the budget (the wave's end is the halt).
	if w := rec.GetWaves(); len(w) == 2 && w[0].GetFinishedAt() != "" && n.GetFinishedAt() != "" {
		failed, halted := parseTime(t, "canary finished_at", n.GetFinishedAt()), parseTime(t, "wave 1 finished_at", w[0].GetFinishedAt())
		if d := halted.Sub(failed); d > time.Second {
			t.Errorf("the rollout halted %v after the canary failed, want within a second", d)
		}
	}
	if c := rec.GetCounts(); c.GetFailed() != 1 || c.GetPending() != 2 || c.GetPassed() != 0 {
		t.Errorf("counts %+v, want 1 failed, 2 pending", c)
	}
	if _, err := os.Stat(filepath.Join(f.agents[canary].root, "etc/cairn-itest/app.conf")); err == nil {
		t.Errorf("the canary ran the step after the failed one")
	}

	// Halted means halted: a while later no node of wave 2 has started, or
	// been audited, or been touched.
	time.Sleep(2 * time.Second)
	rec = f.status(t, id)
	if rec.GetState() != state.RolloutHalted {
		t.Errorf("rollout state %s two seconds after it halted, want halted", rec.GetState())
	}
	for _, nid := range rec.GetWaves()[1].GetNodeIds() {
		host := f.hostOf(nid)
		n := f.node(t, rec, host)
		if n.GetState() != state.NodePending || n.GetStartedAt() != "" || n.GetPreAuditCommand() != "" || n.GetDeployCommand() != "" {
			t.Errorf("wave 2 node %s: state %s, started %q, pre-audit command %q, deploy command %q; want pending, never started",
				host, n.GetState(), n.GetStartedAt(), n.GetPreAuditCommand(), n.GetDeployCommand())
		}
		var audits auditListJSON
		f.c.ctlJSON(t, &audits, "audit", "list", nid)
		if len(audits.Audits) != 0 {
			t.Errorf("wave 2 node %s was audited %d times, want never", host, len(audits.Audits))
		}
		if _, err := os.Stat(filepath.Join(f.agents[host].root, "etc/cairn-itest")); err == nil {
			t.Errorf("wave 2 node %s's root was changed", host)
		}
	}

	text := f.report(t, id, "text")
	for _, want := range []string{"halted", rec.GetReason(), canary, "check-host"} {
		if !strings.Contains(strings.ToLower(text), strings.ToLower(want)) {
			t.Errorf("report does not say %q:\n%s", want, text)
		}
	}
	rep := f.reportJSON(t, id)
	if rep.Summary.State != "halted" || rep.Summary.Reason != rec.GetReason() || !strings.Contains(reportNode(t, rep, canary).Error, "check-host") {
		t.Errorf("report -o json: state %s, reason %q, canary error %q; want halted, %q, the failed step check-host",
			rep.Summary.State, rep.Summary.Reason, reportNode(t, rep, canary).Error, rec.GetReason())
	}
	if w := rep.Waves; len(w) != 2 || !w[0].OverBudget || w[0].Failures != 1 || w[0].MaxFailures != 0 {
		t.Errorf("report waves %+v; want wave 1 over its budget of 0 with 1 failure", w)
	}
}

// TestRolloutAutomaticRollback fails one node of a two-node first wave
// under --on-failure rollback: the rollout halts and rolls back both
// nodes — the one that passed and the one that failed — and proves each
// one's state after the rollback equal to its pre-audit; the package is
// gone from their dpkg databases.
func TestRolloutAutomaticRollback(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 3)
	ref := f.release(t, "rollback.yaml", nil)
	flags := []string{"--waves", "2,100%", "--max-parallel", "2", "--on-failure", "rollback"}
	plan := f.plan(t, ref, flags...)
	if len(plan.GetWaves()) != 2 || len(plan.GetWaves()[0].GetNodeIds()) != 2 {
		t.Fatalf("plan waves %v, want a first wave of two nodes and a second wave", plan.GetWaves())
	}
	good, bad := f.hostOf(plan.GetWaves()[0].GetNodeIds()[0]), f.hostOf(plan.GetWaves()[0].GetNodeIds()[1])
	last := f.hostOf(plan.GetWaves()[1].GetNodeIds()[0])
	f.touch(t, bad, "etc/cairn-itest-broken")

	id := f.start(t, ref, flags...)
	rec := f.waitRollout(t, id, state.RolloutRolledBack)
	t.Logf("rollout %s rolled back:\n%s", id, f.describe(rec))
	if rec.GetRollbackRequestedBy() != "policy" {
		t.Errorf("rollback requested by %q, want policy", rec.GetRollbackRequestedBy())
	}
	for _, host := range []string{good, bad} {
		n := f.node(t, rec, host)
		if n.GetState() != state.NodeRolledBack || n.GetRollbackAuditId() == "" {
			t.Errorf("node %s: state %s, rollback audit %q; want rolled_back with an audit", host, n.GetState(), n.GetRollbackAuditId())
			continue
		}
		proof := rollbackDiff(t, n)
		if proof.Counts != (diff.Counts{}) {
			t.Errorf("node %s: the rollback left differences from the pre-audit: %s", host, proof.Summary)
		}
		root := f.agents[host].root
		if got := dpkgState(t, root, "cairn-itest-app"); strings.HasSuffix(got, " installed") {
			t.Errorf("node %s: dpkg says %q for cairn-itest-app after the rollback, want it gone", host, got)
		}
		if _, err := os.Stat(filepath.Join(root, "etc/cairn-itest/app.conf")); err == nil {
			t.Errorf("node %s: app.conf is still there after the rollback", host)
		}
	}
	if n := f.node(t, rec, good); n.GetRollbackCommand() == "" || n.GetPostAuditId() == "" {
		t.Errorf("node %s passed before the rollback: post-audit %q, rollback command %q; want both", good, n.GetPostAuditId(), n.GetRollbackCommand())
	}
	if n := f.node(t, rec, bad); !strings.Contains(n.GetError(), "check-host") {
		t.Errorf("node %s: error %q, want the failed step check-host", bad, n.GetError())
	}
	if n := f.node(t, rec, last); n.GetStartedAt() != "" || n.GetPreAuditCommand() != "" {
		t.Errorf("wave 2 node %s started (state %s) in a rollout whose first wave failed", last, n.GetState())
	}

	// The passed node's baseline went to its post-audit, then back to the
	// state after the rollback.
	bl := f.baselines(t, good)
	n := f.node(t, rec, good)
	if len(bl) != 2 || bl[0].GetAuditId() != n.GetPostAuditId() || bl[1].GetAuditId() != n.GetRollbackAuditId() {
		t.Errorf("node %s baselines %v; want the post-audit %s, then the after-rollback audit %s", good, bl, n.GetPostAuditId(), n.GetRollbackAuditId())
	}
	if bl := f.baselines(t, bad); len(bl) != 0 && bl[len(bl)-1].GetRolloutId() == id && bl[len(bl)-1].GetAuditId() == f.node(t, rec, bad).GetPostAuditId() {
		t.Errorf("node %s failed, yet its baseline advanced to its post-audit: %v", bad, bl)
	}

	rep := f.reportJSON(t, id)
	for _, host := range []string{good, bad} {
		if rb := reportNode(t, rep, host).Rollback; rb == nil || !rb.Proven {
			t.Errorf("report -o json: node %s's rollback %+v, want proven", host, rb)
		}
	}
	if c := rep.Summary.Counts; c.RolledBack != 2 || rep.Summary.RollbackRequestedBy != "policy" {
		t.Errorf("report -o json: counts %+v, rollback requested by %q; want 2 rolled back, by policy", c, rep.Summary.RollbackRequestedBy)
	}
	text := f.report(t, id, "text")
	if strings.Count(text, "after-state equals pre-audit") < 2 {
		t.Errorf("report does not prove both rollbacks (\"after-state equals pre-audit\"):\n%s", text)
	}
}

// TestRolloutGateAndManualStep stops at a manual step on each node until
// an operator confirms it, and at a gate after the first wave until an
// operator resumes the rollout.
func TestRolloutGateAndManualStep(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 2)
	ref := f.release(t, "manual.yaml", nil)
	id := f.start(t, ref, "--waves", "1,100%", "--gate", "after-wave:1")

	rec := f.waitNode(t, id, "itest-1", state.NodeWaitingConfirmation)
	n := f.node(t, rec, "itest-1")
	if n.GetWaitingStep() != "fit-cable" || !strings.Contains(n.GetWaitingInstructions(), "blue cable") {
		t.Errorf("node itest-1 waits for step %q (%q), want fit-cable with its instructions", n.GetWaitingStep(), n.GetWaitingInstructions())
	}
	if _, err := os.Stat(filepath.Join(f.agents["itest-1"].root, "etc/cairn-itest/after.conf")); err == nil {
		t.Errorf("the step after the manual one ran before the confirmation")
	}
	if r := f.as(t, tester, "rollout", "confirm", id, "--node", "itest-1", "--step", "fit-cable", "--note", "not mine to say"); r.code != 3 {
		t.Errorf("a tester confirms a step: exit %d, want 3 (permission denied)\n%s", r.code, r.stderr)
	}
	f.must(t, operator, "rollout", "confirm", id, "--node", "itest-1", "--step", "fit-cable", "--note", "cable patched (ticket 7)")

	rec = f.waitRollout(t, id, state.RolloutPaused)
	if !strings.Contains(rec.GetReason(), "gate") || !strings.Contains(rec.GetReason(), "resume") {
		t.Errorf("paused at the gate with reason %q; want it to name the gate and how to resume", rec.GetReason())
	}
	if n := f.node(t, rec, "itest-1"); n.GetState() != state.NodePassed {
		t.Errorf("node itest-1 is %s at the gate, want passed", n.GetState())
	}
	time.Sleep(time.Second) // the gate holds: nothing moves on its own
	rec = f.status(t, id)
	if n := f.node(t, rec, "itest-2"); rec.GetState() != state.RolloutPaused || n.GetState() != state.NodePending || n.GetPreAuditCommand() != "" {
		t.Errorf("at the gate: rollout %s, node itest-2 %s (pre-audit command %q); want paused and pending", rec.GetState(), n.GetState(), n.GetPreAuditCommand())
	}

	f.must(t, operator, "rollout", "resume", id, "--note", "canary looks good")
	f.waitNode(t, id, "itest-2", state.NodeWaitingConfirmation)
	f.must(t, operator, "rollout", "confirm", id, "--node", f.ids["itest-2"], "--step", "fit-cable", "--note", "second cable patched")
	rec = f.waitRollout(t, id, state.RolloutCompleted)

	notes := map[string]string{"itest-1": "cable patched (ticket 7)", "itest-2": "second cable patched"}
	for host, note := range notes {
		n := f.node(t, rec, host)
		if n.GetState() != state.NodePassed {
			t.Errorf("node %s: %s, want passed", host, n.GetState())
		}
		cs := n.GetConfirmations()
		if len(cs) != 1 || cs[0].GetStep() != "fit-cable" || cs[0].GetNote() != note || !strings.Contains(cs[0].GetBy(), operator) || cs[0].GetAt() == "" {
			t.Errorf("node %s confirmations %v; want one of fit-cable by the operator with the note %q", host, cs, note)
		}
		if _, err := os.Stat(filepath.Join(f.agents[host].root, "etc/cairn-itest/after.conf")); err != nil {
			t.Errorf("node %s: the step after the manual one did not run: %v", host, err)
		}
	}
	// The audit trail says who resumed at the gate, and why.
	rep := f.reportJSON(t, id)
	if !slices.ContainsFunc(rep.AuditTrail, func(e report.LogEntry) bool {
		return strings.Contains(e.Action, "resume") && strings.Contains(e.Actor, operator) && strings.Contains(e.Details, "canary looks good")
	}) {
		t.Errorf("report audit trail %+v has no resume by the operator with its note", rep.AuditTrail)
	}
	for _, format := range []string{"text", "json", "html"} {
		out := f.report(t, id, format)
		for _, want := range []string{"cable patched (ticket 7)", "second cable patched", operator, "fit-cable"} {
			if !strings.Contains(out, want) {
				t.Errorf("report -o %s does not show %q", format, want)
			}
		}
	}
}

// TestRolloutUnexpectedAndMissing deploys a release whose one exec step
// (which declares nothing) also registers a package nobody declared on
// one node, and leaves out the file the release expects on another: the
// first fails with the package unexpected, the second with the file
// missing, the third passes.
func TestRolloutUnexpectedAndMissing(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 3)
	f.touch(t, "itest-1", "etc/cairn-itest-sneak")
	f.touch(t, "itest-2", "etc/cairn-itest-skip-conf")
	ref := f.release(t, "drift.yaml", nil)
	id := f.start(t, ref, "--strategy", "all-at-once", "--max-parallel", "3", "--max-failures", "2")
	rec := f.waitRollout(t, id, state.RolloutCompleted)
	t.Logf("rollout %s completed:\n%s", id, f.describe(rec))

	if c := rec.GetCounts(); c.GetPassed() != 1 || c.GetFailed() != 2 {
		t.Errorf("counts %+v, want 1 passed, 2 failed", c)
	}
	tests := []struct {
		host, state, errorSays        string
		unexpected, missing, expected []string
	}{
		{"itest-1", "failed", "unexpected", []string{"packages cairn-itest-sneaky"}, nil, []string{"files /etc/cairn-itest/app.conf"}},
		{"itest-2", "failed", "missing", nil, []string{"files /etc/cairn-itest/app.conf"}, nil},
		{"itest-3", "passed", "", nil, nil, []string{"files /etc/cairn-itest/app.conf"}},
	}
	for _, tt := range tests {
		n := f.node(t, rec, tt.host)
		if state.Name(n.GetState()) != tt.state || !strings.Contains(n.GetError(), tt.errorSays) {
			t.Errorf("node %s: state %s, error %q; want %s, an error saying %q", tt.host, state.Name(n.GetState()), n.GetError(), tt.state, tt.errorSays)
		}
		r := comparison(t, n)
		// Keys are matched by what they contain (a package's key names
		// its architecture too).
		match := func(want []string, got []string) bool {
			if len(want) != len(got) {
				return false
			}
			for i := range want {
				s, k, _ := strings.Cut(want[i], " ")
				gs, gk, _ := strings.Cut(got[i], " ")
				if s != gs || !strings.Contains(gk, k) {
					return false
				}
			}
			return true
		}
		if !match(tt.unexpected, items(r.Unexpected)) || !match(tt.missing, items(r.Missing)) || !match(tt.expected, items(r.Expected)) {
			t.Errorf("node %s: comparison %q: expected %v, missing %v, unexpected %v; want %v, %v, %v",
				tt.host, r.Summary, items(r.Expected), items(r.Missing), items(r.Unexpected), tt.expected, tt.missing, tt.unexpected)
		}
		// The deployment itself succeeded: what failed the node is what
		// the audits show.
		if n.GetDeployReport().GetState() != agentv1.StateSucceeded {
			t.Errorf("node %s: deploy report %v, want the deployment succeeded", tt.host, n.GetDeployReport())
		}
		bl := f.baselines(t, tt.host)
		if advanced := len(bl) == 1 && bl[0].GetRolloutId() == id; advanced != (tt.state == "passed") || len(bl) > 1 {
			t.Errorf("node %s (%s): baselines %v; want the baseline advanced only for a passed node", tt.host, tt.state, bl)
		}
	}

	rep := f.reportJSON(t, id)
	if r := reportNode(t, rep, "itest-1").Comparison; r == nil || !containsItem(r.Unexpected, "packages", "cairn-itest-sneaky") {
		t.Errorf("report -o json: itest-1's comparison %+v lists no unexpected cairn-itest-sneaky", r)
	}
	if r := reportNode(t, rep, "itest-2").Comparison; r == nil || !containsItem(r.Missing, "files", "/etc/cairn-itest/app.conf") {
		t.Errorf("report -o json: itest-2's comparison %+v lists no missing /etc/cairn-itest/app.conf", r)
	}
	md := f.report(t, id, "markdown")
	for _, want := range []string{"cairn-itest-sneaky", "/etc/cairn-itest/app.conf", "unexpected", "missing"} {
		if !strings.Contains(strings.ToLower(md), strings.ToLower(want)) {
			t.Errorf("report -o markdown does not mention %q", want)
		}
	}
}

var (
	resourceRE = regexp.MustCompile(`(?i)(?:\bsrc\s*=\s*|\burl\(\s*)["']?([^"')\s>]+)`)
	externalRE = regexp.MustCompile(`(?i)<link\b|@import`)
)

// externalRefs lists what an HTML page would load from elsewhere: linked
// stylesheets, imports, and sources or CSS urls other than data: URIs.
func externalRefs(page string) []string {
	refs := externalRE.FindAllString(page, -1)
	for _, m := range resourceRE.FindAllStringSubmatch(page, -1) {
		if !strings.HasPrefix(strings.ToLower(m[1]), "data:") {
			refs = append(refs, m[0])
		}
	}
	return refs
}

// TestExternalRefs shows that the report's self-containment check can
// fail.
func TestExternalRefs(t *testing.T) {
	tests := []struct {
		name, page string
		want       []string
	}{
		{"inline only", `<style>body{background:url("data:image/png;base64,AAAA")}</style><img src="data:image/gif;base64,R0l">`, nil},
		{"stylesheet", `<link rel="stylesheet" href="style.css">`, []string{"<link"}},
		{"script", `<script src="https://cdn.example/app.js"></script>`, []string{`src="https://cdn.example/app.js`}},
		{"image", `<img src='logo.png'>`, []string{`src='logo.png`}},
		{"css url", `<style>h1{background:url(/bg.png)}</style>`, []string{`url(/bg.png`}},
		{"import", `<style>@import "x.css";</style>`, []string{"@import"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, externalRefs(tt.page)); diff != "" {
				t.Errorf("externalRefs (-want +got):\n%s", diff)
			}
		})
	}
}
