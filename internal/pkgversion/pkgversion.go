// Package pkgversion orders Debian package versions the way dpkg does.
//
// A Debian version is [epoch:]upstream_version[-debian_revision] (see
// deb-version(5)). Compare follows dpkg's dpkg_version_compare and
// verrevcmp exactly: epochs compare numerically; the upstream version and
// then the revision compare as alternating runs of non-digits and digits,
// where non-digit runs compare character by character with '~' before
// everything (even the end of the string), then the end of the string, then
// letters, then all other characters, and digit runs compare numerically
// (leading zeros ignored).
package pkgversion

import "strings"

// Version is a parsed Debian version.
type Version struct {
	Epoch    uint64
	Upstream string
	Revision string
}

// Parse splits s into epoch, upstream version and revision the way dpkg
// does: surrounding whitespace is ignored, the epoch is everything before
// the first ':' and the revision everything after the last '-'.
//
// Parse is lenient: it never fails. Where dpkg would reject the version (a
// non-numeric epoch, for instance) the text is kept in Upstream with epoch
// 0, so malformed versions still order deterministically.
func Parse(s string) Version {
	s = strings.Trim(s, " \t\n\r\v\f")
	var v Version
	if i := strings.IndexByte(s, ':'); i >= 0 {
		if epoch, ok := parseEpoch(s[:i]); ok {
			v.Epoch = epoch
			s = s[i+1:]
		}
	}
	if i := strings.LastIndexByte(s, '-'); i >= 0 {
		v.Revision = s[i+1:]
		s = s[:i]
	}
	v.Upstream = s
	return v
}

// parseEpoch parses a non-empty run of ASCII digits.
func parseEpoch(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) {
			return 0, false
		}
		if n > (1<<64-1-9)/10 {
			return 0, false // overflow; dpkg rejects epochs above INT_MAX
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// String formats v in canonical form, omitting a zero epoch and an empty
// revision.
func (v Version) String() string {
	var b strings.Builder
	if v.Epoch != 0 {
		b.WriteString(uitoa(v.Epoch))
		b.WriteByte(':')
	}
	b.WriteString(v.Upstream)
	if v.Revision != "" {
		b.WriteByte('-')
		b.WriteString(v.Revision)
	}
	return b.String()
}

func uitoa(n uint64) string {
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(buf[i:])
		}
	}
}

// Compare returns -1 when a sorts before b, 0 when they are equal and +1
// when a sorts after b, in dpkg's order.
func Compare(a, b string) int {
	return Parse(a).Compare(Parse(b))
}

// Compare orders v against w: -1, 0 or +1.
func (v Version) Compare(w Version) int {
	switch {
	case v.Epoch > w.Epoch:
		return 1
	case v.Epoch < w.Epoch:
		return -1
	}
	if c := verrevcmp(v.Upstream, w.Upstream); c != 0 {
		return c
	}
	return verrevcmp(v.Revision, w.Revision)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isAlpha(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }

// order is dpkg's weight of one character of a non-digit run; 0 stands for
// the end of the string (and for a digit, which ends the run).
func order(s string, i int) int {
	if i >= len(s) {
		return 0
	}
	c := s[i]
	switch {
	case isDigit(c):
		return 0
	case isAlpha(c):
		return int(c)
	case c == '~':
		return -1
	default:
		return int(c) + 256
	}
}

// verrevcmp is dpkg's lib/dpkg/version.c verrevcmp, returning -1, 0 or +1.
func verrevcmp(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		firstDiff := 0
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			ac, bc := order(a, i), order(b, j)
			if ac != bc {
				return sign(ac - bc)
			}
			i++
			j++
		}
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		for i < len(a) && isDigit(a[i]) && j < len(b) && isDigit(b[j]) {
			if firstDiff == 0 {
				firstDiff = int(a[i]) - int(b[j])
			}
			i++
			j++
		}
		if i < len(a) && isDigit(a[i]) {
			return 1
		}
		if j < len(b) && isDigit(b[j]) {
			return -1
		}
		if firstDiff != 0 {
			return sign(firstDiff)
		}
	}
	return 0
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}
