package exec

import (
	osexec "os/exec"
	"syscall"
)

// ownProcessGroup starts cmd in a new process group and makes cancelling
// its context kill the whole group, so children of the program die too.
func ownProcessGroup(cmd *osexec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
