package daemon

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/controller/dml"
	"github.com/cairn-ops/cairn/controller/rollout"
	"github.com/cairn-ops/cairn/controller/rollout/state"
	"github.com/cairn-ops/cairn/controller/store"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// rpcCounter counts finished RPCs by method and status code. It runs
// before authorization, so refused calls are counted too.
type rpcCounter struct {
	mu sync.Mutex
	n  map[rpcKey]uint64
}

type rpcKey struct{ method, code string }

func newRPCCounter() *rpcCounter {
	return &rpcCounter{n: make(map[rpcKey]uint64)}
}

func (c *rpcCounter) add(method string, err error) {
	code := status.Code(err).String()
	c.mu.Lock()
	c.n[rpcKey{method, code}]++
	c.mu.Unlock()
}

func (c *rpcCounter) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	c.add(info.FullMethod, err)
	return resp, err
}

func (c *rpcCounter) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	err := handler(srv, ss)
	c.add(info.FullMethod, err)
	return err
}

// snapshot returns the counts sorted by method, then code.
func (c *rpcCounter) snapshot() ([]rpcKey, map[rpcKey]uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := make(map[rpcKey]uint64, len(c.n))
	keys := make([]rpcKey, 0, len(c.n))
	for k, v := range c.n {
		n[k] = v
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].method != keys[j].method {
			return keys[i].method < keys[j].method
		}
		return keys[i].code < keys[j].code
	})
	return keys, n
}

// connectedCounter is the part of the fleet the metrics read.
type connectedCounter interface {
	Connected() int
}

// uploadStats is the part of the DML the metrics read.
type uploadStats interface {
	Stats() dml.SessionStats
}

// metrics writes the Prometheus text exposition format by hand: a few
// gauges, counters and histograms do not need a client library.
type metrics struct {
	fleet connectedCounter
	st    store.Store
	rpc   *rpcCounter
	// rollouts holds what the rollout engine reported; nil writes the
	// families with nothing counted.
	rollouts *rolloutMetrics
	// uploads are the DML's unfinished pushes; nil writes zeros.
	uploads uploadStats
}

// recentRollouts is how many of the newest rollouts get their nodes
// counted in cairn_rollout_nodes, besides every rollout not settled: the
// series stay few.
const recentRollouts = 10

