package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/html"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-ops/cairn/controller/rollout/state"
	"github.com/cairn-ops/cairn/internal/compare"
	"github.com/cairn-ops/cairn/internal/diff"
	"github.com/cairn-ops/cairn/internal/manifest"
	"github.com/cairn-ops/cairn/internal/testutil"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

const (
	confOld = "1111111111111111111111111111111111111111111111111111111111111111"
	confNew = "2222222222222222222222222222222222222222222222222222222222222222"
)

// reportAudit is a small web node before the release: webshop 2.3.1,
// its config, its unit disabled.
func reportAudit(host string) *inventoryv1.Audit {
	var collectors []*inventoryv1.CollectorStatus
	for _, s := range []string{"packages", "services", "files"} {
		collectors = append(collectors, &inventoryv1.CollectorStatus{Name: s, Section: s, State: inventoryv1.CollectorStatus_STATE_OK})
	}
	return &inventoryv1.Audit{
		SchemaVersion: 1,
		Header:        &inventoryv1.Header{CollectedAt: "2026-03-01T22:00:00Z"},
		Os:            &inventoryv1.OS{Hostname: host},
		Packages: &inventoryv1.Packages{Packages: []*inventoryv1.Package{
			{Key: "dpkg/bash/amd64", Manager: "dpkg", Name: "bash", Version: "5.2.15-2+b2", Architecture: "amd64"},
			{Key: "dpkg/webshop/amd64", Manager: "dpkg", Name: "webshop", Version: "2.3.1", Architecture: "amd64"},
		}},
		Services: &inventoryv1.Services{Units: []*inventoryv1.Service{
			{Key: "webshop.service", Name: "webshop.service", Type: "service", UnitFileState: "disabled"},
		}},
		Files: &inventoryv1.Files{
			Files:    []*inventoryv1.File{{Key: "/etc/webshop/shop.conf", Path: "/etc/webshop/shop.conf", Type: "file", Mode: "0644", Sha256: confOld}},
			Patterns: []string{"/etc/webshop"},
		},
		Collectors: collectors,
	}
}

