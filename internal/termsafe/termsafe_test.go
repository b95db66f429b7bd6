package termsafe

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var cases = []struct {
	name       string
	in         string
	str, field string
}{
	{"plain", "nginx 1.24.0-1", "nginx 1.24.0-1", "nginx 1.24.0-1"},
	{"UTF-8 text", "café → naïve 日本", "café → naïve 日本", "café → naïve 日本"},
	{"tab and newline", "a\tb\nc", "a\tb\nc", `a\tb\nc`},
	{"CR LF", "a\r\nb", "a\r\nb", `a\r\nb`},
	{"lone CR", "ok\revil", `ok\revil`, `ok\revil`},
	{"trailing CR", "ok\r", `ok\r`, `ok\r`},
	{"ESC", "a\x1bb", `a\x1bb`, `a\x1bb`},
	{"CSI clear screen", "\x1b[2J\x1b[H", `\x1b[2J\x1b[H`, `\x1b[2J\x1b[H`},
	{"OSC window title", "\x1b]0;pwned\x07", `\x1b]0;pwned\x07`, `\x1b]0;pwned\x07`},
	{"NUL and DEL", "\x00\x7f", `\x00\u007f`, `\x00\u007f`},
	{"C1 CSI", "a\u009b31mb", `a\u009b31mb`, `a\u009b31mb`},
	{"bidi override", "user\u202etxt.exe", `user\u202etxt.exe`, `user\u202etxt.exe`},
	{"bidi isolates", "\u2066x\u2069\u2067\u2068", `\u2066x\u2069\u2067\u2068`, `\u2066x\u2069\u2067\u2068`},
	{"bidi marks", "\u200e\u200f\u061c", `\u200e\u200f\u061c`, `\u200e\u200f\u061c`},
	{"invalid UTF-8", "a\xffb\xc3", `a\xffb\xc3`, `a\xffb\xc3`},
	{"overlong encoding", "\xc0\xaf", `\xc0\xaf`, `\xc0\xaf`},
}

func TestString(t *testing.T) {
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.str, String(tt.in)); diff != "" {
				t.Errorf("String(%q) (-want +got):\n%s", tt.in, diff)
			}
			if diff := cmp.Diff(tt.field, Field(tt.in)); diff != "" {
				t.Errorf("Field(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// TestWriter writes each case in every split into two writes, so that
// escapes and UTF-8 sequences cut between writes come out the same.
func TestWriter(t *testing.T) {
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			for cut := 0; cut <= len(tt.in); cut++ {
				var b strings.Builder
				w := NewWriter(&b)
				for _, part := range []string{tt.in[:cut], tt.in[cut:]} {
					if n, err := w.Write([]byte(part)); err != nil || n != len(part) {
						t.Fatalf("Write(%q) = %d, %v", part, n, err)
					}
				}
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.str, b.String()); diff != "" {
					t.Errorf("written in two parts cut at %d (-want +got):\n%s", cut, diff)
				}
			}
		})
	}
}

// TestWriterJSON: JSON passed through a Writer is still JSON with the
// same values (encoding/json leaves C1 and bidi controls raw).
func TestWriterJSON(t *testing.T) {
	in := map[string]string{"name": "evil\u202e\u009b\x1b[31m", "path": "/etc/a\tb", "del": "rub\x7fout"}
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	w := NewWriter(&b)
	w.Write(raw)
	w.Flush()
	if strings.ContainsAny(b.String(), "\u202e\u009b\x1b") {
		t.Errorf("control characters left raw in %q", b.String())
	}
	var out map[string]string
	if err := json.Unmarshal([]byte(b.String()), &out); err != nil {
		t.Fatalf("escaped JSON does not parse: %v\n%s", err, b.String())
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("values changed (-want +got):\n%s", diff)
	}
}
