package collector

import (
	"context"
	"log/slog"
	"strings"

	"github.com/jaypipes/ghw"
)

// ghwTopologyDisabled is the warning ghw's PCI reader emits whenever
// topology detection is switched off, which the hardware collectors always
// do: it says nothing about the host, so it is not passed on.
const ghwTopologyDisabled = "topology detection disabled, assuming SMP architecture"

// ghwOptions returns the ghw options every hardware collector uses: read
// under env's root, never run external tools (ethtool, lsblk), and hand
// ghw's warnings to env.Warn instead of stderr.
//
// ghw v0.27 routes warnings through a *slog.Logger kept in its context;
// the deprecated option.Alerter is no longer consulted, so the logger is
// the only way to keep warnings off stderr.
func ghwOptions(env Env) []any {
	return []any{
		ghw.WithChroot(hwRoot(env)),
		ghw.WithDisableTools(),
		ghw.WithLogger(slog.New(ghwWarnHandler{warn: env.warn})),
	}
}

// hwRoot is env's root as ghw and pcidb want it.
func hwRoot(env Env) string {
	if env.Root == "" {
		return "/"
	}
	return env.Root
}

// ghwWarnHandler is a slog.Handler that turns ghw's warnings and errors
// into env.Warn calls and drops everything below warning level.
type ghwWarnHandler struct {
	warn func(msg string)
}

var _ slog.Handler = ghwWarnHandler{}

func (h ghwWarnHandler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= slog.LevelWarn
}

func (h ghwWarnHandler) Handle(_ context.Context, r slog.Record) error {
	msg := strings.TrimSpace(r.Message)
	if msg == "" || msg == ghwTopologyDisabled {
		return nil
	}
	h.warn("ghw: " + msg)
	return nil
}

func (h ghwWarnHandler) WithAttrs([]slog.Attr) slog.Handler { return h }

func (h ghwWarnHandler) WithGroup(string) slog.Handler { return h }

// hwKnown returns s, or "" when ghw reported it as unknown.
func hwKnown(s string) string {
	s = strings.TrimSpace(s)
	if s == "unknown" {
		return ""
	}
	return s
}
