package collector

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// hwSMBIOSTablePath is the raw SMBIOS structure table the kernel exports
// (readable by root only).
const hwSMBIOSTablePath = "/sys/firmware/dmi/tables/DMI"

// SMBIOS structure types the hardware collectors read (DSP0134).
const (
	smbiosTypeProcessor   = 4
	smbiosTypeMemoryArray = 16
	smbiosTypeMemory      = 17
	smbiosTypeEnd         = 127
)

// smbiosStructure is one structure of an SMBIOS table: its formatted area
// (header included, so offsets match the specification) and its strings.
type smbiosStructure struct {
	Type      uint8
	Handle    uint16
	Formatted []byte
	Strings   []string
}

// parseSMBIOS splits a raw SMBIOS structure table into its structures,
// stopping at the end-of-table structure.
func parseSMBIOS(table []byte) ([]smbiosStructure, error) {
	var out []smbiosStructure
	for i := 0; i < len(table); {
		if len(table)-i < 4 {
			return out, fmt.Errorf("smbios: truncated structure header at offset %d", i)
		}
		length := int(table[i+1])
		if length < 4 || i+length > len(table) {
			return out, fmt.Errorf("smbios: structure at offset %d has bad length %d", i, length)
		}
		s := smbiosStructure{
			Type:      table[i],
			Handle:    binary.LittleEndian.Uint16(table[i+2:]),
			Formatted: table[i : i+length],
		}
		// The string-set follows the formatted area: NUL-terminated
		// strings ended by an empty one, or two NULs when there are none.
		j := i + length
		for {
			n := bytes.IndexByte(table[j:], 0)
			if n < 0 {
				return out, fmt.Errorf("smbios: unterminated strings in structure at offset %d", i)
			}
			if n == 0 {
				j++
				if len(s.Strings) == 0 && j < len(table) && table[j] == 0 {
					j++
				}
				break
			}
			s.Strings = append(s.Strings, string(table[j:j+n]))
			j += n + 1
		}
		out = append(out, s)
		if s.Type == smbiosTypeEnd {
			break
		}
		i = j
	}
	return out, nil
}

func (s smbiosStructure) byteAt(off int) (uint8, bool) {
	if off >= len(s.Formatted) {
		return 0, false
	}
	return s.Formatted[off], true
}

func (s smbiosStructure) word(off int) (uint16, bool) {
	if off+2 > len(s.Formatted) {
		return 0, false
	}
	return binary.LittleEndian.Uint16(s.Formatted[off:]), true
}

func (s smbiosStructure) dword(off int) (uint32, bool) {
	if off+4 > len(s.Formatted) {
		return 0, false
	}
	return binary.LittleEndian.Uint32(s.Formatted[off:]), true
}

// str returns the string whose 1-based index is the byte at off, with
// firmware placeholders ("Not Specified", "Unknown", ...) read as "".
func (s smbiosStructure) str(off int) string {
	idx, ok := s.byteAt(off)
	if !ok || idx == 0 || int(idx) > len(s.Strings) {
		return ""
	}
	v := strings.TrimSpace(s.Strings[idx-1])
	switch strings.ToLower(v) {
	case "not specified", "unknown", "none", "no dimm", "not available",
		"to be filled by o.e.m.", "undefined", "[empty]":
		return ""
	}
	return v
}

// smbiosMemoryUseSystem is a Physical Memory Array's "Use" value for
// system memory; arrays for video memory, flash or cache are not DIMMs.
const smbiosMemoryUseSystem = 0x03

// smbiosMemoryModules returns the installed memory devices (type 17) of a
// parsed table, with empty slots left out. complete is false when some
// installed module did not report its size.
func smbiosMemoryModules(structs []smbiosStructure) (mods []*inventoryv1.MemoryModule, complete bool) {
	nonSystem := map[uint16]bool{}
	for _, s := range structs {
		if s.Type != smbiosTypeMemoryArray {
			continue
		}
		if use, ok := s.byteAt(0x05); ok && use != smbiosMemoryUseSystem {
			nonSystem[s.Handle] = true
		}
	}
	complete = true
	var handles []uint16
	for _, s := range structs {
		if s.Type != smbiosTypeMemory {
			continue
		}
		if array, ok := s.word(0x04); ok && nonSystem[array] {
			continue
		}
		size, known, present := smbiosMemorySize(s)
		if !present {
			continue
		}
		if !known {
			complete = false
		}
		m := &inventoryv1.MemoryModule{
			Slot:       s.str(0x10),
			Bank:       s.str(0x11),
			SizeBytes:  size,
			Vendor:     s.str(0x17),
			Serial:     s.str(0x18),
			PartNumber: s.str(0x1A),
		}
		if t, ok := s.byteAt(0x12); ok {
			m.Type = smbiosMemoryTypeName(t)
		}
		if speed, ok := s.word(0x15); ok {
			m.SpeedMts = uint32(speed)
			if speed == 0xFFFF {
				m.SpeedMts, _ = s.dword(0x54)
			}
		}
		mods = append(mods, m)
		handles = append(handles, s.Handle)
	}
	serials := make([]string, len(mods))
	slots := make([]string, len(mods))
	for i, m := range mods {
		serials[i] = m.Serial
		slots[i] = "slot:" + m.Slot
		if m.Slot == "" {
			slots[i] = fmt.Sprintf("handle:0x%04x", handles[i])
		}
	}
	for i, k := range hwKeys(serials, slots) {
		mods[i].Key = k
	}
	hwSortByKey(mods)
	return mods, complete
}

