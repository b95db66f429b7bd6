package daemon

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/controller/blob"
	"github.com/cairn-ops/cairn/controller/dml"
	"github.com/cairn-ops/cairn/controller/rollout/state"
	"github.com/cairn-ops/cairn/controller/store"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

type fixedConnected int

func (f fixedConnected) Connected() int { return int(f) }

// exposition is a parsed scrape: sample values by series (name and
// labels as written), and each family's type.
type exposition struct {
	samples map[string]float64
	types   map[string]string
}

// parseExposition parses the Prometheus text format strictly enough to
// catch what a hand-written exporter gets wrong: every sample belongs to
// a family announced by HELP and TYPE before it, families are not split
// or repeated, label values are quoted, values are numbers, histograms
// have cumulative buckets ending in +Inf that equal _count.
func parseExposition(text string) (exposition, error) {
	e := exposition{samples: map[string]float64{}, types: map[string]string{}}
	if !strings.HasSuffix(text, "\n") {
		return e, errors.New("output does not end with a newline")
	}
	helped := map[string]bool{}
	// Samples belong to the family of the last TYPE line; TYPE lines are
	// not repeated, so a family cannot be split.
	var family string
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		fail := func(format string, args ...any) error {
			return fmt.Errorf("line %d %q: %s", i+1, line, fmt.Sprintf(format, args...))
		}
		if rest, ok := strings.CutPrefix(line, "# HELP "); ok {
			name, help, _ := strings.Cut(rest, " ")
			if helped[name] || help == "" {
				return e, fail("repeated or empty HELP")
			}
			helped[name] = true
			continue
		}
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(rest, " ")
			switch {
			case !helped[name]:
				return e, fail("TYPE before HELP")
			case e.types[name] != "":
				return e, fail("repeated TYPE")
			case typ != "counter" && typ != "gauge" && typ != "histogram":
				return e, fail("unknown type %q", typ)
			}
			e.types[name], family = typ, name
			continue
		}
		if strings.HasPrefix(line, "#") || line == "" {
			return e, fail("unexpected comment or blank line")
		}
		series, value, ok := strings.Cut(line, " ")
		if !ok {
			return e, fail("no value")
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return e, fail("value: %v", err)
		}
		name, labels, hasLabels := strings.Cut(series, "{")
		if hasLabels {
			if !strings.HasSuffix(labels, "}") {
				return e, fail("unterminated labels")
			}
			for _, l := range splitLabels(strings.TrimSuffix(labels, "}")) {
				k, val, ok := strings.Cut(l, "=")
				if !ok || k == "" || len(val) < 2 || val[0] != '"' || val[len(val)-1] != '"' {
					return e, fail("bad label %q", l)
				}
			}
		}
		base := name
		if e.types[family] == "histogram" {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, suffix); ok && b == family {
					base = b
				}
			}
		}
		if base != family {
			return e, fail("sample outside its family (last TYPE: %q)", family)
		}
		if _, dup := e.samples[series]; dup {
			return e, fail("repeated series")
		}
		e.samples[series] = v
	}
	return e, e.checkHistograms()
}

// splitLabels splits `a="x",b="y,z"` at the commas between labels.
func splitLabels(s string) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func (e exposition) checkHistograms() error {
	for name, typ := range e.types {
		if typ != "histogram" {
			continue
		}
		type bucket struct {
			le    float64
			count float64
		}
		var buckets []bucket
		for series, v := range e.samples {
			rest, ok := strings.CutPrefix(series, name+`_bucket{le="`)
			if !ok {
				continue
			}
			le, err := strconv.ParseFloat(strings.TrimSuffix(rest, `"}`), 64) // "+Inf" parses
			if err != nil {
				return fmt.Errorf("%s: le %q: %v", series, rest, err)
			}
			buckets = append(buckets, bucket{le, v})
		}
		if len(buckets) == 0 {
			return fmt.Errorf("histogram %s has no buckets", name)
		}
		// Sorted by le, counts must not fall.
		sort.Slice(buckets, func(i, j int) bool { return buckets[i].le < buckets[j].le })
		for i := 1; i < len(buckets); i++ {
			if prev, b := buckets[i-1], buckets[i]; b.count < prev.count {
				return fmt.Errorf("histogram %s: buckets not cumulative: le=%g has %g, le=%g has %g", name, prev.le, prev.count, b.le, b.count)
			}
		}
		inf, ok := e.samples[name+`_bucket{le="+Inf"}`]
		if !ok {
			return fmt.Errorf("histogram %s has no +Inf bucket", name)
		}
		count, okCount := e.samples[name+"_count"]
		if _, okSum := e.samples[name+"_sum"]; !okSum || !okCount {
			return fmt.Errorf("histogram %s lacks _sum or _count", name)
		}
		if inf != count {
			return fmt.Errorf("histogram %s: +Inf bucket %g != _count %g", name, inf, count)
		}
	}
	return nil
}

