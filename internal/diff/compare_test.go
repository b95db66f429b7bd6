package diff

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cairn-ops/cairn/internal/audit"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// okCollectors returns a successful collector status for every section.
func okCollectors() []*inventoryv1.CollectorStatus {
	var out []*inventoryv1.CollectorStatus
	for _, s := range audit.Sections {
		out = append(out, &inventoryv1.CollectorStatus{
			Name:    s.Name,
			Section: s.Name,
			State:   inventoryv1.CollectorStatus_STATE_OK,
		})
	}
	return out
}

func pkg(manager, name, version, arch string) *inventoryv1.Package {
	return &inventoryv1.Package{
		Key:          manager + "/" + name + "/" + arch,
		Manager:      manager,
		Name:         name,
		Version:      version,
		Architecture: arch,
	}
}

// baseAudit is a small host with something in every section the tests
// touch. Lists are sorted by key, as the schema requires.
func baseAudit() *inventoryv1.Audit {
	return &inventoryv1.Audit{
		SchemaVersion: 1,
		Header:        &inventoryv1.Header{AgentVersion: "0.1.0", Root: "/", CollectedAt: "2025-01-01T00:00:00Z"},
		Hardware: &inventoryv1.Hardware{
			Memory: &inventoryv1.Memory{
				TotalBytes:  16 << 30,
				UsableBytes: 16<<30 - 200<<20,
				Modules: []*inventoryv1.MemoryModule{
					{Key: "M-0001", Slot: "DIMM0", SizeBytes: 8 << 30, Vendor: "Samsung", Serial: "M-0001", PartNumber: "M393A1K43DB2", Type: "DDR4", SpeedMts: 3200},
					{Key: "M-0002", Slot: "DIMM1", SizeBytes: 8 << 30, Vendor: "Samsung", Serial: "M-0002", PartNumber: "M393A1K43DB2", Type: "DDR4", SpeedMts: 3200},
				},
			},
			Block: &inventoryv1.Block{Disks: []*inventoryv1.Disk{
				{
					Key: "S1", Name: "sda", Path: "/dev/sda", Model: "ModelA", Serial: "S1", SizeBytes: 500_107_862_016, Type: "ssd",
					Partitions: []*inventoryv1.Partition{
						{Key: "sda1", Name: "sda1", SizeBytes: 1_048_576_000, Filesystem: "vfat", MountPoint: "/boot/efi"},
						{Key: "sda2", Name: "sda2", SizeBytes: 499_000_000_000, Filesystem: "ext4", MountPoint: "/"},
					},
				},
				{Key: "S2", Name: "sdb", Path: "/dev/sdb", Model: "ModelA", Serial: "S2", SizeBytes: 1_000_204_886_016, Rotational: true, Type: "hdd"},
			}},
			Dmi: &inventoryv1.DMI{SystemVendor: "Acme", ProductName: "Box 9000", BiosVendor: "Acme", BiosVersion: "1.0"},
		},
		Os: &inventoryv1.OS{Hostname: "web1", Id: "debian", VersionId: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)", Architecture: "amd64"},
		Packages: &inventoryv1.Packages{
			Packages: []*inventoryv1.Package{
				pkg("dpkg", "bash", "5.2.15-2+b2", "amd64"),
				pkg("dpkg", "curl", "7.88.1-10+deb12u5", "amd64"),
				pkg("dpkg", "libc6", "2.36-9+deb12u4", "amd64"),
				pkg("dpkg", "openssl", "3.0.11-1~deb12u2", "amd64"),
				pkg("dpkg", "tzdata", "2024a-0+deb12u1", "all"),
				pkg("pip", "requests", "2.31.0", "any"),
			},
			Managers: []string{"dpkg", "pip"},
		},
		Services: &inventoryv1.Services{
			Units: []*inventoryv1.Service{
				{Key: "cron.service", Name: "cron.service", Type: "service", UnitFileState: "enabled", ActiveState: "active", Path: "/lib/systemd/system/cron.service"},
				{Key: "ssh.service", Name: "ssh.service", Type: "service", UnitFileState: "enabled", ActiveState: "active", Path: "/lib/systemd/system/ssh.service"},
			},
			ActiveStateKnown: true,
		},
		Volatile:   &inventoryv1.Volatile{UptimeSeconds: 1000, Load1: 0.5, MemoryFreeBytes: 1 << 30},
		Collectors: okCollectors(),
	}
}

