package pluginhost

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// hclogAdapter is the hclog.Logger go-plugin writes to. go-plugin logs two
// things through it: its own housekeeping (logged at debug, since the host
// reports failures itself) and, through a Named sub-logger, each line the
// plugin writes to stderr (hclog JSON, relayed at the plugin's level).
type hclogAdapter struct {
	log     *slog.Logger
	name    string
	relayed bool // a Named logger: these are the plugin's own lines
	implied []any
}

var _ hclog.Logger = (*hclogAdapter)(nil)

func newHCLogAdapter(l *slog.Logger) *hclogAdapter {
	return &hclogAdapter{log: l}
}

func (a *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	lvl := slogLevel(level)
	if !a.relayed {
		lvl = slog.LevelDebug
	}
	ctx := context.Background()
	if !a.log.Enabled(ctx, lvl) {
		return
	}
	a.log.LogAttrs(ctx, lvl, msg, attrs(append(slices.Clone(a.implied), args...))...)
}

func (a *hclogAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *hclogAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *hclogAdapter) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *hclogAdapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *hclogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

func (a *hclogAdapter) enabled(l hclog.Level) bool {
	return a.log.Enabled(context.Background(), slogLevel(l))
}

func (a *hclogAdapter) IsTrace() bool { return a.enabled(hclog.Trace) }
func (a *hclogAdapter) IsDebug() bool { return a.enabled(hclog.Debug) }
func (a *hclogAdapter) IsInfo() bool  { return a.enabled(hclog.Info) }
func (a *hclogAdapter) IsWarn() bool  { return a.enabled(hclog.Warn) }
func (a *hclogAdapter) IsError() bool { return a.enabled(hclog.Error) }

func (a *hclogAdapter) ImpliedArgs() []any { return slices.Clone(a.implied) }

func (a *hclogAdapter) With(args ...any) hclog.Logger {
	b := *a
	b.implied = append(slices.Clone(a.implied), args...)
	return &b
}

func (a *hclogAdapter) Name() string { return a.name }

// Named is how go-plugin gets the logger for the plugin's stderr lines.
func (a *hclogAdapter) Named(name string) hclog.Logger {
	b := *a
	b.relayed = true
	if b.name != "" {
		name = b.name + "." + name
	}
	b.name = name
	return &b
}

func (a *hclogAdapter) ResetNamed(name string) hclog.Logger {
	b := *a
	b.relayed = true
	b.name = name
	return &b
}

// SetLevel is a no-op: the agent's slog handler decides.
func (a *hclogAdapter) SetLevel(hclog.Level) {}

// GetLevel reports the lowest level the slog handler takes, so go-plugin
// skips parsing lines that would be dropped anyway.
func (a *hclogAdapter) GetLevel() hclog.Level {
	for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if a.enabled(l) {
			return l
		}
	}
	return hclog.Off
}

func (a *hclogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

func (a *hclogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return &lineWriter{fn: func(line string) { a.Info(line) }}
}

func slogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// dropKeys are hclog fields that slog already carries or that only repeat
// the plugin's name.
var dropKeys = map[string]bool{"timestamp": true, "@module": true, "@caller": true}

// attrs turns hclog's alternating key/value args into slog attrs, sorted
// by key (the relayed JSON fields arrive in map order).
func attrs(args []any) []slog.Attr {
	var out []slog.Attr
	for i := 0; i < len(args); i += 2 {
		key := fmt.Sprint(args[i])
		if dropKeys[key] {
			continue
		}
		var v any = "(missing)"
		if i+1 < len(args) {
			v = args[i+1]
		}
		out = append(out, slog.Any(key, v))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// maxPluginLine bounds one line of a plugin's output as the host keeps
// it: a plugin (an external one is less trusted than the agent) that
// writes without newlines must not fill the agent's memory. The rest of a
// longer line is dropped, and the line says so.
const maxPluginLine = 64 << 10

// cutNote ends a line cut at maxPluginLine.
const cutNote = " [cut: line longer than 64 KiB]"

// lineWriter calls fn once per complete line written to it, each at most
// maxPluginLine bytes.
type lineWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
	fn  func(string)
	// skipping: the line in progress was cut; drop it to its newline.
	skipping bool
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for rest := p; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		chunk := rest
		if i >= 0 {
			chunk, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if !w.skipping {
			n := min(len(chunk), maxPluginLine-w.buf.Len())
			w.buf.Write(chunk[:n])
			if n < len(chunk) { // the line is longer than maxPluginLine
				w.fn(strings.TrimRight(w.buf.String(), "\r") + cutNote)
				w.buf.Reset()
				w.skipping = true
			}
		}
		if i >= 0 {
			if !w.skipping {
				w.fn(strings.TrimRight(w.buf.String(), "\r"))
			}
			w.buf.Reset()
			w.skipping = false
		}
	}
	return len(p), nil
}

// tail keeps the last n lines written to it, each at most maxPluginLine
// bytes: the plugin's raw stderr, for crash reports.
type tail struct {
	mu    sync.Mutex
	n     int
	lines []string
	lw    lineWriter
}

func newTail(n int) *tail {
	t := &tail{n: n}
	t.lw.fn = func(line string) {
		if line == "" {
			return
		}
		t.lines = append(t.lines, readable(line))
		if len(t.lines) > t.n {
			t.lines = t.lines[len(t.lines)-t.n:]
		}
	}
	return t
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lw.Write(p)
}

// String returns the kept lines (and any unterminated last line), joined
// by " | " so they fit in one error message.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := slices.Clone(t.lines)
	if t.lw.buf.Len() > 0 {
		lines = append(lines, t.lw.buf.String())
	}
	return strings.Join(lines, " | ")
}

// readable shortens an hclog JSON line to "level: message"; other lines
// (a panic's stack, say) are kept as they are.
func readable(line string) string {
	var e struct {
		Level   string `json:"@level"`
		Message string `json:"@message"`
	}
	if json.Unmarshal([]byte(line), &e) != nil || e.Message == "" {
		return line
	}
	return e.Level + ": " + e.Message
}
