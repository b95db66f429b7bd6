package collector

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/internal/testutil"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// hwFixtureRoot unpacks testdata/hw/<host>.tar.gz into a new temporary
// directory and returns it: a private copy the test may change. The trees
// are archives because their names contain ':', which module zips refuse
// (testdata/hw/README.md). It is here, not in the _linux test file,
// because the SMBIOS tests run on every system.
func hwFixtureRoot(t testing.TB, host string) string {
	t.Helper()
	return testutil.UnpackTarGz(t, filepath.Join("testdata", "hw", host+".tar.gz"))
}

// smbiosStruct encodes one structure: header, formatted bytes, strings.
func smbiosStruct(typ byte, handle uint16, formatted []byte, strs ...string) []byte {
	var b bytes.Buffer
	b.WriteByte(typ)
	b.WriteByte(byte(4 + len(formatted)))
	binary.Write(&b, binary.LittleEndian, handle)
	b.Write(formatted)
	for _, s := range strs {
		b.WriteString(s)
		b.WriteByte(0)
	}
	if len(strs) == 0 {
		b.WriteByte(0)
	}
	b.WriteByte(0)
	return b.Bytes()
}

// smbiosMemDevice encodes the formatted area (from offset 4) of an SMBIOS
// 2.8 memory device in array 0x1000 with strings 1-4 as locator, bank,
// manufacturer and serial, 6 as part number.
func smbiosMemDevice(size uint16, ext uint32, typ byte, speed uint16) []byte {
	f := make([]byte, 0x28-4)
	put16 := func(off int, v uint16) { binary.LittleEndian.PutUint16(f[off-4:], v) }
	put16(0x04, 0x1000)
	put16(0x0C, size)
	f[0x10-4], f[0x11-4], f[0x12-4] = 1, 2, typ
	put16(0x15, speed)
	f[0x17-4], f[0x18-4], f[0x19-4], f[0x1A-4] = 3, 4, 5, 6
	binary.LittleEndian.PutUint32(f[0x1C-4:], ext)
	return f
}

func smbiosConcat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

var smbiosEnd = smbiosStruct(127, 0xFEFF, nil)

