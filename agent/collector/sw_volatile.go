package collector

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/shirou/gopsutil/v4/common"
	"github.com/shirou/gopsutil/v4/mem"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// Volatile reads the facts that change on an untouched host: uptime, load
// averages, free and available memory, boot time and boot ID, from /proc
// under the root. Memory comes through gopsutil's mem.VirtualMemoryWithContext, which
// honours the root given in its context. The others are read directly:
// gopsutil v4.26.10's host.UptimeWithContext asks sysinfo(2) of the running
// kernel whatever root the context names, load.AvgWithContext falls back
// to it when the file is missing, and host.BootTimeWithContext derives the
// boot time from the wall clock inside containers (so it drifts between
// audits) after a process-wide cached virtualization check.
type Volatile struct{}

var _ Collector = Volatile{}

// Section implements Collector.
func (Volatile) Section() string { return "volatile" }

// Collect implements Collector. A missing or unparsable file is a warning
// and leaves its fields zero; the section fails only when the root is
// unreadable.
func (Volatile) Collect(ctx context.Context, env Env, out *inventoryv1.Audit) error {
	if err := swCheckRoot(env); err != nil {
		return err
	}
	sec := &inventoryv1.Volatile{}
	warn := func(err error) { env.warn(err.Error()) }

	if f, err := swProcFields(env, "/proc/uptime", 1); err != nil {
		warn(fmt.Errorf("uptime: %w", err))
	} else if sec.UptimeSeconds, err = strconv.ParseFloat(f[0], 64); err != nil {
		warn(fmt.Errorf("parse %s: %w", env.Path("/proc/uptime"), err))
	}

	if f, err := swProcFields(env, "/proc/loadavg", 3); err != nil {
		warn(fmt.Errorf("load averages: %w", err))
	} else {
		var errs [3]error
		sec.Load1, errs[0] = strconv.ParseFloat(f[0], 64)
		sec.Load5, errs[1] = strconv.ParseFloat(f[1], 64)
		sec.Load15, errs[2] = strconv.ParseFloat(f[2], 64)
		for _, err := range errs {
			if err != nil {
				warn(fmt.Errorf("parse %s: %w", env.Path("/proc/loadavg"), err))
				break
			}
		}
	}

	// gopsutil reads <root>/proc/meminfo when the context names the root.
	memCtx := context.WithValue(ctx, common.EnvKey, common.EnvMap{common.HostProcEnvKey: env.Path("/proc")})
	if vm, err := mem.VirtualMemoryWithContext(memCtx); err != nil {
		warn(fmt.Errorf("memory: %w", err))
	} else {
		sec.MemoryFreeBytes = vm.Free
		sec.MemoryAvailableBytes = vm.Available
	}

	if b, err := readHostFile(env, "/proc/stat", maxProcBytes); err != nil {
		warn(fmt.Errorf("boot time: %w", err))
	} else {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "btime "); ok {
				if sec.BootTime, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64); err != nil {
					warn(fmt.Errorf("parse %s: btime: %w", env.Path("/proc/stat"), err))
				}
				break
			}
		}
	}

	sec.BootId = swReadOptional(env, "/proc/sys/kernel/random/boot_id")

	out.Volatile = sec
	return nil
}

// procFields returns the whitespace-separated fields of a one-line /proc
// file, at least min of them.
func swProcFields(env Env, p string, min int) ([]string, error) {
	b, err := readHostFile(env, p, maxAttrBytes)
	if err != nil {
		return nil, err
	}
	f := strings.Fields(string(b))
	if len(f) < min {
		return nil, fmt.Errorf("parse %s: want %d fields, got %d", env.Path(p), min, len(f))
	}
	return f, nil
}
