package pluginhost

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/cairn-ops/cairn/internal/readlimit"
)

// procRecord is the file (Config.ProcDir/PID.json, JSON) that records one
// plugin process while it runs: enough for the next agent to find it if
// it outlives its agent, and never to take another process for it.
type procRecord struct {
	Plugin string `json:"plugin"`
	PID    int    `json:"pid"`
	// StartTicks is the process's start time (/proc/PID/stat field 22,
	// clock ticks since boot): with BootID, PID and StartTicks name one
	// process, never a later one that reused the pid.
	StartTicks uint64 `json:"start_ticks"`
	// PGID is the process group (and session) the plugin leads: its pid.
	PGID   int    `json:"pgid"`
	BootID string `json:"boot_id"`
	// OwnerPID and OwnerStartTicks name the agent process that started
	// it: a record whose owner still runs is that agent's, not a leftover.
	OwnerPID        int    `json:"owner_pid"`
	OwnerStartTicks uint64 `json:"owner_start_ticks"`
}

// maxRecordBytes bounds a record file: a few numbers and names.
const maxRecordBytes = 4 << 10

// bootIDFile holds the kernel's random ID of the running boot, a UUID.
const bootIDFile = "/proc/sys/kernel/random/boot_id"

// maxBootIDBytes bounds bootIDFile: 36 characters and a newline.
const maxBootIDBytes = 64

var self struct {
	once   sync.Once
	start  uint64
	bootID string
}

// selfInfo returns this process's start time and the boot's ID.
func selfInfo() (start uint64, bootID string) {
	self.once.Do(func() {
		if st, ok := readStat(os.Getpid()); ok {
			self.start = st.start
		}
		if b, err := readlimit.File(bootIDFile, "", maxBootIDBytes); err == nil {
			self.bootID = strings.TrimSpace(string(b))
		}
	})
	return self.start, self.bootID
}

// record writes inst's record in Config.ProcDir (atomically: a temporary
// file renamed). A failure is logged once per host: the parent-death
// signal still ties the plugin to this agent.
func (h *Host) record(inst *Instance) {
	if h.cfg.ProcDir == "" || inst.pidv <= 0 || inst.start == 0 {
		return
	}
	owner, boot := selfInfo()
	data, err := json.Marshal(procRecord{
		Plugin: inst.name, PID: inst.pidv, StartTicks: inst.start, PGID: inst.pidv, BootID: boot,
		OwnerPID: os.Getpid(), OwnerStartTicks: owner,
	})
	if err == nil {
		err = writeRecord(h.cfg.ProcDir, inst.pidv, data)
	}
	if err != nil {
		h.recordWarn.Do(func() {
			h.log.Warn("cannot record plugin processes; one that outlives this agent is not reaped by the next", "dir", h.cfg.ProcDir, "err", err)
		})
		return
	}
	inst.recorded = filepath.Join(h.cfg.ProcDir, strconv.Itoa(inst.pidv)+".json")
}

func writeRecord(dir string, pid int, data []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	path := filepath.Join(dir, strconv.Itoa(pid)+".json")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// unrecord removes inst's record once its process is gone.
func (h *Host) unrecord(inst *Instance) {
	if inst.recorded == "" {
		return
	}
	if err := os.Remove(inst.recorded); err != nil && !errors.Is(err, fs.ErrNotExist) {
		h.log.Warn("remove plugin process record", "file", inst.recorded, "err", err)
	}
}

// Reap kills the plugin processes recorded in dir (Config.ProcDir) that
// outlived the agent that started them: the owner no longer runs, and
// the process does, with the recorded start time in the same boot. It
// kills each with its process group, its session and its descendants
// (killGroup) and logs it. A record whose owner still runs (another
// agent on the same data dir) is left alone; every other record is
// removed: its process is gone, or the pid names another process now,
// which is never touched. Run it when the agent starts, before starting
// plugins. It returns how many processes it killed.
func Reap(dir string, log *slog.Logger) int {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			log.Warn("cannot read the plugin process records; leftovers of an earlier agent are not reaped", "dir", dir, "err", err)
		}
		return 0
	}
	_, boot := selfInfo()
	killed := 0
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		rec, err := readRecord(path)
		switch {
		case err != nil:
			log.Warn("removing an unreadable plugin process record", "file", path, "err", err)
		case rec.BootID != boot:
			// Its process ended with an earlier boot.
		case running(rec.OwnerPID, rec.OwnerStartTicks):
			continue // its agent still runs
		case running(rec.PID, rec.StartTicks):
			if err := killGroup(rec.PID, rec.StartTicks); err != nil {
				log.Warn("cannot kill a plugin process an earlier agent left running", "plugin", rec.Plugin, "pid", rec.PID, "err", err)
				continue // try again at the next start
			}
			killed++
			log.Warn("killed a plugin process an earlier agent left running, with its process group and descendants",
				"plugin", rec.Plugin, "pid", rec.PID, "agent_pid", rec.OwnerPID)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.Warn("remove plugin process record", "file", path, "err", err)
		}
	}
	return killed
}

func readRecord(path string) (procRecord, error) {
	var rec procRecord
	data, err := readlimit.File(path, "plugin process record", maxRecordBytes)
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, fmt.Errorf("%s: %w", path, err)
	}
	if rec.PID <= 0 || rec.StartTicks == 0 {
		return rec, fmt.Errorf("%s: no pid and start time", path)
	}
	return rec, nil
}

// running reports whether pid runs and started at start (clock ticks
// since boot): the same process, not one that reused the pid. A zombie
// does not run.
func running(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, ok := readStat(pid)
	return ok && st.start == start && st.state != 'Z' && st.state != 'X'
}
