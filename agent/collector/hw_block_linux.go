package collector

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/jaypipes/ghw"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// hwBlockSkipPrefixes name block devices that are not hardware: loop
// devices (snap images, mounted ISO files), which come and go without
// anyone touching the machine, and RAM-backed disks (ram, zram swap).
var hwBlockSkipPrefixes = []string{"loop", "ram", "zram"}

// Collect reads disks through ghw: /sys/block for sizes, removable and
// vendor, the udev database (/run/udev/data/bMAJ:MIN) for model, serial,
// WWN and partition filesystems, /proc/self/mounts for mount points.
// Direct reads add what ghw leaves out: rotational, the read-only flag, the
// filesystem UUID, and model and serial from sysfs when udev has no entry
// (containers without /run/udev).
func (Block) Collect(ctx context.Context, env Env, out *inventoryv1.Audit) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	info, err := ghw.Block(ghwOptions(env)...)
	if err != nil {
		return fmt.Errorf("read block devices: %w", err)
	}
	if info.Disks == nil {
		// ghw returns nil only when /sys/block cannot be listed.
		if _, err := os.ReadDir(env.Path("/sys/block")); err != nil {
			return fmt.Errorf("read block devices: %w", err)
		}
	}
	block := &inventoryv1.Block{}
	for _, d := range info.Disks {
		if err := ctx.Err(); err != nil {
			return err
		}
		if hwHasAnyPrefix(d.Name, hwBlockSkipPrefixes) {
			continue
		}
		sysDir := "/sys/block/" + d.Name
		disk := &inventoryv1.Disk{
			Name:       d.Name,
			Path:       "/dev/" + d.Name,
			Model:      hwKnown(d.Model),
			Vendor:     hwKnown(d.Vendor),
			Serial:     hwKnown(d.SerialNumber),
			Wwn:        hwKnown(d.WWN),
			SizeBytes:  d.SizeBytes,
			Type:       strings.ToLower(d.DriveType.String()),
			Controller: strings.ToLower(d.StorageController.String()),
			Removable:  d.IsRemovable,
		}
		if disk.Model == "" {
			disk.Model = hwReadOptional(env, sysDir+"/device/model")
		}
		if disk.Serial == "" {
			disk.Serial = hwReadOptional(env, sysDir+"/device/serial")
		}
		if v, ok := hwReadUint(env, sysDir+"/queue/rotational"); ok {
			disk.Rotational = v == 1
		}
		for _, p := range d.Partitions {
			part := &inventoryv1.Partition{
				Key:        p.Name,
				Name:       p.Name,
				SizeBytes:  p.SizeBytes,
				Filesystem: hwKnown(p.Type),
				Label:      hwKnown(p.FilesystemLabel),
				MountPoint: p.MountPoint,
			}
			partDir := sysDir + "/" + p.Name
			part.Uuid = hwUdevProperty(env, partDir, "ID_FS_UUID")
			// ghw calls every unmounted partition read-only; only the
			// device's own flag or a read-only mount makes it so.
			ro, _ := hwReadUint(env, partDir+"/ro")
			part.ReadOnly = ro == 1 || (p.MountPoint != "" && p.IsReadOnly)
			disk.Partitions = append(disk.Partitions, part)
		}
		hwSortByKey(disk.Partitions)
		block.Disks = append(block.Disks, disk)
	}
	serials := make([]string, len(block.Disks))
	paths := make([]string, len(block.Disks))
	for i, d := range block.Disks {
		serials[i], paths[i] = d.Serial, d.Path
	}
	for i, k := range hwKeys(serials, paths) {
		block.Disks[i].Key = k
	}
	hwSortByKey(block.Disks)
	out.Hardware = &inventoryv1.Hardware{Block: block}
	return nil
}

// hwUdevProperty returns property name from the udev database entry of the
// block device whose sysfs directory is sysDir, or "" when there is none.
func hwUdevProperty(env Env, sysDir, name string) string {
	devNo, err := hwReadFile(env, sysDir+"/dev")
	if err != nil {
		return ""
	}
	data, err := hwReadFile(env, "/run/udev/data/b"+devNo)
	if err != nil {
		return ""
	}
	for line := range strings.SplitSeq(data, "\n") {
		if v, ok := strings.CutPrefix(line, "E:"+name+"="); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func hwHasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
