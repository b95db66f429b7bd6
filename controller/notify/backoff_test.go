package notify

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestBackoff(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []time.Duration // after attempts 1, 2, …
	}{
		{"defaults", Config{}, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}},
		{"custom", Config{Backoff: 3 * time.Second, MaxBackoff: 10 * time.Second}, []time.Duration{3 * time.Second, 6 * time.Second, 10 * time.Second, 10 * time.Second}},
		{"cap below first", Config{Backoff: time.Minute, MaxBackoff: time.Second}, []time.Duration{time.Second, time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := New(tc.cfg)
			var got []time.Duration
			for i := range tc.want {
				got = append(got, n.backoff(i+1))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("backoff (-want +got):\n%s", diff)
			}
			if d := n.backoff(1000); d != n.cfg.MaxBackoff {
				t.Errorf("backoff(1000) = %s, want the cap %s", d, n.cfg.MaxBackoff)
			}
		})
	}
	if n := New(Config{}); n.cfg.MaxAttempts != 5 || n.cfg.QueueSize != DefaultQueueSize {
		t.Errorf("defaults: MaxAttempts %d, QueueSize %d; want 5, %d", n.cfg.MaxAttempts, n.cfg.QueueSize, DefaultQueueSize)
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{" 7 ", 7 * time.Second},
		{"120", 30 * time.Second}, // capped
		{"0", 0},
		{"-5", 0},
		{"Wed, 21 Oct 2015 07:28:00 GMT", 0}, // dates are not honoured; the backoff applies
		{"99999999999999999", 30 * time.Second},
	}
	for _, tc := range tests {
		if got := retryAfter(tc.header, 30*time.Second); got != tc.want {
			t.Errorf("retryAfter(%q) = %s, want %s", tc.header, got, tc.want)
		}
	}
}
