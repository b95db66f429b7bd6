// Package version reports the version Cairn's binaries were built as.
package version

import "runtime/debug"

// Version is set at build time with
// -ldflags "-X github.com/cairn-ops/cairn/internal/version.Version=v1.2.3".
var Version = ""

// String returns the build version: the -X value, else the module
// version from the build info, else "dev".
func String() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
