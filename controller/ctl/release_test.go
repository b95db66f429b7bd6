package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/internal/manifest"
)

// runOffline runs cairnctl with no controller, token or CA configured,
// and a HOME whose config file is broken: release validate must need
// none of them.
func runOffline(t *testing.T, args ...string) result {
	t.Helper()
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".config", "cairn"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".config", "cairn", "config.yaml"), []byte("controller: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"HOME": home}
	var out, errOut bytes.Buffer
	a := &app{
		in: strings.NewReader(""), out: &out, errOut: &errOut,
		getenv: func(k string) string { return vars[k] },
		now:    func() time.Time { return testNow },
	}
	code := a.execute(context.Background(), args)
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}

func TestReleaseValidate(t *testing.T) {
	artifacts := t.TempDir()
	for _, name := range []string{"webshop-assets_1.0.0_all.deb"} {
		b, err := os.ReadFile(filepath.Join("testdata", "release", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(artifacts, "other.deb"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	catalog := t.TempDir()
	if err := os.WriteFile(filepath.Join(catalog, "catalog.yaml"), []byte("plugins:\n  - {name: motd, file: cairn-plugin-motd, sha256: "+strings.Repeat("0", 64)+"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	validate := func(file string, more ...string) []string {
		return append([]string{"release", "validate", "-f", filepath.Join("testdata", "release", file)}, more...)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		golden string
		// out and errOut are substrings expected in stdout and stderr.
		out, errOut []string
	}{
		{name: "valid full manifest", args: validate("valid.yaml"), golden: "release/valid.txt"},
		{name: "valid full manifest json", args: validate("valid.yaml", "-o", "json"), golden: "release/valid.json"},
		{
			name: "unknown field", args: validate("unknown-field.yaml"), code: ExitUsage, golden: "release/unknown-field.txt",
			errOut: []string{"cairnctl: testdata/release/unknown-field.yaml: invalid release manifest: 2 problem(s)"},
		},
		{
			name: "bad semver", args: validate("bad-semver.yaml"), code: ExitUsage,
			out: []string{"testdata/release/bad-semver.yaml:4: version: must be a string (quote it: \"1.0\")"},
		},
		{name: "missing artifact", args: validate("missing-artifact.yaml"), code: ExitUsage, golden: "release/missing-artifact.txt"},
		{name: "unknown plugin", args: validate("unknown-plugin.yaml"), code: ExitUsage, golden: "release/unknown-plugin.txt"},
		{
			name: "external plugin named by the catalog", args: validate("unknown-plugin.yaml", "--plugins", catalog), code: ExitUsage,
			out: []string{"steps[0] (greet)   motd    external plugin: not checked", `testdata/release/unknown-plugin.yaml:8: verify[0].plugin: unknown plugin "nagios"`, "; the catalog in " + catalog + " has motd", "1 problem(s)"},
		},
		{name: "params violating a plugin's schema", args: validate("bad-params.yaml"), code: ExitUsage, golden: "release/bad-params.txt"},
		{name: "dpkg step declares its package", args: validate("dpkg.yaml"), golden: "release/dpkg.txt"},
		// Every problem of every step in one run: unknown parameters do
		// not hide the values that are wrong, nor one bad value the next.
		{name: "every problem in one run", args: validate("every-problem.yaml"), code: ExitUsage, golden: "release/every-problem.txt"},
		{
			name: "dpkg step against the manifest", args: validate("dpkg-conflict.yaml"),
			out: []string{"webshop-assets  absent  -  manifest", "steps[0] (install): declares package webshop-assets present at 1.0.0, the manifest expects it absent; keeping the manifest's"},
		},
		{
			name: "artifacts from another directory", args: validate("missing-artifact.yaml", "--artifacts", artifacts), code: ExitUsage,
			out: []string{artifacts + "/nope.deb does not exist", artifacts + "/operator.md does not exist"},
		},
		{name: "no file", args: []string{"release", "validate"}, code: ExitUsage, errOut: []string{"-f FILE is required"}},
		{name: "file not found", args: validate("nope.yaml"), code: ExitUsage, errOut: []string{"read release manifest: open testdata/release/nope.yaml: no such file"}},
		{name: "bad catalog", args: validate("valid.yaml", "--plugins", t.TempDir()), code: ExitUsage, errOut: []string{"read plugin catalog"}},
		{name: "bad format", args: validate("valid.yaml", "-o", "yaml"), code: ExitUsage, errOut: []string{`unknown output format "yaml": use text or json`}},
		{name: "group help", args: []string{"release"}, out: []string{"validate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runOffline(t, tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tt.code, r.stdout, r.stderr)
			}
			if tt.golden != "" {
				golden(t, tt.golden, r.stdout)
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
}

// TestReleaseValidateMergesDeclared reads the JSON: the dpkg step's
// package is in expect, attributed to the step, next to the manifest's.
func TestReleaseValidateMergesDeclared(t *testing.T) {
	r := runOffline(t, "release", "validate", "-f", "testdata/release/valid.yaml", "-o", "json")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	var v struct {
		Valid  bool            `json:"valid"`
		Expect manifest.Expect `json:"expect"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatal(err)
	}
	want := []manifest.PackageExpectation{
		{Name: "webshop-assets", State: "present", Version: ">= 1.0.0"},
		{Name: "legacy-shop", State: "absent"},
	}
	if diff := cmp.Diff(want, v.Expect.Packages); diff != "" {
		t.Errorf("packages (-want +got):\n%s", diff)
	}
	r = runOffline(t, "release", "validate", "-f", "testdata/release/dpkg.yaml", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatal(err)
	}
	want = []manifest.PackageExpectation{{Name: "webshop-assets", State: "present", Version: "1.0.0", DeclaredBy: "steps[0] (install)"}}
	if diff := cmp.Diff(want, v.Expect.Packages); diff != "" || !v.Valid {
		t.Errorf("valid %v, packages (-want +got):\n%s", v.Valid, diff)
	}
}

// TestReleaseValidateExample keeps the shipped example release valid.
func TestReleaseValidateExample(t *testing.T) {
	r := runOffline(t, "release", "validate", "-f", filepath.Join("..", "..", "examples", "sandbox-release", "release.yaml"))
	if r.code != ExitOK || strings.Contains(r.stdout, "warnings:") {
		t.Fatalf("exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestReleaseValidateLimits: a name or version past its limit
// (internal/limits) is a problem with its line and field, found offline,
// rather than an internal error from the controller's store at create.
func TestReleaseValidateLimits(t *testing.T) {
	file := filepath.Join(t.TempDir(), "release.yaml")
	y := "apiVersion: cairn/v1\nkind: Release\nname: " + strings.Repeat("w", 40<<10) + "\nversion: 1.0.0-" + strings.Repeat("r", 100<<10) + "\n"
	if err := os.WriteFile(file, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runOffline(t, "release", "validate", "-f", file)
	if r.code != ExitUsage {
		t.Fatalf("exit %d, want %d (invalid); stdout %.300s", r.code, ExitUsage, r.stdout)
	}
	for _, want := range []string{
		file + ":3: name: \"" + strings.Repeat("w", 40) + "\"... is 40960 bytes long; the limit is 63 bytes",
		file + ":4: version: \"1.0.0-" + strings.Repeat("r", 34) + "\"... is 102406 bytes long; the limit is 128 bytes",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%.600s", want, r.stdout)
		}
	}
	if len(r.stdout)+len(r.stderr) > 2000 {
		t.Errorf("%d bytes of output: a long value must not be echoed whole", len(r.stdout)+len(r.stderr))
	}
}
