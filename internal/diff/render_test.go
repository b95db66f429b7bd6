package diff

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/internal/testutil"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// richReport has something of every kind of change the renderers draw.
func richReport() *Report {
	before, after := pair(func(a *inventoryv1.Audit) {
		findPkg(a, "openssl").Version = "3.0.13-1~deb12u1"
		findPkg(a, "libc6").Version = "2.36-9+deb12u7"
		findPkg(a, "bash").Version = "5.2.15-2+b7"
		insertPkg(a, pkg("dpkg", "jq", "1.6-2.1", "amd64"))
		removePkg(a, "tzdata")

		d := a.Hardware.Block.Disks[1]
		d.Key, d.Serial, d.Model = "S3", "S3", "ModelB"
		a.Hardware.Block.Disks[0].Partitions[1].SizeBytes = 450_000_000_000

		a.Hardware.Memory.TotalBytes = 24 << 30
		a.Hardware.Memory.UsableBytes = 24<<30 - 200<<20
		a.Hardware.Memory.Modules = append(a.Hardware.Memory.Modules,
			&inventoryv1.MemoryModule{Key: "M-0003", Slot: "DIMM2", SizeBytes: 8 << 30, Serial: "M-0003", PartNumber: "M393A1K43DB2", Type: "DDR4"})

		a.Hardware.Dmi.BiosVersion = "1.2"
		a.Os.PrettyName = "Debian GNU/Linux 12 (bookworm) <custom>"

		setStatus(a, "services", inventoryv1.CollectorStatus_STATE_ERROR, "dbus: connection refused")
		dropCollectors(a, "files", "kernel_modules")
	})
	dropCollectors(before, "files", "kernel_modules")
	before.Hashes = &inventoryv1.Hashes{Content: "c0ffee01"}
	after.Hashes = &inventoryv1.Hashes{Content: "c0ffee02"}
	return Compare(before, after)
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	testutil.Golden(t, filepath.Join("testdata", "golden", name), got)
}

// pathsReport compares two audits that tracked different paths: a file
// changed where both looked, and paths only one of them tracked.
func pathsReport() *Report {
	before := filesAudit([]string{"/etc/app", "/etc/old.conf"}, "/etc/app", "/etc/app/app.conf", "/etc/old.conf")
	after := filesAudit([]string{"/etc/app", "/etc/extra", "/etc/missing.conf"}, "/etc/app", "/etc/app/app.conf", "/etc/extra", "/etc/extra/a", "/etc/extra/b")
	after.Files.Files[1].Mode = "0600"
	return Compare(before, after)
}

func TestRenderGolden(t *testing.T) {
	renderers := []struct {
		ext   string
		write func(*bytes.Buffer, *Report) error
	}{
		{"txt", func(b *bytes.Buffer, r *Report) error { return WriteText(b, r) }},
		{"json", func(b *bytes.Buffer, r *Report) error { return WriteJSON(b, r) }},
		{"md", func(b *bytes.Buffer, r *Report) error { return WriteMarkdown(b, r) }},
		{"html", func(b *bytes.Buffer, r *Report) error { return WriteHTML(b, r) }},
	}
	reports := []struct {
		name   string
		report func() *Report
	}{
		{"rich", richReport},
		{"paths", pathsReport},
	}
	for _, rep := range reports {
		for _, rr := range renderers {
			file := rep.name + "." + rr.ext
			t.Run(file, func(t *testing.T) {
				var b bytes.Buffer
				if err := rr.write(&b, rep.report()); err != nil {
					t.Fatal(err)
				}
				checkGolden(t, file, b.Bytes())
				// Deterministic: a second rendering of a fresh report is identical.
				var again bytes.Buffer
				if err := rr.write(&again, rep.report()); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b.Bytes(), again.Bytes()) {
					t.Error("two renderings differ")
				}
			})
		}
	}
}

