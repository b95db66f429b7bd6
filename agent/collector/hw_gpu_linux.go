package collector

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/jaypipes/ghw"
	ghwpci "github.com/jaypipes/ghw/pkg/pci"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// hwPCIClassDisplay is the PCI base class of display controllers (VGA, 3D,
// XGA, other).
const hwPCIClassDisplay = "03"

// Collect reads graphics cards: the DRM cards ghw finds under
// /sys/class/drm, plus display-class PCI devices that have no DRM node
// (no driver loaded, headless compute cards, containers without DRM).
// index is the DRM card number, 0 for a card without one. vendor and
// product are names from pci.ids when there is one under the root, else
// the PCI IDs. When neither /sys/class/drm nor /sys/bus/pci/devices
// exists, Collect fails with ErrNoSource.
func (GPU) Collect(ctx context.Context, env Env, out *inventoryv1.Audit) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db, _ := hwLoadPCIDB(env)
	if err := ctx.Err(); err != nil {
		return err
	}
	drmDir, pciDir := env.Path("/sys/class/drm"), env.Path(hwPCIDevicesDir)
	_, drmErr := os.Stat(drmDir)
	hasPCI := swExists(pciDir)
	if errors.Is(drmErr, fs.ErrNotExist) && !hasPCI {
		return noSource("read graphics cards: no %s and no %s", drmDir, pciDir)
	}
	gpu := &inventoryv1.GPU{}
	seen := map[string]bool{}
	// ghw warns when /sys/class/drm is missing; that is normal on servers
	// and the PCI scan below covers it, so ghw is only asked when it exists.
	if err := drmErr; err == nil {
		opts := append(ghwOptions(env), ghw.WithPCIDB(db), ghw.WithDisableTopology())
		info, err := ghw.GPU(opts...)
		if err != nil {
			return fmt.Errorf("read graphics cards: %w", err)
		}
		for _, c := range info.GraphicsCards {
			card := &inventoryv1.GraphicsCard{Key: c.Address, Address: c.Address}
			if c.Index > 0 {
				card.Index = uint32(c.Index)
			}
			if d := c.DeviceInfo; d != nil {
				dev := hwPCIDevice(d)
				card.Vendor = hwFirst(dev.VendorName, dev.VendorId)
				card.Product = hwFirst(dev.ProductName, dev.ProductId)
				card.Driver = dev.Driver
			}
			seen[c.Address] = true
			gpu.Cards = append(gpu.Cards, card)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		env.warnf("read graphics cards: %v", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var devs []*ghwpci.Device
	if hasPCI {
		// Without /sys/bus/pci/devices only the DRM cards are known.
		var err error
		if devs, err = hwPCIDevices(env, db); err != nil {
			return fmt.Errorf("read graphics cards: %w", err)
		}
	}
	for _, d := range devs {
		dev := hwPCIDevice(d)
		if dev.ClassId != hwPCIClassDisplay || seen[dev.Address] {
			continue
		}
		gpu.Cards = append(gpu.Cards, &inventoryv1.GraphicsCard{
			Key:     dev.Address,
			Address: dev.Address,
			Vendor:  hwFirst(dev.VendorName, dev.VendorId),
			Product: hwFirst(dev.ProductName, dev.ProductId),
			Driver:  dev.Driver,
		})
	}
	hwSortByKey(gpu.Cards)
	out.Hardware = &inventoryv1.Hardware{Gpu: gpu}
	return nil
}

// hwFirst returns the first non-empty string.
func hwFirst(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
