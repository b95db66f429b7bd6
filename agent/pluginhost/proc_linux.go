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

// setProcAttr makes the plugin the leader of a new session (and so of a
// new process group), so that killGroup reaches everything it spawns,
// also what outlives a middle process, and has the kernel SIGKILL it
// when the thread that started it ends: Start keeps that thread for the
// plugin alone until the plugin is gone (see startLocked), so the signal
// comes when the agent dies, however it dies.
func setProcAttr(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}

// killGroup sends SIGKILL to the process group and the session led by
// pid, and to every other process descended from pid: a plugin may start
// programs in their own process groups (the exec plugin does, to time
// them out), and those must not outlive it. start is pid's start time
// (procStat.start) when known: a live pid that started at another time
// is another process that reused the number (ours and its group are
// gone then), and is left alone. Processes already gone are not an
// error.
func killGroup(pid int, start uint64) error {
	if pid <= 0 {
		return nil
	}
	st, alive := readStat(pid)
	if alive && start != 0 && st.start != start {
		return nil
	}
	// Take the family first: once the plugin dies its children are
	// re-parented and the link is lost. Without a start time, a group
	// leader at pid is taken for ours.
	var pids, pgids []int
	if alive && (start != 0 || st.pgid == pid) {
		pids, pgids = family(pid)
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

// family returns the pids of every process below root in the process
// tree or in the session root leads, and their process groups, read from
// /proc.
func family(root int) (pids, pgids []int) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, nil
	}
	children := map[int][]int{}
	pgid := map[int]int{}
	var queue []int
	self := os.Getpid()
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, ok := readStat(p)
		if !ok {
			continue
		}
		children[st.ppid] = append(children[st.ppid], p)
		pgid[p] = st.pgid
		if st.sid == root && p != root && p != self {
			queue = append(queue, p)
		}
	}
	seen := map[int]bool{}
	queue = append(queue, children[root]...)
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

// procStat is what the host reads from /proc/PID/stat.
type procStat struct {
	state           byte
	ppid, pgid, sid int
	// start is the process's start time in clock ticks since boot: with
	// the pid (and the boot), it names one process, never a later one
	// that reused the pid.
	start uint64
}

// readStat reads /proc/PID/stat; ok is false when the process is gone.
func readStat(pid int) (st procStat, ok bool) {
	stat, err := readlimit.File(fmt.Sprintf("/proc/%d/stat", pid), "", maxStatBytes)
	if err != nil {
		return st, false
	}
	// The fields follow the parenthesised command name, which may itself
	// contain parentheses: take the last ')'. Then, from field 3: state
	// ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
	// utime stime cutime cstime priority nice num_threads itrealvalue
	// starttime (field 22).
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return st, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 20 || len(f[0]) != 1 {
		return st, false
	}
	st.state = f[0][0]
	var errs [4]error
	st.ppid, errs[0] = strconv.Atoi(f[1])
	st.pgid, errs[1] = strconv.Atoi(f[2])
	st.sid, errs[2] = strconv.Atoi(f[3])
	st.start, errs[3] = strconv.ParseUint(f[19], 10, 64)
	return st, errors.Join(errs[:]...) == nil
}

// processGone reports whether pid has exited: no longer in /proc, or a
// zombie waiting to be reaped.
func processGone(pid int) bool {
	st, ok := readStat(pid)
	return !ok || st.state == 'Z' || st.state == 'X'
}
