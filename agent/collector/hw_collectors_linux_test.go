package collector

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// hwCollectors are the hardware collectors under their registry names.
var hwCollectors = []struct {
	name string
	c    Collector
}{
	{"cpu", CPU{}},
	{"memory", Memory{}},
	{"block", Block{}},
	{"network", Network{}},
	{"pci", PCI{}},
	{"gpu", GPU{}},
	{"dmi", DMI{}},
}

var hwHosts = []string{"host-a", "host-b"}

// hwRun runs c under root and returns its Hardware section and warnings.
func hwRun(ctx context.Context, c Collector, root string) (*inventoryv1.Hardware, []string, error) {
	var warns []string
	env := Env{Root: root, Warn: func(msg string) { warns = append(warns, msg) }}
	out := &inventoryv1.Audit{}
	err := c.Collect(ctx, env, out)
	return out.GetHardware(), warns, err
}

func hwCollectFixture(t *testing.T, c Collector, host string) *inventoryv1.Hardware {
	t.Helper()
	hw, warns, err := hwRun(t.Context(), c, hwFixtureRoot(t, host))
	if err != nil {
		t.Fatalf("%s on %s: %v", c.Section(), host, err)
	}
	if len(warns) > 0 {
		t.Errorf("%s on %s: unexpected warnings:\n%s", c.Section(), host, strings.Join(warns, "\n"))
	}
	return hw
}

func TestHWRegistry(t *testing.T) {
	reg := Registry()
	for _, tc := range hwCollectors {
		got, ok := reg[tc.name]
		if !ok {
			t.Errorf("registry has no %q", tc.name)
			continue
		}
		if diff := cmp.Diff("hardware."+tc.name, got.Section()); diff != "" {
			t.Errorf("%s: Section() (-want +got):\n%s", tc.name, diff)
		}
	}
}

// TestHWGolden runs every hardware collector on both fixture roots and
// compares with testdata/hw/golden/<host>/<name>.json. UPDATE_GOLDEN=1
// rewrites the files; review the diff.
func TestHWGolden(t *testing.T) {
	update := os.Getenv("UPDATE_GOLDEN") == "1"
	for _, host := range hwHosts {
		for _, tc := range hwCollectors {
			t.Run(host+"/"+tc.name, func(t *testing.T) {
				got := hwCollectFixture(t, tc.c, host)
				path := filepath.Join("testdata", "hw", "golden", host, tc.name+".json")
				if update {
					hwWriteGolden(t, path, got)
				}
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("read golden file (UPDATE_GOLDEN=1 writes it): %v", err)
				}
				want := &inventoryv1.Hardware{}
				if err := protojson.Unmarshal(b, want); err != nil {
					t.Fatalf("parse %s: %v", path, err)
				}
				if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
					t.Errorf("%s (-want +got):\n%s", path, diff)
				}
			})
		}
	}
}

