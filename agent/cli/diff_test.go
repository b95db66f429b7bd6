package cli

import (
	"strings"
	"testing"

	"github.com/cairn-ops/cairn/internal/audit"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// writeFilesAudit writes a sealed audit whose files section tracked
// patterns and recorded paths, and returns its path.
func writeFilesAudit(t *testing.T, name string, patterns []string, paths ...string) string {
	t.Helper()
	a := &inventoryv1.Audit{
		SchemaVersion: audit.SchemaVersion,
		Header:        &inventoryv1.Header{AgentVersion: "0.3.0", Root: "/", CollectedAt: "2026-01-02T03:04:05Z"},
		Files:         &inventoryv1.Files{Patterns: patterns},
		Collectors:    []*inventoryv1.CollectorStatus{{Name: "files", Section: "files", State: inventoryv1.CollectorStatus_STATE_OK}},
	}
	for _, p := range paths {
		a.Files.Files = append(a.Files.Files, &inventoryv1.File{Key: p, Path: p, Type: "file", Mode: "0644", Sha256: strings.Repeat("a", 64)})
	}
	return writeDoc(t, name, a)
}

// TestDiffExitStatus: diff exits 0 only when the audits are shown equal;
// a path only one audit tracked cannot be, so it exits 1 and says which.
func TestDiffExitStatus(t *testing.T) {
	base := writeFilesAudit(t, "base.json", []string{"/etc/a.conf"}, "/etc/a.conf")
	tests := []struct {
		name  string
		after string
		code  int
		out   string
	}{
		{name: "same paths, no changes", after: writeFilesAudit(t, "same.json", []string{"/etc/a.conf"}, "/etc/a.conf"), code: 0, out: "no changes\n"},
		{name: "a path only the after audit tracked", after: writeFilesAudit(t, "more.json", []string{"/etc/a.conf", "/etc/b.conf"}, "/etc/a.conf", "/etc/b.conf"),
			code: ExitChanges, out: "no changes where both audits looked; 1 tracked path not compared: /etc/b.conf\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := execute("diff", base, tt.after)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, errOut)
			}
			if first, _, _ := strings.Cut(out, "\n"); first+"\n" != tt.out {
				t.Errorf("first line %q, want %q", first, tt.out)
			}
		})
	}
}
