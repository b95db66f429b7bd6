package collector

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// Collect reads MemTotal from /proc/meminfo and the installed DIMMs from
// the raw SMBIOS table (memory device structures), which only root can
// read; without it the modules are unknown and the total is MemTotal.
func (Memory) Collect(ctx context.Context, env Env, out *inventoryv1.Audit) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	usable, err := hwMemTotal(env)
	if err != nil {
		return err
	}
	mem := &inventoryv1.Memory{TotalBytes: usable, UsableBytes: usable}
	if err := ctx.Err(); err != nil {
		return err
	}
	mods, complete := hwMemoryModules(env)
	mem.Modules = mods
	if len(mods) > 0 && complete {
		var sum uint64
		for _, m := range mods {
			sum += m.SizeBytes
		}
		mem.TotalBytes = sum
	}
	out.Hardware = &inventoryv1.Hardware{Memory: mem}
	return nil
}

// hwMemTotal returns MemTotal from /proc/meminfo, in bytes.
func hwMemTotal(env Env) (uint64, error) {
	path := env.Path("/proc/meminfo")
	sc, f, err := hostFileLines(env, "/proc/meminfo", maxProcBytes)
	if err != nil {
		return 0, fmt.Errorf("read memory size: %w", err)
	}
	defer f.Close()
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			break
		}
		kb, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read %s: MemTotal %q: %w", path, rest, err)
		}
		return kb * 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, readErr(path, err)
	}
	return 0, fmt.Errorf("read %s: no MemTotal line", path)
}

// hwMemoryModules returns the DIMMs in the SMBIOS table, if it can be read.
func hwMemoryModules(env Env) ([]*inventoryv1.MemoryModule, bool) {
	table, err := readHostFile(env, hwSMBIOSTablePath, maxSMBIOSBytes)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			env.warnf("memory modules unknown: %v (root only)", err)
		} else if !errors.Is(err, fs.ErrNotExist) {
			env.warnf("memory modules unknown: %v", err)
		}
		return nil, false
	}
	structs, err := parseSMBIOS(table)
	if err != nil {
		// Keep the modules read before the damage.
		env.warnf("memory modules: %s: %v", env.Path(hwSMBIOSTablePath), err)
	}
	mods, complete := smbiosMemoryModules(structs)
	if !complete {
		env.warn("memory modules: firmware reports a module of unknown size; total is MemTotal")
	}
	return mods, complete && err == nil
}
