package dml

import (
	"fmt"
	"sync"
	"testing"
)

// TestSessionLocksDoNotAccumulate: every Push, Declare, Write, Complete
// and Discard takes the lock of the upload ID it names, known or not.
// The table of locks must hold only the locks in use, or a caller naming
// new IDs in a loop grows the controller's memory without end; and a
// lock must still exclude while it is shared.
func TestSessionLocksDoNotAccumulate(t *testing.T) {
	s := newSessions(t.TempDir(), SessionLimits{}.withDefaults(1<<20))
	for i := range 1000 {
		s.lock(fmt.Sprintf("%032x", i))()
	}
	var wg sync.WaitGroup
	inside, most := 0, 0
	var mu sync.Mutex
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				unlock := s.lock("0123456789abcdef0123456789abcdef")
				mu.Lock()
				inside++
				most = max(most, inside)
				mu.Unlock()
				mu.Lock()
				inside--
				mu.Unlock()
				unlock()
			}
		}()
	}
	wg.Wait()
	if most != 1 {
		t.Errorf("%d holders of one upload's lock at once, want 1", most)
	}
	s.lockMu.Lock()
	n := len(s.locks)
	s.lockMu.Unlock()
	if n != 0 {
		t.Errorf("%d session locks kept after every holder let go, want 0", n)
	}
}
