package catalog

import "errors"

// ErrChecksum means a plugin binary's sha256 differs from the one it must
// have: Entry.Verify returns it, and agent/pluginhost refuses to start
// such a binary with it.
var ErrChecksum = errors.New("refusing a plugin binary whose checksum does not match")
