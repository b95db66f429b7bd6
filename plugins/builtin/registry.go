// Package builtin is the explicit registry of built-in plugins: the step
// plugins that ship inside the cairn-agent binary. Each lives in its own
// package under plugins/builtin/<name> and is written against plugins/sdk
// like any third-party plugin; the agent serves one by re-executing itself
// as "cairn-agent plugin serve NAME", so built-ins cross the same process
// boundary and protocol as external plugins.
package builtin

import (
	"maps"
	"slices"

	"github.com/cairn-ops/cairn/plugins/builtin/archive"
	"github.com/cairn-ops/cairn/plugins/builtin/dpkg"
	"github.com/cairn-ops/cairn/plugins/builtin/exec"
	"github.com/cairn-ops/cairn/plugins/builtin/file"
	"github.com/cairn-ops/cairn/plugins/builtin/httpcheck"
	"github.com/cairn-ops/cairn/plugins/builtin/manual"
	"github.com/cairn-ops/cairn/plugins/builtin/systemd"
	"github.com/cairn-ops/cairn/plugins/sdk"
)

// Registry returns the built-in plugins by name, each with its
// constructor. A new built-in is added here, in one line.
func Registry() map[string]func() sdk.Plugin {
	return map[string]func() sdk.Plugin{
		"exec":      exec.New,
		"file":      file.New,
		"archive":   archive.New,
		"dpkg":      dpkg.New,
		"systemd":   systemd.New,
		"httpcheck": httpcheck.New,
		"manual":    manual.New,
	}
}

// Names returns the built-in plugins' names, sorted.
func Names() []string {
	return slices.Sorted(maps.Keys(Registry()))
}
