package diff

import (
	"strconv"
	"strings"

	"github.com/cairn-ops/cairn/internal/bytesize"
)

// isSizeField reports whether the field at path holds a number of bytes:
// its name ends in "_bytes" (size_bytes, total_bytes,
// partitions[sda1].size_bytes).
func isSizeField(path string) bool {
	return strings.HasSuffix(path, "_bytes")
}

// humanValue is v for a person to read: a byte count of a size field as
// an IEC size, any other value (or one that is not a number) as is. The
// JSON form keeps the raw value; only the text, Markdown and HTML forms
// use this.
func humanValue(field, v string) string {
	if !isSizeField(field) {
		return v
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return v
	}
	return bytesize.Format(n)
}
