package exec

import (
	osexec "os/exec"
	"syscall"
)

// ownProcessGroup starts cmd in a new process group and makes cancelling
// its context kill the whole group, so children of the program die too.
// The program is killed when the plugin dies (as it does with the agent),
// so that it does not run on unsupervised while the agent, restarted,
// decides what to do with its step.
func ownProcessGroup(cmd *osexec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