// deployed is the audit after the release went as declared.
func deployed(before *inventoryv1.Audit) *inventoryv1.Audit {
	a := proto.Clone(before).(*inventoryv1.Audit)
	a.Header.CollectedAt = "2026-03-01T22:03:00Z"
	a.Packages.Packages[1].Version = "2.4.0"
	a.Services.Units[0].UnitFileState = "enabled"
	a.Files.Files[0].Sha256 = confNew
	return a
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// agentReport is an agent's report of a deployment.
func agentReport(state, errMsg string, d time.Duration, steps ...*agentv1.StepResult) *agentv1.ApplyReport {
	return &agentv1.ApplyReport{DeploymentId: "d-1", Release: "webshop@2.4.0", Root: "/", State: state, Error: errMsg, Duration: d.Nanoseconds(), Steps: steps}
}

// sampleInput is a halted rollout with one node of every outcome the
// report distinguishes: web1 passed with the declared changes, web2
// failed with an unexpected package and a missing file (and over the
// node duration target), web3 unreachable, web4 rolled back by the agent
// after a failed verify with a clean proof, web5 still pending.
func sampleInput(t *testing.T) Input {
	t.Helper()
	m, err := manifest.Load(filepath.Join("testdata", "release.yaml"))
	if err != nil {
		t.Fatal(err)
	}

	pre1 := reportAudit("web1")
	cmp1 := compare.Classify(pre1, deployed(pre1), m.Expect, nil)

	pre2 := reportAudit("web2")
	post2 := deployed(pre2)
	post2.Packages.Packages = append(post2.Packages.Packages[:1],
		&inventoryv1.Package{Key: "dpkg/curl/amd64", Manager: "dpkg", Name: "curl", Version: "7.88.1-10", Architecture: "amd64"},
		post2.Packages.Packages[1])
	post2.Files.Files = nil
	cmp2 := compare.Classify(pre2, post2, m.Expect, nil)

	pre4 := reportAudit("web4")
	after4 := proto.Clone(pre4).(*inventoryv1.Audit)
	after4.Header.CollectedAt = "2026-03-01T22:12:00Z"
	proof4 := diff.Compare(pre4, after4)

	ok := func(list, name, plugin, outcome string, d time.Duration, changes ...*agentv1.Change) *agentv1.StepResult {
		return &agentv1.StepResult{List: list, Name: name, Plugin: plugin, Outcome: outcome, Duration: d.Nanoseconds(), Changes: changes}
	}
	install := ok("steps", "install", "dpkg", agentv1.OutcomeChanged, 1200*time.Millisecond,
		&agentv1.Change{Kind: "package", Name: "webshop", State: "present", Version: "2.4.0"})
	drain := ok("steps", "drain-lb", "manual", agentv1.OutcomeChanged, 95*time.Second)
	enable := ok("steps", "enable", "systemd", agentv1.OutcomeChanged, 300*time.Millisecond,
		&agentv1.Change{Kind: "service", Name: "webshop.service", State: "enabled"})
	homepage := ok("verify", "homepage", "httpcheck", agentv1.OutcomePassed, 40*time.Millisecond)
	failedHome := &agentv1.StepResult{List: "verify", Name: "homepage", Plugin: "httpcheck", Outcome: agentv1.OutcomeFailed,
		Duration: (2 * time.Second).Nanoseconds(), Attempts: 3, Error: "GET http://127.0.0.1:8080/: status 502, want 200"}

	ro := &controllerv1.RolloutRecord{
		Id:            "ro-20260301-0001",
		Release:       &controllerv1.ReleaseRef{Name: "webshop", Version: "2.4.0"},
		ReleaseDigest: "9c1e5b0b4f7d0c2a8e6f3b1d9a7c5e3f1b2d4c6e8a0f9b7d5c3e1a2b4d6f8e0a",
		Spec: &controllerv1.RolloutSpec{
			Release: &controllerv1.ReleaseRef{Name: "webshop", Version: "2.4.0"},
			Service: "shop", Strategy: "canary", Waves: []string{"1", "50%", "100%"}, MaxParallel: "2",
			MaxFailures: "1", Unreachable: "fail", Bake: "5m", GatesAfterWave: []uint32{1},
			Window: "Sun 22:00-Mon 04:00", OnFailure: "stop",
		},
		State:       state.RolloutHalted,
		Reason:      "wave 2 exceeded its failure budget: 3 failures, 1 allowed",
		CreatedBy:   "user:olivia",
		CreatedAt:   "2026-03-01T22:00:00Z",
		FinishedAt:  "2026-03-01T22:41:30Z",
		Approvers:   []string{"user:anna", "user:ben"},
		MaxParallel: 2,
		Waves: []*controllerv1.RolloutWave{
			{Index: 1, NodeIds: []string{"n-01"}, State: state.WaveDone, MaxFailures: 0, GateAfter: true, StartedAt: "2026-03-01T22:00:05Z", FinishedAt: "2026-03-01T22:03:15Z"},
			{Index: 2, NodeIds: []string{"n-02", "n-03", "n-04"}, State: state.WaveFailed, MaxFailures: 1, Failures: 3, StartedAt: "2026-03-01T22:15:00Z", FinishedAt: "2026-03-01T22:41:30Z"},
			{Index: 3, NodeIds: []string{"n-05"}, State: state.WavePending, MaxFailures: 1},
		},
		Nodes: []*controllerv1.RolloutNode{
			{
				NodeId: "n-05", Hostname: "web5", Wave: 3, State: state.NodePending, HasBaseline: true,
			},
			{
				NodeId: "n-01", Hostname: "web1", Wave: 1, State: state.NodePassed, Changed: true,
				StartedAt: "2026-03-01T22:00:05Z", FinishedAt: "2026-03-01T22:03:15Z", DurationSeconds: 190,
				PreAuditId: "a-0101", PostAuditId: "a-0102", HasBaseline: true,
				Confirmations: []*controllerv1.StepConfirmation{
					{Step: "drain-lb", By: "user:oscar", Note: "drained from lb-1", At: "2026-03-01T22:01:40Z"},
				},
				DeployReport:   agentReport(agentv1.StateSucceeded, "", 97*time.Second, install, drain, enable, homepage),
				ComparisonJson: mustJSON(t, cmp1),
			},
			{
				NodeId: "n-02", Hostname: "web2", Wave: 2, State: state.NodeFailed, Changed: true,
				Error:     "before/after: 1 missing, 1 unexpected",
				StartedAt: "2026-03-01T22:15:00Z", FinishedAt: "2026-03-01T22:21:05Z", DurationSeconds: 365, SlaBreached: true,
				PreAuditId: "a-0201", PostAuditId: "a-0202", HasBaseline: true, DriftChanges: 1, DriftSummary: "1 package upgraded",
				KnownErrors:    []string{"KE-2: crashes on RTL8111 NICs with old kernels"},
				DeployReport:   agentReport(agentv1.StateSucceeded, "", 5*time.Minute, install, drain, enable, homepage),
				ComparisonJson: mustJSON(t, cmp2),
			},
			{
				NodeId: "n-03", Hostname: "web3", Wave: 2, State: state.NodeUnreachable,
				Error:     "disconnected for more than 5m0s during deploying",
				StartedAt: "2026-03-01T22:15:00Z", FinishedAt: "2026-03-01T22:25:00Z", DurationSeconds: 600,
				UnreachableSince: "2026-03-01T22:09:00Z",
			},
			{
				NodeId: "n-04", Hostname: "web4", Wave: 2, State: state.NodeRolledBack,
				Error:     "verify homepage failed: status 502",
				StartedAt: "2026-03-01T22:15:00Z", FinishedAt: "2026-03-01T22:19:00Z", DurationSeconds: 240,
				PreAuditId: "a-0401", RollbackAuditId: "a-0403", HasBaseline: true,
				DeployReport: agentReport(agentv1.StateRolledBack, "verify homepage failed", 3*time.Minute,
					install, drain, enable, failedHome,
					ok(agentv1.ListUndo, "enable", "systemd", agentv1.OutcomeRolledBack, 200*time.Millisecond),
					ok(agentv1.ListUndo, "install", "dpkg", agentv1.OutcomeRolledBack, 900*time.Millisecond)),
				RollbackDiffJson: mustJSON(t, proof4),
			},
		},
	}
	log := []*controllerv1.AuditLogEntry{
		{Sequence: 41, Time: "2026-03-01T22:00:00Z", Actor: "user:olivia", Action: "rollout.start", Object: "rollout/ro-20260301-0001", Details: map[string]string{"release": "webshop@2.4.0", "nodes": "5"}},
		{Sequence: 42, Time: "2026-03-01T22:01:40Z", Actor: "user:oscar", Action: "rollout.confirm", Object: "rollout/ro-20260301-0001", Details: map[string]string{"node": "web1", "step": "drain-lb"}},
		{Sequence: 43, Time: "2026-03-01T22:14:58Z", Actor: "user:olivia", Action: "rollout.resume", Object: "rollout/ro-20260301-0001"},
		{Sequence: 44, Time: "2026-03-01T22:41:30Z", Actor: "system", Action: "rollout.halt", Object: "rollout/ro-20260301-0001", Details: map[string]string{"wave": "2", "failures": "3"}},
	}
	return Input{
		Rollout: ro,
		Release: &controllerv1.ReleaseRecord{Name: "webshop", Version: "2.4.0", Digest: ro.ReleaseDigest,
			Tests: []*controllerv1.TestRecord{
				{Tester: "user:tina", Result: "fail", Note: "homepage 502", RecordedAt: "2026-02-27T10:00:00Z"},
				{Tester: "user:tom", Result: "pass", RecordedAt: "2026-02-28T10:00:00Z"},
			}},
		Manifest:    m,
		Log:         log,
		GeneratedAt: time.Date(2026, 3, 1, 23, 0, 0, 0, time.UTC),
		Location:    cet,
	}
}

// cet is the controller's time zone in the tests: an hour east of UTC,
// named.
var cet = time.FixedZone("CET", 3600)

// node returns the rollout's node with hostname host.
func node(ro *controllerv1.RolloutRecord, host string) *controllerv1.RolloutNode {
	for _, n := range ro.Nodes {
		if n.Hostname == host {
			return n
		}
	}
	panic("no node " + host)
}

func TestRenderReportGolden(t *testing.T) {
	tests := []struct {
		format, file, mime string
	}{
		{FormatText, "rollout.txt", "text/plain; charset=utf-8"},
		{FormatJSON, "rollout.json", "application/json"},
		{FormatMarkdown, "rollout.md", "text/markdown; charset=utf-8"},
		{FormatHTML, "rollout.html", "text/html; charset=utf-8"},
		{"", "rollout.txt", "text/plain; charset=utf-8"},
	}
	in := sampleInput(t)
	for _, tt := range tests {
		t.Run(cmpOrName(tt.format), func(t *testing.T) {
			got, mime, err := Render(in, tt.format)
			if err != nil {
				t.Fatal(err)
			}
			if mime != tt.mime {
				t.Errorf("MIME type = %q, want %q", mime, tt.mime)
			}
			testutil.Golden(t, filepath.Join("testdata", "golden", tt.file), got)
		})
	}
}

func cmpOrName(format string) string {
	if format == "" {
		return "default"
	}
	return format
}

func TestRenderReportUnknownFormat(t *testing.T) {
	_, _, err := Render(sampleInput(t), "pdf")
	if !errors.Is(err, ErrFormat) {
		t.Fatalf("err = %v, want ErrFormat", err)
	}
	for _, f := range Formats {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not name the accepted format %q", err, f)
		}
	}
	if _, _, err := Render(Input{}, FormatText); err == nil {
		t.Error("a report without a rollout rendered")
	}
}