func hwWriteGolden(t *testing.T, path string, m *inventoryv1.Hardware) {
	t.Helper()
	// Unpopulated fields are written so that the file shows every value,
	// but the sections of other collectors (null) are dropped. protojson's
	// spacing is deliberately unstable; the re-encoding makes the file
	// reproducible.
	b, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var sections map[string]json.RawMessage
	if err := json.Unmarshal(b, &sections); err != nil {
		t.Fatal(err)
	}
	for k, v := range sections {
		if string(v) == "null" {
			delete(sections, k)
		}
	}
	b, err = json.MarshalIndent(sections, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHWHardwareChange checks what the fixtures stage: host-b is host-a
// with one DIMM added and the disk sda swapped for another model, and
// nothing else.
func TestHWHardwareChange(t *testing.T) {
	a := map[string]*inventoryv1.Hardware{}
	b := map[string]*inventoryv1.Hardware{}
	for _, tc := range hwCollectors {
		a[tc.name] = hwCollectFixture(t, tc.c, "host-a")
		b[tc.name] = hwCollectFixture(t, tc.c, "host-b")
	}

	t.Run("memory module added", func(t *testing.T) {
		am, bm := a["memory"].GetMemory(), b["memory"].GetMemory()
		if len(am.GetModules()) != 2 || len(bm.GetModules()) != 3 {
			t.Fatalf("modules: host-a %d, host-b %d; want 2 and 3", len(am.GetModules()), len(bm.GetModules()))
		}
		want := map[string]bool{}
		for _, m := range am.GetModules() {
			want[m.GetKey()] = true
		}
		var added []string
		for _, m := range bm.GetModules() {
			if !want[m.GetKey()] {
				added = append(added, m.GetKey())
			}
		}
		if diff := cmp.Diff([]string{"9C0D1E2F"}, added); diff != "" {
			t.Errorf("added module keys (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(uint64(64<<30), bm.GetTotalBytes()); diff != "" {
			t.Errorf("host-b total_bytes (-want +got):\n%s", diff)
		}
	})

	t.Run("disk replaced", func(t *testing.T) {
		da, db := hwDiskByName(t, a["block"], "sda"), hwDiskByName(t, b["block"], "sda")
		if da.GetKey() == db.GetKey() || da.GetSerial() == db.GetSerial() || da.GetModel() == db.GetModel() {
			t.Errorf("sda not replaced: host-a %s/%s/%s, host-b %s/%s/%s",
				da.GetKey(), da.GetSerial(), da.GetModel(), db.GetKey(), db.GetSerial(), db.GetModel())
		}
		na, nb := hwDiskByName(t, a["block"], "nvme0n1"), hwDiskByName(t, b["block"], "nvme0n1")
		if diff := cmp.Diff(na, nb, protocmp.Transform()); diff != "" {
			t.Errorf("nvme0n1 changed (-host-a +host-b):\n%s", diff)
		}
	})

	t.Run("unchanged sections", func(t *testing.T) {
		for _, name := range []string{"cpu", "network", "pci", "gpu", "dmi"} {
			if diff := cmp.Diff(a[name], b[name], protocmp.Transform()); diff != "" {
				t.Errorf("%s differs (-host-a +host-b):\n%s", name, diff)
			}
		}
	})
}

// TestHWPCINames checks that PCI names come from a pci.ids under the root
// when there is one, and that without one the devices are the same with
// IDs only.
func TestHWPCINames(t *testing.T) {
	noIDs := hwFixtureRoot(t, "host-a")
	if err := os.Remove(filepath.Join(noIDs, "usr", "share", "misc", "pci.ids")); err != nil {
		t.Fatal(err)
	}
	named, _, err := hwRun(t.Context(), PCI{}, hwFixtureRoot(t, "host-a"))
	if err != nil {
		t.Fatal(err)
	}
	bare, _, err := hwRun(t.Context(), PCI{}, noIDs)
	if err != nil {
		t.Fatal(err)
	}
	pa, pb := named.GetPci(), bare.GetPci()
	if !pa.GetNamesResolved() || pb.GetNamesResolved() {
		t.Errorf("names_resolved: with pci.ids %v, without %v; want true, false", pa.GetNamesResolved(), pb.GetNamesResolved())
	}
	for _, d := range pa.GetDevices() {
		if d.GetVendorName() == "" || d.GetProductName() == "" || d.GetClassName() == "" {
			t.Errorf("%s: names not resolved: %v", d.GetKey(), d)
		}
	}
	for _, d := range pb.GetDevices() {
		if d.GetVendorName() != "" || d.GetProductName() != "" || d.GetClassName() != "" || d.GetSubclassName() != "" {
			t.Errorf("%s: names without pci.ids: %v", d.GetKey(), d)
		}
	}
	// Apart from names, the devices are the same.
	ignoreNames := protocmp.IgnoreFields(&inventoryv1.PCIDevice{}, "vendor_name", "product_name", "class_name", "subclass_name")
	if diff := cmp.Diff(pa.GetDevices(), pb.GetDevices(), protocmp.Transform(), ignoreNames); diff != "" {
		t.Errorf("pci devices differ beyond names (-named +bare):\n%s", diff)
	}
}

// TestHWPCIDBIsolated checks that PCI names come only from the pci.ids
// under the root, whatever the environment says (PCIDB_PATH,
// PCIDB_CHROOT, GHW_CHROOT), and never from the network.
func TestHWPCIDBIsolated(t *testing.T) {
	noIDs := hwFixtureRoot(t, "host-a")
	if err := os.Remove(filepath.Join(noIDs, "usr", "share", "misc", "pci.ids")); err != nil {
		t.Fatal(err)
	}
	// A root that has a pci.ids, for the environment to point at.
	withIDs := hwFixtureRoot(t, "host-a")
	t.Setenv("PCIDB_PATH", filepath.Join(withIDs, "usr", "share", "misc", "pci.ids"))
	t.Setenv("PCIDB_CHROOT", withIDs)
	t.Setenv("PCIDB_ENABLE_NETWORK_FETCH", "1")
	t.Setenv("GHW_CHROOT", withIDs)
	for _, tc := range []Collector{PCI{}, GPU{}} {
		hw, _, err := hwRun(t.Context(), tc, noIDs)
		if err != nil {
			t.Fatal(err)
		}
		if hw.GetPci().GetNamesResolved() {
			t.Errorf("%s: names_resolved without pci.ids", tc.Section())
		}
		for _, d := range hw.GetPci().GetDevices() {
			if d.GetVendorName() != "" {
				t.Errorf("%s: %s named %q without pci.ids", tc.Section(), d.GetKey(), d.GetVendorName())
			}
		}
		for _, c := range hw.GetGpu().GetCards() {
			if diff := cmp.Diff("8086", c.GetVendor()); diff != "" {
				t.Errorf("%s: card vendor without pci.ids (-want +got):\n%s", tc.Section(), diff)
			}
		}
	}
}

func hwDiskByName(t *testing.T, hw *inventoryv1.Hardware, name string) *inventoryv1.Disk {
	t.Helper()
	for _, d := range hw.GetBlock().GetDisks() {
		if d.GetName() == name {
			return d
		}
	}
	t.Fatalf("no disk %s", name)
	return nil
}

// TestHWSortedKeys checks that every list is sorted by a unique key.
func TestHWSortedKeys(t *testing.T) {
	for _, host := range hwHosts {
		for _, tc := range hwCollectors {
			hw := hwCollectFixture(t, tc.c, host)
			var lists [][]string
			lists = append(lists, hwKeysOf(hw.GetCpu().GetProcessors()), hwKeysOf(hw.GetMemory().GetModules()),
				hwKeysOf(hw.GetBlock().GetDisks()), hwKeysOf(hw.GetNetwork().GetNics()),
				hwKeysOf(hw.GetPci().GetDevices()), hwKeysOf(hw.GetGpu().GetCards()))
			for _, d := range hw.GetBlock().GetDisks() {
				lists = append(lists, hwKeysOf(d.GetPartitions()))
			}
			for _, keys := range lists {
				for i := range keys {
					if keys[i] == "" || (i > 0 && keys[i-1] >= keys[i]) {
						t.Errorf("%s on %s: keys not unique, sorted and non-empty: %q", tc.name, host, keys)
						break
					}
				}
			}
		}
	}
}

func hwKeysOf[T interface{ GetKey() string }](items []T) []string {
	keys := make([]string, len(items))
	for i, it := range items {
		keys[i] = it.GetKey()
	}
	return keys
}

// TestHWRealHost runs the collectors on the machine the tests run on. What
// they find varies; they must not fail (block devices may warn).
func TestHWRealHost(t *testing.T) {
	for _, tc := range hwCollectors {
		t.Run(tc.name, func(t *testing.T) {
			hw, warns, err := hwRun(t.Context(), tc.c, "/")
			if err != nil {
				t.Fatalf("Collect on /: %v", err)
			}
			if hw == nil {
				t.Fatal("Collect on / set no hardware section")
			}
			for _, w := range warns {
				t.Logf("warning: %s", w)
			}
		})
	}
}

// TestHWWarningsNotStderr checks that nothing, ghw's warnings included,
// reaches the process's stderr: file descriptor 2 is swapped for a pipe,
// because ghw's default logger holds the original os.Stderr.
func TestHWWarningsNotStderr(t *testing.T) {
	// An empty root fails before ghw is asked; with /proc/cpuinfo but no
	// /sys, ghw has plenty to warn about.
	sparse := t.TempDir()
	if err := os.MkdirAll(filepath.Join(sparse, "proc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sparse, "proc", "cpuinfo"), []byte("processor\t: 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	roots := []string{hwFixtureRoot(t, "host-a"), hwFixtureRoot(t, "host-b"), "/", t.TempDir(), sparse}
	var warns []string
	got := hwCaptureStderr(t, func() {
		for _, root := range roots {
			for _, tc := range hwCollectors {
				_, w, _ := hwRun(t.Context(), tc.c, root)
				warns = append(warns, w...)
			}
		}
	})
	if got != "" {
		t.Errorf("collectors wrote to stderr:\n%s", got)
	}
	ghwWarned := false
	for _, w := range warns {
		ghwWarned = ghwWarned || strings.HasPrefix(w, "ghw: ")
	}
	if !ghwWarned {
		t.Errorf("no ghw warning reached env.Warn on a root without /sys; warnings: %q", warns)
	}

	t.Run("capture works", func(t *testing.T) {
		got := hwCaptureStderr(t, func() { os.Stderr.WriteString("probe") })
		if got != "probe" {
			t.Errorf("captured %q, want %q", got, "probe")
		}
	})
}

// hwCaptureStderr runs f with file descriptor 2 redirected to a pipe and
// returns what was written to it.
func hwCaptureStderr(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved, err := syscall.Dup(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Dup3(int(w.Fd()), 2, 0); err != nil {
		t.Fatal(err)
	}
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		done <- b
	}()
	func() {
		defer func() {
			if err := syscall.Dup3(saved, 2, 0); err != nil {
				t.Fatal(err)
			}
			syscall.Close(saved)
			w.Close()
		}()
		f()
	}()
	out := <-done
	r.Close()
	return string(out)
}

func TestHWContextCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	root := hwFixtureRoot(t, "host-a")
	for _, tc := range hwCollectors {
		if _, _, err := hwRun(ctx, tc.c, root); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: err = %v, want context.Canceled", tc.name, err)
		}
	}
}

// TestHWMissingSources checks the collectors on a sysfs that exists but
// lacks a source: an empty PCI bus is no devices, a missing DRM class is
// covered by the PCI scan, a missing DMI directory (ARM boards) is a
// warning. TestEmptyRoot covers a root with no sysfs at all.
func TestHWMissingSources(t *testing.T) {
	tests := []struct {
		name      string
		c         Collector
		dirs      []string
		want      *inventoryv1.Hardware
		wantWarns int
		wantErr   error
	}{
		{
			name: "pci: empty bus",
			c:    PCI{},
			dirs: []string{"sys/bus/pci/devices"},
			want: &inventoryv1.Hardware{Pci: &inventoryv1.PCI{}},
		},
		{
			name:    "pci: no bus",
			c:       PCI{},
			dirs:    []string{"sys/class/drm"},
			wantErr: ErrNoSource,
		},
		{
			name: "gpu: empty bus, no drm",
			c:    GPU{},
			dirs: []string{"sys/bus/pci/devices"},
			want: &inventoryv1.Hardware{Gpu: &inventoryv1.GPU{}},
		},
		{
			name:      "dmi: sysfs without dmi",
			c:         DMI{},
			dirs:      []string{"sys/class/net"},
			want:      &inventoryv1.Hardware{Dmi: &inventoryv1.DMI{}},
			wantWarns: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for _, d := range tc.dirs {
				if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			hw, warns, err := hwRun(t.Context(), tc.c, root)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, hw, protocmp.Transform()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if len(warns) != tc.wantWarns {
				t.Errorf("warnings %q, want %d", warns, tc.wantWarns)
			}
		})
	}
}

// TestHWUnreadableDMI checks that a DMI file that cannot be read (serials
// are root-only) is empty plus a warning, not an error.
func TestHWUnreadableDMI(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "sys", "class", "dmi", "id")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sys_vendor"), []byte("Acme\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	serial := filepath.Join(dir, "product_serial")
	if os.Geteuid() == 0 {
		// Root reads whatever the mode; a directory fails to read too.
		if err := os.Mkdir(serial, 0o755); err != nil {
			t.Fatal(err)
		}
	} else if err := os.WriteFile(serial, []byte("S3CR3T\n"), 0o000); err != nil {
		t.Fatal(err)
	}
	hw, warns, err := hwRun(t.Context(), DMI{}, root)
	if err != nil {
		t.Fatal(err)
	}
	want := &inventoryv1.DMI{SystemVendor: "Acme"}
	if diff := cmp.Diff(want, hw.GetDmi(), protocmp.Transform()); diff != "" {
		t.Errorf("DMI (-want +got):\n%s", diff)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], filepath.Join(dir, "product_serial")+": ") {
		t.Errorf("warnings = %q, want one about product_serial", warns)
	}
}

func benchmarkHWCollector(b *testing.B, c Collector) {
	env := Env{Root: hwFixtureRoot(b, "host-a"), Warn: func(string) {}}
	ctx := b.Context()
	for b.Loop() {
		if err := c.Collect(ctx, env, &inventoryv1.Audit{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCollectorCPU(b *testing.B)     { benchmarkHWCollector(b, CPU{}) }
func BenchmarkCollectorMemory(b *testing.B)  { benchmarkHWCollector(b, Memory{}) }
func BenchmarkCollectorBlock(b *testing.B)   { benchmarkHWCollector(b, Block{}) }
func BenchmarkCollectorNetwork(b *testing.B) { benchmarkHWCollector(b, Network{}) }
func BenchmarkCollectorPCI(b *testing.B)     { benchmarkHWCollector(b, PCI{}) }
func BenchmarkCollectorGPU(b *testing.B)     { benchmarkHWCollector(b, GPU{}) }
func BenchmarkCollectorDMI(b *testing.B)     { benchmarkHWCollector(b, DMI{}) }
