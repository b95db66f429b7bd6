package pluginhost

import (
	"strings"
	"testing"
)

// TestPluginOutputBounded: a plugin writing without newlines cannot fill
// the agent's memory: lines are kept up to maxPluginLine and say they
// were cut; the next line is whole again.
func TestPluginOutputBounded(t *testing.T) {
	var got []string
	w := &lineWriter{fn: func(l string) { got = append(got, l) }}
	tl := newTail(3)
	chunk := []byte(strings.Repeat("x", 1000))
	for range 10000 { // 10 MB, no newline
		w.Write(chunk)
		tl.Write(chunk)
	}
	w.Write([]byte("tail of the long line\nnext\n"))
	tl.Write([]byte("tail of the long line\nnext\n"))
	want := []string{strings.Repeat("x", maxPluginLine) + cutNote, "next"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("lines: %d of them, first %d bytes; want the first cut at %d bytes and then %q", len(got), len(got[0]), maxPluginLine, "next")
	}
	if n := len(tl.String()); n > 2*maxPluginLine {
		t.Errorf("tail keeps %d bytes", n)
	}
}
