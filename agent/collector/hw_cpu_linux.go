package collector

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"github.com/jaypipes/ghw"
	ghwcpu "github.com/jaypipes/ghw/pkg/cpu"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// Collect reads processors through ghw (/proc/cpuinfo and
// /sys/devices/system/cpu/cpuN/topology) and each socket's maximum
// frequency from cpufreq, else from the SMBIOS processor structures.
func (CPU) Collect(ctx context.Context, env Env, out *inventoryv1.Audit) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cpuinfo, sysCPU := env.Path("/proc/cpuinfo"), env.Path("/sys/devices/system/cpu")
	if !swExists(cpuinfo) && !swExists(sysCPU) {
		return noSource("read processors: no %s and no %s", cpuinfo, sysCPU)
	}
	info, err := ghw.CPU(ghwOptions(env)...)
	if err != nil {
		return fmt.Errorf("read processors: %w", err)
	}
	if len(info.Processors) == 0 {
		return fmt.Errorf("read processors: none found in %s and %s", cpuinfo, sysCPU)
	}
	cpu := &inventoryv1.CPU{}
	missingFreq := false
	for _, p := range info.Processors {
		if err := ctx.Err(); err != nil {
			return err
		}
		id := p.ID
		if id < 0 {
			// ghw reads -1 when topology/physical_package_id is missing.
			env.warnf("cpu: no physical package id in %s; assuming socket 0", env.Path("/sys/devices/system/cpu"))
			id = 0
		}
		proc := &inventoryv1.Processor{
			Key:             fmt.Sprintf("socket%d", id),
			Id:              uint32(id),
			Vendor:          p.Vendor,
			Model:           p.Model,
			Cores:           p.TotalCores,
			Threads:         p.TotalHardwareThreads,
			MaxFrequencyMhz: hwCPUFreqMaxMHz(env, p.Cores),
		}
		missingFreq = missingFreq || proc.MaxFrequencyMhz == 0
		cpu.Processors = append(cpu.Processors, proc)
		cpu.Cores += p.TotalCores
		cpu.Threads += p.TotalHardwareThreads
	}
	cpu.Sockets = uint32(len(cpu.Processors))
	// In package-id order, processors pair up with the firmware's list of
	// sockets.
	slices.SortFunc(cpu.Processors, func(a, b *inventoryv1.Processor) int { return int(a.Id) - int(b.Id) })
	if missingFreq {
		hwCPUSMBIOSMaxMHz(env, cpu.Processors)
	}
	hwSortByKey(cpu.Processors)
	out.Hardware = &inventoryv1.Hardware{Cpu: cpu}
	return nil
}

// hwCPUFreqMaxMHz is the highest cpufreq cpuinfo_max_freq (kHz) among a
// socket's logical processors, in MHz; 0 when cpufreq is not there (most
// virtual machines).
func hwCPUFreqMaxMHz(env Env, cores []*ghwcpu.ProcessorCore) uint64 {
	var maxKHz uint64
	for _, c := range cores {
		for _, lp := range c.LogicalProcessors {
			p := fmt.Sprintf("/sys/devices/system/cpu/cpu%d/cpufreq/cpuinfo_max_freq", lp)
			if v, ok := hwReadUint(env, p); ok && v > maxKHz {
				maxKHz = v
			}
		}
	}
	return maxKHz / 1000
}

// hwCPUSMBIOSMaxMHz fills in the maximum frequency the firmware reports for
// processors cpufreq said nothing about, when the SMBIOS table lists as many
// populated sockets as there are processors. procs are in socket order.
func hwCPUSMBIOSMaxMHz(env Env, procs []*inventoryv1.Processor) {
	table, err := readHostFile(env, hwSMBIOSTablePath, maxSMBIOSBytes)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			env.warnf("cpu max frequency: %v", err)
		}
		return
	}
	structs, err := parseSMBIOS(table)
	if err != nil {
		env.warnf("cpu max frequency: %s: %v", env.Path(hwSMBIOSTablePath), err)
	}
	speeds := smbiosProcessorMaxSpeeds(structs)
	if len(speeds) != len(procs) {
		return
	}
	for i, p := range procs {
		if p.MaxFrequencyMhz == 0 {
			p.MaxFrequencyMhz = speeds[i]
		}
	}
}