func TestParseExposition(t *testing.T) {
	const head = "# HELP h x\n# TYPE h histogram\n"
	tests := []struct {
		name, text, wantErr string
	}{
		{"ok", head + "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n", ""},
		{"no TYPE", "# HELP g x\ng 1\n", "sample outside its family"},
		{"TYPE before HELP", "# TYPE g gauge\n", "TYPE before HELP"},
		{"not cumulative", head + "h_bucket{le=\"1\"} 2\nh_bucket{le=\"5\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n", "not cumulative"},
		{"no +Inf", head + "h_bucket{le=\"1\"} 1\nh_sum 3\nh_count 1\n", "no +Inf"},
		{"count differs", head + "h_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 3\n", "!= _count"},
		{"unquoted label", "# HELP g x\n# TYPE g gauge\ng{a=b} 1\n", "bad label"},
		{"bad value", "# HELP g x\n# TYPE g gauge\ng one\n", "value"},
		{"split family", "# HELP g x\n# TYPE g gauge\ng 1\n# HELP c x\n# TYPE c counter\nc 1\ng{a=\"b\"} 2\n", "sample outside its family"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseExposition(tc.text)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("parse: %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func scrape(t *testing.T, m *metrics) exposition {
	t.Helper()
	rec := httptest.NewRecorder()
	m.serveMetrics(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	e, err := parseExposition(rec.Body.String())
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, rec.Body)
	}
	return e
}

// pick returns the values of the given series; a missing one is -1.
func (e exposition) pick(series ...string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range series {
		v, ok := e.samples[s]
		if !ok {
			v = -1
		}
		out[s] = v
	}
	return out
}

func TestRolloutMetrics(t *testing.T) {
	st := store.NewMemory()
	t.Cleanup(func() { st.Close() })
	err := st.Update(t.Context(), func(tx store.Tx) error {
		var errs []error
		for i, st := range []controllerv1.RolloutState{state.RolloutRunning, state.RolloutRunning, state.RolloutHalted, state.RolloutCompleted, 99} {
			errs = append(errs, tx.PutRollout(&controllerv1.RolloutRecord{Id: fmt.Sprintf("r%d", i), State: st,
				Counts: &controllerv1.RolloutCounts{Nodes: 3, Passed: 1, Running: 1, Pending: 1}}))
		}
		errs = append(errs, tx.PutNode(&controllerv1.NodeRecord{Id: "n1", State: controllerv1.NodeRecord_STATE_CONNECTED}))
		return errors.Join(errs...)
	})
	if err != nil {
		t.Fatal(err)
	}
	rm := newRolloutMetrics()
	m := &metrics{fleet: fixedConnected(1), st: st, rpc: newRPCCounter(), rollouts: rm}

	series := []string{
		`cairn_agents_connected`,
		`cairn_nodes{state="connected"}`,
		`cairn_rollouts{state="running"}`,
		`cairn_rollouts{state="halted"}`,
		`cairn_rollouts{state="completed"}`,
		`cairn_rollouts{state="paused"}`,
		`cairn_rollouts{state="99"}`,
		`cairn_rollout_nodes{rollout="r0",state="passed"}`,
		`cairn_rollout_nodes{rollout="r0",state="running"}`,
		`cairn_rollout_nodes{rollout="r0",state="failed"}`,
		`cairn_node_deployments_total{outcome="passed"}`,
		`cairn_node_deployments_total{outcome="failed"}`,
		`cairn_node_deployments_total{outcome="unreachable"}`,
		`cairn_node_deployment_duration_seconds_bucket{le="1"}`,
		`cairn_node_deployment_duration_seconds_bucket{le="5"}`,
		`cairn_node_deployment_duration_seconds_bucket{le="60"}`,
		`cairn_node_deployment_duration_seconds_bucket{le="3600"}`,
		`cairn_node_deployment_duration_seconds_bucket{le="+Inf"}`,
		`cairn_node_deployment_duration_seconds_sum`,
		`cairn_node_deployment_duration_seconds_count`,
		`cairn_audit_duration_seconds_bucket{le="0.1"}`,
		`cairn_audit_duration_seconds_bucket{le="0.25"}`,
		`cairn_audit_duration_seconds_bucket{le="+Inf"}`,
		`cairn_audit_duration_seconds_sum`,
		`cairn_audit_duration_seconds_count`,
		`cairn_sla_breaches_total{kind="node_duration"}`,
		`cairn_sla_breaches_total{kind="success_rate"}`,
	}
	before := scrape(t, m)
	wantBefore := map[string]float64{}
	for _, s := range series {
		wantBefore[s] = 0
	}
	wantBefore[`cairn_agents_connected`] = 1
	wantBefore[`cairn_nodes{state="connected"}`] = 1
	wantBefore[`cairn_rollouts{state="running"}`] = 2
	wantBefore[`cairn_rollouts{state="halted"}`] = 1
	wantBefore[`cairn_rollouts{state="completed"}`] = 1
	wantBefore[`cairn_rollouts{state="99"}`] = 1
	wantBefore[`cairn_rollout_nodes{rollout="r0",state="passed"}`] = 1
	wantBefore[`cairn_rollout_nodes{rollout="r0",state="running"}`] = 1
	if diff := cmp.Diff(wantBefore, before.pick(series...)); diff != "" {
		t.Errorf("before any deployment (-want +got):\n%s", diff)
	}
	wantTypes := map[string]string{
		"cairn_agents_connected": "gauge", "cairn_rollouts": "gauge",
		"cairn_node_deployments_total": "counter", "cairn_sla_breaches_total": "counter",
		"cairn_node_deployment_duration_seconds": "histogram", "cairn_audit_duration_seconds": "histogram",
	}
	gotTypes := map[string]string{}
	for name := range wantTypes {
		gotTypes[name] = before.types[name]
	}
	if diff := cmp.Diff(wantTypes, gotTypes); diff != "" {
		t.Errorf("types (-want +got):\n%s", diff)
	}

	rm.NodeFinished("passed", 3*time.Second)
	rm.NodeFinished("passed", 45*time.Second)
	rm.NodeFinished("failed", 2*time.Hour)
	rm.AuditFinished(200 * time.Millisecond)
	rm.AuditFinished(50 * time.Millisecond)
	rm.SLABreach("node_duration")
	rm.SLABreach("node_duration")
	err = st.Update(t.Context(), func(tx store.Tx) error {
		return tx.PutRollout(&controllerv1.RolloutRecord{Id: "r0", State: state.RolloutPaused,
			Counts: &controllerv1.RolloutCounts{Nodes: 3, Passed: 2, Pending: 1}})
	})
	if err != nil {
		t.Fatal(err)
	}

	want := map[string]float64{}
	for k, v := range wantBefore {
		want[k] = v
	}
	for k, v := range map[string]float64{
		`cairn_rollouts{state="running"}`:                          1,
		`cairn_rollouts{state="paused"}`:                           1,
		`cairn_rollout_nodes{rollout="r0",state="passed"}`:         2,
		`cairn_rollout_nodes{rollout="r0",state="running"}`:        0,
		`cairn_node_deployments_total{outcome="passed"}`:           2,
		`cairn_node_deployments_total{outcome="failed"}`:           1,
		`cairn_node_deployment_duration_seconds_bucket{le="5"}`:    1,
		`cairn_node_deployment_duration_seconds_bucket{le="60"}`:   2,
		`cairn_node_deployment_duration_seconds_bucket{le="3600"}`: 2,
		`cairn_node_deployment_duration_seconds_bucket{le="+Inf"}`: 3,
		`cairn_node_deployment_duration_seconds_sum`:               3 + 45 + 7200,
		`cairn_node_deployment_duration_seconds_count`:             3,
		`cairn_audit_duration_seconds_bucket{le="0.1"}`:            1,
		`cairn_audit_duration_seconds_bucket{le="0.25"}`:           2,
		`cairn_audit_duration_seconds_bucket{le="+Inf"}`:           2,
		`cairn_audit_duration_seconds_sum`:                         0.25,
		`cairn_audit_duration_seconds_count`:                       2,
		`cairn_sla_breaches_total{kind="node_duration"}`:           2,
	} {
		want[k] = v
	}
	if diff := cmp.Diff(want, scrape(t, m).pick(series...)); diff != "" {
		t.Errorf("after deployments (-want +got):\n%s", diff)
	}
}

// TestRolloutMetricsNil: a server without a rollout engine still writes
// every family, with nothing counted.
func TestRolloutMetricsNil(t *testing.T) {
	st := store.NewMemory()
	t.Cleanup(func() { st.Close() })
	e := scrape(t, &metrics{fleet: fixedConnected(0), st: st, rpc: newRPCCounter()})
	got := e.pick(`cairn_node_deployments_total{outcome="passed"}`, `cairn_node_deployment_duration_seconds_count`,
		`cairn_audit_duration_seconds_bucket{le="+Inf"}`, `cairn_sla_breaches_total{kind="rollout_duration"}`, `cairn_rollouts{state="running"}`)
	for s, v := range got {
		if v != 0 {
			t.Errorf("%s = %g, want 0", s, v)
		}
	}
}

// TestRolloutMetricsConcurrent reports from several goroutines while
// scraping (run with -race).
func TestRolloutMetricsConcurrent(t *testing.T) {
	st := store.NewMemory()
	t.Cleanup(func() { st.Close() })
	rm := newRolloutMetrics()
	m := &metrics{fleet: fixedConnected(0), st: st, rpc: newRPCCounter(), rollouts: rm}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				rm.NodeFinished("passed", time.Second)
				rm.AuditFinished(time.Second)
				rm.SLABreach("success_rate")
			}
		})
	}
	wg.Go(func() {
		for range 10 {
			scrape(t, m)
		}
	})
	wg.Wait()
	got := scrape(t, m).pick(`cairn_node_deployments_total{outcome="passed"}`, `cairn_audit_duration_seconds_count`, `cairn_sla_breaches_total{kind="success_rate"}`)
	want := map[string]float64{
		`cairn_node_deployments_total{outcome="passed"}`: 400, `cairn_audit_duration_seconds_count`: 400, `cairn_sla_breaches_total{kind="success_rate"}`: 400,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after concurrent reports (-want +got):\n%s", diff)
	}
}

