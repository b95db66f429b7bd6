package collector

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// hwDMIDir is where the kernel exports the SMBIOS identity strings. The
// serial numbers and the product UUID in it are readable by root only.
const hwDMIDir = "/sys/class/dmi/id"

// Collect reads the firmware's identity strings from /sys/class/dmi/id.
// A host without DMI (most ARM boards, some containers) gets an empty
// section and a warning; a root without /sys/class at all is no host's
// sysfs, and Collect fails with ErrNoSource.
func (DMI) Collect(ctx context.Context, env Env, out *inventoryv1.Audit) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dmi := &inventoryv1.DMI{}
	if _, err := os.Stat(env.Path(hwDMIDir)); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("read DMI: %w", err)
		}
		if !swExists(env.Path("/sys/class")) {
			return noSource("read DMI: no %s", env.Path("/sys/class"))
		}
		env.warnf("no DMI information: %s does not exist", env.Path(hwDMIDir))
		out.Hardware = &inventoryv1.Hardware{Dmi: dmi}
		return nil
	}
	read := func(name string) string { return hwReadOptional(env, hwDMIDir+"/"+name) }
	fields := []struct {
		name string
		dst  *string
	}{
		{"sys_vendor", &dmi.SystemVendor},
		{"product_name", &dmi.ProductName},
		{"product_version", &dmi.ProductVersion},
		{"product_serial", &dmi.ProductSerial},
		{"product_uuid", &dmi.ProductUuid},
		{"board_vendor", &dmi.BoardVendor},
		{"board_name", &dmi.BoardName},
		{"board_version", &dmi.BoardVersion},
		{"board_serial", &dmi.BoardSerial},
		{"chassis_vendor", &dmi.ChassisVendor},
		{"chassis_version", &dmi.ChassisVersion},
		{"chassis_serial", &dmi.ChassisSerial},
		{"chassis_asset_tag", &dmi.ChassisAssetTag},
		{"bios_vendor", &dmi.BiosVendor},
		{"bios_version", &dmi.BiosVersion},
		{"bios_date", &dmi.BiosDate},
	}
	for _, f := range fields {
		if err := ctx.Err(); err != nil {
			return err
		}
		*f.dst = read(f.name)
	}
	// chassis_type holds the SMBIOS number; record the name dmidecode uses.
	if t := read("chassis_type"); t != "" {
		dmi.ChassisType = t
		if n, err := strconv.ParseUint(t, 10, 8); err == nil {
			dmi.ChassisType = hwChassisTypeName(n)
		}
	}
	out.Hardware = &inventoryv1.Hardware{Dmi: dmi}
	return nil
}