func (m *metrics) serveMetrics(w http.ResponseWriter, r *http.Request) {
	states := map[string]int{}
	for v, name := range controllerv1.NodeRecord_State_name {
		if v != 0 {
			states[stateLabel(name)] = 0
		}
	}
	rollouts := map[string]int{}
	for _, s := range state.RolloutStates() {
		rollouts[state.Name(s)] = 0
	}
	var shown []*controllerv1.RolloutRecord
	err := m.st.View(r.Context(), func(tx store.Tx) error {
		nodes, err := tx.Nodes()
		if err != nil {
			return fmt.Errorf("read nodes: %w", err)
		}
		for _, n := range nodes {
			states[stateLabel(n.GetState().String())]++
		}
		recs, err := tx.Rollouts()
		if err != nil {
			return fmt.Errorf("read rollouts: %w", err)
		}
		for i, ro := range recs {
			rollouts[state.Name(ro.GetState())]++
			if !state.Settled(ro) || i >= len(recs)-recentRollouts {
				shown = append(shown, ro)
			}
		}
		return nil
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# HELP cairn_agents_connected Agents with a live session to this controller.\n")
	fmt.Fprintf(&b, "# TYPE cairn_agents_connected gauge\n")
	fmt.Fprintf(&b, "cairn_agents_connected %d\n", m.fleet.Connected())

	fmt.Fprintf(&b, "# HELP cairn_nodes Enrolled nodes by connection state.\n")
	fmt.Fprintf(&b, "# TYPE cairn_nodes gauge\n")
	names := make([]string, 0, len(states))
	for s := range states {
		names = append(names, s)
	}
	sort.Strings(names)
	for _, s := range names {
		fmt.Fprintf(&b, "cairn_nodes{state=%q} %d\n", s, states[s])
	}

	fmt.Fprintf(&b, "# HELP cairn_rpc_total gRPC calls finished, by method and status code.\n")
	fmt.Fprintf(&b, "# TYPE cairn_rpc_total counter\n")
	keys, counts := m.rpc.snapshot()
	for _, k := range keys {
		fmt.Fprintf(&b, "cairn_rpc_total{method=%q,code=%q} %d\n", k.method, k.code, counts[k])
	}

	fmt.Fprintf(&b, "# HELP cairn_rollouts Rollouts by state.\n")
	fmt.Fprintf(&b, "# TYPE cairn_rollouts gauge\n")
	for _, s := range sortedKeys(rollouts) {
		fmt.Fprintf(&b, "cairn_rollouts{state=\"%s\"} %d\n", labelValue(s), rollouts[s])
	}
	fmt.Fprintf(&b, "# HELP cairn_rollout_nodes Nodes of a rollout by state (every rollout not settled, and the %d newest), as in rollout status.\n", recentRollouts)
	fmt.Fprintf(&b, "# TYPE cairn_rollout_nodes gauge\n")
	for _, r := range shown {
		for _, c := range countSeries(r.GetCounts()) {
			fmt.Fprintf(&b, "cairn_rollout_nodes{rollout=\"%s\",state=\"%s\"} %d\n", labelValue(r.GetId()), c.name, c.n)
		}
	}
	ro := m.rollouts
	if ro == nil {
		ro = newRolloutMetrics()
	}
	ro.write(&b)
	writeUploads(&b, m.uploads)

	if rss, ok := residentBytes(); ok {
		fmt.Fprintf(&b, "# HELP process_resident_memory_bytes Resident memory size in bytes.\n")
		fmt.Fprintf(&b, "# TYPE process_resident_memory_bytes gauge\n")
		fmt.Fprintf(&b, "process_resident_memory_bytes %d\n", rss)
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Write(b.Bytes())
}

// writeUploads writes the unfinished artifact pushes: totals only (per
// user would be a series per user), and the refusals by cap.
func writeUploads(b *bytes.Buffer, u uploadStats) {
	st := dml.SessionStats{Refused: map[string]uint64{}}
	if u != nil {
		st = u.Stats()
	}
	fmt.Fprintf(b, "# HELP cairn_upload_sessions Unfinished artifact pushes (DML upload sessions).\n")
	fmt.Fprintf(b, "# TYPE cairn_upload_sessions gauge\n")
	fmt.Fprintf(b, "cairn_upload_sessions %d\n", st.Open)
	fmt.Fprintf(b, "# HELP cairn_upload_session_bytes Bytes the unfinished pushes hold on disk.\n")
	fmt.Fprintf(b, "# TYPE cairn_upload_session_bytes gauge\n")
	fmt.Fprintf(b, "cairn_upload_session_bytes %d\n", st.Bytes)
	fmt.Fprintf(b, "# HELP cairn_upload_session_declared_bytes Bytes the unfinished pushes declared (what the byte caps count).\n")
	fmt.Fprintf(b, "# TYPE cairn_upload_session_declared_bytes gauge\n")
	fmt.Fprintf(b, "cairn_upload_session_declared_bytes %d\n", st.DeclaredBytes)
	fmt.Fprintf(b, "# HELP cairn_upload_refusals_total Pushes refused at a cap on unfinished pushes, by cap (its config key).\n")
	fmt.Fprintf(b, "# TYPE cairn_upload_refusals_total counter\n")
	for _, c := range dml.Caps {
		fmt.Fprintf(b, "cairn_upload_refusals_total{cap=\"%s\"} %d\n", labelValue(c), st.Refused[c])
	}
	fmt.Fprintf(b, "# HELP cairn_upload_sessions_expired_total Unfinished pushes discarded after upload_idle_timeout without data.\n")
	fmt.Fprintf(b, "# TYPE cairn_upload_sessions_expired_total counter\n")
	fmt.Fprintf(b, "cairn_upload_sessions_expired_total %d\n", st.Expired)
	fmt.Fprintf(b, "# HELP cairn_upload_sweep_errors_total Sweeps of idle pushes that could not remove a file.\n")
	fmt.Fprintf(b, "# TYPE cairn_upload_sweep_errors_total counter\n")
	fmt.Fprintf(b, "cairn_upload_sweep_errors_total %d\n", st.SweepErrors)
}

// stateLabel turns "STATE_CONNECTED" into "connected".
func stateLabel(name string) string {
	return strings.ToLower(strings.TrimPrefix(name, "STATE_"))
}

// Buckets of the rollout histograms, in seconds.
var (
	nodeDurationBuckets  = []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600}
	auditDurationBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
)

// Label values written even before they are counted, so that the series
// exist from the first scrape (rates and alerts need them).
var (
	nodeOutcomes = []string{
		rollout.OutcomePassed, rollout.OutcomeFailed, rollout.OutcomeUnreachable,
		rollout.OutcomeSkipped, rollout.OutcomeInterrupted, rollout.OutcomeRolledBack, rollout.OutcomeRollbackFailed, rollout.OutcomeResolved,
	}
	slaKinds = []string{rollout.BreachNodeDuration, rollout.BreachRolloutDuration, rollout.BreachSuccessRate}
)

// rolloutMetrics counts what the rollout engine reports, for /metrics.
type rolloutMetrics struct {
	mu            sync.Mutex
	nodes         map[string]uint64 // by outcome
	nodeDuration  *histogram
	auditDuration *histogram
	breaches      map[string]uint64 // by kind
}

var _ rollout.Metrics = (*rolloutMetrics)(nil)

func newRolloutMetrics() *rolloutMetrics {
	m := &rolloutMetrics{
		nodes:         map[string]uint64{},
		nodeDuration:  newHistogram(nodeDurationBuckets),
		auditDuration: newHistogram(auditDurationBuckets),
		breaches:      map[string]uint64{},
	}
	for _, o := range nodeOutcomes {
		m.nodes[o] = 0
	}
	for _, k := range slaKinds {
		m.breaches[k] = 0
	}
	return m
}

// NodeFinished counts a node's deployment and observes its duration.
func (m *rolloutMetrics) NodeFinished(outcome string, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nodes[outcome]++
	m.nodeDuration.observe(d.Seconds())
}

// AuditFinished observes an audit command's duration.
func (m *rolloutMetrics) AuditFinished(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.auditDuration.observe(d.Seconds())
}

// SLABreach counts a breach of the release's SLA.
func (m *rolloutMetrics) SLABreach(kind string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.breaches[kind]++
}

// write appends the rollout metric families to b.
func (m *rolloutMetrics) write(b *bytes.Buffer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fmt.Fprintf(b, "# HELP cairn_node_deployments_total Node deployments finished, by outcome.\n")
	fmt.Fprintf(b, "# TYPE cairn_node_deployments_total counter\n")
	for _, o := range sortedKeys(m.nodes) {
		fmt.Fprintf(b, "cairn_node_deployments_total{outcome=\"%s\"} %d\n", labelValue(o), m.nodes[o])
	}
	m.nodeDuration.write(b, "cairn_node_deployment_duration_seconds", "Duration of node deployments, from pre-audit to result.")
	m.auditDuration.write(b, "cairn_audit_duration_seconds", "Duration of the pre- and post-audits of rollouts.")
	fmt.Fprintf(b, "# HELP cairn_sla_breaches_total Breaches of a release's SLA, by kind.\n")
	fmt.Fprintf(b, "# TYPE cairn_sla_breaches_total counter\n")
	for _, k := range sortedKeys(m.breaches) {
		fmt.Fprintf(b, "cairn_sla_breaches_total{kind=\"%s\"} %d\n", labelValue(k), m.breaches[k])
	}
}

// histogram is a Prometheus histogram: counts per bucket (not
// cumulative; write sums them), the sum and the count of observations.
// Its owner locks it.
type histogram struct {
	bounds []float64
	counts []uint64
	sum    float64
	count  uint64
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]uint64, len(bounds))}
}

