// Package notify delivers webhook notifications: the rollout engine's
// events (rollout started, wave done, halted, completed, rolled back)
// POSTed as JSON to the URLs in the controller's configuration.
//
// Notify never blocks its caller: each hook has a bounded queue, and an
// event that finds it full is dropped with a warning. Run delivers, one
// goroutine per hook so that a slow or failing receiver delays no other,
// in order per hook. A delivery is retried with exponential backoff on
// network errors, 5xx and 429 answers, up to MaxAttempts; other answers
// are final.
//
// Each request carries:
//
//	Content-Type: application/json
//	X-Cairn-Event: rollout.halted
//	X-Cairn-Delivery: <unique ID, the same in every retry>
//	X-Cairn-Signature: sha256=<hex HMAC-SHA256 of the body, keyed by the hook's secret>
//
// and the body {"event": ..., "id": <delivery ID>, "at": <RFC 3339>,
// "data": <the payload>}. The signature header is sent only when the hook
// has a secret; receivers check it with Verify. Secrets are never logged,
// nor are hook URLs beyond their host (a URL's path is often a
// credential too).
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Request headers.
const (
	HeaderEvent     = "X-Cairn-Event"
	HeaderDelivery  = "X-Cairn-Delivery"
	HeaderSignature = "X-Cairn-Signature"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxAttempts = 5
	DefaultBackoff     = time.Second
	DefaultMaxBackoff  = 30 * time.Second
	DefaultQueueSize   = 256
	// DefaultTimeout bounds one attempt when Config.Client is nil.
	DefaultTimeout = 10 * time.Second
)

// maxResponseBytes is how much of an answer's body is read (and
// discarded) so that the connection can be reused.
const maxResponseBytes = 64 << 10

// Hook is one receiver.
type Hook struct {
	// URL is an http or https URL.
	URL string
	// Secret keys the X-Cairn-Signature HMAC; empty sends no signature.
	// It is never logged.
	Secret string
	// Events are the event names the hook receives; empty means all.
	Events []string
}

// String describes the hook without its secret or its URL's path.
func (h Hook) String() string {
	s := redactURL(h.URL)
	if len(h.Events) > 0 {
		s += " (" + strings.Join(h.Events, ", ") + ")"
	}
	return s
}

// LogValue is String for slog, so that a logged Hook never shows its
// secret.
func (h Hook) LogValue() slog.Value { return slog.StringValue(h.String()) }

// Config is what a Notifier needs.
type Config struct {
	Hooks []Hook
	// Client sends the requests; nil means a client with DefaultTimeout
	// that does not follow redirects.
	Client *http.Client
	Logger *slog.Logger
	// Now stamps events (default time.Now).
	Now func() time.Time
	// MaxAttempts bounds the attempts of one delivery (default 5).
	MaxAttempts int
	// Backoff is the wait before the first retry (default 1s); it doubles
	// for each further retry, up to MaxBackoff (default 30s).
	Backoff    time.Duration
	MaxBackoff time.Duration
	// QueueSize bounds each hook's queue of undelivered events (default
	// 256).
	QueueSize int
}

// Notifier queues events and delivers them to the hooks.
type Notifier struct {
	cfg    Config
	client *http.Client
	log    *slog.Logger
	now    func() time.Time
	hooks  []*hook
}

// hook is a Hook with its queue.
type hook struct {
	Hook
	index int
	host  string
	queue chan delivery
}

// delivery is one event for one hook, ready to send.
type delivery struct {
	event, id string
	body      []byte
}

