//go:build !linux

package exec

import osexec "os/exec"

// ownProcessGroup is a no-op where process groups are not supported;
// cancelling kills only the program itself.
func ownProcessGroup(cmd *osexec.Cmd) {}
