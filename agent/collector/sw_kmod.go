package collector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/cairn-ops/cairn/internal/readlimit"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// KernelModules lists the loaded kernel modules from <root>/proc/modules.
// When the file is missing but <root>/proc/sys/kernel exists, the kernel
// has no module support and the list is empty; when /proc is missing too,
// Collect fails.
type KernelModules struct{}

var _ Collector = KernelModules{}

// Section implements Collector.
func (KernelModules) Section() string { return "kernel_modules" }

// Collect implements Collector.
func (KernelModules) Collect(ctx context.Context, env Env, out *inventoryv1.Audit) error {
	path := env.Path("/proc/modules")
	f, err := openHostFile(path)
	if errors.Is(err, fs.ErrNotExist) && swIsDir(env.Path("/proc/sys/kernel")) {
		// A kernel built without module support has no /proc/modules:
		// no modules are loaded. Without /proc at all nothing is known.
		out.KernelModules = &inventoryv1.KernelModules{}
		return nil
	}
	if err != nil {
		return fmt.Errorf("kernel modules: %w", err)
	}
	defer f.Close()
	mods, err := parseProcModules(readlimit.NewReader(f, path, maxProcBytes), path)
	if err != nil {
		return err
	}
	out.KernelModules = &inventoryv1.KernelModules{Modules: mods}
	return nil
}

// parseProcModules parses /proc/modules lines:
//
//	name size refcount used_by,... state address [taints]
//
// used_by is "-" when empty. Modules are sorted by name, used_by too.
func parseProcModules(f io.Reader, path string) ([]*inventoryv1.KernelModule, error) {
	var mods []*inventoryv1.KernelModule
	sc := readlimit.NewLines(f, path, maxLineBytes)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) < 5 {
			return nil, fmt.Errorf("parse %s: line %d: want at least 5 fields, got %d", path, lineNo, len(fields))
		}
		size, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parse %s: line %d: size: %w", path, lineNo, err)
		}
		m := &inventoryv1.KernelModule{Key: fields[0], Name: fields[0], Size: size, State: fields[4]}
		if fields[3] != "-" {
			for _, u := range strings.Split(fields[3], ",") {
				if u != "" {
					m.UsedBy = append(m.UsedBy, u)
				}
			}
			sort.Strings(m.UsedBy)
		}
		mods = append(mods, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Key < mods[j].Key })
	return mods, nil
}