func (h *histogram) observe(v float64) {
	for i, b := range h.bounds {
		if v <= b {
			h.counts[i]++
			break
		}
	}
	h.sum += v
	h.count++
}

func (h *histogram) write(b *bytes.Buffer, name, help string) {
	fmt.Fprintf(b, "# HELP %s %s\n", name, help)
	fmt.Fprintf(b, "# TYPE %s histogram\n", name)
	var cum uint64
	for i, bound := range h.bounds {
		cum += h.counts[i]
		fmt.Fprintf(b, "%s_bucket{le=\"%s\"} %d\n", name, formatFloat(bound), cum)
	}
	fmt.Fprintf(b, "%s_bucket{le=\"+Inf\"} %d\n", name, h.count)
	fmt.Fprintf(b, "%s_sum %s\n", name, formatFloat(h.sum))
	fmt.Fprintf(b, "%s_count %d\n", name, h.count)
}

func formatFloat(f float64) string {
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// labelValue escapes a label value as the text format requires.
var labelValue = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// countSeries are a rollout's counts by node state name, every state.
func countSeries(c *controllerv1.RolloutCounts) []struct {
	name string
	n    uint32
} {
	return []struct {
		name string
		n    uint32
	}{
		{state.Name(state.NodePending), c.GetPending()}, {"running", c.GetRunning()}, {state.Name(state.NodePassed), c.GetPassed()},
		{state.Name(state.NodeFailed), c.GetFailed()}, {state.Name(state.NodeUnreachable), c.GetUnreachable()},
		{state.Name(state.NodeSkipped), c.GetSkipped()}, {state.Name(state.NodeInterrupted), c.GetInterrupted()},
		{state.Name(state.NodeRolledBack), c.GetRolledBack()}, {state.Name(state.NodeRollbackFailed), c.GetRollbackFailed()},
		{state.Name(state.NodeResolved), c.GetResolved()}, {state.Name(state.NodeAborted), c.GetAborted()},
	}
}
