package collector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/cairn-ops/cairn/internal/readlimit"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// OS reports the operating system under the root: hostname, os-release,
// kernel, architecture, virtualization, container and boot ID.
//
// Architecture is the kernel's machine name as uname(2) reports it
// ("x86_64", "aarch64"). For the running host it is uname's. For another
// root it is <root>/proc/sys/kernel/arch when the root carries one (a
// captured /proc), else the Architecture of the root's installed "dpkg"
// package mapped to the kernel's name (amd64 → x86_64, arm64 → aarch64,
// ...), else <root>/etc/apk/arch; when none is there it stays empty and
// the collector warns.
//
// Collect fails with ErrNoSource when the root has neither an os-release
// file (/etc/os-release, /usr/lib/os-release) nor /proc/sys/kernel: then
// nothing identifies an operating system. Anything else missing is a
// warning.
//
// Virtualization and container detection read files under the root only,
// in the spirit of systemd-detect-virt: DMI vendor strings, Xen's
// hypervisor files and the cpuinfo "hypervisor" flag ("vm-other" when the
// hypervisor is not identified); systemd's /run/systemd/container, PID 1's
// container= environment variable, /run/host/container-manager,
// /run/.containerenv (podman), /.dockerenv (docker), PID 1's cgroup,
// OpenVZ and WSL markers. gopsutil's host.VirtualizationWithContext is not
// used: v4.26.10 honours the EnvMap in the context but caches its first
// answer process-wide, so a second root would get the first root's answer,
// and it reports container runtimes and hypervisor hosts ("kvm" when the
// kvm module is loaded) as virtualization.
type OS struct{}

var _ Collector = OS{}

// Section implements Collector.
func (OS) Section() string { return "os" }

// Collect implements Collector.
func (OS) Collect(ctx context.Context, env Env, out *inventoryv1.Audit) error {
	if err := swCheckRoot(env); err != nil {
		return err
	}
	if !swExists(env.Path("/etc/os-release")) && !swExists(env.Path("/usr/lib/os-release")) && !swExists(env.Path("/proc/sys/kernel")) {
		return noSource("identify os: no %s, %s or %s", env.Path("/etc/os-release"), env.Path("/usr/lib/os-release"), env.Path("/proc/sys/kernel"))
	}
	sec := &inventoryv1.OS{}

	sec.Hostname = swFirstLine(env, "/proc/sys/kernel/hostname", "/etc/hostname")
	if sec.Hostname == "" {
		env.warnf("no hostname in %s or %s", env.Path("/proc/sys/kernel/hostname"), env.Path("/etc/hostname"))
	}

	osRelease, err := readOSRelease(env)
	if err != nil {
		env.warn(err.Error())
	}
	sec.Id, sec.VersionId, sec.PrettyName = osRelease["ID"], osRelease["VERSION_ID"], osRelease["PRETTY_NAME"]

	sec.KernelRelease = swReadOptional(env, "/proc/sys/kernel/osrelease")
	sec.KernelVersion = swReadOptional(env, "/proc/sys/kernel/version")

	sec.Architecture = swArchitecture(env)
	if sec.Architecture == "" {
		env.warnf("architecture unknown: no %s, dpkg package in %s or %s",
			env.Path("/proc/sys/kernel/arch"), env.Path(dpkgAdminDir+"/status"), env.Path("/etc/apk/arch"))
	}

	sec.Virtualization = detectVirtualization(env)
	sec.Container = detectContainer(env, sec.KernelRelease)

	out.Os = sec
	return nil
}

// checkRoot returns an error when the root cannot be read at all, so the
// collector fails instead of reporting an empty section.
func swCheckRoot(env Env) error {
	root := env.Path("/")
	fi, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("root %s: %w", root, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("root %s: not a directory", root)
	}
	return nil
}

// readOptional returns the trimmed content of the host file p under the
// root, or "" when it is missing or cannot be read: every caller has a
// fallback or reports the empty field.
func swReadOptional(env Env, p string) string {
	b, err := readHostFile(env, p, maxConfigBytes)
	if err != nil {
		if unreadable(err) {
			env.warn(err.Error())
		}
		return ""
	}
	return trimNul(string(b))
}

