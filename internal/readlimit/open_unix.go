//go:build unix

package readlimit

import "syscall"

// nonBlock keeps open from waiting for a writer of a named pipe swapped
// in after the stat.
const nonBlock = syscall.O_NONBLOCK
