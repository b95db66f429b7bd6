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
	"github.com/cairn-ops/cairn/plugins/sdk/sdktest"
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

// TestPluginDescribe: a built-in describes itself; an external plugin of
// a catalog is started, its checksum checked, and asked; an unknown name
// or a binary that does not match its checksum is refused.
func TestPluginDescribe(t *testing.T) {
	out, errOut, code := execute("plugin", "describe", "file")
	if code != ExitOK {
		t.Fatalf("describe file: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"plugin file ", "idempotent: yes", "path", "content", "mode"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe file lacks %q:\n%s", want, out)
		}
	}
	if _, errOut, code := execute("plugin", "describe", "teleport"); code == ExitOK || !strings.Contains(errOut, `no built-in plugin: "teleport"`) {
		t.Errorf("describe of an unknown plugin: exit %d, stderr %q", code, errOut)
	}

	dir := t.TempDir()
	bin := sdktest.Build(t, "github.com/cairn-ops/cairn/plugins/examples/cairn-plugin-motd")
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "motd"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	catalogYAML := fmt.Sprintf("plugins:\n  - {name: motd, file: motd, sha256: %x}\n", sum)
	if err := os.WriteFile(filepath.Join(dir, "catalog.yaml"), []byte(catalogYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = execute("plugin", "describe", "motd", "--catalog", dir, "-o", "json")
	if code != ExitOK {
		t.Fatalf("describe motd: exit %d: %s", code, errOut)
	}
	var d struct {
		Name   string
		Params []struct{ Name string }
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil || d.Name != "motd" || len(d.Params) == 0 {
		t.Errorf("describe motd -o json = %+v, %v:\n%s", d, err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "motd"), append(data, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := execute("plugin", "describe", "motd", "--catalog", dir); code == ExitOK || !strings.Contains(errOut, "sha256") {
		t.Errorf("describe of a plugin that does not match its checksum: exit %d, stderr %q", code, errOut)
	}
}
