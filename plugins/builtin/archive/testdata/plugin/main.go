// Command plugin serves the archive plugin as a plugin binary, for the
// tests that cross the real process boundary.
package main

import (
	"github.com/cairn-ops/cairn/plugins/builtin/archive"
	"github.com/cairn-ops/cairn/plugins/sdk"
)

func main() { sdk.Serve(archive.New()) }
