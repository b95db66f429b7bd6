package collector

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/jaypipes/ghw"
	ghwpci "github.com/jaypipes/ghw/pkg/pci"
	"github.com/jaypipes/pcidb"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// Collect reads PCI devices through ghw (/sys/bus/pci/devices: modalias,
// revision, driver link) and names them from the pci.ids database under
// the root when there is one. Without /sys/bus/pci/devices Collect fails
// with ErrNoSource; an empty directory is a host without PCI devices.
func (PCI) Collect(ctx context.Context, env Env, out *inventoryv1.Audit) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db, resolved := hwLoadPCIDB(env)
	if err := ctx.Err(); err != nil {
		return err
	}
	devs, err := hwPCIDevices(env, db)
	if err != nil {
		return err
	}
	pci := &inventoryv1.PCI{NamesResolved: resolved}
	for _, d := range devs {
		pci.Devices = append(pci.Devices, hwPCIDevice(d))
	}
	hwSortByKey(pci.Devices)
	out.Hardware = &inventoryv1.Hardware{Pci: pci}
	return nil
}

// hwPCIDevicesDir is where sysfs lists PCI devices.
const hwPCIDevicesDir = "/sys/bus/pci/devices"

// hwPCIDevices lists PCI devices through ghw, naming them from db. It
// fails with ErrNoSource when hwPCIDevicesDir does not exist: ghw would
// only warn and list nothing.
func hwPCIDevices(env Env, db *pcidb.PCIDB) ([]*ghwpci.Device, error) {
	dir := env.Path(hwPCIDevicesDir)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, noSource("read pci devices: no %s", dir)
	}
	opts := append(ghwOptions(env), ghw.WithPCIDB(db), ghw.WithDisableTopology())
	info, err := ghw.PCI(opts...)
	if err != nil {
		return nil, fmt.Errorf("read pci devices: %w", err)
	}
	if len(info.Devices) == 0 {
		// ghw gives up on every device, without an error, when one of them
		// has no readable modalias; an empty list then would read as "all
		// devices removed".
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("read pci devices: %w", err)
		}
		if len(entries) > 0 {
			return nil, fmt.Errorf("read pci devices: %s lists %d devices but none could be read", dir, len(entries))
		}
	}
	return info.Devices, nil
}

// hwPCIDevice converts a ghw device. Names ghw could not resolve are left
// empty; the IDs are always there.
func hwPCIDevice(d *ghwpci.Device) *inventoryv1.PCIDevice {
	dev := &inventoryv1.PCIDevice{
		Key:      d.Address,
		Address:  d.Address,
		Revision: strings.TrimPrefix(strings.ToLower(d.Revision), "0x"),
		Driver:   d.Driver,
	}
	if d.Class != nil {
		dev.ClassId, dev.ClassName = d.Class.ID, hwKnown(d.Class.Name)
	}
	if d.Subclass != nil {
		dev.SubclassId, dev.SubclassName = d.Subclass.ID, hwKnown(d.Subclass.Name)
	}
	if d.Vendor != nil {
		dev.VendorId, dev.VendorName = d.Vendor.ID, hwKnown(d.Vendor.Name)
	}
	if d.Product != nil {
		dev.ProductId, dev.ProductName = d.Product.ID, hwKnown(d.Product.Name)
	}
	// The subsystem IDs are taken from the modalias: ghw's subsystem lookup
	// matches the subdevice ID alone and can return another vendor's entry.
	// pci:v0000VVVVd0000DDDDsv0000SSSSsd0000PPPPbcCCscSSiII
	if m := strings.ToLower(d.Modalias); len(m) >= 53 {
		dev.SubsystemVendorId, dev.SubsystemProductId = m[28:32], m[38:42]
	}
	return dev
}
