// Command cairn-plugin-motd is an example external step plugin: it writes
// a message of the day to a file under the root. It shows a third party
// how to write a plugin with plugins/sdk — parameters decoded and
// validated, a Plan that declares its file change, an atomic and
// idempotent Apply with a rollback record, Verify and Rollback — and the
// integration tests use it as the external plugin in the agent's catalog.
//
// Parameters:
//
//	message  string, required   the text; a final newline is added if missing
//	path     string             absolute path under the root (default /etc/motd)
//	mode     string             octal permissions (default "0644")
package main

import "github.com/cairn-ops/cairn/plugins/sdk"

func main() {
	sdk.Serve(New())
}
