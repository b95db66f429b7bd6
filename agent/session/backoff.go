package session

import (
	"math/rand/v2"
	"time"
)

// Backoff computes reconnect delays: exponential with full jitter, so a
// fleet that lost its controller at the same moment does not come back at
// the same moment. The n-th delay since the last Reset is uniform in
// [0, min(Cap, Base·2ⁿ)]. The zero value is not usable; set Base and Cap.
type Backoff struct {
	Base time.Duration
	Cap  time.Duration
	// Rand returns a uniform integer in [0, n); nil means math/rand/v2.
	Rand func(n int64) int64

	attempt int
}

// Next returns the delay before the next attempt and counts the attempt.
func (b *Backoff) Next() time.Duration {
	ceiling := b.ceiling()
	b.attempt++
	if ceiling <= 0 {
		return 0
	}
	rnd := b.Rand
	if rnd == nil {
		rnd = rand.Int64N
	}
	return time.Duration(rnd(int64(ceiling) + 1))
}

// Reset starts the sequence again, after a connection that held.
func (b *Backoff) Reset() { b.attempt = 0 }

// ceiling is min(Cap, Base·2^attempt), without overflowing.
func (b *Backoff) ceiling() time.Duration {
	d := b.Base
	for i := 0; i < b.attempt && d < b.Cap; i++ {
		d *= 2
	}
	return min(d, b.Cap)
}
