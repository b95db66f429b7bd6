package diff

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

var update = flag.Bool("update", os.Getenv("UPDATE_GOLDEN") == "1", "rewrite golden files")

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
		a.Hardware.Memory.Modules = append(a.Hardware.Memory.Modules,
			&inventoryv1.MemoryModule{Key: "M-0003", Slot: "DIMM2", SizeBytes: 8 << 30, Serial: "M-0003", PartNumber: "M393A1K43DB2", Type: "DDR4"})

		a.Hardware.Dmi.BiosVersion = "1.2"
		a.Os.PrettyName = "Debian GNU/Linux 12 (bookworm) <custom>"

		setStatus(a, "services", inventoryv1.CollectorStatus_STATE_ERROR, "dbus: connection refused")
	})
	before.Hashes = &inventoryv1.Hashes{Content: "c0ffee01"}
	after.Hashes = &inventoryv1.Hashes{Content: "c0ffee02"}
	return Compare(before, after)
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (UPDATE_GOLDEN=1 writes it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got), rerun with UPDATE_GOLDEN=1 if intended:\n%s", path, diff)
	}
}

func TestRenderGolden(t *testing.T) {
	renderers := []struct {
		file  string
		write func(*bytes.Buffer, *Report) error
	}{
		{"rich.txt", func(b *bytes.Buffer, r *Report) error { return WriteText(b, r) }},
		{"rich.json", func(b *bytes.Buffer, r *Report) error { return WriteJSON(b, r) }},
		{"rich.md", func(b *bytes.Buffer, r *Report) error { return WriteMarkdown(b, r) }},
		{"rich.html", func(b *bytes.Buffer, r *Report) error { return WriteHTML(b, r) }},
	}
	for _, rr := range renderers {
		t.Run(rr.file, func(t *testing.T) {
			var b bytes.Buffer
			if err := rr.write(&b, richReport()); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, rr.file, b.Bytes())
			// Deterministic: a second rendering of a fresh report is identical.
			var again bytes.Buffer
			if err := rr.write(&again, richReport()); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b.Bytes(), again.Bytes()) {
				t.Error("two renderings differ")
			}
		})
	}
}

func TestRichSummary(t *testing.T) {
	want := "1 memory module added; 1 disk replaced, 1 changed; 3 packages upgraded, 1 added, 1 removed; " +
		"hardware.memory changed; hardware.dmi changed; os changed; services not comparable"
	if got := richReport().Summary; got != want {
		t.Errorf("Summary = %q\nwant      %q", got, want)
	}
}

func TestNoChangesText(t *testing.T) {
	before, after := pair(nil)
	var b bytes.Buffer
	if err := WriteText(&b, Compare(before, after)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("no changes\n", b.String()); diff != "" {
		t.Errorf("text mismatch (-want +got):\n%s", diff)
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
