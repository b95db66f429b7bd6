package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/controller/notify"
	"github.com/cairn-ops/cairn/controller/rollout"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

var _ rollout.Notifier = (*notify.Notifier)(nil)

// deadline bounds every wait, so that a broken notifier fails the test
// instead of hanging it.
const deadline = 10 * time.Second

var epoch = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// request is what a receiver got.
type request struct {
	method string
	header http.Header
	body   []byte
}

// receiver is an httptest server that answers each request with the
// next status of its script (200 when the script is used up) and
// reports every request on got.
type receiver struct {
	*httptest.Server
	got chan request

	mu     sync.Mutex
	answer func(r request, n int) int // n counts requests, from 1
	n      int
}

func newReceiver(t *testing.T, answer func(r request, n int) int) *receiver {
	t.Helper()
	rc := &receiver{got: make(chan request, 100), answer: answer}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("receiver: read body: %v", err)
		}
		req := request{method: r.Method, header: r.Header.Clone(), body: body}
		rc.mu.Lock()
		rc.n++
		n := rc.n
		rc.mu.Unlock()
		code := http.StatusOK
		if rc.answer != nil {
			code = rc.answer(req, n)
		}
		rc.got <- req
		if code < 0 { // drop the connection without an answer
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// next waits for the receiver's next request.
func (rc *receiver) next(t *testing.T) request {
	t.Helper()
	select {
	case r := <-rc.got:
		return r
	case <-time.After(deadline):
		t.Fatal("no webhook request arrived")
		return request{}
	}
}

// run starts n.Run; the returned function (also called when the test
// ends) stops it and waits for it to return.
func run(t *testing.T, n *notify.Notifier) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(deadline):
			t.Error("Run did not return after its context ended")
		}
	})
	t.Cleanup(stop)
	return stop
}

// logBuffer collects log output from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// decoded is the request body.
type decoded struct {
	Event string `json:"event"`
	ID    string `json:"id"`
	At    string `json:"at"`
	Data  any    `json:"data"`
}

func decode(t *testing.T, body []byte) decoded {
	t.Helper()
	var d decoded
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	return d
}

func config(hooks ...notify.Hook) notify.Config {
	return notify.Config{
		Hooks:       hooks,
		Now:         func() time.Time { return epoch },
		MaxAttempts: 3,
		Backoff:     time.Millisecond,
		MaxBackoff:  4 * time.Millisecond,
	}
}

