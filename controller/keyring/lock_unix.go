//go:build unix

package keyring

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lock takes an exclusive lock on path (created 0600) without waiting: a
// second rotation at the same time is refused, not queued. The lock ends
// with the process, however it ends.
func lock(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock keyring: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another cairn-controller rotate holds %s: wait for it to finish", path)
		}
		return nil, fmt.Errorf("lock keyring %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
