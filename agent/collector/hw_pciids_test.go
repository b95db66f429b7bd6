package collector

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jaypipes/pcidb"
)

// TestHWParsePCIIDsMatchesPcidb reads the machine's real pci.ids both with
// the filtered reader and with pcidb's full parser, and checks that every
// vendor, product, subsystem and class the filter keeps has the same name.
func TestHWParsePCIIDsMatchesPcidb(t *testing.T) {
	const path = "/usr/share/misc/pci.ids" // Debian's pci.ids package (installed by .ci/run)
	full, err := pcidb.New(pcidb.WithPath(path), &pcidb.WithOption{EnableNetworkFetch: new(bool)})
	if err != nil {
		t.Fatalf("pcidb: %v", err)
	}
	want := hwPCIWanted{
		vendors:  map[string]bool{"8086": true, "10de": true, "1af4": true, "1028": true, "ffff": true},
		products: map[string]bool{"808615b7": true, "10de1eb8": true, "1af41000": true, "8086ffff": true},
		classes:  map[string]bool{"01": true, "02": true, "03": true, "0c": true, "ff": true},
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := hwParsePCIIDs(f, false, want)
	if err != nil {
		t.Fatal(err)
	}
	for id := range want.vendors {
		if full.Vendors[id] == nil {
			if got.Vendors[id] != nil {
				t.Errorf("vendor %s invented", id)
			}
			continue
		}
		if got.Vendors[id] == nil || got.Vendors[id].Name != full.Vendors[id].Name {
			t.Errorf("vendor %s: got %+v, pcidb says %q", id, got.Vendors[id], full.Vendors[id].Name)
		}
	}
	for id := range want.products {
		fp := full.Products[id]
		gp := got.Products[id]
		if fp == nil {
			if gp != nil {
				t.Errorf("product %s invented", id)
			}
			continue
		}
		if gp == nil {
			t.Errorf("product %s missing", id)
			continue
		}
		if gp.Name != fp.Name || len(gp.Subsystems) != len(fp.Subsystems) {
			t.Errorf("product %s: got %q with %d subsystems, pcidb %q with %d", id, gp.Name, len(gp.Subsystems), fp.Name, len(fp.Subsystems))
		}
		for i := range min(len(gp.Subsystems), len(fp.Subsystems)) {
			g, w := gp.Subsystems[i], fp.Subsystems[i]
			if g.VendorID != w.VendorID || g.ID != w.ID || g.Name != w.Name {
				t.Errorf("product %s subsystem %d: got %+v, pcidb %+v", id, i, *g, *w)
			}
		}
	}
	for id := range want.classes {
		fc, gc := full.Classes[id], got.Classes[id]
		if gc == nil || gc.Name != fc.Name || len(gc.Subclasses) != len(fc.Subclasses) {
			t.Errorf("class %s: got %+v, pcidb %+v", id, gc, fc)
			continue
		}
		for i, sc := range gc.Subclasses {
			if sc.ID != fc.Subclasses[i].ID || sc.Name != fc.Subclasses[i].Name ||
				len(sc.ProgrammingInterfaces) != len(fc.Subclasses[i].ProgrammingInterfaces) {
				t.Errorf("class %s subclass %d: got %+v, pcidb %+v", id, i, sc, fc.Subclasses[i])
			}
		}
	}
	if len(got.Products) == 0 || len(got.Classes) == 0 {
		t.Fatal("nothing parsed")
	}
}

func TestHWParsePCIIDsMalformed(t *testing.T) {
	want := hwPCIWanted{
		vendors:  map[string]bool{"8086": true},
		products: map[string]bool{"80861234": true},
		classes:  map[string]bool{"03": true},
	}
	src := strings.Join([]string{
		"# comment", "C", "C 0", "C 03", "\t", "\t\t", "8086", "8086  Intel Corporation",
		"\t1234", "\t1234  Widget", "\t\t8086", "\t\t8086 0001  Widget Pro", "\t\t\t\tdeep",
		"C 03  Display controller", "\t00  VGA compatible controller", "\t\t00  VGA controller",
	}, "\n")
	db, err := hwParsePCIIDs(strings.NewReader(src), false, want)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{
		"vendor":    db.Vendors["8086"].Name,
		"product":   db.Products["80861234"].Name,
		"subsystem": db.Products["80861234"].Subsystems[0].Name,
		"class":     db.Classes["03"].Name,
		"subclass":  db.Classes["03"].Subclasses[0].Name,
		"progif":    db.Classes["03"].Subclasses[0].ProgrammingInterfaces[0].Name,
	}
	wantNames := map[string]string{
		"vendor": "Intel Corporation", "product": "Widget", "subsystem": "Widget Pro",
		"class": "Display controller", "subclass": "VGA compatible controller", "progif": "VGA controller",
	}
	if diff := cmp.Diff(wantNames, got); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
}

func BenchmarkHWLoadPCIDBHost(b *testing.B) {
	env := Env{Root: "/", Warn: func(string) {}}
	for b.Loop() {
		hwLoadPCIDB(env)
	}
}