// TestBuildReport checks the figures the renderers draw from.
func TestBuildReport(t *testing.T) {
	r := Build(sampleInput(t))

	wantCounts := Counts{Nodes: 5, Passed: 1, Failed: 1, Unreachable: 1, RolledBack: 1, Pending: 1}
	if diff := cmp.Diff(wantCounts, r.Summary.Counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if got, want := r.Summary.Outcome, "5 nodes: 1 passed, 1 failed, 1 unreachable, 0 skipped, 1 rolled back, 1 pending"; got != want {
		t.Errorf("outcome = %q, want %q", got, want)
	}
	if got, want := r.Summary.Duration, "41m30s"; got != want {
		t.Errorf("duration = %q, want %q", got, want)
	}
	// The summary names who tested the release (a pass; not the failed
	// test before it) and who approved it.
	if diff := cmp.Diff([]string{"user:tom"}, r.Summary.Testers); diff != "" {
		t.Errorf("testers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"user:anna", "user:ben"}, r.Summary.Approvers); diff != "" {
		t.Errorf("approvers (-want +got):\n%s", diff)
	}

	type wave struct {
		Index      uint32
		Nodes      []string
		Failures   int
		OverBudget bool
	}
	var waves []wave
	for _, w := range r.Waves {
		waves = append(waves, wave{w.Index, w.Nodes, w.Failures, w.OverBudget})
	}
	wantWaves := []wave{{1, []string{"web1"}, 0, false}, {2, []string{"web2", "web3", "web4"}, 3, true}, {3, []string{"web5"}, 0, false}}
	if diff := cmp.Diff(wantWaves, waves); diff != "" {
		t.Errorf("waves (-want +got):\n%s", diff)
	}

	var order []string
	for _, n := range r.Nodes {
		order = append(order, n.Hostname+" "+n.State)
	}
	if diff := cmp.Diff([]string{"web1 passed", "web2 failed", "web3 unreachable", "web4 rolled_back", "web5 pending"}, order); diff != "" {
		t.Errorf("node order (-want +got):\n%s", diff)
	}

	web2 := r.Nodes[1]
	if web2.Comparison == nil {
		t.Fatal("web2 has no comparison")
	}
	var unexpected, missing []string
	for _, it := range web2.Comparison.Unexpected {
		unexpected = append(unexpected, it.What)
	}
	for _, it := range web2.Comparison.Missing {
		missing = append(missing, it.What)
	}
	if diff := cmp.Diff([]string{"package curl added (7.88.1-10)"}, unexpected); diff != "" {
		t.Errorf("web2 unexpected (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"file /etc/webshop/shop.conf absent"}, missing); diff != "" {
		t.Errorf("web2 missing (-want +got):\n%s", diff)
	}

	web4 := r.Nodes[3]
	if web4.Rollback == nil || !web4.Rollback.Proven || web4.Rollback.Verdict != "after-state equals pre-audit" {
		t.Errorf("web4 rollback = %+v, want proven, after-state equals pre-audit", web4.Rollback)
	}
	if web4.Deployment == nil || len(web4.Deployment.Steps) != 6 || web4.Deployment.Steps[3].Attempts != 3 {
		t.Errorf("web4 deployment = %+v, want 6 steps, the failed verify with 3 attempts", web4.Deployment)
	}

	type target struct{ Kind, Target, Measured, Status string }
	var sla []target
	for _, s := range r.SLA.Targets {
		sla = append(sla, target{s.Kind, s.Target, s.Measured, s.Status})
	}
	wantSLA := []target{
		{state.BreachNodeDuration, "<= 5m0s", "max 6m5s (web2), median 4m0s over 3 nodes", "breached"},
		{state.BreachRolloutDuration, "<= 30m0s", "41m30s", "breached"},
		{state.BreachSuccessRate, ">= 95%", "25% (1 of 4 finished nodes passed; 1 unreachable counted as failed)", "breached"},
	}
	if diff := cmp.Diff(wantSLA, sla); diff != "" {
		t.Errorf("SLA (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"web2"}, r.SLA.Targets[0].BreachedBy); diff != "" {
		t.Errorf("node duration breached by (-want +got):\n%s", diff)
	}

	var kes []string
	for _, k := range r.KnownErrors {
		kes = append(kes, k.ID+" "+strings.Join(k.Nodes, ","))
	}
	if diff := cmp.Diff([]string{"KE-1 ", "KE-2 web2"}, kes); diff != "" {
		t.Errorf("known errors (-want +got):\n%s", diff)
	}
	if got := r.AuditTrail[0].Details; got != "nodes=5 release=webshop@2.4.0" {
		t.Errorf("audit trail details = %q, want sorted key=value pairs", got)
	}
}

func TestReportSLA(t *testing.T) {
	tests := []struct {
		name  string
		sla   manifest.SLA
		edit  func(*controllerv1.RolloutRecord)
		want  []string // kind: status
		clean bool     // nothing breached
	}{
		{
			name: "no targets",
			want: []string{"node_duration: no target", "rollout_duration: no target", "success_rate: no target"},
		},
		{
			name:  "all met",
			sla:   manifest.SLA{MaxNodeDuration: 20 * time.Minute, MaxRolloutDuration: time.Hour, MinSuccessRate: 0.25},
			edit:  func(ro *controllerv1.RolloutRecord) { node(ro, "web2").SlaBreached = false },
			want:  []string{"node_duration: met", "rollout_duration: met", "success_rate: met"},
			clean: true,
		},
		{
			name: "running: rollout duration pending, nothing finished yet",
			sla:  manifest.SLA{MaxNodeDuration: 20 * time.Minute, MaxRolloutDuration: 2 * time.Hour, MinSuccessRate: 0.9},
			edit: func(ro *controllerv1.RolloutRecord) {
				ro.State, ro.FinishedAt = state.RolloutRunning, ""
				for _, n := range ro.Nodes {
					n.State, n.DurationSeconds, n.FinishedAt, n.SlaBreached = state.NodeDeploying, 0, "", false
				}
			},
			want:  []string{"node_duration: pending", "rollout_duration: pending", "success_rate: pending"},
			clean: true,
		},
		{
			name: "running but already over the rollout duration",
			sla:  manifest.SLA{MaxRolloutDuration: 30 * time.Minute},
			edit: func(ro *controllerv1.RolloutRecord) { ro.State, ro.FinishedAt = state.RolloutRunning, "" },
			want: []string{"node_duration: no target", "rollout_duration: breached", "success_rate: no target"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := sampleInput(t)
			in.Manifest.SLA = tt.sla
			if tt.edit != nil {
				tt.edit(in.Rollout)
			}
			r := Build(in)
			var got []string
			for _, s := range r.SLA.Targets {
				got = append(got, s.Kind+": "+s.Status)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("SLA (-want +got):\n%s", diff)
			}
			breached := slices.ContainsFunc(r.SLA.Targets, func(s SLATarget) bool { return s.Status == "breached" })
			if r.SLA.Breached != breached || (tt.clean && breached) {
				t.Errorf("Breached = %v, targets breached = %v, want clean = %v", r.SLA.Breached, breached, tt.clean)
			}
		})
	}
}

// tracking is a copy of a whose files section tracked paths (each a file).
func tracking(a *inventoryv1.Audit, paths ...string) *inventoryv1.Audit {
	a = proto.Clone(a).(*inventoryv1.Audit)
	a.Files = &inventoryv1.Files{Patterns: paths}
	for _, p := range paths {
		a.Files.Files = append(a.Files.Files, &inventoryv1.File{Key: p, Path: p, Type: "file", Mode: "0644"})
	}
	a.Collectors = append(a.Collectors, &inventoryv1.CollectorStatus{Name: "files", Section: "files", State: inventoryv1.CollectorStatus_STATE_OK})
	return a
}

func TestReportRollbackProof(t *testing.T) {
	pre := reportAudit("web4")
	differs := proto.Clone(pre).(*inventoryv1.Audit)
	differs.Packages.Packages[1].Version = "2.4.0"
	failedCollector := proto.Clone(pre).(*inventoryv1.Audit)
	failedCollector.Collectors[1].State = inventoryv1.CollectorStatus_STATE_ERROR
	failedCollector.Collectors[1].Message = "dbus down"

	tests := []struct {
		name        string
		state       state.Node
		diffJSON    []byte
		wantProven  bool
		wantVerdict string
		wantDiffs   []string
		wantProblem bool
	}{
		{name: "clean", state: state.NodeRolledBack, diffJSON: mustJSON(t, diff.Compare(pre, proto.Clone(pre).(*inventoryv1.Audit))),
			wantProven: true, wantVerdict: "after-state equals pre-audit"},
		{name: "differs", state: state.NodeRolledBack, diffJSON: mustJSON(t, diff.Compare(pre, differs)),
			wantVerdict: "after-state differs from the pre-audit: 1 package upgraded",
			wantDiffs:   []string{"package webshop upgraded 2.3.1 → 2.4.0"}},
		{name: "not comparable", state: state.NodeRolledBack, diffJSON: mustJSON(t, diff.Compare(pre, failedCollector)),
			wantVerdict: "not proven: no changes in the comparable sections; services not comparable"},
		{name: "a path not compared", state: state.NodeRolledBack, diffJSON: mustJSON(t, diff.Compare(tracking(pre, "/etc/a"), tracking(pre, "/etc/a", "/etc/b"))),
			wantVerdict: "not proven: no changes where both audits looked; 1 tracked path not compared: /etc/b"},
		{name: "no audit yet", state: state.NodeRollingBack, wantVerdict: "not proven: no after-rollback audit yet"},
		{name: "rollback failed", state: state.NodeRollbackFailed, wantVerdict: "not proven: the rollback failed before its audit"},
		{name: "unreadable", state: state.NodeRolledBack, diffJSON: []byte("{"), wantVerdict: "not proven: the rollback diff is unreadable", wantProblem: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := buildNode(&controllerv1.RolloutNode{NodeId: "n-04", State: tt.state, RollbackDiffJson: tt.diffJSON}, time.UTC)
			rb := n.Rollback
			if rb == nil {
				t.Fatal("no rollback in the node's report")
			}
			if rb.Proven != tt.wantProven || rb.Verdict != tt.wantVerdict {
				t.Errorf("rollback = %v %q, want %v %q", rb.Proven, rb.Verdict, tt.wantProven, tt.wantVerdict)
			}
			if diff := cmp.Diff(tt.wantDiffs, rb.Differences); diff != "" {
				t.Errorf("differences (-want +got):\n%s", diff)
			}
			if got := len(n.Problems) > 0; got != tt.wantProblem {
				t.Errorf("problems = %q, want some: %v", n.Problems, tt.wantProblem)
			}
		})
	}
}

// TestReportUnreadableResults: a node's stored result that does not
// decode is a problem listed with the node, not a failed report; so is
// an agent's report that a controller before schema version 10 stored as
// JSON its migration could not read.
func TestReportUnreadableResults(t *testing.T) {
	in := sampleInput(t)
	web2, web4 := node(in.Rollout, "web2"), node(in.Rollout, "web4")
	web2.DeployReport, web2.DeployReportJson = nil, []byte("not json")
	web2.ComparisonJson = []byte(`{"summary": 3}`)
	web4.RollbackReportJson = []byte(`{"state":`)
	out, _, err := Render(in, FormatText)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Problem: deployment report unreadable: stored as JSON that is not an agent's report",
		"Problem: before/after comparison unreadable",
		"Problem: rollback report unreadable: stored as JSON that is not an agent's report",
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("text report lacks %q", want)
		}
	}
}

// TestReportShowsAgentReport: the report shows every field of the
// agent's ApplyReport it reads, and not the steps' outputs.
func TestReportShowsAgentReport(t *testing.T) {
	rep := agentReport(agentv1.StateFailed, "step install failed", 2500*time.Millisecond,
		&agentv1.StepResult{List: "steps", Name: "install", Plugin: "dpkg", Outcome: agentv1.OutcomeFailed, Duration: 2e9,
			Attempts: 2, Error: "dpkg: conflict", Outputs: map[string]string{"token": "s3cret"},
			Changes: []*agentv1.Change{{Kind: "file", Name: "/etc/x", Sha256: confNew}}})
	got := agentRun(rep)
	want := &Run{State: "failed", Error: "step install failed", Duration: "2.5s", DurationSeconds: 2.5, Steps: []Step{{
		List: "steps", Name: "install", Plugin: "dpkg", Outcome: "failed", Duration: "2s", DurationSeconds: 2,
		Attempts: 2, Error: "dpkg: conflict", Changes: []string{"file /etc/x sha256 222222222222"},
	}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("shown run (-want +got):\n%s", diff)
	}
	if strings.Contains(string(mustJSON(t, got)), "s3cret") {
		t.Error("the report carries a step's outputs")
	}
}

func TestReportJSONRoundTrip(t *testing.T) {
	out, _, err := Render(sampleInput(t), FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	f, err := Inspect(out)
	if err != nil || f.Edited() || back.Digest != f.Digest {
		t.Errorf("the JSON report's digest %q, the file %+v, %v: want the digest the content hashes to", back.Digest, f, err)
	}
	want := Build(sampleInput(t))
	want.Digest = back.Digest
	if diff := cmp.Diff(want, &back); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
}

// TestReportTimes: every time a report shows is to the second, in the
// controller's zone with its name, in every format; none is a stamp.
func TestReportTimes(t *testing.T) {
	shown := regexp.MustCompile(`\b2026-03-0[12] \d\d:\d\d:\d\d CET\b`)
	stamp := regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d`)
	for _, format := range Formats {
		out, _, err := Render(sampleInput(t), format)
		if err != nil {
			t.Fatal(err)
		}
		if format == FormatJSON {
			// The before/after comparison is the stored record as it is
			// (internal/compare.Result), with the audits' own times.
			out = regexp.MustCompile(`"collected_at": "[^"]*"`).ReplaceAll(out, nil)
		}
		if got := stamp.FindAllString(string(out), -1); len(got) > 0 {
			t.Errorf("%s report shows stored stamps %q", format, got)
		}
		// Generated, created, finished; 3 waves' and 4 nodes' starts and
		// finishes (but web5's); one confirmation; 4 audit-log entries.
		if got, want := len(shown.FindAllString(string(out), -1)), 3+4+8+1+4; got < want {
			t.Errorf("%s report shows %d times to the second with the zone, want at least %d", format, got, want)
		}
	}
}