func TestParseSMBIOS(t *testing.T) {
	tests := []struct {
		name    string
		table   []byte
		want    []smbiosStructure
		wantErr string
	}{
		{
			name:  "strings and none",
			table: smbiosConcat(smbiosStruct(1, 1, []byte{1, 2}, "Acme", "Box"), smbiosStruct(32, 2, []byte{0}), smbiosEnd),
			want: []smbiosStructure{
				{Type: 1, Handle: 1, Formatted: []byte{1, 6, 1, 0, 1, 2}, Strings: []string{"Acme", "Box"}},
				{Type: 32, Handle: 2, Formatted: []byte{32, 5, 2, 0, 0}},
				{Type: 127, Handle: 0xFEFF, Formatted: []byte{127, 4, 0xFF, 0xFE}},
			},
		},
		{
			name:  "stops at end of table",
			table: smbiosConcat(smbiosEnd, []byte{0xde, 0xad}),
			want:  []smbiosStructure{{Type: 127, Handle: 0xFEFF, Formatted: []byte{127, 4, 0xFF, 0xFE}}},
		},
		{
			name:  "no end structure",
			table: smbiosStruct(1, 1, nil, "x"),
			want:  []smbiosStructure{{Type: 1, Handle: 1, Formatted: []byte{1, 4, 1, 0}, Strings: []string{"x"}}},
		},
		{
			name:    "truncated header",
			table:   smbiosConcat(smbiosStruct(1, 1, nil), []byte{17, 40}),
			want:    []smbiosStructure{{Type: 1, Handle: 1, Formatted: []byte{1, 4, 1, 0}}},
			wantErr: "truncated structure header at offset 6",
		},
		{
			name:    "length past the end",
			table:   []byte{17, 40, 0, 0, 1},
			wantErr: "bad length 40",
		},
		{
			name:    "length below header size",
			table:   []byte{17, 2, 0, 0, 0, 0},
			wantErr: "bad length 2",
		},
		{
			name:    "unterminated strings",
			table:   []byte{1, 4, 0, 0, 'a', 'b'},
			wantErr: "unterminated strings",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSMBIOS(tc.table)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("structures (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSMBIOSMemoryModules(t *testing.T) {
	array := func(handle uint16, use byte) []byte {
		return smbiosStruct(16, handle, []byte{0x03, use, 0x03, 0, 0, 0, 0, 0xFE, 0xFF, 2, 0})
	}
	dimm := func(handle uint16, size uint16, ext uint32, slot, serial string) []byte {
		return smbiosStruct(17, handle, smbiosMemDevice(size, ext, 0x22, 4800),
			slot, "BANK", "Acme", serial, "Not Specified", "PN-1 ")
	}
	mod := func(key, slot, serial string, size uint64) *inventoryv1.MemoryModule {
		return &inventoryv1.MemoryModule{Key: key, Slot: slot, Bank: "BANK", SizeBytes: size,
			Vendor: "Acme", Serial: serial, PartNumber: "PN-1", Type: "DDR5", SpeedMts: 4800}
	}
	tests := []struct {
		name         string
		table        []byte
		want         []*inventoryv1.MemoryModule
		wantComplete bool
	}{
		{
			name: "sizes in MB, KB and extended; empty slot skipped",
			table: smbiosConcat(array(0x1000, 0x03),
				dimm(0x11, 0x2000, 0, "B1", "S2"),
				dimm(0x12, 0, 0, "B2", "Not Specified"),
				dimm(0x13, 0x8000|512, 0, "A2", "S3"),
				dimm(0x14, 0x7FFF, 65536, "A1", "S1"),
				smbiosEnd),
			want: []*inventoryv1.MemoryModule{
				mod("S1", "A1", "S1", 64<<30),
				mod("S2", "B1", "S2", 8<<30),
				mod("S3", "A2", "S3", 512<<10),
			},
			wantComplete: true,
		},
		{
			name:  "unknown size kept, total incomplete",
			table: smbiosConcat(dimm(0x11, 0xFFFF, 0, "A1", "S1"), smbiosEnd),
			want:  []*inventoryv1.MemoryModule{mod("S1", "A1", "S1", 0)},
		},
		{
			name: "missing or shared serials key by slot",
			table: smbiosConcat(
				dimm(0x11, 1024, 0, "A1", "0123"),
				dimm(0x12, 1024, 0, "A2", "0123"),
				dimm(0x13, 1024, 0, "A3", "Unknown"),
				dimm(0x14, 1024, 0, "Not Specified", "NO DIMM"),
				smbiosEnd),
			want: []*inventoryv1.MemoryModule{
				mod("handle:0x0014", "", "", 1<<30),
				mod("slot:A1", "A1", "0123", 1<<30),
				mod("slot:A2", "A2", "0123", 1<<30),
				mod("slot:A3", "A3", "", 1<<30),
			},
			wantComplete: true,
		},
		{
			name: "devices of a non-system array skipped",
			table: smbiosConcat(array(0x1000, 0x04),
				dimm(0x11, 1024, 0, "VRAM", "V1"),
				smbiosEnd),
			wantComplete: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			structs, err := parseSMBIOS(tc.table)
			if err != nil {
				t.Fatal(err)
			}
			got, complete := smbiosMemoryModules(structs)
			if diff := cmp.Diff(tc.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("modules (-want +got):\n%s", diff)
			}
			if complete != tc.wantComplete {
				t.Errorf("complete = %v, want %v", complete, tc.wantComplete)
			}
		})
	}
}

// TestSMBIOSFixtures checks the generated tables of the fixture roots
// (testdata/hw/gen writes them) against what the generator puts in them.
func TestSMBIOSFixtures(t *testing.T) {
	tests := []struct {
		host      string
		wantSlots []string
	}{
		{"host-a", []string{"DIMM_A1", "DIMM_B1"}},
		// Sorted by key, the serial number.
		{"host-b", []string{"DIMM_A1", "DIMM_B1", "DIMM_A2"}},
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			table, err := os.ReadFile(filepath.Join(hwFixtureRoot(t, tc.host), "sys", "firmware", "dmi", "tables", "DMI"))
			if err != nil {
				t.Fatal(err)
			}
			structs, err := parseSMBIOS(table)
			if err != nil {
				t.Fatal(err)
			}
			mods, complete := smbiosMemoryModules(structs)
			var slots []string
			for _, m := range mods {
				slots = append(slots, m.GetSlot())
			}
			if diff := cmp.Diff(tc.wantSlots, slots); diff != "" || !complete {
				t.Errorf("slots (-want +got):\n%s (complete %v)", diff, complete)
			}
			if diff := cmp.Diff([]uint64{4700}, smbiosProcessorMaxSpeeds(structs)); diff != "" {
				t.Errorf("processor max speeds (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHWKeys(t *testing.T) {
	tests := []struct {
		name                string
		preferred, fallback []string
		want                []string
	}{
		{"unique", []string{"a", "b"}, []string{"x", "y"}, []string{"a", "b"}},
		{"empty", []string{"", "b"}, []string{"x", "y"}, []string{"x", "b"}},
		{"shared", []string{"a", "a", "c"}, []string{"x", "y", "z"}, []string{"x", "y", "c"}},
		{"none", nil, nil, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, hwKeys(tc.preferred, tc.fallback)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestHWChassisTypeName(t *testing.T) {
	tests := []struct {
		n    uint64
		want string
	}{
		{0, "0"},
		{3, "Desktop"},
		{7, "Tower"},
		{23, "Rack Mount Chassis"},
		{36, "Stick PC"},
		{99, "99"},
	}
	for _, tc := range tests {
		if got := hwChassisTypeName(tc.n); got != tc.want {
			t.Errorf("hwChassisTypeName(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
