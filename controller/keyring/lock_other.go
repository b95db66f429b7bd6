//go:build !unix

package keyring

// lock does not lock where flock(2) does not exist: run one rotation at a
// time.
func lock(string) (func(), error) { return func() {}, nil }