func TestReportTextFitsWidth(t *testing.T) {
	in := sampleInput(t)
	node(in.Rollout, "web2").Error = strings.Repeat("a-very-long-error-message-without-spaces-", 6)
	in.Rollout.Reason = strings.Repeat("the wave was halted because ", 8)
	out, _, err := Render(in, FormatText)
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(out), "\n") {
		if n := utf8.RuneCountInString(line); n > 100 {
			t.Errorf("line %d has %d columns, want <= 100: %q", i+1, n, line)
		}
	}
}

// hostile puts markup and control characters where stored data goes.
func hostile(in Input) Input {
	in.Rollout.Reason = `<script>alert("reason")</script>`
	node(in.Rollout, "web2").Error = `<img src="http://evil.example/x.png" onerror="alert(1)">`
	node(in.Rollout, "web1").Confirmations[0].Note = "</td></tr><script>alert(2)</script>\x1b[31m"
	in.Log[0].Details["note"] = `<a href="https://evil.example/">click</a>`
	return in
}

func TestReportHTML(t *testing.T) {
	out, _, err := Render(hostile(sampleInput(t)), FormatHTML)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}

	var (
		rows     []string // the text of each table row
		elements = map[string]int{}
		walk     func(*html.Node)
	)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			elements[n.Data]++
			for _, a := range n.Attr {
				switch {
				case a.Key == "src" || a.Key == "href" || strings.HasPrefix(a.Key, "on"):
					t.Errorf("<%s %s=%q>: the page must not refer to anything or run anything", n.Data, a.Key, a.Val)
				case a.Key == "style" && strings.Contains(a.Val, "url("):
					t.Errorf("<%s style=%q> loads a resource", n.Data, a.Val)
				}
			}
			if n.Data == "tr" {
				rows = append(rows, strings.Join(strings.Fields(textOf(n)), " "))
			}
			if n.Data == "style" && (strings.Contains(textOf(n), "url(") || strings.Contains(textOf(n), "@import")) {
				t.Error("the style sheet loads a resource")
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)

	for _, el := range []string{"script", "img", "link", "iframe", "object", "embed", "a"} {
		if elements[el] > 0 {
			t.Errorf("the page has %d <%s> elements, want none", elements[el], el)
		}
	}
	if elements["style"] != 1 {
		t.Errorf("the page has %d <style> elements, want one inline style sheet", elements["style"])
	}

	// The classified diff is in the page, each class labelled in words.
	for _, want := range []string{
		"EXPECTED packages package webshop upgraded 2.3.1 → 2.4.0 package webshop present >= 2.4.0",
		"EXPECTED services service webshop.service enabled: unit_file_state disabled → enabled service webshop.service enabled",
		"UNEXPECTED packages package curl added (7.88.1-10)",
		"MISSING files file /etc/webshop/shop.conf absent file /etc/webshop/shop.conf present sha256 222222222222",
	} {
		if !slices.Contains(rows, want) {
			t.Errorf("no table row %q in the page", want)
		}
	}

	// Markup in the data is text, not markup.
	page := string(out)
	for _, want := range []string{
		"&lt;script&gt;alert(&#34;reason&#34;)&lt;/script&gt;",
		"&lt;img src=&#34;http://evil.example/x.png&#34;",
		"&lt;/td&gt;&lt;/tr&gt;&lt;script&gt;alert(2)&lt;/script&gt;",
		"&lt;a href=&#34;https://evil.example/&#34;&gt;click&lt;/a&gt;",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks the escaped %q", want)
		}
	}
	for _, marker := range []string{"@media print", "break-inside: avoid"} {
		if !strings.Contains(page, marker) {
			t.Errorf("the style sheet lacks %q", marker)
		}
	}
}