// New returns a Notifier for cfg; Run delivers what Notify queues.
func New(cfg Config) *Notifier {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	n := &Notifier{cfg: cfg, client: cfg.Client, log: cfg.Logger, now: cfg.Now}
	if n.client == nil {
		n.client = &http.Client{
			Timeout: DefaultTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	if n.now == nil {
		n.now = time.Now
	}
	for i, h := range cfg.Hooks {
		h.Events = slices.Clone(h.Events)
		n.hooks = append(n.hooks, &hook{Hook: h, index: i, host: hostOf(h.URL), queue: make(chan delivery, cfg.QueueSize)})
	}
	return n
}

// envelope is the request body.
type envelope struct {
	Event string          `json:"event"`
	ID    string          `json:"id"`
	At    string          `json:"at"`
	Data  json.RawMessage `json:"data"`
}

// Notify queues event for every hook that wants it. It never blocks: a
// hook whose queue is full loses the event, with a warning. The payload
// is encoded now (protobuf messages with protojson, proto field names;
// anything else with encoding/json), so the caller may change it after.
func (n *Notifier) Notify(event string, payload any) {
	if n == nil {
		return
	}
	var targets []*hook
	for _, h := range n.hooks {
		if len(h.Events) == 0 || slices.Contains(h.Events, event) {
			targets = append(targets, h)
		}
	}
	if len(targets) == 0 {
		return
	}
	data, err := encode(payload)
	if err != nil {
		n.log.Warn("webhook payload not encodable; event dropped", "event", event, "err", err)
		return
	}
	at := n.now().UTC().Format(time.RFC3339)
	for _, h := range targets {
		d := delivery{event: event, id: rand.Text()}
		d.body, err = json.Marshal(envelope{Event: event, ID: d.id, At: at, Data: data})
		if err != nil {
			// RawMessage from a successful encode always marshals.
			n.log.Warn("webhook body not encodable; event dropped", "event", event, "err", err)
			return
		}
		select {
		case h.queue <- d:
		default:
			n.log.Warn("webhook queue full; event dropped", "event", event, "delivery", d.id,
				"hook", h.index, "host", h.host, "queue_size", cap(h.queue))
		}
	}
}

func encode(payload any) (json.RawMessage, error) {
	if m, ok := payload.(proto.Message); ok {
		return protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	}
	return json.Marshal(payload)
}

// Run delivers queued events until ctx ends, then returns nil; events
// still queued are not delivered. Call it once.
func (n *Notifier) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, h := range n.hooks {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case d := <-h.queue:
					n.deliver(ctx, h, d)
				}
			}
		})
	}
	<-ctx.Done() // also with no hooks: Run is a long-lived part
	wg.Wait()
	if left := n.queued(); left > 0 {
		n.log.Info("webhook notifier stopped; undelivered events dropped", "events", left)
	}
	return nil
}

func (n *Notifier) queued() int {
	total := 0
	for _, h := range n.hooks {
		total += len(h.queue)
	}
	return total
}

// deliver sends d to h, retrying as the package doc says, until it
// succeeds, fails for good, or ctx ends.
func (n *Notifier) deliver(ctx context.Context, h *hook, d delivery) {
	log := n.log.With("event", d.event, "delivery", d.id, "hook", h.index, "host", h.host)
	for attempt := 1; ; attempt++ {
		wait, retry, err := n.post(ctx, h, d)
		if err == nil {
			log.Debug("webhook delivered", "attempts", attempt)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if !retry || attempt >= n.cfg.MaxAttempts {
			log.Warn("webhook delivery failed", "attempts", attempt, "err", err)
			return
		}
		wait = max(wait, n.backoff(attempt))
		log.Debug("webhook delivery failed; retrying", "attempt", attempt, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// backoff is the wait after the given failed attempt (1-based): Backoff,
// doubled for each attempt after the first, at most MaxBackoff.
func (n *Notifier) backoff(attempt int) time.Duration {
	d := n.cfg.Backoff
	for i := 1; i < attempt && d < n.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, n.cfg.MaxBackoff)
}

// post makes one attempt. It reports whether a failure is worth a retry
// and how long the receiver asked to wait (Retry-After, at most
// MaxBackoff). Errors never hold the URL.
func (n *Notifier) post(ctx context.Context, h *hook, d delivery) (wait time.Duration, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(d.body))
	if err != nil {
		return 0, false, errors.New("invalid hook URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "cairn-controller")
	req.Header.Set(HeaderEvent, d.event)
	req.Header.Set(HeaderDelivery, d.id)
	if h.Secret != "" {
		req.Header.Set(HeaderSignature, sign(h.Secret, d.body))
	}
	resp, err := n.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the URL
		}
		return 0, true, fmt.Errorf("post: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
	resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return 0, false, nil
	case code == http.StatusTooManyRequests || code >= 500:
		return retryAfter(resp.Header.Get("Retry-After"), n.cfg.MaxBackoff), true, fmt.Errorf("receiver answered %s", resp.Status)
	case code >= 300 && code < 400:
		return 0, false, fmt.Errorf("receiver answered %s (redirects are not followed)", resp.Status)
	default:
		return 0, false, fmt.Errorf("receiver answered %s", resp.Status)
	}
}

// retryAfter reads a Retry-After header given in seconds, capped.
func retryAfter(v string, limit time.Duration) time.Duration {
	s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || s <= 0 {
		return 0
	}
	if s > int64(limit/time.Second) {
		return limit
	}
	return time.Duration(s) * time.Second
}

// sign returns the X-Cairn-Signature value of body.
func sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether header, an X-Cairn-Signature value, is the
// signature of body with secret. Receivers call it with the raw request
// body, before decoding it.
func Verify(secret string, body []byte, header string) bool {
	sig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// hostOf is the URL's host, what logs name a hook by.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(invalid URL)"
	}
	return u.Host
}

// redactURL keeps a URL's scheme and host and hides the rest.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(invalid URL)"
	}
	s := u.Scheme + "://" + u.Host
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		s += "/…"
	}
	return s
}
