package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/testing/protocmp"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// swCollectors are the software collectors under their registry names.
var swCollectors = []struct {
	name string
	c    Collector
}{
	{"os", OS{}},
	{"packages", Packages{}},
	{"services", Services{}},
	{"files", Files{}},
	{"kernel_modules", KernelModules{}},
	{"volatile", Volatile{}},
}

// swTrack is what the golden files test tracks on debian-a.
var swTrack = []string{"/etc/ssh", "/usr/bin/*", "/etc/passwd", "/etc/nonexistent", "/tmp"}

func swFixtureRoot(t testing.TB, name string) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("testdata", "sw", name))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// swRun runs c under env and returns the audit and the warnings.
func swRun(ctx context.Context, c Collector, env Env) (*inventoryv1.Audit, []string, error) {
	var warns []string
	env.Warn = func(msg string) { warns = append(warns, msg) }
	out := &inventoryv1.Audit{}
	err := c.Collect(ctx, env, out)
	return out, warns, err
}

// swSection returns the section of out that the named collector owns.
func swSection(out *inventoryv1.Audit, name string) proto.Message {
	switch name {
	case "os":
		return out.GetOs()
	case "packages":
		return out.GetPackages()
	case "services":
		return out.GetServices()
	case "files":
		return out.GetFiles()
	case "kernel_modules":
		return out.GetKernelModules()
	case "volatile":
		return out.GetVolatile()
	}
	return nil
}

// swFilesRoot copies debian-a into a temporary root and sets the modes
// git does not keep (setuid, setgid, sticky, umask-dependent bits), so
// the files section is the same on every checkout. Symlinks are copied as
// symlinks.
func swFilesRoot(t testing.TB) string {
	t.Helper()
	src := swFixtureRoot(t, "debian-a")
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, 0o644)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dst, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	modes := map[string]fs.FileMode{
		"etc/ssh":                              0o755,
		"etc/ssh/sshd_config.d":                0o755,
		"etc/ssh/sshd_config":                  0o644,
		"etc/ssh/sshd_config.d/hardening.conf": 0o600,
		"usr/bin/su":                           0o755 | fs.ModeSetuid,
		"usr/bin/passwd":                       0o755 | fs.ModeSetuid | fs.ModeSetgid,
		"tmp":                                  0o777 | fs.ModeSticky,
		"etc/passwd":                           0o644,
	}
	for rel, m := range modes {
		if err := os.Chmod(filepath.Join(dst, rel), m); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// swEnv returns the environment the golden test and benchmarks run the
// named collector with on debian-a.
func swEnv(t testing.TB, name string) Env {
	if name == "files" {
		return Env{Root: swFilesRoot(t), Track: swTrack}
	}
	return Env{Root: swFixtureRoot(t, "debian-a")}
}

// swNormalizeOwners clears uid, gid and names, which are the test
// runner's on a git checkout, after checking they are consistent.
func swNormalizeOwners(t *testing.T, files *inventoryv1.Files) {
	t.Helper()
	for _, f := range files.GetFiles() {
		if f.Uid != uint32(os.Getuid()) {
			t.Errorf("%s: uid %d, want the test runner's %d", f.Path, f.Uid, os.Getuid())
		}
		f.Uid, f.Gid, f.Owner, f.Group = 0, 0, "", ""
	}
}

// TestSWGolden compares each software collector's section on debian-a
// with testdata/sw/golden/<name>.json. UPDATE_GOLDEN=1 rewrites the files;
// review the diff.
func TestSWGolden(t *testing.T) {
	update := os.Getenv("UPDATE_GOLDEN") == "1"
	for _, tc := range swCollectors {
		t.Run(tc.name, func(t *testing.T) {
			env := swEnv(t, tc.name)
			out, warns, err := swRun(t.Context(), tc.c, env)
			if err != nil {
				t.Fatalf("Collect: %v", err)
			}
			var wantWarns []string
			if tc.name == "files" {
				// swTrack names a missing path on purpose.
				wantWarns = []string{"track /etc/nonexistent: lstat " + env.Path("/etc/nonexistent") + ": no such file or directory"}
			}
			if diff := cmp.Diff(wantWarns, warns); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if tc.name == "files" {
				swNormalizeOwners(t, out.GetFiles())
			}
			got := swSection(out, tc.name)
			path := filepath.Join("testdata", "sw", "golden", tc.name+".json")
			if update {
				b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(got)
				if err != nil {
					t.Fatal(err)
				}
				var buf bytes.Buffer
				if err := json.Indent(&buf, b, "", "  "); err != nil {
					t.Fatal(err)
				}
				buf.WriteByte('\n')
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file (UPDATE_GOLDEN=1 writes it): %v", err)
			}
			want := got.ProtoReflect().New().Interface()
			if err := protojson.Unmarshal(b, want); err != nil {
				t.Fatalf("parse %s: %v", path, err)
			}
			if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
				t.Errorf("%s (-golden +got):\n%s", tc.name, diff)
			}
		})
	}
}

