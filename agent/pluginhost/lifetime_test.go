package pluginhost

import (
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestPluginOutlivesTheThreadThatStartedIt: the kernel sends the
// parent-death signal when the thread that forked the plugin ends, and Go
// ends a thread whose goroutine exits locked to it. Many such goroutines
// after a start must not kill the plugin: its thread is its own.
func TestPluginOutlivesTheThreadThatStartedIt(t *testing.T) {
	h, _ := newHost(t)
	// Several plugins, started from whatever threads the runtime picks.
	var insts []*Instance
	for range 6 {
		insts = append(insts, start(t, h, "exec"))
	}
	// Then many goroutines end their threads, most threads in turn.
	for range 20 {
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				runtime.LockOSThread() // and exit locked: the thread ends
				time.Sleep(time.Millisecond)
			})
		}
		wg.Wait()
	}
	for _, inst := range insts {
		if _, err := inst.Plugin.Describe(t.Context()); err != nil || processGone(inst.Pid()) {
			t.Errorf("plugin %d died when threads of the agent ended: %v", inst.Pid(), err)
		}
	}
}

// TestPluginProcessRecorded: a started plugin leads its own session and
// is recorded in ProcDir until Close; Reap leaves a live agent's plugin
// alone. (That it dies with its agent, test/integration shows.)
func TestPluginProcessRecorded(t *testing.T) {
	h, _ := newHost(t)
	h.cfg.ProcDir = filepath.Join(t.TempDir(), "procs")
	inst := start(t, h, "motd")
	path := filepath.Join(h.cfg.ProcDir, strconv.Itoa(inst.Pid())+".json")
	rec, err := readRecord(path)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := readStat(inst.Pid())
	self, _ := readStat(os.Getpid())
	want := procRecord{Plugin: "motd", PID: inst.Pid(), StartTicks: st.start, PGID: inst.Pid(), BootID: rec.BootID, OwnerPID: os.Getpid(), OwnerStartTicks: self.start}
	if diff := cmp.Diff(want, rec); diff != "" || rec.BootID == "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
	if st.sid != inst.Pid() || st.pgid != inst.Pid() {
		t.Errorf("plugin %d is in session %d, group %d; want its own", inst.Pid(), st.sid, st.pgid)
	}
	if got := Reap(h.cfg.ProcDir, nil); got != 0 || processGone(inst.Pid()) {
		t.Fatalf("Reap killed %d processes of a live agent", got)
	}
	inst.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("record after Close: %v, want it removed", err)
	}
}

// startProc starts argv in a session of its own, as the host starts a
// plugin but without a parent-death signal: a plugin that outlived its
// agent.
func startProc(t *testing.T, argv ...string) (pid int, start uint64) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	st, ok := readStat(cmd.Process.Pid)
	if !ok {
		t.Fatalf("no /proc entry for %d", cmd.Process.Pid)
	}
	waited := make(chan struct{})
	go func() { // reap it when it dies, as init would
		cmd.Wait()
		close(waited)
	}()
	t.Cleanup(func() {
		select {
		case <-waited:
		default:
			_ = killGroup(cmd.Process.Pid, st.start)
		}
		<-waited
	})
	return cmd.Process.Pid, st.start
}

// deadProcess returns the pid and start time of a process that has
// exited: an agent that was killed.
func deadProcess(t *testing.T) (int, uint64) {
	t.Helper()
	cmd := exec.Command("sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	st, _ := readStat(cmd.Process.Pid)
	cmd.Process.Kill()
	cmd.Wait()
	return cmd.Process.Pid, st.start
}

func writeRec(t *testing.T, dir, name string, rec any) {
	t.Helper()
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := rec.(string); ok {
		data = []byte(s)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReap: the next agent kills a recorded plugin process whose agent
// is gone, with its session, its group and its descendants, and nothing
// else: not a process that reused a recorded pid, not one recorded in
// another boot, not one whose agent still runs.
func TestReap(t *testing.T) {
	dir := t.TempDir()
	_, boot := selfInfo()
	deadPID, deadStart := deadProcess(t)
	selfSt, _ := readStat(os.Getpid())
	rec := func(pid int, start uint64) procRecord {
		return procRecord{Plugin: "exec", PID: pid, StartTicks: start, PGID: pid, BootID: boot, OwnerPID: deadPID, OwnerStartTicks: deadStart}
	}

	// A leftover plugin with a child in its group, one in a group of its
	// own (as the exec plugin runs programs), and a grandchild whose
	// parent exited (re-parented, in the session still).
	leftover, leftoverStart := startProc(t, "sh", "-c", `sleep 1000 & (set -m; sleep 1000 &) ; (sleep 1000 &) ; wait`)
	var kin []int
	deadline := time.Now().Add(10 * time.Second)
	for len(kin) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the leftover's children did not start: %v", kin)
		}
		time.Sleep(10 * time.Millisecond)
		kin, _ = family(leftover)
	}
	writeRec(t, dir, strconv.Itoa(leftover)+".json", rec(leftover, leftoverStart))

	reused, reusedStart := startProc(t, "sleep", "1000")
	writeRec(t, dir, strconv.Itoa(reused)+".json", rec(reused, reusedStart+1))
	otherBoot, otherBootStart := startProc(t, "sleep", "1000")
	r := rec(otherBoot, otherBootStart)
	r.BootID = "another-boot"
	writeRec(t, dir, strconv.Itoa(otherBoot)+".json", r)
	owned, ownedStart := startProc(t, "sleep", "1000")
	r = rec(owned, ownedStart)
	r.OwnerPID, r.OwnerStartTicks = os.Getpid(), selfSt.start
	writeRec(t, dir, strconv.Itoa(owned)+".json", r)
	writeRec(t, dir, "gone.json", rec(deadPID, deadStart))
	writeRec(t, dir, "bad.json", "{not json")

	var logs syncBuffer
	if got := Reap(dir, slog.New(slog.NewTextHandler(&logs, nil))); got != 1 {
		t.Errorf("Reap killed %d, want 1\n%s", got, logs.String())
	}
	waitGone(t, 5*time.Second, append([]int{leftover}, kin...)...)
	for _, pid := range []int{reused, otherBoot, owned} {
		if processGone(pid) {
			t.Errorf("Reap killed %d, which is not a leftover plugin", pid)
		}
	}
	entries, _ := os.ReadDir(dir)
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	sort.Strings(left)
	if diff := cmp.Diff([]string{strconv.Itoa(owned) + ".json"}, left); diff != "" {
		t.Errorf("records left (-want +got):\n%s", diff)
	}
	for _, want := range []string{"killed a plugin process an earlier agent left running", "pid=" + strconv.Itoa(leftover), "removing an unreadable plugin process record"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}
