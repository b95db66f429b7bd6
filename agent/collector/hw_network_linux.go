package collector

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jaypipes/ghw"
	pciaddress "github.com/jaypipes/ghw/pkg/pci/address"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// Collect reads network interfaces through ghw (/sys/class/net; "lo" is
// left out by ghw). ghw records a MAC only when the kernel marks it
// permanent (addr_assign_type 0), so random or copied MACs of virtual
// interfaces do not become keys. Direct reads add the driver, the
// virtual/physical distinction (no device link means virtual) and the PCI
// address of devices behind a bus such as virtio.
func (Network) Collect(ctx context.Context, env Env, out *inventoryv1.Audit) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	info, err := ghw.Network(ghwOptions(env)...)
	if err != nil {
		return fmt.Errorf("read network interfaces: %w", err)
	}
	if len(info.NICs) == 0 {
		// ghw returns no NICs, without a word, when /sys/class/net cannot
		// be listed.
		if _, err := os.ReadDir(env.Path("/sys/class/net")); err != nil {
			return fmt.Errorf("read network interfaces: %w", err)
		}
	}
	network := &inventoryv1.Network{}
	for _, n := range info.NICs {
		if err := ctx.Err(); err != nil {
			return err
		}
		dir := "/sys/class/net/" + n.Name
		nic := &inventoryv1.NIC{
			Name:      n.Name,
			Mac:       strings.ToLower(n.MACAddress),
			SpeedMbps: hwNICSpeed(n.Speed),
		}
		_, err := os.Lstat(env.Path(dir + "/device"))
		switch {
		case err == nil:
			nic.Driver = hwLinkBase(env, dir+"/device/driver")
			if n.PCIAddress != nil {
				nic.PciAddress = *n.PCIAddress
			} else {
				nic.PciAddress = hwPCIAncestor(env, dir+"/device")
			}
		case errors.Is(err, fs.ErrNotExist):
			nic.Virtual = true
		default:
			env.warnf("network interface %s: %v", n.Name, err)
		}
		network.Nics = append(network.Nics, nic)
	}
	macs := make([]string, len(network.Nics))
	names := make([]string, len(network.Nics))
	for i, n := range network.Nics {
		macs[i], names[i] = n.Mac, n.Name
	}
	for i, k := range hwKeys(macs, names) {
		network.Nics[i].Key = k
	}
	hwSortByKey(network.Nics)
	out.Hardware = &inventoryv1.Hardware{Network: network}
	return nil
}

// hwNICSpeed parses sysfs's speed (Mbit/s); it is -1 or unreadable when the
// link is down or the device has no notion of speed.
func hwNICSpeed(s string) int64 {
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || v < 0 {
		return 0
	}
	return v
}

// hwLinkBase returns the last element of the symlink p's target (a driver
// name), or "" when p is not a symlink.
func hwLinkBase(env Env, p string) string {
	dest, err := os.Readlink(env.Path(p))
	if err != nil {
		return ""
	}
	return filepath.Base(dest)
}

// hwPCIAncestor returns the PCI address of the nearest PCI device above the
// device that the symlink p points to (a virtio device sits below its PCI
// function), or "".
func hwPCIAncestor(env Env, p string) string {
	// Both sides are resolved, in case the root itself is reached
	// through a symlink.
	devices, err := filepath.EvalSymlinks(env.Path("/sys/devices"))
	if err != nil {
		return ""
	}
	dir, err := filepath.EvalSymlinks(env.Path(p))
	if err != nil {
		return ""
	}
	for strings.HasPrefix(dir, devices+"/") {
		if pciaddress.FromString(filepath.Base(dir)) != nil {
			return filepath.Base(dir)
		}
		dir = filepath.Dir(dir)
	}
	return ""
}