func TestSWRegistry(t *testing.T) {
	reg := Registry()
	for _, tc := range swCollectors {
		got, ok := reg[tc.name]
		if !ok {
			t.Errorf("registry has no %q", tc.name)
			continue
		}
		if diff := cmp.Diff(tc.name, got.Section()); diff != "" {
			t.Errorf("%s: Section() (-want +got):\n%s", tc.name, diff)
		}
	}
}

// TestSWOnlyOwnSection checks that each collector fills its own section
// and nothing else.
func TestSWOnlyOwnSection(t *testing.T) {
	for _, tc := range swCollectors {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := swRun(t.Context(), tc.c, swEnv(t, tc.name))
			if err != nil {
				t.Fatal(err)
			}
			own := swSection(out, tc.name)
			if own == nil || !own.ProtoReflect().IsValid() {
				t.Fatalf("section %s not set", tc.name)
			}
			n := 0
			out.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
				n++
				return true
			})
			if n != 1 {
				t.Errorf("%d sections set, want 1", n)
			}
		})
	}
}

// TestSWRealHost runs every software collector on the machine running the
// tests. It checks that they succeed, not what they find, apart from the
// package list that every test machine has.
func TestSWRealHost(t *testing.T) {
	if _, err := os.Stat("/proc/self"); err != nil {
		t.Fatal("no /proc: these tests need a Linux host")
	}
	for _, tc := range swCollectors {
		t.Run(tc.name, func(t *testing.T) {
			env := Env{Root: "/", Track: []string{"/etc/hostname", "/etc/os-release", "/etc/apt/*"}}
			out, warns, err := swRun(t.Context(), tc.c, env)
			if err != nil {
				t.Fatalf("Collect on /: %v", err)
			}
			for _, w := range warns {
				t.Logf("warning: %s", w)
			}
			switch tc.name {
			case "packages":
				if len(out.GetPackages().GetPackages()) == 0 {
					t.Errorf("no packages on the host, managers %v", out.GetPackages().GetManagers())
				}
			case "os":
				if out.GetOs().GetKernelRelease() == "" || out.GetOs().GetArchitecture() == "" {
					t.Errorf("os section incomplete: %v", out.GetOs())
				}
			case "services":
				// systemd is not PID 1 on every test machine: then the
				// active state is simply unknown.
				if _, err := os.Stat("/run/systemd/system"); err != nil && out.GetServices().GetActiveStateKnown() {
					t.Errorf("active_state_known without a running systemd")
				}
			}
		})
	}
}

func TestSWMissingRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "absent")
	for _, tc := range swCollectors {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := swRun(t.Context(), tc.c, Env{Root: root}); err == nil {
				t.Errorf("Collect on a missing root: no error")
			}
		})
	}
}
