package ctl

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/plugins/builtin"
)

// TestPluginCommands: plugin list and describe run offline (the config
// runOffline gives names no usable controller) and show every built-in's
// parameters.
func TestPluginCommands(t *testing.T) {
	catalogDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(catalogDir, "catalog.yaml"), []byte("plugins:\n  - {name: motd, file: cairn-plugin-motd, sha256: "+strings.Repeat("ab", 32)+"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		out    []string
		errOut []string
	}{
		{name: "list", args: []string{"plugin", "list"}, out: []string{"NAME", "archive    built-in  1.0.0", "manual     built-in"}},
		{name: "list with a catalog", args: []string{"plugin", "list", "--plugins", catalogDir}, out: []string{"motd       external  -        -           " + filepath.Join(catalogDir, "cairn-plugin-motd")}},
		{name: "describe", args: []string{"plugin", "describe", "file"},
			out: []string{"plugin file 1.0.0", "idempotent: yes", "  path ", "  content ", "  mode "}},
		{name: "describe exec says where it runs", args: []string{"plugin", "describe", "exec"},
			out: []string{"The program runs on the host", "argv[0] is looked up in the host's PATH", "working directory inside the root"}},
		{name: "describe unknown", args: []string{"plugin", "describe", "teleport"}, code: ExitUsage,
			errOut: []string{`no built-in plugin: "teleport"`, "cairn-agent plugin describe NAME --catalog DIR"}},
		{name: "describe no name", args: []string{"plugin", "describe"}, code: ExitUsage},
		{name: "describe bad format", args: []string{"plugin", "describe", "file", "-o", "html"}, code: ExitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runOffline(t, tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tt.code, r.stdout, r.stderr)
			}
			for _, s := range tt.out {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
				}
			}
			for _, s := range tt.errOut {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
				}
			}
		})
	}

	// JSON: every built-in, each with its parameters, in the names the
	// proto gives them.
	r := runOffline(t, "plugin", "list", "-o", "json")
	var list struct {
		Builtin []struct {
			Name   string
			Params []struct {
				Name     string
				Required bool
			}
		}
		External []any
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("plugin list -o json: %v\n%s", err, r.stdout)
	}
	var names []string
	for _, p := range list.Builtin {
		names = append(names, p.Name)
		if len(p.Params) == 0 {
			t.Errorf("built-in %s lists no parameters", p.Name)
		}
	}
	if diff := cmp.Diff(builtin.Names(), names); diff != "" {
		t.Errorf("built-ins (-want +got):\n%s", diff)
	}
	if list.External == nil {
		t.Errorf("external is null, want []:\n%s", r.stdout)
	}
}
