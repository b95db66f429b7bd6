//go:build !linux

package collector

import "io/fs"

// fileOwner is not known off Linux; owner fields stay empty.
func swFileOwner(fs.FileInfo) (uid, gid uint32, ok bool) { return 0, 0, false }
