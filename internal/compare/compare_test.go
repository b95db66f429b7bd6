package compare

import (
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-ops/cairn/internal/audit"
	"github.com/cairn-ops/cairn/internal/manifest"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

const (
	confSHA  = "1111111111111111111111111111111111111111111111111111111111111111"
	confSHA2 = "2222222222222222222222222222222222222222222222222222222222222222"
	siteSHA  = "3333333333333333333333333333333333333333333333333333333333333333"
)

// okCollectors returns a successful collector status for every section.
func okCollectors() []*inventoryv1.CollectorStatus {
	var out []*inventoryv1.CollectorStatus
	for _, s := range audit.Sections {
		out = append(out, &inventoryv1.CollectorStatus{Name: s.Name, Section: s.Name, State: inventoryv1.CollectorStatus_STATE_OK})
	}
	return out
}

func pkg(name, version string) *inventoryv1.Package {
	return &inventoryv1.Package{Key: "dpkg/" + name + "/amd64", Manager: "dpkg", Name: name, Version: version, Architecture: "amd64"}
}

func file(path, sha string) *inventoryv1.File {
	return &inventoryv1.File{Key: path, Path: path, Type: "file", Size: 42, Mode: "0644", Owner: "root", Group: "root", Sha256: sha}
}

func unit(name, fileState, activeState string) *inventoryv1.Service {
	return &inventoryv1.Service{Key: name, Name: name, Type: "service", UnitFileState: fileState, ActiveState: activeState, Path: "/lib/systemd/system/" + name}
}

// baseAudit is a web server before the release: webshop 2.3.1 installed,
// its config tracked, its unit disabled.
func baseAudit() *inventoryv1.Audit {
	return &inventoryv1.Audit{
		SchemaVersion: 1,
		Header:        &inventoryv1.Header{AgentVersion: "0.1.0", Root: "/", CollectedAt: "2026-01-01T10:00:00Z"},
		Hardware: &inventoryv1.Hardware{
			Cpu: &inventoryv1.CPU{Sockets: 1, Cores: 4, Threads: 8, Processors: []*inventoryv1.Processor{{Key: "socket0", Model: "Xeon E-2288G", Cores: 4, Threads: 8}}},
			Memory: &inventoryv1.Memory{
				TotalBytes: 16 << 30, UsableBytes: 16<<30 - 200<<20,
				Modules: []*inventoryv1.MemoryModule{
					{Key: "M-0001", Slot: "DIMM_A1", SizeBytes: 8 << 30, Serial: "M-0001", PartNumber: "M393A1K43DB2"},
					{Key: "M-0002", Slot: "DIMM_A2", SizeBytes: 8 << 30, Serial: "M-0002", PartNumber: "M393A1K43DB2"},
				},
			},
			Block: &inventoryv1.Block{Disks: []*inventoryv1.Disk{
				{Key: "S1", Name: "sda", Path: "/dev/sda", Vendor: "Samsung", Model: "SSD 980", Serial: "S1", SizeBytes: 500_107_862_016, Type: "ssd"},
				{Key: "S2", Name: "sdb", Path: "/dev/sdb", Model: "ModelA", Serial: "S2", SizeBytes: 1_000_204_886_016, Type: "hdd"},
			}},
			Network: &inventoryv1.Network{Nics: []*inventoryv1.NIC{
				{Key: "52:54:00:12:34:56", Name: "eth0", Mac: "52:54:00:12:34:56", Driver: "r8169", PciAddress: "0000:03:00.0"},
			}},
			Pci: &inventoryv1.PCI{Devices: []*inventoryv1.PCIDevice{
				{Key: "0000:03:00.0", Address: "0000:03:00.0", VendorName: "Realtek Semiconductor Co., Ltd.", ProductName: "RTL8111/8168/8411 PCI Express Gigabit Ethernet Controller", Driver: "r8169"},
			}, NamesResolved: true},
		},
		Os: &inventoryv1.OS{Hostname: "web1", Id: "debian", VersionId: "12", KernelRelease: "6.1.0-18-amd64", Architecture: "amd64"},
		Packages: &inventoryv1.Packages{
			Packages: []*inventoryv1.Package{
				pkg("bash", "5.2.15-2+b2"),
				pkg("legacy-shop", "1.0-1"),
				pkg("openssl", "3.0.11-1~deb12u2"),
				pkg("webshop", "2.3.1"),
			},
			Managers: []string{"dpkg"},
		},
		Services: &inventoryv1.Services{
			Units:            []*inventoryv1.Service{unit("cron.service", "enabled", "active"), unit("webshop.service", "disabled", "inactive")},
			ActiveStateKnown: true,
		},
		Files: &inventoryv1.Files{
			Files:    []*inventoryv1.File{file("/etc/webshop/shop.conf", confSHA)},
			Patterns: []string{"/etc/webshop", "/srv/webshop/*", "/var/cache/webshop"},
		},
		Volatile:   &inventoryv1.Volatile{UptimeSeconds: 1000},
		Collectors: okCollectors(),
	}
}

// pair returns the base audit and a copy changed by edit.
func pair(edit func(after *inventoryv1.Audit)) (before, after *inventoryv1.Audit) {
	before = baseAudit()
	after = proto.Clone(before).(*inventoryv1.Audit)
	after.Header.CollectedAt = "2026-01-01T10:05:00Z"
	after.Volatile.UptimeSeconds = 1300
	if edit != nil {
		edit(after)
	}
	return before, after
}

func findPkg(a *inventoryv1.Audit, name string) *inventoryv1.Package {
	for _, p := range a.Packages.Packages {
		if p.Name == name {
			return p
		}
	}
	panic("no package " + name)
}

func insertPkg(a *inventoryv1.Audit, p *inventoryv1.Package) {
	a.Packages.Packages = append(a.Packages.Packages, p)
	slices.SortFunc(a.Packages.Packages, func(x, y *inventoryv1.Package) int { return cmp.Compare(x.Key, y.Key) })
}

func removePkg(a *inventoryv1.Audit, name string) {
	a.Packages.Packages = slices.DeleteFunc(a.Packages.Packages, func(p *inventoryv1.Package) bool { return p.Name == name })
}

func insertFile(a *inventoryv1.Audit, f *inventoryv1.File) {
	a.Files.Files = append(a.Files.Files, f)
	slices.SortFunc(a.Files.Files, func(x, y *inventoryv1.File) int { return cmp.Compare(x.Key, y.Key) })
}

func findUnit(a *inventoryv1.Audit, name string) *inventoryv1.Service {
	for _, u := range a.Services.Units {
		if u.Name == name {
			return u
		}
	}
	panic("no unit " + name)
}

func setStatus(a *inventoryv1.Audit, section string, state inventoryv1.CollectorStatus_State, msg string) {
	for _, st := range a.Collectors {
		if st.Section == section {
			st.State, st.Message = state, msg
		}
	}
}

// upgraded is the common deployment: webshop upgraded to 2.4.0 and its
// config replaced.
func upgraded(a *inventoryv1.Audit) {
	findPkg(a, "webshop").Version = "2.4.0"
	a.Files.Files[0].Sha256 = confSHA2
}

// view is what the table tests look at: each item as "section key: what"
// followed by the keys of the changes attached to it.
type view struct {
	Summary       string
	Expected      []string
	Missing       []string
	Unexpected    []string
	Allowed       []string
	NotComparable []string
	OK            bool
}

func itemsView(items []Item, class string) []string {
	var out []string
	for _, it := range items {
		if it.Class != class {
			out = append(out, "WRONG CLASS "+it.Class)
		}
		s := fmt.Sprintf("%s %s: %s", it.Section, it.Key, it.What)
		if it.Change != nil {
			s += " [" + it.Change.Verb + " " + it.Change.Key
			for _, ch := range it.MoreChanges {
				s += ", " + ch.Verb + " " + ch.Key
			}
			s += "]"
		}
		out = append(out, s)
	}
	return out
}

func viewOf(r *Result) view {
	return view{
		Summary:       r.Summary,
		Expected:      itemsView(r.Expected, Expected),
		Missing:       itemsView(r.Missing, Missing),
		Unexpected:    itemsView(r.Unexpected, Unexpected),
		Allowed:       itemsView(r.Allowed, Allowed),
		NotComparable: r.NotComparable,
		OK:            r.OK(),
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name       string
		before     func(*inventoryv1.Audit) // optional edit of the before audit
		after      func(*inventoryv1.Audit)
		expect     manifest.Expect
		components map[string]string
		want       view
	}{
		{
			name: "nothing declared, nothing changed",
			want: view{Summary: "0 expected, 0 missing, 0 unexpected", OK: true},
		},
		{
			name:  "package upgrade and config as declared",
			after: upgraded,
			expect: manifest.Expect{
				Packages: []manifest.PackageExpectation{{Name: "webshop", State: "present", Version: ">= 2.4.0", DeclaredBy: "steps[0] (install)"}},
				Files:    []manifest.FileExpectation{{Path: "/etc/webshop/shop.conf", SHA256: confSHA2}},
			},
			want: view{
				Summary: "2 expected, 0 missing, 0 unexpected",
				Expected: []string{
					"packages webshop: package webshop upgraded 2.3.1 → 2.4.0 [upgraded dpkg/webshop/amd64]",
					"files /etc/webshop/shop.conf: file /etc/webshop/shop.conf changed: sha256 111111111111 → 222222222222 [changed /etc/webshop/shop.conf]",
				},
				OK: true,
			},
		},
		{
			name: "expectations that already held",
			expect: manifest.Expect{
				Packages: []manifest.PackageExpectation{{Name: "webshop", State: "present", Version: "2.3.1"}, {Name: "old-shop", State: "absent"}},
				Files:    []manifest.FileExpectation{{Path: "/etc/webshop/shop.conf", SHA256: confSHA}},
				Services: []manifest.ServiceExpectation{{Name: "cron.service", State: "enabled"}, {Name: "cron.service", State: "active"}},
			},
			want: view{
				Summary: "5 expected, 0 missing, 0 unexpected",
				Expected: []string{
					"packages old-shop: package old-shop already absent",
					"packages webshop: package webshop 2.3.1 already present",
					"services cron.service: service cron.service already enabled",
					"services cron.service: service cron.service already active",
					"files /etc/webshop/shop.conf: file /etc/webshop/shop.conf already present with sha256 111111111111",
				},
				OK: true,
			},
		},
		{
			name:   "version constraint not met",
			after:  func(a *inventoryv1.Audit) { findPkg(a, "webshop").Version = "2.3.5" },
			expect: manifest.Expect{Packages: []manifest.PackageExpectation{{Name: "webshop", State: "present", Version: ">= 2.4.0"}}},
			want: view{
				Summary: "0 expected, 1 missing, 0 unexpected",
				Missing: []string{"packages webshop: package webshop 2.3.5 installed, expected >= 2.4.0 [upgraded dpkg/webshop/amd64]"},
			},
		},
		{
			name:  "version constraints by dpkg ordering",
			after: func(a *inventoryv1.Audit) { findPkg(a, "webshop").Version = "2.4.0~rc1" },
			expect: manifest.Expect{Packages: []manifest.PackageExpectation{
				{Name: "webshop", State: "present", Version: "< 2.4.0"},
				{Name: "openssl", State: "present", Version: "!= 3.0.11-1~deb12u2"},
				{Name: "bash", State: "present", Version: "= 5.2.15-2+b2"},
			}},
			want: view{
				Summary: "2 expected, 1 missing, 0 unexpected",
				Expected: []string{
					"packages bash: package bash 5.2.15-2+b2 already present",
					"packages webshop: package webshop upgraded 2.3.1 → 2.4.0~rc1 [upgraded dpkg/webshop/amd64]",
				},
				Missing: []string{"packages openssl: package openssl 3.0.11-1~deb12u2 installed, expected != 3.0.11-1~deb12u2"},
			},
		},
		{
			name:  "package absent: removed as declared, and one still installed",
			after: func(a *inventoryv1.Audit) { removePkg(a, "legacy-shop") },
			expect: manifest.Expect{Packages: []manifest.PackageExpectation{
				{Name: "legacy-shop", State: "absent"},
				{Name: "openssl", State: "absent"},
			}},
			want: view{
				Summary:  "1 expected, 1 missing, 0 unexpected",
				Expected: []string{"packages legacy-shop: package legacy-shop removed (1.0-1) [removed dpkg/legacy-shop/amd64]"},
				Missing:  []string{"packages openssl: package openssl 3.0.11-1~deb12u2 installed, expected absent"},
			},
		},
		{
			name:   "package not installed",
			expect: manifest.Expect{Packages: []manifest.PackageExpectation{{Name: "nginx", State: "present"}, {Name: "php", State: "present", Version: ">= 8.2"}}},
			want: view{
				Summary: "0 expected, 2 missing, 0 unexpected",
				Missing: []string{
					"packages nginx: package nginx not installed, expected present",
					"packages php: package php not installed, expected >= 8.2",
				},
			},
		},
		{
			name: "an undeclared package install is unexpected",
			after: func(a *inventoryv1.Audit) {
				upgraded(a)
				insertPkg(a, pkg("curl", "7.88.1-10"))
			},
			expect: manifest.Expect{
				Packages: []manifest.PackageExpectation{{Name: "webshop", State: "present", Version: "2.4.0"}},
				Files:    []manifest.FileExpectation{{Path: "/etc/webshop/shop.conf", SHA256: confSHA2}},
			},
			want: view{
				Summary: "2 expected, 0 missing, 1 unexpected",
				Expected: []string{
					"packages webshop: package webshop upgraded 2.3.1 → 2.4.0 [upgraded dpkg/webshop/amd64]",
					"files /etc/webshop/shop.conf: file /etc/webshop/shop.conf changed: sha256 111111111111 → 222222222222 [changed /etc/webshop/shop.conf]",
				},
				Unexpected: []string{"packages dpkg/curl/amd64: package curl added (7.88.1-10) [added dpkg/curl/amd64]"},
			},
		},
		{
			name: "allow patterns: manager/name, name, file path, section field",
			after: func(a *inventoryv1.Audit) {
				insertPkg(a, pkg("libwebshop1", "2.4.0"))
				insertPkg(a, pkg("webshop-data", "2.4.0"))
				insertPkg(a, pkg("curl", "7.88.1-10"))
				insertFile(a, file("/var/cache/webshop/index", siteSHA))
				insertFile(a, file("/srv/webshop/index.html", siteSHA))
				a.Os.KernelRelease = "6.1.0-20-amd64"
			},
			expect: manifest.Expect{Allow: []string{"packages/dpkg/libwebshop*", "packages/webshop-*", "files/var/cache/webshop/*", "os/kernel_*"}},
			want: view{
				Summary: "0 expected, 0 missing, 2 unexpected, 4 allowed",
				Unexpected: []string{
					"packages dpkg/curl/amd64: package curl added (7.88.1-10) [added dpkg/curl/amd64]",
					"files /srv/webshop/index.html: file /srv/webshop/index.html added (file 0644 sha256 333333333333) [added /srv/webshop/index.html]",
				},
				Allowed: []string{
					"os : os changed: kernel_release 6.1.0-18-amd64 → 6.1.0-20-amd64 [changed ]",
					"packages dpkg/libwebshop1/amd64: package libwebshop1 added (2.4.0) [added dpkg/libwebshop1/amd64]",
					"packages dpkg/webshop-data/amd64: package webshop-data added (2.4.0) [added dpkg/webshop-data/amd64]",
					"files /var/cache/webshop/index: file /var/cache/webshop/index added (file 0644 sha256 333333333333) [added /var/cache/webshop/index]",
				},
			},
		},
		{
			name: "file expectations: artifact digest, wrong content, absent, untracked, unknown component",
			after: func(a *inventoryv1.Audit) {
				insertFile(a, file("/srv/webshop/index.html", siteSHA))
				insertFile(a, file("/srv/webshop/app.js", confSHA))
			},
			expect: manifest.Expect{Files: []manifest.FileExpectation{
				{Path: "/srv/webshop/index.html", Artifact: "site"},
				{Path: "/srv/webshop/app.js", Artifact: "site"},
				{Path: "/srv/webshop/logo.png"},
				{Path: "/opt/webshop/bin/shop"},
				{Path: "/etc/webshop/shop.conf", Artifact: "config"},
			}},
			components: map[string]string{"site": siteSHA},
			want: view{
				Summary: "1 expected, 4 missing, 0 unexpected",
				Expected: []string{
					"files /srv/webshop/index.html: file /srv/webshop/index.html added (file 0644 sha256 333333333333) [added /srv/webshop/index.html]",
				},
				Missing: []string{
					"files /etc/webshop/shop.conf: cannot check file /etc/webshop/shop.conf: the release has no component config",
					"files /opt/webshop/bin/shop: file /opt/webshop/bin/shop not in the after audit: no tracked path covers it",
					"files /srv/webshop/app.js: file /srv/webshop/app.js has sha256 111111111111, expected 333333333333 [added /srv/webshop/app.js]",
					"files /srv/webshop/logo.png: file /srv/webshop/logo.png absent",
				},
			},
		},
		{
			name: "service states",
			after: func(a *inventoryv1.Audit) {
				findUnit(a, "webshop.service").UnitFileState = "enabled"
			},
			expect: manifest.Expect{Services: []manifest.ServiceExpectation{
				{Name: "webshop.service", State: "enabled", DeclaredBy: "steps[1] (enable)"},
				{Name: "webshop.service", State: "active"},
				{Name: "cron.service", State: "disabled"},
				{Name: "nginx.service", State: "masked"},
			}},
			want: view{
				Summary: "1 expected, 3 missing, 0 unexpected",
				Expected: []string{
					"services webshop.service: service webshop.service enabled: unit_file_state disabled → enabled [enabled webshop.service]",
				},
				Missing: []string{
					"services cron.service: service cron.service enabled, expected disabled",
					"services nginx.service: service nginx.service not installed, expected masked",
					"services webshop.service: service webshop.service inactive, expected active [enabled webshop.service]",
				},
			},
		},
		{
			name: "run state unknown without a running systemd",
			before: func(a *inventoryv1.Audit) {
				a.Services.ActiveStateKnown = false
				for _, u := range a.Services.Units {
					u.ActiveState = ""
				}
			},
			after: func(a *inventoryv1.Audit) {
				a.Services.ActiveStateKnown = false
				for _, u := range a.Services.Units {
					u.ActiveState = ""
				}
			},
			expect: manifest.Expect{Services: []manifest.ServiceExpectation{{Name: "cron.service", State: "active"}}},
			want: view{
				Summary: "0 expected, 1 missing, 0 unexpected",
				Missing: []string{"services cron.service: service cron.service run state unknown (no running systemd was asked), expected active"},
			},
		},
		{
			name: "hardware changes nothing declares are unexpected",
			after: func(a *inventoryv1.Audit) {
				m := a.Hardware.Memory
				m.TotalBytes, m.UsableBytes = 24<<30, 24<<30-200<<20
				m.Modules = append(m.Modules, &inventoryv1.MemoryModule{Key: "M-0003", Slot: "DIMM_B1", SizeBytes: 8 << 30, Serial: "M-0003", PartNumber: "M393A1K43DB2"})
				d := a.Hardware.Block.Disks[1]
				d.Key, d.Serial, d.Model = "S3", "S3", "ModelB"
			},
			want: view{
				Summary: "0 expected, 0 missing, 3 unexpected",
				Unexpected: []string{
					"hardware.memory : hardware.memory changed: total_bytes 16 GiB → 24 GiB, usable_bytes 15.8 GiB → 23.8 GiB [changed ]",
					"hardware.memory M-0003: memory module DIMM_B1 added (8 GiB M393A1K43DB2 M-0003) [added M-0003]",
					"hardware.block S3: disk sdb replaced: model ModelA → ModelB, serial S2 → S3 [replaced S3]",
				},
			},
		},
		{
			name: "hardware changes covered by facts of their kind",
			after: func(a *inventoryv1.Audit) {
				m := a.Hardware.Memory
				m.TotalBytes, m.UsableBytes = 24<<30, 24<<30-200<<20
				m.Modules = append(m.Modules, &inventoryv1.MemoryModule{Key: "M-0003", Slot: "DIMM_B1", SizeBytes: 8 << 30, Serial: "M-0003", PartNumber: "M393A1K43DB2"})
				d := a.Hardware.Block.Disks[1]
				d.Key, d.Serial, d.Model = "S3", "S3", "ModelB"
				setStatus(a, "hardware.pci", inventoryv1.CollectorStatus_STATE_TIMEOUT, "")
			},
			expect: manifest.Expect{Hardware: []manifest.HardwareFact{
				{Fact: "memory.total_bytes", Op: ">=", Value: "24GiB"},
				{Fact: "disk.model", Op: "present", Value: "modelb"},
				{Fact: "disk.count", Op: "==", Value: "3"},
				{Fact: "cpu.count", Op: ">=", Value: "8"},
				{Fact: "nic.model", Op: "present", Value: "RTL8111"},
				{Fact: "gpu.model", Op: "absent", Value: "NVIDIA"},
				{Fact: "nic.model", Op: "present", Value: "Intel"},
			}},
			want: view{
				Summary: "5 expected, 2 missing, 0 unexpected, 1 not comparable",
				Expected: []string{
					"hardware.cpu cpu.count: cpu.count is 8 (>= 8)",
					"hardware.memory memory.total_bytes: memory.total_bytes is 24 GiB (>= 24GiB) [changed , added M-0003]",
					"hardware.block disk.model: disk.model is Samsung SSD 980, ModelB (present modelb) [replaced S3]",
					"hardware.network nic.model: nic.model is Realtek Semiconductor Co., Ltd. RTL8111/8168/8411 PCI Express Gigabit Ethernet Controller (r8169) (present RTL8111)",
					"hardware.gpu gpu.model: gpu.model is none (absent NVIDIA)",
				},
				Missing: []string{
					"hardware.block disk.count: disk.count is 2, expected == 3 [replaced S3]",
					"hardware.network nic.model: nic.model is Realtek Semiconductor Co., Ltd. RTL8111/8168/8411 PCI Express Gigabit Ethernet Controller (r8169), expected present Intel",
				},
				NotComparable: []string{"hardware.pci: after: collector timed out"},
			},
		},
		{
			name: "a section whose collector failed is not comparable",
			after: func(a *inventoryv1.Audit) {
				upgraded(a)
				findUnit(a, "webshop.service").UnitFileState = "enabled"
				setStatus(a, "services", inventoryv1.CollectorStatus_STATE_ERROR, "dbus: connection refused")
			},
			expect: manifest.Expect{
				Packages: []manifest.PackageExpectation{{Name: "webshop", State: "present", Version: ">= 2.4.0"}},
				Files:    []manifest.FileExpectation{{Path: "/etc/webshop/shop.conf", SHA256: confSHA2}},
				Services: []manifest.ServiceExpectation{{Name: "webshop.service", State: "enabled"}},
			},
			want: view{
				Summary: "2 expected, 1 missing, 0 unexpected, 1 not comparable",
				Expected: []string{
					"packages webshop: package webshop upgraded 2.3.1 → 2.4.0 [upgraded dpkg/webshop/amd64]",
					"files /etc/webshop/shop.conf: file /etc/webshop/shop.conf changed: sha256 111111111111 → 222222222222 [changed /etc/webshop/shop.conf]",
				},
				Missing: []string{
					"services webshop.service: cannot check service webshop.service: services collector error in the after audit: dbus: connection refused",
				},
				NotComparable: []string{"services: after: collector error: dbus: connection refused"},
			},
		},
		{
			name: "a package in two architectures: every one must meet the constraint",
			after: func(a *inventoryv1.Audit) {
				findPkg(a, "webshop").Version = "2.4.0"
				i386 := pkg("webshop", "2.3.1")
				i386.Key, i386.Architecture = "dpkg/webshop/i386", "i386"
				insertPkg(a, i386)
				insertPkg(a, pkg("webshop-doc", "2.4.0"))
			},
			expect: manifest.Expect{
				Packages: []manifest.PackageExpectation{{Name: "webshop", State: "present", Version: ">= 2.4.0"}, {Name: "webshop-doc", State: "present"}},
			},
			want: view{
				Summary:  "1 expected, 1 missing, 0 unexpected",
				Expected: []string{"packages webshop-doc: package webshop-doc added (2.4.0) [added dpkg/webshop-doc/amd64]"},
				Missing:  []string{"packages webshop: package webshop 2.4.0, 2.3.1 installed, expected >= 2.4.0 [upgraded dpkg/webshop/amd64, added dpkg/webshop/i386]"},
			},
		},
		{
			name: "a NIC fact covers the NIC's PCI device; an unavailable section cannot be checked",
			after: func(a *inventoryv1.Audit) {
				a.Hardware.Pci.Devices[0].Driver = "r8168"
				a.Hardware.Network.Nics[0].Driver = "r8168"
				setStatus(a, "hardware.gpu", inventoryv1.CollectorStatus_STATE_ERROR, "no DRM")
			},
			expect: manifest.Expect{Hardware: []manifest.HardwareFact{
				{Fact: "nic.model", Op: "present", Value: "rtl8111"},
				{Fact: "gpu.model", Op: "present", Value: "NVIDIA"},
			}},
			want: view{
				Summary: "1 expected, 1 missing, 0 unexpected, 1 not comparable",
				Expected: []string{
					"hardware.network nic.model: nic.model is Realtek Semiconductor Co., Ltd. RTL8111/8168/8411 PCI Express Gigabit Ethernet Controller (r8168) (present rtl8111) [changed 52:54:00:12:34:56, changed 0000:03:00.0]",
				},
				Missing:       []string{"hardware.gpu gpu.model: cannot check gpu.model: hardware.gpu collector error in the after audit: no DRM"},
				NotComparable: []string{"hardware.gpu: after: collector error: no DRM"},
			},
		},
		{
			name: "directories created for an expected file, or that only grew, are covered by it",
			after: func(a *inventoryv1.Audit) {
				insertFile(a, &inventoryv1.File{Key: "/srv/webshop", Path: "/srv/webshop", Type: "dir", Size: 4096, Mode: "0755"})
				insertFile(a, file("/srv/webshop/index.html", siteSHA))
				insertFile(a, &inventoryv1.File{Key: "/var/cache/webshop", Path: "/var/cache/webshop", Type: "dir", Size: 4096, Mode: "0777"})
				insertFile(a, file("/var/cache/webshop/index", siteSHA))
			},
			before: func(a *inventoryv1.Audit) {
				insertFile(a, &inventoryv1.File{Key: "/var/cache/webshop", Path: "/var/cache/webshop", Type: "dir", Size: 0, Mode: "0755"})
			},
			expect: manifest.Expect{Files: []manifest.FileExpectation{
				{Path: "/srv/webshop/index.html", SHA256: siteSHA},
				{Path: "/var/cache/webshop/index", SHA256: siteSHA},
			}},
			want: view{
				Summary: "2 expected, 0 missing, 1 unexpected",
				Expected: []string{
					"files /srv/webshop/index.html: file /srv/webshop/index.html present with sha256 333333333333 [added /srv/webshop, added /srv/webshop/index.html]",
					"files /var/cache/webshop/index: file /var/cache/webshop/index added (file 0644 sha256 333333333333) [added /var/cache/webshop/index]",
				},
				Unexpected: []string{
					"files /var/cache/webshop: file /var/cache/webshop changed: size 0 → 4096, mode 0755 → 0777 [changed /var/cache/webshop]",
				},
			},
		},
		{
			name: "a file under a tracked directory is absent, not untracked",
			expect: manifest.Expect{Files: []manifest.FileExpectation{
				{Path: "/etc/webshop/conf.d/tls.conf"},
				{Path: "/var/cache/webshop"},
			}},
			want: view{
				Summary: "0 expected, 2 missing, 0 unexpected",
				Missing: []string{
					"files /etc/webshop/conf.d/tls.conf: file /etc/webshop/conf.d/tls.conf absent",
					"files /var/cache/webshop: file /var/cache/webshop absent",
				},
			},
		},
		{
			name:   "before not comparable: the expectation holds, not already",
			before: func(a *inventoryv1.Audit) { setStatus(a, "packages", inventoryv1.CollectorStatus_STATE_TIMEOUT, "") },
			after:  upgraded,
			expect: manifest.Expect{Packages: []manifest.PackageExpectation{{Name: "webshop", State: "present", Version: ">= 2.4.0"}}},
			want: view{
				Summary:       "1 expected, 0 missing, 1 unexpected, 1 not comparable",
				Expected:      []string{"packages webshop: package webshop 2.4.0 present"},
				Unexpected:    []string{"files /etc/webshop/shop.conf: file /etc/webshop/shop.conf changed: sha256 111111111111 → 222222222222 [changed /etc/webshop/shop.conf]"},
				NotComparable: []string{"packages: before: collector timed out"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, after := pair(tt.after)
			if tt.before != nil {
				tt.before(before)
			}
			got := viewOf(Classify(before, after, tt.expect, tt.components))
			if diff := gocmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Classify (-want +got):\n%s", diff)
			}
		})
	}
}

func TestClassifyWithoutAfterAudit(t *testing.T) {
	before := baseAudit()
	res := Classify(before, nil, manifest.Expect{
		Packages: []manifest.PackageExpectation{{Name: "webshop", State: "present"}},
		Hardware: []manifest.HardwareFact{{Fact: "cpu.count", Op: ">=", Value: "2"}},
	}, nil)
	want := view{
		Summary: "0 expected, 2 missing, 0 unexpected, 12 not comparable",
		Missing: []string{
			"hardware.cpu cpu.count: cannot check cpu.count: hardware.cpu not collected in the after audit",
			"packages webshop: cannot check package webshop: packages not collected in the after audit",
		},
		NotComparable: res.NotComparable,
	}
	if diff := gocmp.Diff(want, viewOf(res)); diff != "" {
		t.Errorf("Classify (-want +got):\n%s", diff)
	}
	if got, want := res.NotComparable[0], "hardware.cpu: after: collector did not run"; got != want {
		t.Errorf("NotComparable[0] = %q, want %q", got, want)
	}
	if e, m, u := res.Counts(); e != 0 || m != 2 || u != 0 {
		t.Errorf("Counts() = %d, %d, %d, want 0, 2, 0", e, m, u)
	}
}

func TestCheckFact(t *testing.T) {
	a := baseAudit()
	tests := []struct {
		fact      manifest.HardwareFact
		wantHolds bool
		wantFound string
	}{
		{manifest.HardwareFact{Fact: "memory.total_bytes", Op: ">=", Value: "16GiB"}, true, "16 GiB"},
		{manifest.HardwareFact{Fact: "memory.total_bytes", Op: ">=", Value: "17179869185"}, false, "16 GiB"},
		{manifest.HardwareFact{Fact: "memory.total_bytes", Op: "<=", Value: "32G"}, true, "16 GiB"},
		{manifest.HardwareFact{Fact: "memory.total_bytes", Op: "==", Value: "16 GiB"}, true, "16 GiB"},
		{manifest.HardwareFact{Fact: "cpu.count", Op: "==", Value: "8"}, true, "8"},
		{manifest.HardwareFact{Fact: "cpu.count", Op: ">=", Value: "many"}, false, `8 (the expected value "many" is not a number)`},
		{manifest.HardwareFact{Fact: "disk.count", Op: "<=", Value: "1"}, false, "2"},
		{manifest.HardwareFact{Fact: "disk.model", Op: "present", Value: "samsung ssd"}, true, "Samsung SSD 980, ModelA"},
		{manifest.HardwareFact{Fact: "disk.model", Op: "absent", Value: "ModelA"}, false, "Samsung SSD 980, ModelA"},
		{manifest.HardwareFact{Fact: "nic.model", Op: "absent", Value: "Intel"}, true, "Realtek Semiconductor Co., Ltd. RTL8111/8168/8411 PCI Express Gigabit Ethernet Controller (r8169)"},
		{manifest.HardwareFact{Fact: "gpu.model", Op: "present", Value: "NVIDIA"}, false, "none"},
		{manifest.HardwareFact{Fact: "tpu.count", Op: ">=", Value: "1"}, false, "unknown hardware fact tpu.count"},
	}
	for _, tt := range tests {
		t.Run(factWords(tt.fact), func(t *testing.T) {
			holds, found := CheckFact(a, tt.fact)
			if holds != tt.wantHolds || found != tt.wantFound {
				t.Errorf("CheckFact = %v, %q, want %v, %q", holds, found, tt.wantHolds, tt.wantFound)
			}
		})
	}
}

func TestMatchSignature(t *testing.T) {
	a := baseAudit()
	tests := []struct {
		name      string
		sig       *manifest.Signature
		wantMatch bool
		wantFound []string
	}{
		{name: "nil", sig: nil},
		{name: "empty", sig: &manifest.Signature{}},
		{
			name:      "package at a version and a NIC",
			sig:       &manifest.Signature{Packages: []manifest.PackageExpectation{{Name: "openssl", Version: "< 3.0.12"}}, Hardware: []manifest.HardwareFact{{Fact: "nic.model", Op: "present", Value: "RTL8111"}}},
			wantMatch: true,
			wantFound: []string{"package openssl 3.0.11-1~deb12u2 installed", "nic.model is Realtek Semiconductor Co., Ltd. RTL8111/8168/8411 PCI Express Gigabit Ethernet Controller (r8169)"},
		},
		{
			name:      "package too new",
			sig:       &manifest.Signature{Packages: []manifest.PackageExpectation{{Name: "openssl", Version: "< 3.0"}}},
			wantFound: []string{"package openssl 3.0.11-1~deb12u2 installed"},
		},
		{
			name:      "package not installed",
			sig:       &manifest.Signature{Packages: []manifest.PackageExpectation{{Name: "nginx"}}, Hardware: []manifest.HardwareFact{{Fact: "cpu.count", Op: ">=", Value: "1"}}},
			wantFound: []string{"package nginx not installed", "cpu.count is 8"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			match, found := MatchSignature(a, tt.sig)
			if match != tt.wantMatch {
				t.Errorf("MatchSignature match = %v, want %v", match, tt.wantMatch)
			}
			if diff := gocmp.Diff(tt.wantFound, found); diff != "" {
				t.Errorf("MatchSignature found (-want +got):\n%s", diff)
			}
		})
	}
}

var update = flag.Bool("update", os.Getenv("UPDATE_GOLDEN") == "1", "rewrite golden files")

// TestClassifyFixtures classifies two audits of web1 as the agent writes
// them against the expect of a parsed release manifest, and compares the
// whole result, diff included, with a golden file.
func TestClassifyFixtures(t *testing.T) {
	before, err := audit.ReadFile(filepath.Join("testdata", "web1-before.json"))
	if err != nil {
		t.Fatal(err)
	}
	after, err := audit.ReadFile(filepath.Join("testdata", "web1-after.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Load(filepath.Join("testdata", "release.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	components := map[string]string{}
	for _, c := range m.Components {
		components[c.Name] = c.Digest
	}
	res := Classify(before, after, m.Expect, components)

	wantView := view{
		Summary: "5 expected, 1 missing, 1 unexpected, 2 allowed",
		Expected: []string{
			"hardware.memory memory.total_bytes: memory.total_bytes is 16 GiB (>= 16GiB)",
			"packages webshop-assets: package webshop-assets added (1.0.0) [added dpkg/webshop-assets/amd64]",
			"services webshop.service: service webshop.service enabled: unit_file_state disabled → enabled [enabled webshop.service]",
			"files /etc/webshop/config.ini: file /etc/webshop/config.ini added (file 0644 sha256 8f1d6f2f6e4b) [added /etc/webshop/config.ini]",
			"files /srv/webshop/index.html: file /srv/webshop/index.html added (file 0644 sha256 6af6b160d0e1) [added /srv/webshop/index.html]",
		},
		Missing: []string{
			"packages legacy-shop: package legacy-shop 1.0-1 installed, expected absent",
		},
		Unexpected: []string{
			"packages dpkg/openssl/amd64: package openssl upgraded 3.0.11-1~deb12u2 → 3.0.13-1~deb12u1 [upgraded dpkg/openssl/amd64]",
		},
		Allowed: []string{
			"packages dpkg/libwebshop1/amd64: package libwebshop1 added (1.0.0-1) [added dpkg/libwebshop1/amd64]",
			"files /srv/webshop/index.html.gz: file /srv/webshop/index.html.gz added (file 0644 sha256 0c4d1b7e2e5f) [added /srv/webshop/index.html.gz]",
		},
	}
	if diff := gocmp.Diff(wantView, viewOf(res)); diff != "" {
		t.Errorf("Classify (-want +got):\n%s", diff)
	}

	got, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden := filepath.Join("testdata", "web1.result.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden file (UPDATE_GOLDEN=1 writes it): %v", err)
	}
	if diff := gocmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got), rerun with UPDATE_GOLDEN=1 if intended:\n%s", golden, diff)
	}

	// The JSON form is what the controller stores: it decodes to the
	// same result.
	var back Result
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff(res, &back); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
}
