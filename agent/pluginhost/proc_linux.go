package pluginhost

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/cairn-ops/cairn/internal/readlimit"
)

// setProcessGroup makes the plugin the leader of a new process group, so
// killGroup reaches everything it spawns, and has the kernel kill it when
// the agent dies: a plugin outliving a killed agent would go on changing
// the root unseen by the journal, while the restarted agent re-runs or
// rolls back the same step.
func setProcessGroup(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}

// killGroup sends SIGKILL to the process group led by pid, and to every
// other process descended from pid: a plugin may start programs in their
// own process groups (the exec plugin does, to time them out), and those
// must not outlive it. Processes already gone are not an error.
func killGroup(pid int) error {
	if pid <= 0 {
		return nil
	}
	// Take the family tree first: once the plugin dies its children are
	// re-parented and the link is lost.
	var pids, pgids []int
	if _, g, ok := readStat(pid); ok && g == pid { // still our group leader, not a reused pid
		pids, pgids = descendants(pid)
	}
	err := syscall.Kill(-pid, syscall.SIGKILL)
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		err = fmt.Errorf("kill process group %d: %w", pid, err)
	} else {
		err = nil
	}
	own := syscall.Getpgrp()
	for _, g := range pgids {
		if g != pid && g != own && g > 1 {
			_ = syscall.Kill(-g, syscall.SIGKILL)
		}
	}
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	return err
}

// descendants returns the pids of every process below root in the process
// tree, and their process groups, read from /proc.
func descendants(root int) (pids, pgids []int) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, nil
	}
	children := map[int][]int{}
	pgid := map[int]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, g, ok := readStat(p)
		if !ok {
			continue
		}
		children[ppid] = append(children[ppid], p)
		pgid[p] = g
	}
	seen := map[int]bool{}
	queue := slices.Clone(children[root])
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		pids = append(pids, p)
		if !slices.Contains(pgids, pgid[p]) {
			pgids = append(pgids, pgid[p])
		}
		queue = append(queue, children[p]...)
	}
	return pids, pgids
}

// maxStatBytes bounds /proc/PID/stat: one line of numbers and a command
// name of at most 16 bytes.
const maxStatBytes = 64 << 10

// readStat returns a process's parent and process group from
// /proc/PID/stat.
func readStat(pid int) (ppid, pgid int, ok bool) {
	stat, err := readlimit.File(fmt.Sprintf("/proc/%d/stat", pid), "", maxStatBytes)
	if err != nil {
		return 0, 0, false
	}
	// The fields follow the parenthesised command name, which may itself
	// contain parentheses: take the last ')'. Then: state ppid pgrp ...
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 3 {
		return 0, 0, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgid, err2 := strconv.Atoi(f[2])
	return ppid, pgid, err1 == nil && err2 == nil
}

// processGone reports whether pid has exited: no longer in /proc, or a
// zombie waiting to be reaped.
func processGone(pid int) bool {
	stat, err := readlimit.File(fmt.Sprintf("/proc/%d/stat", pid), "", maxStatBytes)
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name, which may itself
	// contain parentheses: take the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return false
	}
	state := stat[i+2]
	return state == 'Z' || state == 'X'
}
