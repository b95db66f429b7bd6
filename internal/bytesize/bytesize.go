// Package bytesize formats and parses byte counts the way people write
// them: "48 GiB", "512 B", "256MiB", "1G".
package bytesize

import (
	"fmt"
	"strconv"
	"strings"
)

var units = []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

// Format renders n in the largest IEC unit that keeps it at least 1, with
// one decimal when it is not a whole number of that unit, so a value that
// looks exact is: 512 → "512 B", 1536 → "1.5 KiB", 51539607552 → "48 GiB",
// 16 GiB less one byte → "16.0 GiB".
func Format(n uint64) string {
	if n < 1024 {
		return strconv.FormatUint(n, 10) + " B"
	}
	i, div := 0, uint64(1)
	for n/div >= 1024 && i < len(units)-1 {
		div *= 1024
		i++
	}
	if n%div == 0 {
		return strconv.FormatUint(n/div, 10) + " " + units[i]
	}
	v := strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64)
	if v == "1024.0" && i < len(units)-1 { // rounded up into the next unit
		v, i = "1.0", i+1
	}
	return v + " " + units[i]
}

// Parse reads a byte count: a plain number of bytes, or a number with a
// unit. K, M, G, T (with or without "i" and "B") are powers of 1024, as
// in "256MiB", "1G", "512k"; KB, MB, GB, TB are powers of 1000.
func Parse(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" {
		return 0, fmt.Errorf("invalid size %q: want a number of bytes such as 1048576, 256MiB or 1G", s)
	}
	mult := uint64(1)
	switch unit {
	case "", "b":
	case "k", "ki", "kib":
		mult = 1 << 10
	case "m", "mi", "mib":
		mult = 1 << 20
	case "g", "gi", "gib":
		mult = 1 << 30
	case "t", "ti", "tib":
		mult = 1 << 40
	case "kb":
		mult = 1e3
	case "mb":
		mult = 1e6
	case "gb":
		mult = 1e9
	case "tb":
		mult = 1e12
	default:
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (use B, KiB, MiB, GiB, TiB)", s, t[i:])
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: %w", s, err)
	}
	v := f * float64(mult)
	if v >= 1<<63 {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return uint64(v), nil
}

// Value is a byte count usable as a command-line flag (pflag.Value).
type Value uint64

// String implements pflag.Value.
func (v *Value) String() string { return Format(uint64(*v)) }

// Set implements pflag.Value.
func (v *Value) Set(s string) error {
	n, err := Parse(s)
	if err != nil {
		return err
	}
	*v = Value(n)
	return nil
}

// Type implements pflag.Value.
func (v *Value) Type() string { return "size" }