// TestReportHTMLWrapsLongWords: every digest on the page sits in an
// element whose style lets it wrap anywhere, on the screen and on paper,
// and so does every table cell.
func TestReportHTMLWrapsLongWords(t *testing.T) {
	out, _, err := Render(sampleInput(t), FormatHTML)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	var sheet string
	wraps := map[string]bool{} // selector → its rule wraps anywhere
	digest := regexp.MustCompile(`[0-9a-f]{64}`)
	var found int
	var walk func(n *html.Node, classes []string)
	walk = func(n *html.Node, classes []string) {
		if n.Type == html.ElementNode {
			for _, a := range n.Attr {
				if a.Key == "class" {
					for _, c := range strings.Fields(a.Val) {
						classes = append(slices.Clip(classes), "."+c)
					}
				}
			}
			classes = append(slices.Clip(classes), n.Data)
			if n.Data == "style" {
				sheet = textOf(n)
			}
		}
		if n.Type == html.TextNode && digest.MatchString(n.Data) {
			found++
			if !slices.ContainsFunc(classes, func(c string) bool { return wraps[c] }) {
				t.Errorf("digest %q is in %v, none of which wraps anywhere", strings.TrimSpace(n.Data), classes)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, classes)
		}
	}
	// The rules outside @media print, and those inside it, by selector.
	rule := regexp.MustCompile(`(?m)^([^{}@\n]+)\{([^}]*)\}`)
	page := string(out)
	start, end := strings.Index(page, "<style>"), strings.Index(page, "</style>")
	for _, m := range rule.FindAllStringSubmatch(page[start:end], -1) {
		if strings.Contains(m[2], "overflow-wrap: anywhere") {
			for _, sel := range strings.Split(m[1], ",") {
				wraps[strings.TrimSpace(sel)] = true
			}
		}
	}
	walk(doc, nil)
	if sheet == "" || found == 0 {
		t.Fatalf("no style sheet (%d bytes) or no digest on the page (%d)", len(sheet), found)
	}
	for _, sel := range []string{"td", "th", ".mono"} {
		if !wraps[sel] {
			t.Errorf("%s does not wrap anywhere", sel)
		}
	}
}

