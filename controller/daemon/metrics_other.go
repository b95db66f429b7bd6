//go:build !linux

package daemon

// residentBytes is only known on Linux.
func residentBytes() (uint64, bool) { return 0, false }
