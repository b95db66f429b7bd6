package collector

import (
	"errors"
	"io/fs"
	"slices"
	"strconv"
	"strings"
)

// hwReadFile returns the trimmed content of the host file p (an absolute
// path as seen on the audited host) read under env's root. The error is
// the file system's, naming the path on disk, or readlimit's for a file
// that is not a regular file or is larger than maxAttrBytes.
func hwReadFile(env Env, p string) (string, error) {
	b, err := readHostFile(env, p, maxAttrBytes)
	if err != nil {
		return "", err
	}
	return trimNul(string(b)), nil
}

// hwReadOptional returns the trimmed content of the host file p, or "" when
// it does not exist. A file that exists but cannot be read (sysfs keeps
// serial numbers readable by root only) is "" plus a warning.
func hwReadOptional(env Env, p string) string {
	s, err := hwReadFile(env, p)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			env.warn(err.Error())
		}
		return ""
	}
	return s
}

// hwReadUint returns the unsigned integer in the host file p; ok is false
// when the file is missing, unreadable or holds something else.
func hwReadUint(env Env, p string) (v uint64, ok bool) {
	s, err := hwReadFile(env, p)
	if err != nil {
		return 0, false
	}
	v, err = strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

// hwKeys picks each item's key: its preferred key (a serial number, a MAC)
// when that is non-empty and no other item shares it, else its fallback (a
// device path, a name). Serials and MACs are not always unique: multipath
// shows one disk twice, bond members share a MAC, firmware repeats
// placeholder serials.
func hwKeys(preferred, fallback []string) []string {
	seen := make(map[string]int, len(preferred))
	for _, p := range preferred {
		if p != "" {
			seen[p]++
		}
	}
	keys := make([]string, len(preferred))
	for i, p := range preferred {
		if p != "" && seen[p] == 1 {
			keys[i] = p
		} else {
			keys[i] = fallback[i]
		}
	}
	return keys
}

// hwSortByKey sorts list items by their stable key.
func hwSortByKey[T interface{ GetKey() string }](items []T) {
	slices.SortStableFunc(items, func(a, b T) int {
		return strings.Compare(a.GetKey(), b.GetKey())
	})
}