// firstReadable returns the first line of the first of paths that has a
// non-empty, non-comment line.
func swFirstLine(env Env, paths ...string) string {
	for _, p := range paths {
		b, err := readHostFile(env, p, maxConfigBytes)
		if err != nil {
			if unreadable(err) {
				env.warn(err.Error())
			}
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			line = trimNul(line)
			if line != "" && !strings.HasPrefix(line, "#") {
				return line
			}
		}
	}
	return ""
}

// readOSRelease reads /etc/os-release, else /usr/lib/os-release, under the
// root.
func readOSRelease(env Env) (map[string]string, error) {
	var errs []string
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		b, err := readHostFile(env, p, maxConfigBytes)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		return parseOSRelease(b), nil
	}
	return map[string]string{}, fmt.Errorf("os-release: %s", strings.Join(errs, "; "))
}

// parseOSRelease parses os-release(5): KEY=VALUE lines, '#' comments and
// blank lines ignored, values unquoted the way a shell would for the
// subset the format allows — single quotes literal, double quotes with
// backslash escapes for $ " \ ` and newline, unquoted backslash escapes,
// adjacent quoted and unquoted parts concatenated. Lines without "=" or
// with an invalid key are skipped.
func parseOSRelease(b []byte) map[string]string {
	vars := make(map[string]string)
	sc := readlimit.NewLines(bytes.NewReader(b), "os-release", maxLineBytes)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || !validShellName(key) {
			continue
		}
		vars[key] = unquoteShell(value)
	}
	return vars
}

func validShellName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// unquoteShell undoes shell quoting of one os-release value. An unmatched
// quote runs to the end of the value.
func unquoteShell(v string) string {
	var sb strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch c {
		case '\'':
			end := strings.IndexByte(v[i+1:], '\'')
			if end < 0 {
				sb.WriteString(v[i+1:])
				return sb.String()
			}
			sb.WriteString(v[i+1 : i+1+end])
			i += end + 1
		case '"':
			i++
			for ; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' && i+1 < len(v) && strings.IndexByte("$\"\\`\n", v[i+1]) >= 0 {
					i++
				}
				sb.WriteByte(v[i])
			}
		case '\\':
			if i+1 < len(v) {
				i++
				sb.WriteByte(v[i])
			}
		default:
			if c == ' ' || c == '\t' {
				// Unquoted whitespace ends the word; a trailing comment
				// or garbage after it is not part of the value.
				return sb.String()
			}
			sb.WriteByte(c)
		}
	}
	return sb.String()
}

// architecture returns the kernel machine name for the root; see OS.
func swArchitecture(env Env) string {
	if env.IsHost() {
		if m := swHostMachine(); m != "" {
			return m
		}
	}
	if a := swReadOptional(env, "/proc/sys/kernel/arch"); a != "" {
		return a
	}
	if a := dpkgNativeArch(env); a != "" {
		return dpkgToMachine(a)
	}
	return swFirstLine(env, "/etc/apk/arch")
}