// smbiosMemorySize decodes a memory device's size. present is false for an
// empty slot; known is false when the firmware says the size is unknown.
func smbiosMemorySize(s smbiosStructure) (size uint64, known, present bool) {
	v, ok := s.word(0x0C)
	switch {
	case !ok || v == 0:
		return 0, false, false
	case v == 0xFFFF:
		return 0, false, true
	case v == 0x7FFF:
		ext, ok := s.dword(0x1C)
		if !ok {
			return 0, false, true
		}
		return uint64(ext&0x7FFFFFFF) << 20, true, true
	case v&0x8000 != 0:
		return uint64(v&0x7FFF) << 10, true, true
	default:
		return uint64(v) << 20, true, true
	}
}

// smbiosMemoryTypeName names a memory device's type (DSP0134 7.18.2).
func smbiosMemoryTypeName(t uint8) string {
	names := map[uint8]string{
		0x01: "Other", 0x02: "Unknown", 0x03: "DRAM", 0x04: "EDRAM",
		0x05: "VRAM", 0x06: "SRAM", 0x07: "RAM", 0x08: "ROM", 0x09: "Flash",
		0x0A: "EEPROM", 0x0B: "FEPROM", 0x0C: "EPROM", 0x0D: "CDRAM",
		0x0E: "3DRAM", 0x0F: "SDRAM", 0x10: "SGRAM", 0x11: "RDRAM",
		0x12: "DDR", 0x13: "DDR2", 0x14: "DDR2 FB-DIMM", 0x18: "DDR3",
		0x19: "FBD2", 0x1A: "DDR4", 0x1B: "LPDDR", 0x1C: "LPDDR2",
		0x1D: "LPDDR3", 0x1E: "LPDDR4", 0x1F: "Logical non-volatile device",
		0x20: "HBM", 0x21: "HBM2", 0x22: "DDR5", 0x23: "LPDDR5", 0x24: "HBM3",
	}
	if n, ok := names[t]; ok {
		return n
	}
	return fmt.Sprintf("0x%02X", t)
}

// smbiosProcessorMaxSpeeds returns the maximum speed in MHz of each
// populated processor socket (type 4), in table order.
func smbiosProcessorMaxSpeeds(structs []smbiosStructure) []uint64 {
	var speeds []uint64
	for _, s := range structs {
		if s.Type != smbiosTypeProcessor {
			continue
		}
		// Status bit 6: CPU socket populated.
		if status, ok := s.byteAt(0x18); !ok || status&0x40 == 0 {
			continue
		}
		speed, _ := s.word(0x14)
		speeds = append(speeds, uint64(speed))
	}
	return speeds
}

// hwChassisTypeName names an SMBIOS chassis type (DSP0134 7.4.1) as
// dmidecode does; the kernel's chassis_type file holds the number.
func hwChassisTypeName(n uint64) string {
	names := []string{
		1: "Other", 2: "Unknown", 3: "Desktop", 4: "Low Profile Desktop",
		5: "Pizza Box", 6: "Mini Tower", 7: "Tower", 8: "Portable",
		9: "Laptop", 10: "Notebook", 11: "Hand Held", 12: "Docking Station",
		13: "All In One", 14: "Sub Notebook", 15: "Space-saving",
		16: "Lunch Box", 17: "Main Server Chassis", 18: "Expansion Chassis",
		19: "Sub Chassis", 20: "Bus Expansion Chassis",
		21: "Peripheral Chassis", 22: "RAID Chassis",
		23: "Rack Mount Chassis", 24: "Sealed-case PC",
		25: "Multi-system", 26: "CompactPCI", 27: "AdvancedTCA", 28: "Blade",
		29: "Blade Enclosing", 30: "Tablet", 31: "Convertible",
		32: "Detachable", 33: "IoT Gateway", 34: "Embedded PC",
		35: "Mini PC", 36: "Stick PC",
	}
	if n > 0 && n < uint64(len(names)) {
		return names[n]
	}
	return fmt.Sprintf("%d", n)
}
