//go:build !linux

package pluginhost

// RunningExecutable is empty here: there is no path that names the
// running executable itself, so built-ins are checked by checksum.
const RunningExecutable = ""
