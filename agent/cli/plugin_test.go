package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/plugins/builtin"
)

func TestPluginListBuiltins(t *testing.T) {
	out, errOut, code := execute("plugin", "list", "-o", "json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got struct {
		Plugins []pluginRow `json:"plugins"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var names []string
	for _, p := range got.Plugins {
		names = append(names, p.Name)
		if p.Kind != "built-in" || p.Version == "" || p.Idempotent == nil || p.Status != "ok" {
			t.Errorf("built-in row %+v: want kind built-in, a version, idempotent and status ok", p)
		}
	}
	if diff := cmp.Diff(builtin.Names(), names); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
}

func TestPluginListCatalog(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(content))
		return hex.EncodeToString(sum[:])
	}
	good := write("good", "#!/bin/sh\n")
	write("bad", "changed\n")
	bad := sha256.Sum256([]byte("original\n"))
	missing := sha256.Sum256([]byte("missing\n"))
	write("catalog.yaml", fmt.Sprintf("plugins:\n"+
		"  - {name: good, file: good, sha256: %s}\n"+
		"  - {name: bad, file: bad, sha256: %x}\n"+
		"  - {name: gone, file: gone, sha256: %x}\n", good, bad, missing))

	out, errOut, code := execute("plugin", "list", "--catalog", dir)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.HasPrefix(lines[0], "NAME") {
		t.Fatalf("no header:\n%s", out)
	}
	got := map[string]string{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		got[f[0]] = f[1] + " " + f[4] + " " + strings.Join(f[5:], " ")
	}
	want := map[string]string{
		"good": "external " + good[:12] + " ok",
		"bad":  fmt.Sprintf("external %x checksum mismatch", bad[:6]),
		"gone": fmt.Sprintf("external %x missing", missing[:6]),
	}
	for _, name := range builtin.Names() {
		want[name] = got[name] // built-ins are covered above
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows (-want +got):\n%s\n%s", diff, out)
	}
}

func TestPluginErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"serve unknown", []string{"plugin", "serve", "nope"}, `unknown built-in plugin "nope" (built-ins: `},
		{"serve needs a name", []string{"plugin", "serve"}, "plugin serve needs one built-in plugin NAME (got 0)"},
		{"list bad format", []string{"plugin", "list", "-o", "xml"}, `unknown output format "xml"`},
		{"list missing catalog", []string{"plugin", "list", "--catalog", "/nonexistent"}, "read plugin catalog: open /nonexistent/catalog.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := execute(tt.args...)
			if code != ExitError || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, ExitError, tt.want)
			}
		})
	}
}

func TestPluginServeIsHidden(t *testing.T) {
	out, _, _ := execute("plugin", "--help")
	if strings.Contains(out, "serve") || !strings.Contains(out, "list") {
		t.Errorf("plugin --help shows serve or hides list:\n%s", out)
	}
}
