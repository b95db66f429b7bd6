package audit

import (
	"fmt"
	"io"
	"testing"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// bigAudit is an audit with n packages, the size of a large server.
func bigAudit(b *testing.B, n int) *inventoryv1.Audit {
	a := sample(b)
	a.Packages.Packages = nil
	for i := range n {
		name := fmt.Sprintf("package-%05d", i)
		a.Packages.Packages = append(a.Packages.Packages, &inventoryv1.Package{
			Key: "dpkg/" + name + "/amd64", Manager: "dpkg", Name: name, Version: "1.2.3-4", Architecture: "amd64",
		})
	}
	if err := Seal(a); err != nil {
		b.Fatal(err)
	}
	return a
}

func BenchmarkSeal5000Packages(b *testing.B) {
	a := bigAudit(b, 5000)
	for b.Loop() {
		if err := Seal(a); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteJSON5000Packages(b *testing.B) {
	a := bigAudit(b, 5000)
	for b.Loop() {
		if err := WriteJSON(io.Discard, a); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode5000Packages(b *testing.B) {
	doc := encode(b, bigAudit(b, 5000))
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := Decode(doc); err != nil {
			b.Fatal(err)
		}
	}
}
