package session

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestBackoff(t *testing.T) {
	tests := []struct {
		name  string
		base  time.Duration
		cap   time.Duration
		rand  func(n int64) int64
		calls int
		want  []time.Duration
	}{
		{
			name:  "largest draw doubles up to the cap",
			base:  500 * time.Millisecond,
			cap:   5 * time.Second,
			rand:  func(n int64) int64 { return n - 1 },
			calls: 7,
			want: []time.Duration{
				500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second,
				5 * time.Second, 5 * time.Second, 5 * time.Second,
			},
		},
		{
			name:  "smallest draw is zero: full jitter",
			base:  500 * time.Millisecond,
			cap:   time.Minute,
			rand:  func(int64) int64 { return 0 },
			calls: 3,
			want:  []time.Duration{0, 0, 0},
		},
		{
			name:  "half draw",
			base:  time.Second,
			cap:   time.Minute,
			rand:  func(n int64) int64 { return (n - 1) / 2 },
			calls: 4,
			want:  []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second},
		},
		{
			name:  "cap below base",
			base:  time.Second,
			cap:   100 * time.Millisecond,
			rand:  func(n int64) int64 { return n - 1 },
			calls: 2,
			want:  []time.Duration{100 * time.Millisecond, 100 * time.Millisecond},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &Backoff{Base: tt.base, Cap: tt.cap, Rand: tt.rand}
			var got []time.Duration
			for range tt.calls {
				got = append(got, b.Next())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("delays (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBackoffResetAndBounds(t *testing.T) {
	var asked []int64
	b := &Backoff{Base: 10 * time.Millisecond, Cap: time.Hour, Rand: func(n int64) int64 {
		asked = append(asked, n)
		return n - 1
	}}
	for range 100 { // far past any overflow of Base·2ⁿ
		if d := b.Next(); d < 0 || d > time.Hour {
			t.Fatalf("delay %v outside [0, cap]", d)
		}
	}
	b.Reset()
	if d := b.Next(); d != 10*time.Millisecond {
		t.Errorf("after Reset: %v, want the base 10ms", d)
	}
	if asked[0] != int64(10*time.Millisecond)+1 {
		t.Errorf("first draw from [0, %d), want [0, base]", asked[0])
	}

	real := &Backoff{Base: time.Second, Cap: 4 * time.Second}
	for range 50 {
		if d := real.Next(); d < 0 || d > 4*time.Second {
			t.Fatalf("default source: delay %v outside [0, cap]", d)
		}
	}
}
