package collector

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// swWriteTree creates files (path → content) under a new temporary root.
func swWriteTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for rel, content := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestParseOSRelease(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{
			name: "double, single and no quotes",
			in:   "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME='Debian GNU/Linux 12 (bookworm)'\n",
			want: map[string]string{"ID": "debian", "VERSION_ID": "12", "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)"},
		},
		{
			name: "escapes in double quotes, literal backslash in single quotes",
			in:   `NAME="A \"quoted\" \$name \\ and \n"` + "\n" + `X='a\b'` + "\n",
			want: map[string]string{"NAME": `A "quoted" $name \ and \n`, "X": `a\b`},
		},
		{
			name: "comments, blank lines, bad keys, spaces around the line",
			in:   "# comment\n\n  ID=fedora  \n1BAD=x\nno equals\nVARIANT=\"Server Edition\" # trailing\n",
			want: map[string]string{"ID": "fedora", "VARIANT": "Server Edition"},
		},
		{
			name: "unquoted escapes and concatenation",
			in:   `PRETTY_NAME=Alpine\ Linux" v3.19"` + "\n",
			want: map[string]string{"PRETTY_NAME": "Alpine Linux v3.19"},
		},
		{
			name: "unterminated quote runs to the end",
			in:   "PRETTY_NAME=\"Broken\n",
			want: map[string]string{"PRETTY_NAME": "Broken"},
		},
		{
			name: "empty value",
			in:   "VERSION_ID=\nID=\"\"\n",
			want: map[string]string{"VERSION_ID": "", "ID": ""},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, parseOSRelease([]byte(tc.in))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestOSFallbacks(t *testing.T) {
	tests := []struct {
		name      string
		files     map[string]string
		want      *inventoryv1.OS
		wantWarns int
		wantErr   error
	}{
		{
			name: "etc/hostname, usr/lib/os-release, kernel arch",
			files: map[string]string{
				"etc/hostname":            "# comment\nbox\n",
				"usr/lib/os-release":      "ID=arch\nPRETTY_NAME=\"Arch Linux\"\n",
				"proc/sys/kernel/arch":    "aarch64\n",
				"proc/sys/kernel/version": "#1 SMP\n",
			},
			want: &inventoryv1.OS{Hostname: "box", Id: "arch", PrettyName: "Arch Linux", Architecture: "aarch64", KernelVersion: "#1 SMP"},
		},
		{
			name: "architecture from apk",
			files: map[string]string{
				"proc/sys/kernel/hostname": "alp\n",
				"etc/os-release":           "ID=alpine\nVERSION_ID=3.19.1\n",
				"etc/apk/arch":             "x86_64\n",
			},
			want: &inventoryv1.OS{Hostname: "alp", Id: "alpine", VersionId: "3.19.1", Architecture: "x86_64"},
		},
		{
			name: "architecture from the dpkg package",
			files: map[string]string{
				"proc/sys/kernel/hostname": "pi\n",
				"etc/os-release":           "ID=debian\n",
				"var/lib/dpkg/status":      "Package: dpkg\nStatus: install ok installed\nArchitecture: arm64\nVersion: 1.21.22\n\n",
			},
			want: &inventoryv1.OS{Hostname: "pi", Id: "debian", Architecture: "aarch64"},
		},
		{
			name:      "only a kernel: warnings, not an error",
			files:     map[string]string{"proc/sys/kernel/osrelease": "6.1.0\n"},
			want:      &inventoryv1.OS{KernelRelease: "6.1.0"},
			wantWarns: 3, // hostname, os-release, architecture
		},
		{
			name:    "neither os-release nor a kernel: no source",
			files:   map[string]string{"etc/hostname": "box\n"},
			wantErr: ErrNoSource,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, warns, err := swRun(t.Context(), OS{}, Env{Root: swWriteTree(t, tc.files)})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if len(warns) != tc.wantWarns {
				t.Errorf("warnings %q, want %d", warns, tc.wantWarns)
			}
			if diff := cmp.Diff(tc.want, out.GetOs(), protocmp.Transform()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestDetectContainer(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"bare", map[string]string{"proc/1/cgroup": "0::/init.scope\n"}, ""},
		{"systemd marker", map[string]string{"run/systemd/container": "systemd-nspawn\n", ".dockerenv": ""}, "systemd-nspawn"},
		{"pid 1 environment", map[string]string{"proc/1/environ": "PATH=/bin\x00container=lxc\x00"}, "lxc"},
		{"podman", map[string]string{"run/.containerenv": ""}, "podman"},
		{"docker", map[string]string{".dockerenv": ""}, "docker"},
		{"docker cgroup v1", map[string]string{"proc/1/cgroup": "12:pids:/docker/0123abcd\n"}, "docker"},
		{"kubernetes cgroup", map[string]string{"proc/1/cgroup": "0::/kubepods/besteffort/pod1\n"}, "container-other"},
		{"openvz", map[string]string{"proc/vz/veinfo": ""}, "openvz"},
		{"openvz host", map[string]string{"proc/vz/veinfo": "", "proc/bc/0": ""}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := Env{Root: swWriteTree(t, tc.files), Warn: func(string) {}}
			if got := detectContainer(env, ""); got != tc.want {
				t.Errorf("detectContainer = %q, want %q", got, tc.want)
			}
		})
	}
	if got := detectContainer(Env{Root: t.TempDir()}, "5.15.90.1-microsoft-standard-WSL2"); got != "wsl" {
		t.Errorf("WSL kernel: %q, want wsl", got)
	}
}

func TestDetectVirtualization(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"bare metal", map[string]string{"sys/class/dmi/id/sys_vendor": "Dell Inc.\n", "proc/cpuinfo": "flags\t: fpu vme\n"}, ""},
		{"kvm", map[string]string{"sys/class/dmi/id/sys_vendor": "QEMU\n", "sys/class/dmi/id/product_name": "KVM Virtual Machine\n"}, "kvm"},
		{"qemu", map[string]string{"sys/class/dmi/id/sys_vendor": "QEMU\n"}, "qemu"},
		{"vmware", map[string]string{"sys/class/dmi/id/sys_vendor": "VMware, Inc.\n"}, "vmware"},
		{"hyper-v", map[string]string{"sys/class/dmi/id/sys_vendor": "Microsoft Corporation\n", "sys/class/dmi/id/product_name": "Virtual Machine\n"}, "microsoft"},
		{"xen guest", map[string]string{"sys/hypervisor/type": "xen\n"}, "xen"},
		{"xen dom0", map[string]string{"proc/xen/capabilities": "control_d\n"}, ""},
		{"unknown hypervisor", map[string]string{"proc/cpuinfo": "processor\t: 0\nflags\t\t: fpu hypervisor sse\n"}, "vm-other"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := detectVirtualization(Env{Root: swWriteTree(t, tc.files)}); got != tc.want {
				t.Errorf("detectVirtualization = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestKernelModulesParse(t *testing.T) {
	in := "b 100 0 - Live 0x0\na 200 2 c,b, Live 0x0 (OE)\nc 300 1 a Unloading 0x0\n"
	got, err := parseProcModules(strings.NewReader(in), "modules")
	if err != nil {
		t.Fatal(err)
	}
	want := []*inventoryv1.KernelModule{
		{Key: "a", Name: "a", Size: 200, State: "Live", UsedBy: []string{"b", "c"}},
		{Key: "b", Name: "b", Size: 100, State: "Live"},
		{Key: "c", Name: "c", Size: 300, State: "Unloading", UsedBy: []string{"a"}},
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := parseProcModules(strings.NewReader("a 1 0\n"), "modules"); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("short line: err = %v, want one naming line 1", err)
	}
}

func TestVolatileMissingFiles(t *testing.T) {
	root := swWriteTree(t, map[string]string{"proc/uptime": "12.5 3.0\n", "proc/loadavg": "bad\n"})
	out, warns, err := swRun(t.Context(), Volatile{}, Env{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&inventoryv1.Volatile{UptimeSeconds: 12.5}, out.GetVolatile(), protocmp.Transform()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if len(warns) != 3 { // loadavg, meminfo, stat
		t.Errorf("warnings %q, want 3", warns)
	}
}

func TestKernelModulesWithoutModuleSupport(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		wantErr bool
	}{
		{"kernel without modules", map[string]string{"proc/sys/kernel/osrelease": "6.1.0\n"}, false},
		{"no /proc at all", map[string]string{"etc/hostname": "x\n"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := swRun(t.Context(), KernelModules{}, Env{Root: swWriteTree(t, tc.files)})
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if !tc.wantErr {
				if diff := cmp.Diff(&inventoryv1.KernelModules{}, out.GetKernelModules(), protocmp.Transform()); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			}
		})
	}
}