func TestRichSummary(t *testing.T) {
	want := "1 memory module added; 1 disk replaced, 1 changed; 3 packages upgraded, 1 added, 1 removed; " +
		"memory total_bytes, usable_bytes changed; dmi bios_version changed; os pretty_name changed; services not comparable"
	if got := richReport().Summary; got != want {
		t.Errorf("Summary = %q\nwant      %q", got, want)
	}
}

// TestWriteText checks the text form around the changes: the summary on
// the first line, the audits compared on the second, the skipped sections
// last.
func TestWriteText(t *testing.T) {
	tests := []struct {
		name          string
		before, after func(*inventoryv1.Audit)
		want          string
	}{
		{
			name: "no changes",
			want: "no changes\nbefore: web1 2025-01-01T00:00:00Z  after: web1 2025-02-01T00:00:00Z\n",
		},
		{
			name:  "different hosts",
			after: func(a *inventoryv1.Audit) { a.Os.Hostname = "web2" },
			want: "os hostname changed\nbefore: web1 2025-01-01T00:00:00Z  after: web2 2025-02-01T00:00:00Z\n" +
				"os\n  ~ hostname: web1 → web2\n",
		},
		{
			name: "unknown host and time are left out",
			before: func(a *inventoryv1.Audit) {
				a.Header = nil
				only(a, "packages")
			},
			after: func(a *inventoryv1.Audit) { only(a, "packages") },
			want: "no changes\nbefore: web1  after: web1 2025-02-01T00:00:00Z\n" +
				"not collected: hardware.cpu, hardware.memory, hardware.block, hardware.network, hardware.pci, " +
				"hardware.gpu, hardware.dmi, os, services, files, kernel_modules\n",
		},
		{
			name: "nothing known about either audit",
			before: func(a *inventoryv1.Audit) {
				a.Header, a.Os = nil, nil
			},
			after: func(a *inventoryv1.Audit) {
				a.Header, a.Os = nil, nil
			},
			want: "no changes\n",
		},
		{
			name: "sizes in IEC units",
			after: func(a *inventoryv1.Audit) {
				a.Hardware.Memory.TotalBytes = 64 << 30
				a.Hardware.Memory.Modules = append(a.Hardware.Memory.Modules,
					&inventoryv1.MemoryModule{Key: "M-0003", Slot: "DIMM_A2", SizeBytes: 16 << 30, PartNumber: "M391A2K43DB1-CVF"})
				a.Hardware.Block.Disks[0].Partitions[0].SizeBytes = 512
			},
			want: "1 memory module added; 1 disk changed; memory total_bytes changed\n" +
				"before: web1 2025-01-01T00:00:00Z  after: web1 2025-02-01T00:00:00Z\n" +
				"hardware.memory\n" +
				"  ~ total_bytes: 16 GiB → 64 GiB\n" +
				"  + M-0003  (DIMM_A2 16 GiB M391A2K43DB1-CVF)\n" +
				"hardware.block\n" +
				"  ~ S1  partitions[sda1].size_bytes: 1000 MiB → 512 B\n",
		},
		{
			name: "newlines are quoted",
			after: func(a *inventoryv1.Audit) {
				a.Os.PrettyName = "Debian\nGNU/Linux"
				insertPkg(a, pkg("dpkg", "evil", "1.0\n  ~ fake line", "amd64"))
				setStatus(a, "services", inventoryv1.CollectorStatus_STATE_ERROR, "line one\nline two")
			},
			want: "1 package added; os pretty_name changed; services not comparable\n" +
				"before: web1 2025-01-01T00:00:00Z  after: web1 2025-02-01T00:00:00Z\n" +
				"os\n" +
				"  ~ pretty_name: Debian GNU/Linux 12 (bookworm) → \"Debian\\nGNU/Linux\"\n" +
				"packages\n" +
				"  + dpkg/evil/amd64  (evil \"1.0\\n  ~ fake line\" amd64)\n" +
				"services: not comparable (\"after: collector error: line one\\nline two\")\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, after := pair(tc.after)
			if tc.before != nil {
				tc.before(before)
			}
			var b bytes.Buffer
			if err := WriteText(&b, Compare(before, after)); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, b.String()); diff != "" {
				t.Errorf("text mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMarkdownHeading(t *testing.T) {
	tests := []struct {
		name          string
		before, after AuditInfo
		want          string
	}{
		{
			name:   "same host",
			before: AuditInfo{Hostname: "web1", CollectedAt: "2025-01-01T00:00:00Z"},
			after:  AuditInfo{Hostname: "web1", CollectedAt: "2025-02-01T00:00:00Z"},
			want:   "# Audit diff: web1\n\nBefore 2025-01-01T00:00:00Z, after 2025-02-01T00:00:00Z.\n\n",
		},
		{
			name:   "different hosts",
			before: AuditInfo{Hostname: "web1", CollectedAt: "2025-01-01T00:00:00Z"},
			after:  AuditInfo{Hostname: "web_2", CollectedAt: "2025-02-01T00:00:00Z"},
			want:   "# Audit diff: web1 → web\\_2\n\nBefore 2025-01-01T00:00:00Z, after 2025-02-01T00:00:00Z.\n\n",
		},
		{
			name:   "one host unknown",
			before: AuditInfo{Hostname: "web1"},
			after:  AuditInfo{CollectedAt: "2025-02-01T00:00:00Z"},
			want:   "# Audit diff: web1\n\nBefore (unknown), after 2025-02-01T00:00:00Z.\n\n",
		},
		{
			name: "nothing known",
			want: "# Audit diff\n\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &Report{Summary: "no changes", Before: tc.before, After: tc.after}
			var b bytes.Buffer
			if err := WriteMarkdown(&b, r); err != nil {
				t.Fatal(err)
			}
			if got := b.String(); !strings.HasPrefix(got, tc.want+"**no changes**\n") {
				t.Errorf("markdown starts\n%q\nwant\n%q", got, tc.want+"**no changes**\n")
			}
		})
	}
}

func TestJSONRoundTrip(t *testing.T) {
	r := richReport()
	var b bytes.Buffer
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, &got); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
}

func TestAttrsJSON(t *testing.T) {
	tests := []struct {
		name  string
		attrs Attrs
		json  string
	}{
		{"keeps order", Attrs{{"z", "1"}, {"a", "2"}}, `{"z":"1","a":"2"}`},
		{"escapes", Attrs{{"name", "a\"b\n<c>"}}, `{"name":"a\"b\n\u003cc\u003e"}`}, // json.Marshal escapes HTML
		{"empty", Attrs{}, `{}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.attrs)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.json, string(b)); diff != "" {
				t.Errorf("Marshal mismatch (-want +got):\n%s", diff)
			}
			var back Attrs
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.attrs, back); diff != "" {
				t.Errorf("Unmarshal mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRenderHostileValues checks that values from the audit cannot inject
// markup or terminal control sequences.
func TestRenderHostileValues(t *testing.T) {
	before, after := pair(func(a *inventoryv1.Audit) {
		insertPkg(a, pkg("dpkg", "<script>alert(1)</script>", "1|2\x1b[31m", "amd64"))
	})
	r := Compare(before, after)
	tests := []struct {
		name    string
		write   func(*bytes.Buffer, *Report) error
		mustNot []string
	}{
		{"text", func(b *bytes.Buffer, r *Report) error { return WriteText(b, r) }, []string{"\x1b"}},
		{"markdown", func(b *bytes.Buffer, r *Report) error { return WriteMarkdown(b, r) }, []string{"<script>", "1|2"}},
		{"html", func(b *bytes.Buffer, r *Report) error { return WriteHTML(b, r) }, []string{"<script>"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.write(&b, r); err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.mustNot {
				if strings.Contains(b.String(), s) {
					t.Errorf("output contains %q:\n%s", s, b.String())
				}
			}
		})
	}
}
