//go:build !linux

package dpkg

import (
	"context"
	"errors"
	"fmt"
)

// acquireLock is only implemented on Linux, where dpkg runs.
func acquireLock(ctx context.Context, path string, waiting func()) (func(), error) {
	return nil, fmt.Errorf("lock %s: %w", path, errors.ErrUnsupported)
}
