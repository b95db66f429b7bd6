package pluginhost

import (
	"context"
	"log/slog"
	"testing"

	"github.com/cairn-ops/cairn/plugins/builtin"
	"github.com/cairn-ops/cairn/plugins/catalog"
)

// BenchmarkStartDescribeClose measures what one step pays for the process
// boundary: start a plugin (fork, exec, handshake, AutoMTLS), one call,
// and kill it — for a built-in (the agent re-executed) and for the
// catalog's external example plugin (checksum verified first).
func BenchmarkStartDescribeClose(b *testing.B) {
	cat, err := catalog.Load(catDir)
	if err != nil {
		b.Fatal(err)
	}
	h := New(Config{Self: agentBin, Builtins: builtin.Names(), Catalog: cat, Logger: slog.New(slog.DiscardHandler)})
	defer h.Close()
	for _, name := range []string{"file", "motd"} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				inst, err := h.Start(ctx, name)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := inst.Plugin.Describe(ctx); err != nil {
					b.Fatal(err)
				}
				inst.Close()
			}
		})
	}
}
