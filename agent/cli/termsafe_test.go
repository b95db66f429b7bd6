package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cairn-ops/cairn/internal/audit"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// writeAudit writes a sealed audit of host with the given dpkg packages
// ("name=version") and returns its path.
func writeAudit(t *testing.T, name, host string, packages ...string) string {
	t.Helper()
	a := &inventoryv1.Audit{
		SchemaVersion: audit.SchemaVersion,
		Header:        &inventoryv1.Header{AgentVersion: "0.3.0", Root: "/", CollectedAt: "2026-01-02T03:04:05Z"},
		Os:            &inventoryv1.OS{Hostname: host, Id: "debian", VersionId: "12"},
		Packages:      &inventoryv1.Packages{Managers: []string{"dpkg"}},
		Collectors: []*inventoryv1.CollectorStatus{
			{Name: "os", Section: "os", State: inventoryv1.CollectorStatus_STATE_OK},
			{Name: "packages", Section: "packages", State: inventoryv1.CollectorStatus_STATE_OK},
		},
	}
	for _, p := range packages {
		n, v, _ := strings.Cut(p, "=")
		a.Packages.Packages = append(a.Packages.Packages, &inventoryv1.Package{Key: "dpkg/" + n + "/amd64", Manager: "dpkg", Name: n, Version: v, Architecture: "amd64"})
	}
	return writeDoc(t, name, a)
}

// writeDoc seals a, writes it as JSON to a file called name and returns
// the file's path.
func writeDoc(t *testing.T, name string, a *inventoryv1.Audit) string {
	t.Helper()
	if err := audit.Seal(a); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := audit.WriteJSON(f, a); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDiffTerminalEscapes: an audit comes from an agent, which is less
// trusted than the operator reading the diff. Package names, versions
// and hostnames holding terminal controls or bidi overrides are printed
// escaped, in every format; JSON stays JSON with the same values.
func TestDiffTerminalEscapes(t *testing.T) {
	const pkg = "evil\x1b[2J\x1b]0;owned\a\u202egnp.exe"
	before := writeAudit(t, "before.json", "web1", "bash=5.2")
	after := writeAudit(t, "after.json", "web1\u009b31m\r", "bash=5.2", pkg+"=1.0\u2066")
	for _, format := range []string{"text", "markdown", "json"} {
		t.Run(format, func(t *testing.T) {
			out, errOut, code := execute("diff", "-o", format, before, after)
			if code != ExitChanges {
				t.Fatalf("exit %d, want %d: %s", code, ExitChanges, errOut)
			}
			for name, s := range map[string]string{"stdout": out, "stderr": errOut} {
				// A CR is kept only before a LF (CR LF), where it cannot
				// overwrite a line.
				for _, h := range []string{"\x1b", "\a", "\u009b", "\u202e", "\u2066"} {
					if strings.Contains(strings.ReplaceAll(s, "\r\n", "\n"), h) || strings.Contains(strings.ReplaceAll(s, "\r\n", "\n"), "\r") {
						t.Errorf("%s holds %q raw:\n%s", name, h, s)
					}
				}
				if !utf8.ValidString(s) {
					t.Errorf("%s is not valid UTF-8", name)
				}
			}
			if format == "json" {
				if !strings.Contains(out, `\u202e`) {
					t.Errorf("JSON does not show the bidi override escaped:\n%s", out)
				}
				var v any
				if err := json.Unmarshal([]byte(out), &v); err != nil {
					t.Fatalf("not JSON: %v\n%s", err, out)
				}
				b, _ := json.Marshal(v)
				if !strings.Contains(string(b), "evil") || !strings.Contains(out, `\u001b[2J`) {
					t.Errorf("JSON lost the package name:\n%s", out)
				}
				return
			}
			if !strings.Contains(out, `evil\x1b`) || !strings.Contains(out, `\u202egnp.exe`) {
				t.Errorf("%s does not show the package name escaped:\n%s", format, out)
			}
		})
	}
}