// pair returns the base audit and a copy changed by edit.
func pair(edit func(after *inventoryv1.Audit)) (before, after *inventoryv1.Audit) {
	before = baseAudit()
	after = proto.Clone(before).(*inventoryv1.Audit)
	after.Header.CollectedAt = "2025-02-01T00:00:00Z"
	after.Volatile.UptimeSeconds = 99999
	if edit != nil {
		edit(after)
	}
	return before, after
}

// dropCollectors removes the status of sections from a, as if their
// collectors had not run.
func dropCollectors(a *inventoryv1.Audit, sections ...string) {
	a.Collectors = slices.DeleteFunc(a.Collectors, func(s *inventoryv1.CollectorStatus) bool {
		return slices.Contains(sections, s.Section)
	})
}

// only keeps the status of sections in a, as `--collectors` does.
func only(a *inventoryv1.Audit, sections ...string) {
	a.Collectors = slices.DeleteFunc(a.Collectors, func(s *inventoryv1.CollectorStatus) bool {
		return !slices.Contains(sections, s.Section)
	})
}

func setStatus(a *inventoryv1.Audit, section string, state inventoryv1.CollectorStatus_State, msg string) {
	for _, st := range a.Collectors {
		if st.Section == section {
			st.State, st.Message = state, msg
		}
	}
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
	l := append(a.Packages.Packages, p)
	slices.SortFunc(l, func(x, y *inventoryv1.Package) int {
		switch {
		case x.Key < y.Key:
			return -1
		case x.Key > y.Key:
			return 1
		}
		return 0
	})
	a.Packages.Packages = l
}

func removePkg(a *inventoryv1.Audit, name string) {
	a.Packages.Packages = slices.DeleteFunc(a.Packages.Packages, func(p *inventoryv1.Package) bool { return p.Name == name })
}

// result is the part of a report the table tests look at: the summary and
// the sections that changed or could not be compared.
type result struct {
	Summary  string
	Sections []Section
}

func interesting(r *Report) result {
	out := result{Summary: r.Summary}
	for _, s := range r.Sections {
		if !s.Comparable || len(s.Changes) > 0 {
			out.Sections = append(out.Sections, s)
		}
	}
	return out
}

