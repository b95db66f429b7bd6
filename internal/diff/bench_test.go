package diff

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// packageAudits returns two audits of n packages each where about 1% of
// the packages differ: upgraded, removed and added in equal parts.
func packageAudits(n int) (before, after *inventoryv1.Audit) {
	before = baseAudit()
	before.Packages.Packages = make([]*inventoryv1.Package, n)
	for i := range n {
		before.Packages.Packages[i] = pkg("dpkg", fmt.Sprintf("lib%05d", i), fmt.Sprintf("1.%d.0-1", i%17), "amd64")
	}
	after = proto.Clone(before).(*inventoryv1.Audit)
	pkgs := after.Packages.Packages
	for i := 0; i < n; i += 100 {
		switch (i / 100) % 3 {
		case 0:
			pkgs[i].Version += "+deb12u1"
		case 1:
			// Replace with a package under a new key: one removed, one added.
			pkgs[i] = pkg("dpkg", fmt.Sprintf("lib%05d-new", i), "2.0-1", "amd64")
		case 2:
			pkgs[i].Architecture = "arm64"
			pkgs[i].Key = "dpkg/" + pkgs[i].Name + "/arm64"
		}
	}
	return before, after
}

func TestPackageAudits(t *testing.T) {
	before, after := packageAudits(5000)
	r := Compare(before, after)
	if want := (Counts{Added: 33, Removed: 33, Changed: 17}); r.Counts != want {
		t.Errorf("Counts = %+v, want %+v", r.Counts, want)
	}
}

func BenchmarkCompare5000Packages(b *testing.B) {
	before, after := packageAudits(5000)
	b.ReportAllocs()
	for b.Loop() {
		Compare(before, after)
	}
}
