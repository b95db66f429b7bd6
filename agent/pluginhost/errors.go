package pluginhost

import (
	"errors"

	"github.com/cairn-ops/cairn/plugins/catalog"
)

var (
	// ErrUnknownPlugin is returned by Host.Start for a name that is neither
	// a built-in plugin nor in the catalog.
	ErrUnknownPlugin = errors.New("unknown plugin")

	// ErrChecksum is returned by Host.Start when a plugin binary's sha256
	// differs from the one it must have (the catalog entry's, or for
	// built-ins the agent binary's own). The binary is not started. It is
	// the catalog's sentinel: catalog.Entry.Verify returns it too.
	ErrChecksum = catalog.ErrChecksum

	// ErrPluginCrashed is returned by a call when the plugin process exited
	// during it. The message carries the exit status and the plugin's last
	// stderr lines.
	ErrPluginCrashed = errors.New("plugin crashed")

	// ErrProtocol is returned by Host.Start when the process did not
	// complete the go-plugin handshake: it wrote something else on stdout,
	// exited early, or is not a Cairn step plugin at all.
	ErrProtocol = errors.New("not a cairn step plugin")

	// ErrClosed is returned by calls on an Instance after Close, or after
	// the host killed it because a call outlived its context.
	ErrClosed = errors.New("plugin instance is closed")
)
