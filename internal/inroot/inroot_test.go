package inroot

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// tree makes a root with a directory, a file, and links that a plain
// path join would follow out of it.
func tree(t *testing.T) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root, outside = filepath.Join(base, "root"), filepath.Join(base, "outside")
	for _, d := range []string{"run/app", "srv/real", "etc", outside} {
		p := d
		if !filepath.IsAbs(d) {
			p = filepath.Join(root, d)
		}
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{"etc/hostname": "inside\n", filepath.Join(outside, "hostname"): "outside\n"} {
		p := name
		if !filepath.IsAbs(name) {
			p = filepath.Join(root, name)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"var/run":  "/run",            // absolute, as on Debian: inside the root
		"srv/app":  outside,           // absolute path of a directory outside
		"srv/up":   "../../../../../", // climbs above the root
		"etc/host": "/etc/hostname",
		"etc/out":  filepath.Join(outside, "hostname"),
	}
	for name, target := range links {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	return root, outside
}

func TestOpenStaysInTheRoot(t *testing.T) {
	root, _ := tree(t)
	tests := []struct {
		name, want string
	}{
		{"/etc/hostname", "inside\n"},
		{"etc/host", "inside\n"},             // absolute link, resolved in the root
		{"/etc/out", ""},                     // the outside file does not exist in the root
		{"/srv/up/etc/hostname", "inside\n"}, // ".." stops at the root
		{"/../../etc/hostname", "inside\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Open(root, tt.name, os.O_RDONLY)
			if tt.want == "" {
				if !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("Open(%s) = %v; want not found (the link points outside the root)", tt.name, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, 64)
			n, _ := f.Read(buf)
			if got := string(buf[:n]); got != tt.want {
				t.Errorf("Open(%s) read %q, want %q", tt.name, got, tt.want)
			}
		})
	}
}

func TestStat(t *testing.T) {
	root, _ := tree(t)
	if fi, err := Stat(root, "/var/run/app"); err != nil || !fi.IsDir() {
		t.Errorf("Stat(/var/run/app) = %v, %v; want the directory ROOT/run/app through the absolute link", fi, err)
	}
	if _, err := Stat(root, "/srv/app"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(/srv/app) = %v; want not found (its target is outside the root)", err)
	}
}

// TestDirAsWorkingDirectory: a child started in Dir's path runs in the
// directory inside the root, whatever the links say.
func TestDirAsWorkingDirectory(t *testing.T) {
	root, _ := tree(t)
	f, dir, err := Dir(root, "/var/run/app")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("/bin/pwd", "-P")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := filepath.EvalSymlinks(filepath.Join(root, "run/app"))
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("pwd = %s, want %s", got, want)
	}
	if _, _, err := Dir(root, "/srv/app"); err == nil {
		t.Error("Dir(/srv/app) succeeded; its target is outside the root")
	}
}