func textOf(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
			b.WriteString(" ")
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

// TestReportTextAndMarkdownNeutraliseData: stored data cannot inject
// terminal escapes into the text report or markup into the Markdown.
func TestReportTextAndMarkdownNeutraliseData(t *testing.T) {
	in := hostile(sampleInput(t))
	text, _, err := Render(in, FormatText)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsRune(text, 0x1b) {
		t.Error("the text report carries a raw escape character")
	}
	mdOut, _, err := Render(in, FormatMarkdown)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<script>", "<img", "<a href", "</td>"} {
		if bytes.Contains(mdOut, []byte(bad)) {
			t.Errorf("the Markdown report carries raw markup %q", bad)
		}
	}
}

// TestReportRecovery: an interrupted node names its step and its
// retries, a resolved one who resolved it, why, and the audit's diff
// from the pre-audit, in every format.
func TestReportRecovery(t *testing.T) {
	pre := reportAudit("web4")
	after := proto.Clone(pre).(*inventoryv1.Audit)
	after.Packages.Packages[1].Version = "2.4.0"
	ro := &controllerv1.RolloutRecord{
		Id: "ro-1", Release: &controllerv1.ReleaseRef{Name: "webshop", Version: "2.4.0"}, State: state.RolloutHalted,
		Nodes: []*controllerv1.RolloutNode{
			{NodeId: "n-1", Hostname: "web1", Wave: 1, State: state.NodeInterrupted, InterruptedStep: "steps/restart", Retries: 2,
				Error: "step steps/restart was interrupted"},
			{NodeId: "n-2", Hostname: "web2", Wave: 1, State: state.NodeResolved, ResolvedBy: "user:olivia",
				ResolvedNote: "removed the half-installed package, INC-2231", ResolvedAt: "2026-03-01T23:00:00Z",
				ResolveAuditId: "audit-after", ResolveDiffJson: mustJSON(t, diff.Compare(pre, after))},
		},
	}
	in := Input{Rollout: ro, Release: &controllerv1.ReleaseRecord{Name: "webshop", Version: "2.4.0"}}
	r := Build(in)
	if c := r.Summary.Counts; c.Interrupted != 1 || c.Resolved != 1 || c.Nodes != 2 {
		t.Errorf("counts %+v, want 1 interrupted and 1 resolved of 2", c)
	}
	res := r.Nodes[1].Resolution
	if res == nil || res.By != "user:olivia" || res.AuditID != "audit-after" || len(res.Differences) != 1 ||
		!strings.Contains(res.Verdict, "differs from the pre-audit") {
		t.Fatalf("web2's resolution = %+v", res)
	}
	for _, format := range []string{FormatText, FormatMarkdown, FormatHTML, FormatJSON} {
		out, _, err := Render(in, format)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"steps/restart", "INC-2231", "user:olivia", "audit-after", "webshop upgraded 2.3.1 → 2.4.0"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("%s report lacks %q", format, want)
			}
		}
		if format != FormatJSON && !strings.Contains(string(out), "Retried 2 time") {
			t.Errorf("%s report does not say web1 was retried twice", format)
		}
	}
}

// TestDriftWords: the pre-check's drift in words; a check that could not
// compare every tracked path does not read as matching the baseline.
func TestDriftWords(t *testing.T) {
	tests := []struct {
		name string
		d    Drift
		want string
	}{
		{name: "no pre-audit", want: "not checked yet (no pre-audit)"},
		{name: "no baseline", d: Drift{Checked: true}, want: "not checked: the node has no CMS baseline"},
		{name: "matches", d: Drift{Checked: true, HasBaseline: true, Summary: "no changes"}, want: "none (matches its CMS baseline)"},
		{name: "paths not compared", d: Drift{Checked: true, HasBaseline: true, PathsNotCompared: 1, Summary: "no changes where both audits looked; 1 tracked path not compared: /etc/a"},
			want: "none where both audits looked, but not all compared: no changes where both audits looked; 1 tracked path not compared: /etc/a"},
		{name: "drift", d: Drift{Checked: true, HasBaseline: true, Changes: 1, Summary: "1 file changed"}, want: "1 change: 1 file changed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := driftWords(tt.d); got != tt.want {
				t.Errorf("driftWords = %q, want %q", got, tt.want)
			}
		})
	}
}