func TestRequest(t *testing.T) {
	signed, unsigned := newReceiver(t, nil), newReceiver(t, nil)
	n := notify.New(config(
		notify.Hook{URL: signed.URL + "/hook", Secret: "s3cret"},
		notify.Hook{URL: unsigned.URL},
	))
	run(t, n)
	n.Notify(rollout.EventStarted, map[string]any{"id": "r1", "nodes": 3})

	r := signed.next(t)
	got := decode(t, r.body)
	want := decoded{Event: "rollout.started", ID: got.ID, At: "2026-03-04T05:06:07Z", Data: map[string]any{"id": "r1", "nodes": 3.0}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
	headers := map[string]string{
		"Method": r.method, "Content-Type": r.header.Get("Content-Type"),
		notify.HeaderEvent: r.header.Get(notify.HeaderEvent), notify.HeaderDelivery: r.header.Get(notify.HeaderDelivery),
	}
	wantHeaders := map[string]string{
		"Method": "POST", "Content-Type": "application/json",
		notify.HeaderEvent: "rollout.started", notify.HeaderDelivery: got.ID,
	}
	if diff := cmp.Diff(wantHeaders, headers); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	if got.ID == "" {
		t.Error("no delivery ID")
	}
	sig := r.header.Get(notify.HeaderSignature)
	if !notify.Verify("s3cret", r.body, sig) {
		t.Errorf("signature %q does not verify", sig)
	}
	if notify.Verify("other", r.body, sig) {
		t.Error("signature verifies with another secret")
	}
	tampered := bytes.Replace(r.body, []byte(`"r1"`), []byte(`"r2"`), 1)
	if notify.Verify("s3cret", tampered, sig) {
		t.Error("signature verifies a changed body")
	}

	u := unsigned.next(t)
	if sig := u.header.Get(notify.HeaderSignature); sig != "" {
		t.Errorf("hook without a secret got a signature %q", sig)
	}
	if id := decode(t, u.body).ID; id == got.ID || u.header.Get(notify.HeaderDelivery) != id {
		t.Errorf("second hook's delivery ID %q: want its own (first hook's: %q), in header and body", id, got.ID)
	}
}

func TestProtoPayload(t *testing.T) {
	rc := newReceiver(t, nil)
	n := notify.New(config(notify.Hook{URL: rc.URL}))
	run(t, n)
	rec := &controllerv1.RolloutRecord{Id: "r1", State: controllerv1.RolloutState_ROLLOUT_STATE_HALTED, CreatedBy: "user:alice"}
	n.Notify(rollout.EventHalted, rec)
	rec.State = controllerv1.RolloutState_ROLLOUT_STATE_ABORTED
	got := decode(t, rc.next(t).body).Data
	want := map[string]any{"id": "r1", "state": "ROLLOUT_STATE_HALTED", "created_by": "user:alice"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"event":"rollout.completed"}`)
	// HMAC-SHA256("k", body), computed independently:
	// printf '%s' '{"event":"rollout.completed"}' | openssl dgst -sha256 -hmac k
	const good = "sha256=809fc284a0a9cf299b899dd28e778117f8ed0d41a761b58457a838df8533bca9"
	rc := newReceiver(t, nil)
	n := notify.New(config(notify.Hook{URL: rc.URL, Secret: "k"}))
	run(t, n)
	n.Notify("rollout.completed", nil)
	r := rc.next(t)
	sig := r.header.Get(notify.HeaderSignature)
	tests := []struct {
		name   string
		secret string
		body   []byte
		header string
		want   bool
	}{
		{"sent signature", "k", r.body, sig, true},
		{"upper-case hex", "k", r.body, "sha256=" + strings.ToUpper(strings.TrimPrefix(sig, "sha256=")), true},
		{"wrong secret", "K", r.body, sig, false},
		{"empty secret", "", r.body, sig, false},
		{"other body", "k", body, sig, false},
		{"no prefix", "k", r.body, strings.TrimPrefix(sig, "sha256="), false},
		{"other algorithm", "k", r.body, "sha1=" + strings.TrimPrefix(sig, "sha256="), false},
		{"not hex", "k", r.body, "sha256=zz", false},
		{"truncated", "k", r.body, sig[:len(sig)-2], false},
		{"empty header", "k", r.body, "", false},
		{"independent vector", "k", body, good, true},
		{"independent vector, other secret", "j", body, good, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := notify.Verify(tc.secret, tc.body, tc.header); got != tc.want {
				t.Errorf("Verify = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRetries sends a first event that the receiver answers with status
// (-1: the connection is dropped) and a second one it accepts. Deliveries
// to one hook are in order, so when the second arrives the first is done.
func TestRetries(t *testing.T) {
	tests := []struct {
		name   string
		status int
		// attempts at the first event, with MaxAttempts 3.
		want int
	}{
		{"server error", http.StatusInternalServerError, 3},
		{"unavailable", http.StatusServiceUnavailable, 3},
		{"too many requests", http.StatusTooManyRequests, 3},
		{"connection dropped", -1, 3},
		{"bad request", http.StatusBadRequest, 1},
		{"not found", http.StatusNotFound, 1},
		{"unauthorized", http.StatusUnauthorized, 1},
		{"redirect", http.StatusFound, 1},
		{"accepted", http.StatusAccepted, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, func(r request, _ int) int {
				if r.header.Get(notify.HeaderEvent) == "first" {
					return tc.status
				}
				return http.StatusOK
			})
			n := notify.New(config(notify.Hook{URL: rc.URL}))
			run(t, n)
			n.Notify("first", 1)
			n.Notify("second", 2)
			var events, ids []string
			for {
				r := rc.next(t)
				events = append(events, r.header.Get(notify.HeaderEvent))
				if events[len(events)-1] == "second" {
					break
				}
				ids = append(ids, r.header.Get(notify.HeaderDelivery))
			}
			var want []string
			for range tc.want {
				want = append(want, "first")
			}
			want = append(want, "second")
			if diff := cmp.Diff(want, events); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			for _, id := range ids[1:] {
				if id != ids[0] {
					t.Errorf("retry has delivery ID %q, want the first attempt's %q", id, ids[0])
				}
			}
		})
	}
}

func TestSucceedsAfterTwoFailures(t *testing.T) {
	rc := newReceiver(t, func(_ request, n int) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	var logs logBuffer
	cfg := config(notify.Hook{URL: rc.URL, Secret: "k"})
	cfg.MaxAttempts = 5
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n := notify.New(cfg)
	stop := run(t, n)
	n.Notify(rollout.EventCompleted, "r1")
	n.Notify("marker", nil)
	var bodies [][]byte
	for {
		r := rc.next(t)
		if r.header.Get(notify.HeaderEvent) == "marker" {
			break
		}
		bodies = append(bodies, r.body)
	}
	if len(bodies) != 3 {
		t.Fatalf("%d attempts, want 3 (two 500s, then success)", len(bodies))
	}
	for i, b := range bodies[1:] {
		if !bytes.Equal(b, bodies[0]) {
			t.Errorf("attempt %d body %s differs from the first %s", i+2, b, bodies[0])
		}
	}
	stop()
	if !strings.Contains(logs.String(), "webhook delivered") || !strings.Contains(logs.String(), "attempts=3") {
		t.Errorf("logs do not record the delivery after 3 attempts:\n%s", logs.String())
	}
}

func TestEventFilter(t *testing.T) {
	some, all := newReceiver(t, nil), newReceiver(t, nil)
	n := notify.New(config(
		notify.Hook{URL: some.URL, Events: []string{rollout.EventHalted, rollout.EventRolledBack}},
		notify.Hook{URL: all.URL},
	))
	run(t, n)
	for _, e := range []string{rollout.EventStarted, rollout.EventWaveDone, rollout.EventHalted, rollout.EventCompleted, rollout.EventRolledBack} {
		n.Notify(e, nil)
	}
	events := func(rc *receiver, k int) []string {
		var out []string
		for range k {
			out = append(out, rc.next(t).header.Get(notify.HeaderEvent))
		}
		return out
	}
	if diff := cmp.Diff([]string{"rollout.halted", "rollout.rolled_back"}, events(some, 2)); diff != "" {
		t.Errorf("filtered hook (-want +got):\n%s", diff)
	}
	want := []string{"rollout.started", "rollout.wave_done", "rollout.halted", "rollout.completed", "rollout.rolled_back"}
	if diff := cmp.Diff(want, events(all, 5)); diff != "" {
		t.Errorf("hook without a filter (-want +got):\n%s", diff)
	}
	// Nothing more reached the filtered hook: a last event it wants is
	// the next it gets.
	n.Notify(rollout.EventHalted, "last")
	if got := decode(t, some.next(t).body); got.Event != rollout.EventHalted {
		t.Errorf("filtered hook got %q, want the last rollout.halted", got.Event)
	}
}

func TestQueueFullDoesNotBlock(t *testing.T) {
	rc := newReceiver(t, nil)
	var logs logBuffer
	cfg := config(notify.Hook{URL: rc.URL})
	cfg.QueueSize = 2
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	n := notify.New(cfg)

	// Nothing delivers yet: 2 events fit, 8 are dropped.
	done := make(chan struct{})
	go func() {
		for i := range 10 {
			n.Notify(fmt.Sprintf("e%d", i), i)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(deadline):
		t.Fatal("Notify blocked on a full queue")
	}
	if got := strings.Count(logs.String(), "webhook queue full"); got != 8 {
		t.Errorf("%d queue-full warnings, want 8:\n%s", got, logs.String())
	}

	run(t, n)
	var got []string
	for range 2 {
		got = append(got, rc.next(t).header.Get(notify.HeaderEvent))
	}
	// The queue is empty now (e1 left it before it was sent): a marker
	// is the next request, so nothing else was queued.
	n.Notify("marker", nil)
	got = append(got, rc.next(t).header.Get(notify.HeaderEvent))
	if diff := cmp.Diff([]string{"e0", "e1", "marker"}, got); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
}

// TestHooksIndependent: a receiver that never answers does not hold up
// another hook.
func TestHooksIndependent(t *testing.T) {
	release := make(chan struct{})
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(stuck.Close)
	t.Cleanup(func() { close(release) })
	ok := newReceiver(t, nil)
	n := notify.New(config(notify.Hook{URL: stuck.URL}, notify.Hook{URL: ok.URL}))
	run(t, n)
	for _, e := range []string{"a", "b", "c"} {
		n.Notify(e, nil)
	}
	var got []string
	for range 3 {
		got = append(got, ok.next(t).header.Get(notify.HeaderEvent))
	}
	if diff := cmp.Diff([]string{"a", "b", "c"}, got); diff != "" {
		t.Errorf("second hook (-want +got):\n%s", diff)
	}
}

// TestRunEnds: Run returns when its context ends, whether it is idle,
// waiting for an answer, or waiting to retry.
func TestRunEnds(t *testing.T) {
	hanging := make(chan struct{}, 1)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices the client going away only once the body is read.
		io.Copy(io.Discard, r.Body)
		hanging <- struct{}{}
		<-r.Context().Done()
	}))
	t.Cleanup(slow.Close)
	failing := newReceiver(t, func(request, int) int { return http.StatusInternalServerError })

	tests := []struct {
		name    string
		hook    notify.Hook
		backoff time.Duration
		// started waits until the notifier is where the case wants it.
		started func(t *testing.T)
	}{
		{"idle", notify.Hook{URL: failing.URL, Events: []string{"never"}}, time.Millisecond, func(*testing.T) {}},
		{"waiting for an answer", notify.Hook{URL: slow.URL}, time.Millisecond, func(t *testing.T) {
			select {
			case <-hanging:
			case <-time.After(deadline):
				t.Fatal("no request arrived")
			}
		}},
		{"waiting to retry", notify.Hook{URL: failing.URL}, time.Hour, func(t *testing.T) { failing.next(t) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(tc.hook)
			cfg.Backoff, cfg.MaxBackoff = tc.backoff, tc.backoff
			n := notify.New(cfg)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- n.Run(ctx) }()
			n.Notify(rollout.EventStarted, nil)
			tc.started(t)
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v, want nil after the context ended", err)
				}
			case <-time.After(deadline):
				t.Fatal("Run did not return after its context ended")
			}
		})
	}
}

// TestNoSecretsInLogs: failures are logged by host; neither the secret
// nor the URL's path or query (often a credential too) appear.
func TestNoSecretsInLogs(t *testing.T) {
	rc := newReceiver(t, func(request, int) int { return http.StatusInternalServerError })
	var logs logBuffer
	cfg := config(notify.Hook{URL: rc.URL + "/services/T000/pathtoken?token=querytoken", Secret: "hmacsecret"})
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.QueueSize = 1
	n := notify.New(cfg)
	n.Notify("first", nil)
	n.Notify("dropped", nil) // queue full
	stop := run(t, n)
	for range 3 { // MaxAttempts
		rc.next(t)
	}
	// The first event failed for good (and was logged) before a second
	// one's first attempt.
	n.Notify("second", nil)
	if got := rc.next(t).header.Get(notify.HeaderEvent); got != "second" {
		t.Fatalf("request for %q, want second", got)
	}
	stop()
	cfg.Logger.Info("a logged hook", "hook", cfg.Hooks[0])
	out := logs.String()
	for _, secret := range []string{"hmacsecret", "pathtoken", "querytoken"} {
		if strings.Contains(out, secret) {
			t.Errorf("logs contain %q:\n%s", secret, out)
		}
	}
	host := strings.TrimPrefix(rc.URL, "http://")
	for _, want := range []string{"webhook queue full", "webhook delivery failed", host} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
	if s := fmt.Sprintf("%v %+v", cfg.Hooks[0], cfg.Hooks[0]); strings.Contains(s, "hmacsecret") || strings.Contains(s, "pathtoken") {
		t.Errorf("formatted hook shows a secret: %s", s)
	}
}

func TestNilAndNoHooks(t *testing.T) {
	var nilNotifier *notify.Notifier
	nilNotifier.Notify(rollout.EventStarted, nil) // must not panic
	n := notify.New(notify.Config{})
	n.Notify(rollout.EventStarted, make(chan int)) // no hook: not even encoded
	// Without hooks Run still lasts until its context ends.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("Run returned %v before its context ended", err)
	default:
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(deadline):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestUnencodablePayload(t *testing.T) {
	rc := newReceiver(t, nil)
	var logs logBuffer
	cfg := config(notify.Hook{URL: rc.URL})
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	n := notify.New(cfg)
	run(t, n)
	n.Notify("bad", make(chan int))
	n.Notify("good", nil)
	if got := rc.next(t).header.Get(notify.HeaderEvent); got != "good" {
		t.Errorf("first request is %q, want good (bad is dropped)", got)
	}
	if !strings.Contains(logs.String(), "webhook payload not encodable") {
		t.Errorf("no warning for the unencodable payload:\n%s", logs.String())
	}
}