// dpkgNativeArch returns the Architecture of the installed "dpkg" package
// under the root, which is the root's native dpkg architecture.
func dpkgNativeArch(env Env) string {
	if !swExists(env.Path(dpkgAdminDir + "/status")) {
		return ""
	}
	var arch string
	errFound := errors.New("found")
	err := parseDpkgFile(env.Path(dpkgAdminDir+"/status"), func(p dpkgPackage) error {
		if p.Name == "dpkg" && p.Installed() {
			arch = p.Arch
			return errFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFound) {
		env.warnf("architecture from dpkg: %v", err)
	}
	return arch
}

// dpkgToMachine maps a Debian architecture name to the kernel's machine
// name. Unknown names are returned unchanged.
func dpkgToMachine(a string) string {
	switch a {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "i386":
		return "i686"
	case "armhf":
		return "armv7l"
	case "armel":
		return "armv5tel"
	case "ppc64el":
		return "ppc64le"
	case "powerpc":
		return "ppc"
	case "mips64el":
		return "mips64"
	case "mipsel":
		return "mips"
	case "loong64":
		return "loongarch64"
	}
	return a
}

// dmiVirtVendors maps the prefix of a DMI vendor or product string to the
// hypervisor, as systemd-detect-virt names them.
var dmiVirtVendors = []struct{ prefix, virt string }{
	{"KVM", "kvm"},
	{"OpenStack", "kvm"},
	{"KubeVirt", "kvm"},
	{"Amazon EC2", "amazon"},
	{"QEMU", "qemu"},
	{"VMware", "vmware"},
	{"VMW", "vmware"},
	{"innotek GmbH", "oracle"},
	{"VirtualBox", "oracle"},
	{"Xen", "xen"},
	{"Bochs", "bochs"},
	{"Parallels", "parallels"},
	{"BHYVE", "bhyve"},
	{"Hyper-V", "microsoft"},
	{"Apple Virtualization", "apple"},
	{"Google Compute Engine", "google"},
}

// detectVirtualization returns the hypervisor the root's host runs under,
// or "" on bare metal or when nothing says otherwise.
func detectVirtualization(env Env) string {
	for _, f := range []string{"product_name", "sys_vendor", "board_vendor", "bios_vendor", "product_version"} {
		v := swReadOptional(env, "/sys/class/dmi/id/"+f)
		if v == "" {
			continue
		}
		for _, d := range dmiVirtVendors {
			if strings.HasPrefix(v, d.prefix) {
				return d.virt
			}
		}
	}
	if swReadOptional(env, "/sys/class/dmi/id/sys_vendor") == "Microsoft Corporation" &&
		swReadOptional(env, "/sys/class/dmi/id/product_name") == "Virtual Machine" {
		return "microsoft"
	}
	if swReadOptional(env, "/sys/hypervisor/type") == "xen" || swExists(env.Path("/proc/xen")) {
		if !strings.Contains(swReadOptional(env, "/proc/xen/capabilities"), "control_d") {
			return "xen"
		}
	}
	if cpuinfoHasHypervisorFlag(env) {
		return "vm-other"
	}
	return ""
}

func cpuinfoHasHypervisorFlag(env Env) bool {
	sc, f, err := hostFileLines(env, "/proc/cpuinfo", maxProcBytes)
	if err != nil {
		return false
	}
	defer f.Close()
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(key) != "flags" {
			continue
		}
		for _, flag := range strings.Fields(value) {
			if flag == "hypervisor" {
				return true
			}
		}
		return false // the first CPU's flags are enough
	}
	return false
}

// detectContainer returns the container runtime the root runs in, or "".
func detectContainer(env Env, kernelRelease string) string {
	if c := swReadOptional(env, "/run/systemd/container"); c != "" {
		return c
	}
	if b, err := readHostFile(env, "/proc/1/environ", maxProcBytes); err == nil {
		for _, kv := range bytes.Split(b, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, []byte("container=")); ok && len(v) > 0 {
				return string(v)
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrPermission) {
		env.warnf("container detection: %v", err)
	}
	if c := swReadOptional(env, "/run/host/container-manager"); c != "" {
		return c
	}
	if swExists(env.Path("/run/.containerenv")) {
		return "podman"
	}
	if swExists(env.Path("/.dockerenv")) {
		return "docker"
	}
	if cg := swReadOptional(env, "/proc/1/cgroup"); cg != "" {
		switch {
		case strings.Contains(cg, "/docker/") || strings.Contains(cg, "/docker-"):
			return "docker"
		case strings.Contains(cg, "/libpod-"):
			return "podman"
		case strings.Contains(cg, "/lxc/") || strings.Contains(cg, "/lxc.payload"):
			return "lxc"
		case strings.Contains(cg, "/kubepods"):
			return "container-other"
		}
	}
	if swExists(env.Path("/proc/vz")) && !swExists(env.Path("/proc/bc")) {
		return "openvz"
	}
	if strings.Contains(kernelRelease, "Microsoft") || strings.Contains(kernelRelease, "WSL") {
		return "wsl"
	}
	return ""
}
