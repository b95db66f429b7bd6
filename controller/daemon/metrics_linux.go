package daemon

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/cairn-ops/cairn/internal/readlimit"
)

// residentBytes reads VmRSS from /proc/self/status.
func residentBytes() (uint64, bool) {
	data, err := readlimit.File("/proc/self/status", "", 1<<20)
	if err != nil {
		return 0, false
	}
	sc := readlimit.NewLines(bytes.NewReader(data), "/proc/self/status", len(data))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest) // "12345 kB"
		if len(fields) == 0 {
			return 0, false
		}
		kb, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			return 0, false
		}
		return kb * 1024, true
	}
	return 0, false
}
