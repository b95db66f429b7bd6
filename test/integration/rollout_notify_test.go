package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/controller/notify"
	"github.com/cairn-ops/cairn/controller/rollout/state"
)

// TestRolloutWebhooksAndMetrics configures the real controller with a
// webhook (secret in the config file) and a metrics listener, runs a
// rollout, and checks what the receiver got — each event signed with the
// secret — and what /metrics says afterwards. The secret must not appear
// in the controller's output.
func TestRolloutWebhooksAndMetrics(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-for-the-itest-hook"
	var mu sync.Mutex
	var events []string
	var bad []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var msg struct {
			Event string `json:"event"`
			Data  struct {
				Rollout string `json:"rollout"`
				Release string `json:"release"`
			} `json:"data"`
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case !notify.Verify(secret, body, r.Header.Get(notify.HeaderSignature)):
			bad = append(bad, "bad signature on "+string(body))
		case json.Unmarshal(body, &msg) != nil:
			bad = append(bad, "not JSON: "+string(body))
		case msg.Event != r.Header.Get(notify.HeaderEvent):
			bad = append(bad, fmt.Sprintf("body event %q, header %q", msg.Event, r.Header.Get(notify.HeaderEvent)))
		default:
			events = append(events, msg.Event+" "+msg.Data.Release)
		}
	}))
	t.Cleanup(hook.Close)

	f := newFleet(t, 1)
	c := f.c
	metricsAddr := c.metricsAddr // serve's --metrics-listen; the file says the same
	config := fmt.Sprintf("metrics_listen: %s\nwebhooks:\n  - url: %s/hook\n    secret: %s\n", metricsAddr, hook.URL, secret)
	if err := os.WriteFile(filepath.Join(c.dataDir, "config.yaml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	c.stop(t)
	c.start(t)
	waitFor(t, time.Minute, "the agent to reconnect", func() bool {
		return c.nodeState(t, f.ids["itest-1"]) == "STATE_CONNECTED"
	})

	ref := f.release(t, "simple.yaml", nil)
	id := f.start(t, ref, "--strategy", "all-at-once")
	f.waitRollout(t, id, state.RolloutCompleted)

	want := []string{"rollout.started " + ref, "rollout.wave_done " + ref, "rollout.completed " + ref}
	waitFor(t, 30*time.Second, "the webhook events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(events)+len(bad) >= len(want)
	})
	mu.Lock()
	if len(bad) > 0 {
		t.Errorf("the receiver refused deliveries: %v", bad)
	}
	if diff := cmp.Diff(want, events); diff != "" {
		t.Errorf("webhook events (-want +got):\n%s", diff)
	}
	mu.Unlock()

	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, re := range []string{
		`(?m)^cairn_node_deployments_total\{outcome="passed"\} 1$`,
		`(?m)^cairn_rollouts\{state="completed"\} 1$`,
		`(?m)^cairn_node_deployment_duration_seconds_count 1$`,
		`(?m)^cairn_audit_duration_seconds_count 2$`,
		`(?m)^cairn_agents_connected 1$`,
	} {
		if !regexp.MustCompile(re).Match(body) {
			t.Errorf("/metrics does not match %s:\n%s", re, body)
		}
	}
	if out := c.serve.out.String(); strings.Contains(out, secret) {
		t.Errorf("the controller's output shows the webhook secret:\n%s", out)
	}
}