func TestCompare(t *testing.T) {
	tests := []struct {
		name   string
		before func(*inventoryv1.Audit) // optional edit of the before audit
		after  func(*inventoryv1.Audit)
		want   result
	}{
		{
			name: "no change",
			want: result{Summary: "no changes"},
		},
		{
			name:  "package upgraded",
			after: func(a *inventoryv1.Audit) { findPkg(a, "openssl").Version = "3.0.13-1~deb12u1" },
			want: result{Summary: "1 package upgraded", Sections: []Section{{
				Name: "packages", Comparable: true,
				Changes: []Change{{Op: "changed", Verb: "upgraded", Kind: "package", Key: "dpkg/openssl/amd64",
					Fields: []FieldChange{{Field: "version", Old: "3.0.11-1~deb12u2", New: "3.0.13-1~deb12u1"}}}},
			}}},
		},
		{
			name:  "package downgraded",
			after: func(a *inventoryv1.Audit) { findPkg(a, "libc6").Version = "2.36-9+deb12u3" },
			want: result{Summary: "1 package downgraded", Sections: []Section{{
				Name: "packages", Comparable: true,
				Changes: []Change{{Op: "changed", Verb: "downgraded", Kind: "package", Key: "dpkg/libc6/amd64",
					Fields: []FieldChange{{Field: "version", Old: "2.36-9+deb12u4", New: "2.36-9+deb12u3"}}}},
			}}},
		},
		{
			// A string comparison would call this a downgrade.
			name:   "dpkg tilde release is an upgrade",
			before: func(a *inventoryv1.Audit) { findPkg(a, "curl").Version = "8.0~rc1-1" },
			after:  func(a *inventoryv1.Audit) { findPkg(a, "curl").Version = "8.0-1" },
			want: result{Summary: "1 package upgraded", Sections: []Section{{
				Name: "packages", Comparable: true,
				Changes: []Change{{Op: "changed", Verb: "upgraded", Kind: "package", Key: "dpkg/curl/amd64",
					Fields: []FieldChange{{Field: "version", Old: "8.0~rc1-1", New: "8.0-1"}}}},
			}}},
		},
		{
			// Numeric runs compare as numbers for every manager (31 > 4),
			// not as strings.
			name:  "non-dpkg package compared numerically",
			after: func(a *inventoryv1.Audit) { findPkg(a, "requests").Version = "2.4.0" },
			want: result{Summary: "1 package downgraded", Sections: []Section{{
				Name: "packages", Comparable: true,
				Changes: []Change{{Op: "changed", Verb: "downgraded", Kind: "package", Key: "pip/requests/any",
					Fields: []FieldChange{{Field: "version", Old: "2.31.0", New: "2.4.0"}}}},
			}}},
		},
		{
			name:  "package added",
			after: func(a *inventoryv1.Audit) { insertPkg(a, pkg("dpkg", "jq", "1.6-2.1", "amd64")) },
			want: result{Summary: "1 package added", Sections: []Section{{
				Name: "packages", Comparable: true,
				Changes: []Change{{Op: "added", Verb: "added", Kind: "package", Key: "dpkg/jq/amd64",
					Item: Attrs{{"manager", "dpkg"}, {"name", "jq"}, {"version", "1.6-2.1"}, {"architecture", "amd64"}}}},
			}}},
		},
		{
			name:  "package removed",
			after: func(a *inventoryv1.Audit) { removePkg(a, "bash") },
			want: result{Summary: "1 package removed", Sections: []Section{{
				Name: "packages", Comparable: true,
				Changes: []Change{{Op: "removed", Verb: "removed", Kind: "package", Key: "dpkg/bash/amd64",
					Item: Attrs{{"manager", "dpkg"}, {"name", "bash"}, {"version", "5.2.15-2+b2"}, {"architecture", "amd64"}}}},
			}}},
		},
		{
			name: "memory module added",
			after: func(a *inventoryv1.Audit) {
				a.Hardware.Memory.TotalBytes = 24 << 30
				a.Hardware.Memory.Modules = append(a.Hardware.Memory.Modules,
					&inventoryv1.MemoryModule{Key: "M-0003", Slot: "DIMM2", SizeBytes: 8 << 30, Serial: "M-0003", Type: "DDR4"})
			},
			want: result{Summary: "1 memory module added; memory total_bytes changed", Sections: []Section{{
				Name: "hardware.memory", Comparable: true,
				Changes: []Change{
					{Op: "changed", Verb: "changed", Fields: []FieldChange{{Field: "total_bytes", Old: "17179869184", New: "25769803776"}}},
					{Op: "added", Verb: "added", Kind: "memory_module", Key: "M-0003",
						Item: Attrs{{"slot", "DIMM2"}, {"size_bytes", "8589934592"}, {"serial", "M-0003"}, {"type", "DDR4"}}},
				},
			}}},
		},
		{
			name: "disk replaced",
			after: func(a *inventoryv1.Audit) {
				d := a.Hardware.Block.Disks[1]
				d.Key, d.Serial, d.Model = "S3", "S3", "ModelB"
			},
			want: result{Summary: "1 disk replaced", Sections: []Section{{
				Name: "hardware.block", Comparable: true,
				Changes: []Change{{Op: "replaced", Verb: "replaced", Kind: "disk", Key: "S3", OldKey: "S2", Match: "sdb",
					Fields: []FieldChange{{Field: "model", Old: "ModelA", New: "ModelB"}, {Field: "serial", Old: "S2", New: "S3"}},
					Item: Attrs{{"name", "sdb"}, {"path", "/dev/sdb"}, {"model", "ModelB"}, {"serial", "S3"},
						{"size_bytes", "1000204886016"}, {"rotational", "true"}, {"type", "hdd"}}}},
			}}},
		},
		{
			name:  "partition resized",
			after: func(a *inventoryv1.Audit) { a.Hardware.Block.Disks[0].Partitions[1].SizeBytes = 450_000_000_000 },
			want: result{Summary: "1 disk changed", Sections: []Section{{
				Name: "hardware.block", Comparable: true,
				Changes: []Change{{Op: "changed", Verb: "changed", Kind: "disk", Key: "S1",
					Fields: []FieldChange{{Field: "partitions[sda2].size_bytes", Old: "499000000000", New: "450000000000"}}}},
			}}},
		},
		{
			name: "partition added inside a disk",
			after: func(a *inventoryv1.Audit) {
				d := a.Hardware.Block.Disks[1]
				d.Partitions = append(d.Partitions, &inventoryv1.Partition{Key: "sdb1", Name: "sdb1", SizeBytes: 1000, Filesystem: "xfs"})
			},
			want: result{Summary: "1 disk changed", Sections: []Section{{
				Name: "hardware.block", Comparable: true,
				Changes: []Change{{Op: "changed", Verb: "changed", Kind: "disk", Key: "S2",
					Fields: []FieldChange{{Field: "partitions[sdb1]", New: "{name=sdb1 size_bytes=1000 filesystem=xfs}"}}}},
			}}},
		},
		{
			name:  "scalar section change",
			after: func(a *inventoryv1.Audit) { a.Hardware.Dmi.BiosVersion = "1.2" },
			want: result{Summary: "dmi bios_version changed", Sections: []Section{{
				Name: "hardware.dmi", Comparable: true,
				Changes: []Change{{Op: "changed", Verb: "changed",
					Fields: []FieldChange{{Field: "bios_version", Old: "1.0", New: "1.2"}}}},
			}}},
		},
		{
			name:  "repeated scalar on a section",
			after: func(a *inventoryv1.Audit) { a.Packages.Managers = []string{"dpkg"} },
			want: result{Summary: "packages managers changed", Sections: []Section{{
				Name: "packages", Comparable: true,
				Changes: []Change{{Op: "changed", Verb: "changed",
					Fields: []FieldChange{{Field: "managers", Old: "[dpkg, pip]", New: "[dpkg]"}}}},
			}}},
		},
		{
			name: "service disabled and stopped",
			after: func(a *inventoryv1.Audit) {
				a.Services.Units[1].UnitFileState = "disabled"
				a.Services.Units[0].ActiveState = "inactive"
			},
			want: result{Summary: "1 service disabled, 1 stopped", Sections: []Section{{
				Name: "services", Comparable: true,
				Changes: []Change{
					{Op: "changed", Verb: "stopped", Kind: "service", Key: "cron.service",
						Fields: []FieldChange{{Field: "active_state", Old: "active", New: "inactive"}}},
					{Op: "changed", Verb: "disabled", Kind: "service", Key: "ssh.service",
						Fields: []FieldChange{{Field: "unit_file_state", Old: "enabled", New: "disabled"}}},
				},
			}}},
		},
		{
			name: "failed collector after is not comparable",
			after: func(a *inventoryv1.Audit) {
				setStatus(a, "packages", inventoryv1.CollectorStatus_STATE_ERROR, "open /var/lib/dpkg/status: permission denied")
				a.Packages = nil
			},
			want: result{Summary: "no changes in the comparable sections; packages not comparable", Sections: []Section{{
				Name: "packages", Reason: "after: collector error: open /var/lib/dpkg/status: permission denied",
			}}},
		},
		{
			name: "failed collector before is not comparable",
			before: func(a *inventoryv1.Audit) {
				setStatus(a, "hardware.block", inventoryv1.CollectorStatus_STATE_TIMEOUT, "")
				a.Hardware.Block.Disks = nil
			},
			after: func(a *inventoryv1.Audit) { findPkg(a, "bash").Version = "5.2.15-2+b3" },
			want: result{Summary: "1 package upgraded; hardware.block not comparable", Sections: []Section{
				{Name: "hardware.block", Reason: "before: collector timed out"},
				{
					Name: "packages", Comparable: true,
					Changes: []Change{{Op: "changed", Verb: "upgraded", Kind: "package", Key: "dpkg/bash/amd64",
						Fields: []FieldChange{{Field: "version", Old: "5.2.15-2+b2", New: "5.2.15-2+b3"}}}},
				},
			}},
		},
		{
			name: "collector missing before and failed after",
			before: func(a *inventoryv1.Audit) {
				a.Collectors = slices.DeleteFunc(a.Collectors, func(s *inventoryv1.CollectorStatus) bool { return s.Section == "os" })
			},
			after: func(a *inventoryv1.Audit) {
				a.Os.Hostname = "web2"
				setStatus(a, "os", inventoryv1.CollectorStatus_STATE_ERROR, "boom")
			},
			want: result{Summary: "no changes in the comparable sections; os not comparable", Sections: []Section{
				{Name: "os", Reason: "before: collector did not run; after: collector error: boom"},
			}},
		},
		{
			name: "section level fields are named",
			after: func(a *inventoryv1.Audit) {
				a.Hardware.Memory.TotalBytes = 48 << 30
				a.Hardware.Memory.UsableBytes = 48<<30 - 200<<20
			},
			want: result{Summary: "memory total_bytes, usable_bytes changed", Sections: []Section{{
				Name: "hardware.memory", Comparable: true,
				Changes: []Change{{Op: "changed", Verb: "changed", Fields: []FieldChange{
					{Field: "total_bytes", Old: "17179869184", New: "51539607552"},
					{Field: "usable_bytes", Old: "16970153984", New: "51329892352"},
				}}},
			}}},
		},
		{
			name: "more than three section level fields",
			after: func(a *inventoryv1.Audit) {
				a.Os.Hostname, a.Os.Id, a.Os.VersionId, a.Os.PrettyName, a.Os.Architecture = "web2", "ubuntu", "24.04", "Ubuntu 24.04", "arm64"
			},
			want: result{Summary: "os hostname, id, version_id and 2 more changed", Sections: []Section{{
				Name: "os", Comparable: true,
				Changes: []Change{{Op: "changed", Verb: "changed", Fields: []FieldChange{
					{Field: "hostname", Old: "web1", New: "web2"},
					{Field: "id", Old: "debian", New: "ubuntu"},
					{Field: "version_id", Old: "12", New: "24.04"},
					{Field: "pretty_name", Old: "Debian GNU/Linux 12 (bookworm)", New: "Ubuntu 24.04"},
					{Field: "architecture", Old: "amd64", New: "arm64"},
				}}},
			}}},
		},
		{
			name:   "collector ran in neither audit is skipped",
			before: func(a *inventoryv1.Audit) { dropCollectors(a, "hardware.cpu", "files") },
			after:  func(a *inventoryv1.Audit) { dropCollectors(a, "hardware.cpu", "files") },
			want: result{Summary: "no changes", Sections: []Section{
				{Name: "hardware.cpu", Reason: "not collected in either audit", Skipped: true},
				{Name: "files", Reason: "not collected in either audit", Skipped: true},
			}},
		},
		{
			name:  "collector ran before only is not comparable",
			after: func(a *inventoryv1.Audit) { dropCollectors(a, "kernel_modules") },
			want: result{Summary: "no changes in the comparable sections; kernel_modules not comparable", Sections: []Section{
				{Name: "kernel_modules", Reason: "after: collector did not run"},
			}},
		},
		{
			name: "collector failed on both sides is not comparable",
			before: func(a *inventoryv1.Audit) {
				setStatus(a, "services", inventoryv1.CollectorStatus_STATE_ERROR, "no systemd")
			},
			after: func(a *inventoryv1.Audit) {
				setStatus(a, "services", inventoryv1.CollectorStatus_STATE_ERROR, "no systemd")
			},
			want: result{Summary: "no changes in the comparable sections; services not comparable", Sections: []Section{
				{Name: "services", Reason: "before: collector error: no systemd; after: collector error: no systemd"},
			}},
		},
		{
			name: "volatile changes ignored",
			after: func(a *inventoryv1.Audit) {
				a.Volatile.Load1 = 12
				a.Volatile.BootTime = 12345
			},
			want: result{Summary: "no changes"},
		},
		{
			name: "equal section hashes skip the walk",
			before: func(a *inventoryv1.Audit) {
				a.Hashes = &inventoryv1.Hashes{Sections: map[string]string{"packages": "abc"}}
			},
			after: func(a *inventoryv1.Audit) {
				a.Hashes = &inventoryv1.Hashes{Sections: map[string]string{"packages": "abc"}}
				findPkg(a, "bash").Version = "9" // hashes say equal: not looked at
			},
			want: result{Summary: "no changes"},
		},
		{
			name: "different section hashes walk",
			before: func(a *inventoryv1.Audit) {
				a.Hashes = &inventoryv1.Hashes{Sections: map[string]string{"packages": "abc"}}
			},
			after: func(a *inventoryv1.Audit) {
				a.Hashes = &inventoryv1.Hashes{Sections: map[string]string{"packages": "def"}}
				findPkg(a, "bash").Version = "9"
			},
			want: result{Summary: "1 package upgraded", Sections: []Section{{
				Name: "packages", Comparable: true,
				Changes: []Change{{Op: "changed", Verb: "upgraded", Kind: "package", Key: "dpkg/bash/amd64",
					Fields: []FieldChange{{Field: "version", Old: "5.2.15-2+b2", New: "9"}}}},
			}}},
		},
		{
			name: "unsorted lists are matched by key",
			after: func(a *inventoryv1.Audit) {
				slices.Reverse(a.Packages.Packages)
				findPkg(a, "openssl").Version = "3.0.13-1~deb12u1"
				removePkg(a, "curl")
				a.Packages.Packages = append(a.Packages.Packages, pkg("dpkg", "jq", "1.6-2.1", "amd64"))
			},
			want: result{Summary: "1 package upgraded, 1 added, 1 removed", Sections: []Section{{
				Name: "packages", Comparable: true,
				Changes: []Change{
					{Op: "removed", Verb: "removed", Kind: "package", Key: "dpkg/curl/amd64",
						Item: Attrs{{"manager", "dpkg"}, {"name", "curl"}, {"version", "7.88.1-10+deb12u5"}, {"architecture", "amd64"}}},
					{Op: "added", Verb: "added", Kind: "package", Key: "dpkg/jq/amd64",
						Item: Attrs{{"manager", "dpkg"}, {"name", "jq"}, {"version", "1.6-2.1"}, {"architecture", "amd64"}}},
					{Op: "changed", Verb: "upgraded", Kind: "package", Key: "dpkg/openssl/amd64",
						Fields: []FieldChange{{Field: "version", Old: "3.0.11-1~deb12u2", New: "3.0.13-1~deb12u1"}}},
				},
			}}},
		},
		{
			name:  "section missing although its collector succeeded",
			after: func(a *inventoryv1.Audit) { a.Services = nil },
			want: result{Summary: "2 services removed; services active_state_known changed", Sections: []Section{{
				Name: "services", Comparable: true,
				Changes: []Change{
					{Op: "changed", Verb: "changed", Fields: []FieldChange{{Field: "active_state_known", Old: "true", New: "false"}}},
					{Op: "removed", Verb: "removed", Kind: "service", Key: "cron.service",
						Item: Attrs{{"name", "cron.service"}, {"type", "service"}, {"unit_file_state", "enabled"}, {"active_state", "active"}, {"path", "/lib/systemd/system/cron.service"}}},
					{Op: "removed", Verb: "removed", Kind: "service", Key: "ssh.service",
						Item: Attrs{{"name", "ssh.service"}, {"type", "service"}, {"unit_file_state", "enabled"}, {"active_state", "active"}, {"path", "/lib/systemd/system/ssh.service"}}},
				},
			}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, after := pair(tc.after)
			if tc.before != nil {
				tc.before(before)
			}
			r := Compare(before, after)
			if diff := cmp.Diff(tc.want, interesting(r)); diff != "" {
				t.Errorf("Compare() mismatch (-want +got):\n%s", diff)
			}
			wantChanges := false
			for _, s := range tc.want.Sections {
				wantChanges = wantChanges || len(s.Changes) > 0
			}
			if got := r.HasChanges(); got != wantChanges {
				t.Errorf("HasChanges() = %v, want %v", got, wantChanges)
			}
		})
	}
}

func TestCompareReportShape(t *testing.T) {
	before, after := pair(func(a *inventoryv1.Audit) {
		setStatus(a, "services", inventoryv1.CollectorStatus_STATE_ERROR, "no systemd")
		findPkg(a, "openssl").Version = "3.0.13-1~deb12u1"
		insertPkg(a, pkg("dpkg", "jq", "1.6-2.1", "amd64"))
		a.Os.Hostname = "web1.example.com"
	})
	r := Compare(before, after)

	var names []string
	for _, s := range r.Sections {
		names = append(names, s.Name)
	}
	wantNames := []string{"hardware.cpu", "hardware.memory", "hardware.block", "hardware.network", "hardware.pci",
		"hardware.gpu", "hardware.dmi", "os", "packages", "services", "files", "kernel_modules"}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Errorf("section names mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Counts{Added: 1, Changed: 2, NotComparable: 1}, r.Counts); diff != "" {
		t.Errorf("Counts mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"services"}, r.NotComparable()); diff != "" {
		t.Errorf("NotComparable() mismatch (-want +got):\n%s", diff)
	}
	wantInfo := []AuditInfo{
		{Hostname: "web1", CollectedAt: "2025-01-01T00:00:00Z"},
		{Hostname: "web1.example.com", CollectedAt: "2025-02-01T00:00:00Z"},
	}
	if diff := cmp.Diff(wantInfo, []AuditInfo{r.Before, r.After}); diff != "" {
		t.Errorf("audit info mismatch (-want +got):\n%s", diff)
	}
	if !r.HasChanges() {
		t.Error("HasChanges() = false, want true")
	}
}

func TestCompareNilAudits(t *testing.T) {
	r := Compare(nil, baseAudit())
	if r.HasChanges() {
		t.Errorf("HasChanges() = true for a nil audit")
	}
	if got, want := len(r.NotComparable()), len(r.Sections); got != want {
		t.Errorf("NotComparable() has %d sections, want all %d", got, want)
	}
	if r := Compare(nil, nil); r.Summary != "nothing to compare" || len(r.NotComparable()) != 0 || r.HasChanges() {
		t.Errorf("Compare(nil, nil): Summary = %q, NotComparable() = %v, HasChanges() = %v; want nothing to compare, none, false",
			r.Summary, r.NotComparable(), r.HasChanges())
	}
}

// TestCompareSelectedCollectors compares audits taken with `--collectors`:
// sections collected in neither audit are skipped, not "not comparable".
func TestCompareSelectedCollectors(t *testing.T) {
	allSections := []string{"hardware.cpu", "hardware.memory", "hardware.block", "hardware.network", "hardware.pci",
		"hardware.gpu", "hardware.dmi", "os", "packages", "services", "files", "kernel_modules"}
	without := func(names ...string) []string {
		return slices.DeleteFunc(slices.Clone(allSections), func(s string) bool { return slices.Contains(names, s) })
	}
	tests := []struct {
		name              string
		before, after     []string // collectors that ran
		edit              func(after *inventoryv1.Audit)
		wantSummary       string
		wantChanges       bool
		wantNotComparable []string
		wantSkipped       []string
		wantCounts        Counts
	}{
		{
			name:        "same packages-only audit",
			before:      []string{"packages"},
			after:       []string{"packages"},
			wantSummary: "no changes",
			wantSkipped: without("packages"),
		},
		{
			name:        "packages-only audits with an upgrade",
			before:      []string{"packages"},
			after:       []string{"packages"},
			edit:        func(a *inventoryv1.Audit) { findPkg(a, "bash").Version = "5.2.15-2+b7" },
			wantSummary: "1 package upgraded",
			wantChanges: true,
			wantSkipped: without("packages"),
			wantCounts:  Counts{Changed: 1},
		},
		{
			name:              "different collectors on each side",
			before:            []string{"packages"},
			after:             []string{"services"},
			wantSummary:       "nothing to compare: packages, services not comparable",
			wantNotComparable: []string{"packages", "services"},
			wantSkipped:       without("packages", "services"),
			wantCounts:        Counts{NotComparable: 2},
		},
		{
			name:              "one collector more after",
			before:            []string{"packages"},
			after:             []string{"packages", "services"},
			wantSummary:       "no changes in the comparable sections; services not comparable",
			wantNotComparable: []string{"services"},
			wantSkipped:       without("packages", "services"),
			wantCounts:        Counts{NotComparable: 1},
		},
		{
			name:        "no collectors at all",
			wantSummary: "nothing to compare",
			wantSkipped: allSections,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, after := pair(tc.edit)
			only(before, tc.before...)
			only(after, tc.after...)
			r := Compare(before, after)
			if r.Summary != tc.wantSummary {
				t.Errorf("Summary = %q, want %q", r.Summary, tc.wantSummary)
			}
			if got := r.HasChanges(); got != tc.wantChanges {
				t.Errorf("HasChanges() = %v, want %v", got, tc.wantChanges)
			}
			if diff := cmp.Diff(tc.wantNotComparable, r.NotComparable()); diff != "" {
				t.Errorf("NotComparable() mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantSkipped, r.Skipped()); diff != "" {
				t.Errorf("Skipped() mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantCounts, r.Counts); diff != "" {
				t.Errorf("Counts mismatch (-want +got):\n%s", diff)
			}
			for _, s := range r.Sections {
				if s.Skipped && (s.Comparable || s.Reason != "not collected in either audit" || len(s.Changes) > 0) {
					t.Errorf("skipped section %+v: want not comparable, the reason and no changes", s)
				}
			}
		})
	}
}

func TestSameHost(t *testing.T) {
	tests := []struct {
		name          string
		before, after string
		want          bool
	}{
		{"same", "web1", "web1", true},
		{"different", "web1", "web2", false},
		{"before unknown", "", "web2", true},
		{"after unknown", "web1", "", true},
		{"both unknown", "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &Report{Before: AuditInfo{Hostname: tc.before}, After: AuditInfo{Hostname: tc.after}}
			if got := r.SameHost(); got != tc.want {
				t.Errorf("SameHost() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestKindName(t *testing.T) {
	msgs := []proto.Message{
		&inventoryv1.Disk{}, &inventoryv1.MemoryModule{}, &inventoryv1.Package{}, &inventoryv1.NIC{},
		&inventoryv1.PCIDevice{}, &inventoryv1.Service{}, &inventoryv1.GraphicsCard{}, &inventoryv1.KernelModule{},
		&inventoryv1.CPU{}, &inventoryv1.OS{},
	}
	var got []string
	for _, m := range msgs {
		got = append(got, kindName(m.ProtoReflect().Descriptor()))
	}
	want := []string{"disk", "memory_module", "package", "nic", "pci_device", "service", "graphics_card", "kernel_module", "cpu", "os"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("kindName mismatch (-want +got):\n%s", diff)
	}
}

func TestPlural(t *testing.T) {
	tests := []struct {
		kind string
		n    int
		want string
	}{
		{"package", 1, "package"},
		{"package", 2, "packages"},
		{"memory_module", 3, "memory modules"},
		{"pci_device", 2, "pci devices"},
		{"nic", 2, "nics"},
		{"process", 2, "processes"},
		{"policy", 2, "policies"},
		{"key", 2, "keys"},
	}
	for _, tc := range tests {
		if got := plural(tc.kind, tc.n); got != tc.want {
			t.Errorf("plural(%q, %d) = %q, want %q", tc.kind, tc.n, got, tc.want)
		}
	}
}

// TestEveryListIsKeyed guards the schema convention the diff relies on:
// every repeated message field in a section has a key, so a new list is
// matched by key rather than compared as a whole.
func TestEveryListIsKeyed(t *testing.T) {
	var visit func(md protoreflect.MessageDescriptor, path string)
	seen := map[protoreflect.FullName]bool{}
	visit = func(md protoreflect.MessageDescriptor, path string) {
		if seen[md.FullName()] {
			return
		}
		seen[md.FullName()] = true
		fields := md.Fields()
		for i := range fields.Len() {
			fd := fields.Get(i)
			if fd.Message() == nil || fd.IsMap() {
				continue
			}
			if fd.IsList() && keyField(fd.Message()) == nil {
				t.Errorf("%s.%s: repeated %s has no string key field", path, fd.Name(), fd.Message().Name())
			}
			visit(fd.Message(), path+"."+string(fd.Name()))
		}
	}
	a := baseAudit()
	for _, s := range audit.Sections {
		if s.Volatile {
			continue
		}
		if m := s.Get(a); m != nil {
			visit(m.ProtoReflect().Descriptor(), s.Name)
		}
	}
}

// TestDiffFieldsGeneric exercises the schema-independent walk on messages
// that no section has today: maps, enums, repeated scalars and nested
// singular messages.
func TestDiffFieldsGeneric(t *testing.T) {
	tests := []struct {
		name string
		a, b proto.Message
		want []FieldChange
	}{
		{
			name: "map entries",
			a:    &inventoryv1.Hashes{Sections: map[string]string{"os": "1", "packages": "2", "files": "3"}},
			b:    &inventoryv1.Hashes{Sections: map[string]string{"os": "1", "packages": "9", "services": "4"}},
			want: []FieldChange{
				{Field: "sections[files]", Old: "3"},
				{Field: "sections[packages]", Old: "2", New: "9"},
				{Field: "sections[services]", New: "4"},
			},
		},
		{
			name: "enum and repeated scalar",
			a:    &inventoryv1.CollectorStatus{State: inventoryv1.CollectorStatus_STATE_OK, Warnings: []string{"a"}},
			b:    &inventoryv1.CollectorStatus{State: inventoryv1.CollectorStatus_STATE_TIMEOUT, Warnings: []string{"a", "b"}},
			want: []FieldChange{
				{Field: "state", Old: "STATE_OK", New: "STATE_TIMEOUT"},
				{Field: "warnings", Old: "[a]", New: "[a, b]"},
			},
		},
		{
			name: "nested singular messages and keyed lists",
			a: &inventoryv1.Hardware{
				Dmi:   &inventoryv1.DMI{BiosVersion: "1"},
				Block: &inventoryv1.Block{Disks: []*inventoryv1.Disk{{Key: "d", Partitions: []*inventoryv1.Partition{{Key: "p1", Label: "x"}}}}},
			},
			b: &inventoryv1.Hardware{
				Block: &inventoryv1.Block{Disks: []*inventoryv1.Disk{{Key: "d"}}},
				Cpu:   &inventoryv1.CPU{Sockets: 2},
			},
			want: []FieldChange{
				{Field: "cpu.sockets", Old: "0", New: "2"},
				{Field: "block.disks[d].partitions[p1]", Old: "{label=x}"},
				{Field: "dmi.bios_version", Old: "1", New: ""},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := diffFields(nil, "", tc.a.ProtoReflect(), tc.b.ProtoReflect(), nil)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("diffFields mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
