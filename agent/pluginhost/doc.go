// Package pluginhost starts deployment-step plugins for the agent and
// keeps them on a short leash.
//
// Every plugin runs in its own process, started through hashicorp/go-plugin
// over gRPC with one handshake (sdk.Handshake) and automatic mutual TLS.
// There is one code path for both kinds of plugin:
//
//   - built-in plugins live in the agent binary; the host re-executes that
//     binary as "cairn-agent plugin serve NAME", verified against the sha256
//     of the agent binary itself;
//   - external plugins are binaries listed in the plugin catalog
//     (DIR/catalog.yaml, read by plugins/catalog), verified against the catalog's
//     sha256 before they start. A tampered binary is refused with ErrChecksum.
//
// Each plugin process leads its own session and process group, and dies
// with its agent: it is started with a parent-death signal (SIGKILL)
// from an OS thread that stays locked, running nothing else, until the
// plugin is gone (the kernel sends the signal when that thread ends, not
// the process). With Config.ProcDir, the host records each plugin
// process (pid, start time, boot, owner) while it runs, and Reap, at the
// next start, kills a recorded one whose agent is gone (one that cleared
// its parent-death signal) with its group, session and descendants;
// never a process that merely reused a recorded pid. Every call
// through Instance.Plugin runs under the caller's context: when the context
// ends first, the whole group (the plugin and anything it spawned) is killed
// with SIGKILL and the call fails with context.DeadlineExceeded or
// context.Canceled, wrapped with the plugin's name. A plugin that dies during
// a call fails that call with ErrPluginCrashed, the exit status and its last
// stderr lines; the agent carries on and can start other plugins.
//
// Plugins log hclog JSON to stderr; the host relays each line into the
// agent's slog logger with plugin=NAME.
package pluginhost
