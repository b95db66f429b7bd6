package ctl

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestComponentPathsStayInside: a component's file is uploaded to the
// DML, where every auditor can read it, so a manifest cannot name a file
// outside its directory (or --artifacts): not with "..", not through a
// symlink. validate reports it by file, line and component; create
// refuses before anything is uploaded.
func TestComponentPathsStayInside(t *testing.T) {
	f := startFake(t)
	base := t.TempDir()
	for path, content := range map[string]string{
		"outside-secret.txt":        "the operator's secret\n",
		"release/notes.md":          "inside\n",
		"release/art/inside.txt":    "inside\n",
		"release/sub/dir/x.txt":     "inside\n",
		"artifacts/from-flag.txt":   "inside --artifacts\n",
		"release/sub/dir/.keep.txt": "",
	} {
		if err := os.MkdirAll(filepath.Join(base, filepath.Dir(path)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(base, path), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"release/link-out.txt": "../outside-secret.txt",
		"release/link-abs.txt": filepath.Join(base, "outside-secret.txt"),
		"release/linkdir":      "..",
		"release/link-in.txt":  "art/inside.txt",
	} {
		if err := os.Symlink(target, filepath.Join(base, link)); err != nil {
			t.Fatal(err)
		}
	}
	manifest := func(path string, n int) string {
		file := filepath.Join(base, "release", "release.yaml")
		body := "apiVersion: cairn/v1\nkind: Release\nname: shop\nversion: 1.0." + fmt.Sprint(n) + "\ncomponents:\n  - name: secret\n    kind: documentation\n    path: " + path + "\n"
		if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return file
	}
	tests := []struct {
		name, path string
		artifacts  string
		// problem is the validate problem, "" for a valid manifest.
		problem string
	}{
		{name: "inside", path: "art/inside.txt"},
		{name: "inside, through .. that stays inside", path: "sub/dir/../../art/inside.txt"},
		{name: "symlink that stays inside", path: "link-in.txt"},
		{name: "inside --artifacts", path: "from-flag.txt", artifacts: "ARTIFACTS"},
		{
			name: "dot-dot out of the manifest's directory", path: "../outside-secret.txt",
			problem: `BASE/release/release.yaml:8: components[0].path: component secret: "../outside-secret.txt" leaves the manifest's directory`,
		},
		{
			name: "two levels up", path: "../../outside-secret.txt",
			problem: `BASE/release/release.yaml:8: components[0].path: component secret: "../../outside-secret.txt" leaves the manifest's directory`,
		},
		{
			name: "dot-dot out of --artifacts", path: "../outside-secret.txt", artifacts: "ARTIFACTS",
			problem: `BASE/release/release.yaml:8: components[0].path: component secret: "../outside-secret.txt" leaves the manifest's directory`,
		},
		{
			name: "symlink to a file outside", path: "link-out.txt",
			problem: `BASE/release/release.yaml:6: components[0].path: component secret: path "link-out.txt" resolves to BASE/outside-secret.txt, outside BASE/release (component file outside its directory)`,
		},
		{
			name: "absolute symlink to a file outside", path: "link-abs.txt",
			problem: `BASE/release/release.yaml:6: components[0].path: component secret: path "link-abs.txt" resolves to BASE/outside-secret.txt, outside BASE/release (component file outside its directory)`,
		},
		{
			name: "symlinked directory pointing outside", path: "linkdir/outside-secret.txt",
			problem: `BASE/release/release.yaml:6: components[0].path: component secret: path "linkdir/outside-secret.txt" resolves to BASE/outside-secret.txt, outside BASE/release (component file outside its directory)`,
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := manifest(tt.path, i)
			var flags []string
			if tt.artifacts != "" {
				flags = []string{"--artifacts", filepath.Join(base, "artifacts")}
			}
			r := runOffline(t, append([]string{"release", "validate", "-f", file}, flags...)...)
			var problems []string
			for _, line := range strings.Split(r.stdout, "\n") {
				if strings.HasPrefix(line, "  "+base) {
					problems = append(problems, strings.ReplaceAll(strings.TrimSpace(line), base, "BASE"))
				}
			}
			var want []string
			if tt.problem != "" {
				want = []string{tt.problem}
			}
			// The lexical check's message goes on to say why.
			for i, p := range problems {
				if strings.HasPrefix(p, tt.problem) && tt.problem != "" {
					problems[i] = tt.problem
				}
			}
			if diff := cmp.Diff(want, problems); diff != "" {
				t.Errorf("validate problems (-want +got):\n%s\nstdout:\n%s", diff, r.stdout)
			}

			f.reset()
			r = f.run(t, nil, "", append([]string{"release", "create", "-f", file}, flags...)...)
			if tt.problem == "" {
				if r.code != ExitOK {
					t.Errorf("create: exit %d: %s", r.code, r.stderr)
				}
				return
			}
			if r.code != ExitUsage || !strings.Contains(r.stderr, "nothing uploaded") {
				t.Errorf("create: exit %d, want %d and nothing uploaded: %s", r.code, ExitUsage, r.stderr)
			}
			if m := f.last(); m != nil {
				t.Errorf("create sent %T to the controller; want nothing sent", m)
			}
			if strings.Contains(r.stdout+r.stderr, "secret\n") {
				t.Errorf("the secret's content shows in the output")
			}
		})
	}
}
