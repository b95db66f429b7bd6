package archive

import "syscall"

func statfsFree(dir string) (free int64, dev uint64, ok bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, false
	}
	var fi syscall.Stat_t
	if err := syscall.Stat(dir, &fi); err != nil {
		return 0, 0, false
	}
	return int64(st.Bavail) * st.Bsize, fi.Dev, true
}
