package collector

import (
	"testing"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// benchmarkSWCollector runs the named software collector on debian-a.
func benchmarkSWCollector(b *testing.B, name string) {
	var c Collector
	for _, tc := range swCollectors {
		if tc.name == name {
			c = tc.c
		}
	}
	env := swEnv(b, name)
	env.Warn = func(string) {}
	b.ReportAllocs()
	for b.Loop() {
		out := &inventoryv1.Audit{}
		if err := c.Collect(b.Context(), env, out); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCollectorOS(b *testing.B)            { benchmarkSWCollector(b, "os") }
func BenchmarkCollectorPackages(b *testing.B)      { benchmarkSWCollector(b, "packages") }
func BenchmarkCollectorServices(b *testing.B)      { benchmarkSWCollector(b, "services") }
func BenchmarkCollectorFiles(b *testing.B)         { benchmarkSWCollector(b, "files") }
func BenchmarkCollectorKernelModules(b *testing.B) { benchmarkSWCollector(b, "kernel_modules") }
func BenchmarkCollectorVolatile(b *testing.B)      { benchmarkSWCollector(b, "volatile") }

// BenchmarkCollectorPackagesHost reads the real host's package databases
// (about 700 dpkg packages on the development machine).
func BenchmarkCollectorPackagesHost(b *testing.B) {
	env := Env{Root: "/", Warn: func(string) {}}
	for b.Loop() {
		if err := (Packages{}).Collect(b.Context(), env, &inventoryv1.Audit{}); err != nil {
			b.Fatal(err)
		}
	}
}
