package exec

import (
	osexec "os/exec"
	"syscall"
)

// ownProcessGroup starts cmd in a new process group and makes cancelling
// its context kill the whole group, so children of the program die too.
// The program also gets SIGKILL when the thread that starts it ends, so
// it dies with the plugin however the plugin dies; execute keeps that
// thread for it until it exits.
func ownProcessGroup(cmd *osexec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
