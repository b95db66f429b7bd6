package inventory

import (
	"context"
	"path/filepath"
	"testing"
)

// BenchmarkAuditHost takes a full audit of the machine running the
// benchmark, every collector included, as `cairn-agent audit` does.
func BenchmarkAuditHost(b *testing.B) {
	benchmarkAudit(b, "/")
}

// BenchmarkAuditFixture takes a full audit of the Debian fixture tree.
func BenchmarkAuditFixture(b *testing.B) {
	root, err := filepath.Abs(filepath.Join("..", "collector", "testdata", "sw", "debian-a"))
	if err != nil {
		b.Fatal(err)
	}
	benchmarkAudit(b, root)
}

func benchmarkAudit(b *testing.B, root string) {
	ctx := context.Background()
	for b.Loop() {
		a, err := Collect(ctx, Options{Root: root, Track: []string{"/etc"}})
		if err != nil {
			b.Fatal(err)
		}
		if len(a.GetCollectors()) == 0 {
			b.Fatal("no collectors ran")
		}
	}
}
