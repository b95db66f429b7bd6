package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLoad(t *testing.T) {
	sumA, sumB := sha("a"), sha("b")
	tests := []struct {
		name    string
		content string
		want    []Entry // File and Path filled relative to the test's dir
		wantErr string  // substring; "FILE" stands for the catalog's path
	}{
		{
			name: "two plugins",
			content: "plugins:\n" +
				"  - name: motd\n    file: cairn-plugin-motd\n    sha256: " + sumA + "\n" +
				"  - name: backup\n    file: bin/backup\n    sha256: " + strings.ToUpper(sumB) + "\n",
			want: []Entry{
				{Name: "motd", File: "cairn-plugin-motd", SHA256: sumA},
				{Name: "backup", File: "bin/backup", SHA256: sumB},
			},
		},
		{name: "empty file", content: ""},
		{name: "empty list", content: "plugins: []\n"},
		{
			name:    "malformed yaml",
			content: "plugins:\n  - name: motd\n    file: [unclosed\n",
			// yaml.v3 reports the line where the broken construct began.
			wantErr: "FILE:2: did not find expected ',' or ']'",
		},
		{
			name:    "bad indentation",
			content: "plugins:\n  - name: motd\n   file: x\n",
			wantErr: "FILE:1: did not find expected '-' indicator",
		},
		{
			name:    "file escapes the catalog dir",
			content: "plugins:\n  - name: evil\n    file: ../../usr/bin/evil\n    sha256: " + sumA + "\n",
			wantErr: `FILE:3: plugins[0].file: "../../usr/bin/evil" leaves the catalog directory`,
		},
		{
			name:    "absolute file",
			content: "plugins:\n  - name: evil\n    file: /usr/bin/evil\n    sha256: " + sumA + "\n",
			wantErr: `FILE:3: plugins[0].file: "/usr/bin/evil" is absolute`,
		},
		{
			name:    "short sha256",
			content: "plugins:\n  - name: motd\n    file: motd\n    sha256: abc123\n",
			wantErr: `FILE:4: plugins[0].sha256: "abc123" is not 64 hex digits`,
		},
		{
			name:    "missing sha256",
			content: "plugins:\n  - name: motd\n    file: motd\n",
			wantErr: "FILE:2: plugins[0]: sha256 is required",
		},
		{
			name:    "unknown field",
			content: "plugins:\n  - name: motd\n    file: motd\n    sha: " + sumA + "\n",
			wantErr: `FILE:4: plugins[0]: unknown field "sha"`,
		},
		{
			name:    "unknown top-level field",
			content: "plugin:\n  - name: motd\n",
			wantErr: `FILE:1: unknown field "plugin"`,
		},
		{
			name: "duplicate name",
			content: "plugins:\n" +
				"  - {name: motd, file: a, sha256: " + sumA + "}\n" +
				"  - {name: motd, file: b, sha256: " + sumB + "}\n",
			wantErr: `FILE:3: plugins[1]: plugin "motd" is already listed on line 2`,
		},
		{
			name:    "bad name",
			content: "plugins:\n  - {name: My Plugin, file: a, sha256: " + sumA + "}\n",
			wantErr: `FILE:2: plugins[0].name: "My Plugin" is not a plugin name`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeCatalog(t, dir, tt.content)
			cat, err := Load(dir)
			if tt.wantErr != "" {
				want := strings.ReplaceAll(tt.wantErr, "FILE", filepath.Join(dir, FileName))
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("Load: %v, want an error containing %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i := range tt.want {
				tt.want[i].Path = filepath.Join(dir, tt.want[i].File)
			}
			if diff := cmp.Diff(tt.want, cat.Entries()); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(t.TempDir())
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of an empty dir: %v, want fs.ErrNotExist", err)
	}
}

func TestCatalogLookup(t *testing.T) {
	dir := t.TempDir()
	writeCatalog(t, dir, "plugins:\n  - {name: motd, file: m, sha256: "+sha("m")+"}\n")
	cat, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := cat.Lookup("motd"); !ok || e.Path != filepath.Join(dir, "m") {
		t.Errorf("Lookup(motd) = %+v, %v", e, ok)
	}
	if _, ok := cat.Lookup("other"); ok {
		t.Error("Lookup(other) found something")
	}
	var nilCat *Catalog
	if _, ok := nilCat.Lookup("motd"); ok || nilCat.Entries() != nil {
		t.Error("a nil catalog is not empty")
	}
}

// TestLoadLimit: catalog.yaml past MaxBytes, or not a
// regular file, is refused with an error naming it.
func TestLoadLimit(t *testing.T) {
	big := t.TempDir()
	if err := os.WriteFile(filepath.Join(big, FileName), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(big, FileName), MaxBytes+1); err != nil {
		t.Fatal(err)
	}
	fifo := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(fifo, FileName), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, dir, want string }{
		{"over the limit", big, "plugin catalog " + filepath.Join(big, FileName) + ": larger than 1 MiB (limit)"},
		{"a named pipe", fifo, "plugin catalog " + filepath.Join(fifo, FileName) + ": not a regular file (a named pipe)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.dir)
			if err == nil || err.Error() != tt.want {
				t.Errorf("Load: %v, want %s", err, tt.want)
			}
		})
	}
}

func writeCatalog(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