func TestLabelValue(t *testing.T) {
	if got, want := labelValue("a\"b\\c\nd"), `a\"b\\c\nd`; got != want {
		t.Errorf("labelValue = %s, want %s", got, want)
	}
}

// TestUploadMetrics: /metrics counts the unfinished pushes, the bytes
// they hold and declare, and refusals by cap (every cap from the first
// scrape); totals only, no series per user.
func TestUploadMetrics(t *testing.T) {
	st := store.NewMemory()
	t.Cleanup(func() { st.Close() })
	blobs, err := blob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	lib, err := dml.New(st, blobs, dml.Options{MaxBytes: 1000, Sessions: dml.SessionLimits{PerUser: 1, Total: 5}})
	if err != nil {
		t.Fatal(err)
	}
	m := &metrics{fleet: fixedConnected(0), st: st, rpc: newRPCCounter(), uploads: lib}
	series := []string{
		`cairn_upload_sessions`, `cairn_upload_session_bytes`, `cairn_upload_session_declared_bytes`,
		`cairn_upload_refusals_total{cap="upload_sessions_per_user"}`, `cairn_upload_refusals_total{cap="upload_sessions"}`,
		`cairn_upload_refusals_total{cap="upload_bytes_per_user"}`, `cairn_upload_refusals_total{cap="upload_bytes"}`,
		`cairn_upload_sessions_expired_total`, `cairn_upload_sweep_errors_total`,
	}
	before := scrape(t, m).pick(series...)
	for s, v := range before {
		if v != 0 {
			t.Errorf("before any push: %s = %g, want 0", s, v)
		}
	}
	u, err := lib.BeginUpload(t.Context(), "user:alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lib.Declare(t.Context(), u.ID, dml.Meta{Name: "a", Kind: "utility", Size: 800}); err != nil {
		t.Fatal(err)
	}
	if _, err := lib.Write(t.Context(), u.ID, 0, make([]byte, 300)); err != nil {
		t.Fatal(err)
	}
	if _, err := lib.BeginUpload(t.Context(), "user:alice"); !errors.Is(err, dml.ErrLimit) {
		t.Fatalf("alice's second upload: %v, want ErrLimit", err)
	}
	e := scrape(t, m)
	want := map[string]float64{}
	for _, s := range series {
		want[s] = 0
	}
	want[`cairn_upload_sessions`] = 1
	want[`cairn_upload_session_bytes`] = 300
	want[`cairn_upload_session_declared_bytes`] = 800
	want[`cairn_upload_refusals_total{cap="upload_sessions_per_user"}`] = 1
	if diff := cmp.Diff(want, e.pick(series...)); diff != "" {
		t.Errorf("after a push and a refusal (-want +got):\n%s", diff)
	}
	if e.types["cairn_upload_sessions"] != "gauge" || e.types["cairn_upload_refusals_total"] != "counter" {
		t.Errorf("types: %v", e.types)
	}
	for s := range e.samples {
		if strings.Contains(s, "alice") {
			t.Errorf("series %s names a user", s)
		}
	}
}
