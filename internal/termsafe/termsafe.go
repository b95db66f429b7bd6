// Package termsafe makes text from input safe to print on a terminal.
// Manifests, audits (package names, file paths, hostnames an agent
// reports), node names, labels, release notes and error messages quoting
// them can hold bytes a terminal acts on: ESC and CSI sequences that move
// the cursor, retitle the window or rewrite what is on screen, a carriage
// return that overwrites a line, Unicode bidi controls that show text in
// another order than it is (Trojan Source), or invalid UTF-8.
//
// String and Writer replace each such byte or rune with a visible escape:
//
//	C0 controls but tab and newline       \x1b, \r (a CR not followed by LF)
//	DEL                                   \u007f
//	C1 controls (U+0080–U+009F)           \u009b
//	bidi controls                         \u202e (U+061C, U+200E, U+200F,
//	                                      U+202A–U+202E, U+2066–U+2069)
//	invalid UTF-8                         \xff (each bad byte)
//
// Everything else, valid UTF-8 text included, passes unchanged. The
// escapes of what JSON strings may hold raw (DEL, C1 and bidi controls)
// are JSON's own for the runes, so JSON output stays valid JSON with the
// same values; JSON holds no raw C0 control. Field also escapes tab and
// newline, for a value inside a line-structured output (a table cell,
// one line of a list).
//
// Each command line wraps its standard output and error in a Writer once,
// so everything it prints passes through here.
package termsafe

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"
)

// String returns s with every unsafe byte or rune escaped; tab, newline
// and CR LF are kept.
func String(s string) string {
	if safe(s, false) {
		return s
	}
	var b strings.Builder
	escape(&b, s, false)
	return b.String()
}

// Field is String that also escapes tab and newline (as \t and \n), for a
// value inside one line of output.
func Field(s string) string {
	if safe(s, true) {
		return s
	}
	var b strings.Builder
	escape(&b, s, true)
	return b.String()
}

// safe reports whether s needs no escaping.
func safe(s string, field bool) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				if field || c != '\t' && c != '\n' {
					return false
				}
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 || unsafeRune(r) {
			return false
		}
		i += n
	}
	return true
}

// unsafeRune reports whether r, a valid rune of two or more bytes, is one
// a terminal acts on: a C1 control or a bidi control.
func unsafeRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f:
		return true
	case r >= 0x202a && r <= 0x202e:
		return true
	case r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// escape writes s to b with unsafe bytes and runes escaped. A CR is kept
// only as the first half of a CR LF outside a field.
func escape(b *strings.Builder, s string, field bool) {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '\t' || c == '\n':
				switch {
				case !field:
					b.WriteByte(c)
				case c == '\t':
					b.WriteString(`\t`)
				default:
					b.WriteString(`\n`)
				}
			case c == '\r':
				if !field && i+1 < len(s) && s[i+1] == '\n' {
					b.WriteByte(c)
				} else {
					b.WriteString(`\r`)
				}
			case c == 0x7f:
				// JSON's escape: encoding/json and protojson leave DEL raw
				// in strings, and \x7f is not a JSON escape.
				b.WriteString(`\u007f`)
			case c < 0x20:
				fmt.Fprintf(b, `\x%02x`, c)
			default:
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(b, `\x%02x`, c)
			i++
			continue
		case unsafeRune(r):
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
}

// Writer escapes what is written through it (as String) before passing
// it on. It holds back the end of a write that may continue in the next
// one (an incomplete UTF-8 sequence, a CR that may start a CR LF); Flush
// writes it out escaped. It is safe for concurrent use (a daemon's log
// handlers share one).
type Writer struct {
	mu      sync.Mutex
	w       io.Writer
	pending []byte
}

// NewWriter returns a Writer escaping into w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Unwrap returns the writer w escapes into, for output that is a
// program's own control sequences (redrawing a screen), never input.
func (w *Writer) Unwrap() io.Writer { return w.w }

// Write escapes p and writes it on. It returns len(p) when the escaped
// text was written in full.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := string(p)
	if len(w.pending) > 0 {
		s = string(w.pending) + s
		w.pending = w.pending[:0]
	}
	cut := holdBack(s)
	w.pending = append(w.pending, s[cut:]...)
	s = s[:cut]
	if s == "" {
		return len(p), nil
	}
	var err error
	if safe(s, false) {
		_, err = io.WriteString(w.w, s)
	} else {
		var b strings.Builder
		escape(&b, s, false)
		_, err = io.WriteString(w.w, b.String())
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes out what Write held back, escaped as the end of the text.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) == 0 {
		return nil
	}
	var b strings.Builder
	escape(&b, string(w.pending), false)
	w.pending = w.pending[:0]
	_, err := io.WriteString(w.w, b.String())
	return err
}

// holdBack returns where the tail of s that may continue in the next
// write starts: a trailing CR, or the start of a UTF-8 sequence that is
// valid so far but incomplete.
func holdBack(s string) int {
	n := len(s)
	if n == 0 {
		return 0
	}
	if s[n-1] == '\r' {
		return n - 1
	}
	// A rune is at most 4 bytes: look at the last 3 for its start.
	for i := n - 1; i >= 0 && i >= n-3; i-- {
		c := s[i]
		if c < utf8.RuneSelf {
			return n
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRuneInString(s[i:]) {
				return i
			}
			return n
		}
	}
	return n
}
