package inventory

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/agent/collector"
	"github.com/cairn-ops/cairn/internal/audit"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// fake is a collector whose behaviour a test sets.
type fake struct {
	section string
	collect func(ctx context.Context, env collector.Env, out *inventoryv1.Audit) error
}

func (f fake) Section() string { return f.section }
func (f fake) Collect(ctx context.Context, env collector.Env, out *inventoryv1.Audit) error {
	return f.collect(ctx, env, out)
}

var _ collector.Collector = fake{}

func osOK(_ context.Context, env collector.Env, out *inventoryv1.Audit) error {
	env.Warn("boot_id unreadable")
	out.Os = &inventoryv1.OS{Hostname: "web1"}
	return nil
}

func packagesOK(_ context.Context, _ collector.Env, out *inventoryv1.Audit) error {
	out.Packages = &inventoryv1.Packages{Packages: []*inventoryv1.Package{{Key: "dpkg/jq/amd64", Name: "jq"}}}
	return nil
}

func hangs(ctx context.Context, _ collector.Env, out *inventoryv1.Audit) error {
	<-ctx.Done()
	time.Sleep(50 * time.Millisecond) // keeps writing after its timeout
	out.Services = &inventoryv1.Services{}
	return nil
}

func ignoresContext(_ context.Context, _ collector.Env, _ *inventoryv1.Audit) error {
	time.Sleep(2 * time.Second)
	return nil
}

func fails(context.Context, collector.Env, *inventoryv1.Audit) error {
	return errors.New("open /var/lib/dpkg/status: permission denied")
}

func panics(context.Context, collector.Env, *inventoryv1.Audit) error {
	panic("index out of range")
}

func strays(_ context.Context, _ collector.Env, out *inventoryv1.Audit) error {
	out.Os = &inventoryv1.OS{Hostname: "evil"}
	out.KernelModules = &inventoryv1.KernelModules{}
	return nil
}

type wantStatus struct {
	State   string
	Message string
}

func TestCollectStatuses(t *testing.T) {
	fixed := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	reg := map[string]collector.Collector{
		"os":             fake{"os", osOK},
		"packages":       fake{"packages", packagesOK},
		"services":       fake{"services", hangs},
		"files":          fake{"files", fails},
		"kernel_modules": fake{"kernel_modules", panics},
		"volatile":       fake{"volatile", ignoresContext},
		"gpu":            fake{"hardware.gpu", strays},
	}
	a, err := Collect(context.Background(), Options{
		Root:     t.TempDir(),
		Timeout:  200 * time.Millisecond,
		Registry: reg,
		Now:      func() time.Time { return fixed },
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]wantStatus{}
	for _, s := range a.GetCollectors() {
		msg := s.GetMessage()
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i] // drop the panic's stack
		}
		got[s.GetName()] = wantStatus{audit.StateName(s.GetState()), msg}
	}
	want := map[string]wantStatus{
		"os":             {"ok", ""},
		"packages":       {"ok", ""},
		"services":       {"timeout", "did not finish within 200ms"},
		"volatile":       {"timeout", "did not finish within 200ms"},
		"files":          {"error", "open /var/lib/dpkg/status: permission denied"},
		"kernel_modules": {"error", "panic: index out of range"},
		"gpu":            {"error", "collector wrote section os, outside its own section hardware.gpu"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("collector statuses (-want +got):\n%s", diff)
	}

	// Only the sections of successful collectors are in the audit.
	if a.GetOs().GetHostname() != "web1" || len(a.GetPackages().GetPackages()) != 1 {
		t.Errorf("ok sections missing or wrong: os=%v packages=%v", a.GetOs(), a.GetPackages())
	}
	for _, absent := range []string{"services", "files", "kernel_modules", "volatile", "hardware.gpu"} {
		s, _ := audit.SectionByName(absent)
		if s.Get(a) != nil {
			t.Errorf("section %s of a failed collector is in the audit", absent)
		}
		if audit.Comparable(a, absent) {
			t.Errorf("section %s is comparable after its collector failed", absent)
		}
	}
	if w := audit.Status(a, "os").GetWarnings(); !cmp.Equal(w, []string{"boot_id unreadable"}) {
		t.Errorf("os warnings = %q", w)
	}
	// Sorted by name, sealed, header filled.
	var names []string
	for _, s := range a.GetCollectors() {
		names = append(names, s.GetName())
	}
	if diff := cmp.Diff([]string{"files", "gpu", "kernel_modules", "os", "packages", "services", "volatile"}, names); diff != "" {
		t.Errorf("collector order (-want +got):\n%s", diff)
	}
	if err := audit.Verify(a); err != nil {
		t.Errorf("audit not sealed: %v", err)
	}
	if got := a.GetHeader().GetCollectedAt(); got != "2026-11-26T12:00:00Z" {
		t.Errorf("collected_at = %q", got)
	}
}

func TestCollectOptionsErrors(t *testing.T) {
	reg := map[string]collector.Collector{"os": fake{"os", osOK}}
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"unknown collector", Options{Root: t.TempDir(), Collectors: []string{"os", "gpus"}, Registry: reg}, `unknown collector "gpus" (valid: os)`},
		{"missing root", Options{Root: "/nonexistent/cairn-root", Registry: reg}, "root: stat /nonexistent/cairn-root"},
		{"root is a file", Options{Root: "/etc/hostname", Registry: reg}, "root /etc/hostname is not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Collect(context.Background(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Collect error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestCollectSelected(t *testing.T) {
	reg := map[string]collector.Collector{
		"os":       fake{"os", osOK},
		"packages": fake{"packages", packagesOK},
	}
	a, err := Collect(context.Background(), Options{Root: t.TempDir(), Collectors: []string{"packages", "packages"}, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.GetCollectors()) != 1 || a.GetOs() != nil {
		t.Errorf("want only packages collected, got %v", a.GetCollectors())
	}
}

func TestCollectCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	reg := map[string]collector.Collector{"services": fake{"services", hangs}}
	if _, err := Collect(ctx, Options{Root: t.TempDir(), Registry: reg}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Collect on a cancelled context = %v, want context.Canceled", err)
	}
}
