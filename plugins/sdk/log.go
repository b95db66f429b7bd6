package sdk

import (
	"io"
	"log/slog"
	"regexp"
	"strings"
)

// hclogTime is the timestamp layout go-plugin's host expects in a
// plugin's JSON log lines.
const hclogTime = "2006-01-02T15:04:05.000000Z07:00"

// NewLogger returns a slog logger for a plugin process that writes JSON
// lines in the shape go-plugin relays into the host's log with their
// level, message and attributes (hclog's "@level", "@message",
// "@timestamp"). A plugin passes os.Stderr:
//
//	log := sdk.NewLogger(os.Stderr).With("step", sc.GetStep())
//
// For what the operator should see with the step, use Apply's Reporter.
func NewLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				return slog.String("@timestamp", a.Value.Time().Format(hclogTime))
			case slog.LevelKey:
				return slog.String("@level", hclogLevel(a.Value.Any()))
			case slog.MessageKey:
				return slog.String("@message", a.Value.String())
			}
			return a
		},
	}))
}

func hclogLevel(v any) string {
	l, ok := v.(slog.Level)
	if !ok {
		return strings.ToLower(slog.AnyValue(v).String())
	}
	switch {
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	}
	return "error"
}

// flagged matches a line that says of itself that it is a warning or an
// error: "warning: …", "dpkg: warning: …", "W: …", "E: …", "[WARN] …",
// "ERROR …", "fatal: …".
var flagged = regexp.MustCompile(`(?i)^\s*(?:[\w./+-]+:\s*)?\[?(?:warning|warn|w|error|err|e|fatal|critical)\]?(?::|\s|$)`)

// LineLevel is the level at which to report a line a step's program
// printed: LevelWarn when the line says it is a warning or an error,
// LevelInfo otherwise. Which stream it came on says nothing: programs
// print their ordinary progress on stderr ("Created symlink …", dpkg's
// "Selecting previously unselected package"), and whether the step failed
// is its result's business, not its output's.
func LineLevel(line string) string {
	if flagged.MatchString(line) {
		return LevelWarn
	}
	return LevelInfo
}
