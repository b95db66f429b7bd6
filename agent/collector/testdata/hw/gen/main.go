//go:build ignore

// Command gen writes the raw SMBIOS tables of the hardware fixture roots
// (sys/firmware/dmi/tables/DMI, as the kernel exports it). The roots are
// shipped as host-a.tar.gz and host-b.tar.gz (see README.md); unpack them,
// run gen, and pack them again, from agent/collector/testdata/hw:
//
//	for h in host-a host-b; do mkdir $h && tar -xpzf $h.tar.gz -C $h; done
//	go run gen/main.go
//	./pack.sh
//
// host-a has two of four DIMM slots filled; host-b is host-a with a third
// DIMM added in slot DIMM_A2.
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
)

func main() {
	a := []dimm{
		{slot: "DIMM_A1", bank: "BANK 0", sizeMiB: 16384, vendor: "Samsung", serial: "1A2B3C4D", part: "M391A2K43DB1-CVF"},
		{slot: "DIMM_A2", bank: "BANK 1"},
		{slot: "DIMM_B1", bank: "BANK 2", sizeMiB: 32768, vendor: "Micron", serial: "5E6F7A8B", part: "18ASF4G72AZ-2G6E1"},
		{slot: "DIMM_B2", bank: "BANK 3"},
	}
	b := append([]dimm(nil), a...)
	b[1] = dimm{slot: "DIMM_A2", bank: "BANK 1", sizeMiB: 16384, vendor: "Samsung", serial: "9C0D1E2F", part: "M391A2K43DB1-CVF"}
	for host, dimms := range map[string][]dimm{"host-a": a, "host-b": b} {
		// Without the unpacked tree, pack.sh would replace the fixture
		// with a tree holding only the table.
		fi, err := os.Stat(host)
		if err == nil && !fi.IsDir() {
			err = fmt.Errorf("%s is not a directory", host)
		}
		if err != nil {
			log.Fatalf("%v; unpack the tree first: mkdir %s && tar -xpzf %[2]s.tar.gz -C %[2]s", err, host)
		}
		path := filepath.Join(host, "sys", "firmware", "dmi", "tables", "DMI")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			log.Fatal(err)
		}
		// The table is read-only, as in sysfs: replace it rather than
		// opening it for writing.
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.Fatal(err)
		}
		if err := os.WriteFile(path, table(dimms), 0o444); err != nil {
			log.Fatal(err)
		}
	}
}

type dimm struct {
	slot, bank           string
	sizeMiB              uint32 // 0: empty slot
	vendor, serial, part string
}

// table builds a structure table: BIOS (0), System (1), Processor (4),
// Physical Memory Array (16), one Memory Device (17) per slot, End (127).
func table(dimms []dimm) []byte {
	var t bytes.Buffer
	handle := uint16(0)
	add := func(typ byte, formatted []byte, strs ...string) {
		t.WriteByte(typ)
		t.WriteByte(byte(4 + len(formatted)))
		binary.Write(&t, binary.LittleEndian, handle)
		t.Write(formatted)
		for _, s := range strs {
			t.WriteString(s)
			t.WriteByte(0)
		}
		if len(strs) == 0 {
			t.WriteByte(0)
		}
		t.WriteByte(0)
		handle++
	}

	// Type 0, BIOS: vendor, version, release date.
	add(0, le(byte(1), byte(2), uint16(0xF000), byte(3), byte(0xFF), uint64(0x08), uint16(0)), "Dell Inc.", "2.11.2", "08/24/2023")
	// Type 1, System: manufacturer, product, version, serial, UUID.
	add(1, le(byte(1), byte(2), byte(0), byte(3), [16]byte{0x44, 0x45, 0x4c, 0x4c}, byte(6)), "Dell Inc.", "PowerEdge T140", "7XK2Q03")
	// Type 4, Processor: socket populated and enabled (status 0x41),
	// max speed 4700 MHz, current 3800 MHz.
	add(4, le(byte(1), byte(3), byte(0xB3), byte(2), uint64(0xBFEBFBFF000906EA), byte(3),
		byte(0x8A), uint16(100), uint16(4700), uint16(3800), byte(0x41), byte(0x2D)),
		"CPU1", "Intel", "Intel(R) Xeon(R) E-2174G CPU @ 3.80GHz")
	// Type 16, Physical Memory Array: system board, system memory, 4 slots.
	array := handle
	add(16, le(byte(0x03), byte(0x03), byte(0x05), uint32(0x4000000), uint16(0xFFFE), uint16(len(dimms))))
	for _, d := range dimms {
		size, ext := uint16(0), uint32(0)
		typ, speed := byte(0x02), uint16(0)
		vendor, serial, part := "Not Specified", "Not Specified", "Not Specified"
		if d.sizeMiB > 0 {
			typ, speed = 0x1A, 2666
			vendor, serial, part = d.vendor, d.serial, d.part
			size = uint16(d.sizeMiB)
			if d.sizeMiB >= 0x7FFF {
				size, ext = 0x7FFF, d.sizeMiB
			}
		}
		// SMBIOS 2.8 layout, 0x28 bytes.
		add(17, le(array, uint16(0xFFFE), uint16(72), uint16(64), size, byte(0x09), byte(0),
			byte(1), byte(2), typ, uint16(0x0080), speed, byte(3), byte(4), byte(5), byte(6),
			byte(2), ext, speed, uint16(1200), uint16(1200), uint16(1200)),
			d.slot, d.bank, vendor, serial, "Not Specified", part)
	}
	add(127, nil)
	return t.Bytes()
}

// le encodes fixed-size values little-endian, back to back.
func le(vs ...any) []byte {
	var b bytes.Buffer
	for _, v := range vs {
		if err := binary.Write(&b, binary.LittleEndian, v); err != nil {
			log.Fatal(err)
		}
	}
	return b.Bytes()
}
