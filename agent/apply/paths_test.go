package apply

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cairn-ops/cairn/internal/manifest"
	"github.com/cairn-ops/cairn/internal/readlimit"
)

// TestArtifactsStayInside: a component's path leads to a file inside the
// manifest's directory (or ArtifactsDir), symlinks resolved, and to a
// regular file; otherwise nothing runs, and the error names the
// manifest, the line and the component.
func TestArtifactsStayInside(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(outside, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  error
		says  string
	}{
		{"symlink to a file outside", func(t *testing.T, dir string) {
			if err := os.Symlink(outside, filepath.Join(dir, "site.tar.gz")); err != nil {
				t.Fatal(err)
			}
		}, manifest.ErrOutside, `resolves to ` + outside},
		{"named pipe", func(t *testing.T, dir string) {
			if err := syscall.Mkfifo(filepath.Join(dir, "site.tar.gz"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, readlimit.ErrNotRegular, "not a regular file (a named pipe)"},
		{"symlink to a device", func(t *testing.T, dir string) {
			if err := os.Symlink("/dev/zero", filepath.Join(dir, "site.tar.gz")); err != nil {
				t.Fatal(err)
			}
		}, manifest.ErrOutside, "resolves to /dev/zero"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			tt.setup(t, e.dir)
			m := e.manifest(t, "components:\n  - {name: site, kind: application, path: site.tar.gz, sha256: "+strings.Repeat("ab", 32)+"}\nsteps:\n  - {name: a, plugin: once}\n")
			_, err := e.runner.Run(t.Context(), m)
			if !errors.Is(err, ErrArtifact) || !errors.Is(err, tt.want) {
				t.Fatalf("Run = %v, want ErrArtifact and %v", err, tt.want)
			}
			for _, s := range []string{"component site (" + m.File + ":6)", tt.says} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			for _, p := range e.host.plugins {
				if calls := p.Calls(); len(calls) > 0 {
					t.Errorf("plugin %s was called: %q", p.name, calls)
				}
			}
		})
	}

	t.Run("dot-dot", func(t *testing.T) {
		e := newEnv(t)
		path := filepath.Join(e.dir, "release.yaml")
		body := "apiVersion: cairn/v1\nkind: Release\nname: shop\nversion: 1.0.0\ncomponents:\n  - {name: site, kind: application, path: ../../secret.txt}\n"
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := manifest.Load(path)
		want := path + `:6: components[0].path: component site: "../../secret.txt" leaves the manifest's directory`
		if !errors.Is(err, manifest.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("Load = %v, want %s", err, want)
		}
	})
}
