package collector

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/jaypipes/ghw"
	ghwpci "github.com/jaypipes/ghw/pkg/pci"
	"github.com/jaypipes/pcidb"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// Collect reads PCI devices through ghw (/sys/bus/pci/devices: modalias,
// revision, driver link) and names them from the pci.ids database under
// the root when there is one.
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

// hwPCIDevices lists PCI devices through ghw, naming them from db.
func hwPCIDevices(env Env, db *pcidb.PCIDB) ([]*ghwpci.Device, error) {
	opts := append(ghwOptions(env), ghw.WithPCIDB(db), ghw.WithDisableTopology())
	info, err := ghw.PCI(opts...)
	if err != nil {
		return nil, fmt.Errorf("read pci devices: %w", err)
	}
	if len(info.Devices) == 0 {
		// ghw gives up on every device, without an error, when one of them
		// has no readable modalias; an empty list then would read as "all
		// devices removed".
		entries, err := os.ReadDir(env.Path("/sys/bus/pci/devices"))
		if err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("read pci devices: %w", hwPathErr(err))
		}
		if len(entries) > 0 {
			return nil, fmt.Errorf("read pci devices: /sys/bus/pci/devices lists %d devices but none could be read", len(entries))
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
