package integration

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/cairn-ops/cairn/controller/rollout/state"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// checkCountsAgree checks that every view of rollout id tells the same
// story, once nothing of it is in flight: the counts stored with it and
// its nodes' states (each node in exactly one count), its waves (none
// left open once it is over), `rollout status` (table and -o json),
// `rollout watch`, the report in every format, and /metrics.
func checkCountsAgree(t *testing.T, f *fleet, id string) {
	t.Helper()
	rec := f.status(t, id)
	c := rec.GetCounts()
	if want := state.Count(rec.GetNodes()); !proto.Equal(want, c) {
		t.Errorf("rollout %s: stored counts %v, its nodes' states count %v", id, c, want)
	}
	if state.Sum(c) != c.GetNodes() || int(c.GetNodes()) != len(rec.GetNodes()) {
		t.Errorf("rollout %s: counts %v do not add up to its %d nodes", id, c, len(rec.GetNodes()))
	}
	if state.RolloutOver(rec.GetState()) && c.GetRunning() == 0 {
		for _, w := range rec.GetWaves() {
			switch w.GetState() {
			case state.WaveDone, state.WaveFailed, state.WaveCancelled:
			default:
				t.Errorf("rollout %s is %s, but wave %d is still %s", id, state.Name(rec.GetState()), w.GetIndex(), state.Name(w.GetState()))
			}
		}
	}

	// status, the table: every node's row has its state; the counts line
	// has every count that is not zero.
	text := f.must(t, operator, "rollout", "status", id)
	for _, n := range rec.GetNodes() {
		row := regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(f.hostOf(n.GetNodeId())) + `\s+\d+\s+(\S+)`)
		if m := row.FindStringSubmatch(text); m == nil || m[1] != state.Name(n.GetState()) {
			t.Errorf("rollout status %s: node %s's row says %v, the record %s:\n%s", id, f.hostOf(n.GetNodeId()), m, state.Name(n.GetState()), text)
		}
	}
	countsLine := regexp.MustCompile(`(?m)^counts: (.*)$`).FindStringSubmatch(text)
	if countsLine == nil {
		t.Errorf("rollout status %s has no counts line:\n%s", id, text)
	} else {
		for word, n := range countWords(c) {
			if n > 0 && !strings.Contains(countsLine[1], fmt.Sprintf("%d %s", n, word)) {
				t.Errorf("rollout status %s: counts line %q lacks %d %s", id, countsLine[1], n, word)
			}
		}
	}

	// The report: the same counts, node and wave states, in every format.
	r := f.reportJSON(t, id)
	rc := r.Summary.Counts
	got := map[string]int{"passed": rc.Passed, "failed": rc.Failed, "unreachable": rc.Unreachable, "skipped": rc.Skipped,
		"interrupted": rc.Interrupted, "rolled back": rc.RolledBack, "rollback failed": rc.RollbackFailed, "resolved": rc.Resolved,
		"aborted": rc.Aborted, "running": rc.Running, "pending": rc.Pending}
	for word, n := range countWords(c) {
		if got[word] != int(n) {
			t.Errorf("report %s -o json counts %d %s, the rollout %d", id, got[word], word, n)
		}
	}
	if rc.Nodes != int(c.GetNodes()) || r.Summary.State != state.Name(rec.GetState()) {
		t.Errorf("report %s -o json: %d nodes, state %s; the rollout %d, %s", id, rc.Nodes, r.Summary.State, c.GetNodes(), state.Name(rec.GetState()))
	}
	for _, rn := range r.Nodes {
		for _, n := range rec.GetNodes() {
			if n.GetNodeId() == rn.NodeID && rn.State != state.Name(n.GetState()) {
				t.Errorf("report %s -o json: node %s %s, the rollout %s", id, rn.NodeID, rn.State, state.Name(n.GetState()))
			}
		}
	}
	for i, w := range rec.GetWaves() {
		if i >= len(r.Waves) {
			t.Errorf("report %s -o json has %d waves, the rollout %d", id, len(r.Waves), len(rec.GetWaves()))
			break
		}
		if rw := r.Waves[i]; rw.State != state.Name(w.GetState()) || rw.Failures != int(state.WaveFailures(w, rec.GetNodes())) {
			t.Errorf("report %s -o json: wave %d %s with %d failures; the rollout %s with %d", id, w.GetIndex(), rw.State, rw.Failures,
				state.Name(w.GetState()), state.WaveFailures(w, rec.GetNodes()))
		}
	}
	parts := strings.Split(strings.SplitN(r.Summary.Outcome, ": ", 2)[1], ", ")
	for _, format := range []string{"text", "markdown", "html"} {
		// Long lines wrap in the text report: compare words, not lines.
		out := strings.Join(strings.Fields(f.report(t, id, format)), " ")
		for _, p := range parts {
			if !strings.Contains(out, p) {
				t.Errorf("report %s -o %s lacks %q of the outcome %q", id, format, p, r.Summary.Outcome)
			}
		}
	}

	// watch, on a rollout that is not running: its one record, a line per
	// node that started (it exits 1 unless the rollout completed).
	if state.Stopped(rec) {
		lines := f.c.ctlAs(t, f.tokens[operator], "rollout", "watch", id).stdout
		for _, n := range rec.GetNodes() {
			if n.GetState() == state.NodePending {
				continue
			}
			want := fmt.Sprintf("%s wave %d %s", f.hostOf(n.GetNodeId()), n.GetWave(), state.Name(n.GetState()))
			if !strings.Contains(lines, want) {
				t.Errorf("rollout watch %s lacks %q:\n%s", id, want, lines)
			}
		}
	}

	// /metrics: the rollout's nodes by state.
	resp, err := http.Get("http://" + f.c.metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for name, n := range map[string]uint32{
		"passed": c.GetPassed(), "failed": c.GetFailed(), "unreachable": c.GetUnreachable(), "skipped": c.GetSkipped(),
		"interrupted": c.GetInterrupted(), "rolled_back": c.GetRolledBack(), "rollback_failed": c.GetRollbackFailed(),
		"resolved": c.GetResolved(), "aborted": c.GetAborted(), "running": c.GetRunning(), "pending": c.GetPending(),
	} {
		series := fmt.Sprintf("cairn_rollout_nodes{rollout=%q,state=%q} %d\n", id, name, n)
		if !strings.Contains(string(body), series) {
			t.Errorf("/metrics lacks %q:\n%s", strings.TrimSpace(series), grepLines(string(body), "cairn_rollout_nodes"))
		}
	}
}

// countWords are a rollout's counts by the words status and the report
// use for them.
func countWords(c *controllerv1.RolloutCounts) map[string]uint32 {
	return map[string]uint32{
		"passed": c.GetPassed(), "failed": c.GetFailed(), "unreachable": c.GetUnreachable(), "skipped": c.GetSkipped(),
		"interrupted": c.GetInterrupted(), "rolled back": c.GetRolledBack(), "rollback failed": c.GetRollbackFailed(),
		"resolved": c.GetResolved(), "aborted": c.GetAborted(), "running": c.GetRunning(), "pending": c.GetPending(),
	}
}

// grepLines are the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
