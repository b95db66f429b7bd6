package daemon

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

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

// metrics writes the Prometheus text exposition format by hand: a few
// gauges and one counter do not need a client library.
type metrics struct {
	fleet connectedCounter
	st    store.Store
	rpc   *rpcCounter
}

func (m *metrics) serveMetrics(w http.ResponseWriter, r *http.Request) {
	states := map[string]int{}
	for v, name := range controllerv1.NodeRecord_State_name {
		if v != 0 {
			states[stateLabel(name)] = 0
		}
	}
	err := m.st.View(r.Context(), func(tx store.Tx) error {
		nodes, err := tx.Nodes()
		if err != nil {
			return err
		}
		for _, n := range nodes {
			states[stateLabel(n.GetState().String())]++
		}
		return nil
	})
	if err != nil {
		http.Error(w, "read nodes: "+err.Error(), http.StatusInternalServerError)
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

	if rss, ok := residentBytes(); ok {
		fmt.Fprintf(&b, "# HELP process_resident_memory_bytes Resident memory size in bytes.\n")
		fmt.Fprintf(&b, "# TYPE process_resident_memory_bytes gauge\n")
		fmt.Fprintf(&b, "process_resident_memory_bytes %d\n", rss)
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Write(b.Bytes())
}

// stateLabel turns "STATE_CONNECTED" into "connected".
func stateLabel(name string) string {
	return strings.ToLower(strings.TrimPrefix(name, "STATE_"))
}
