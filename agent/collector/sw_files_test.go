package collector

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// swFilesSummary reduces a files section to "path type mode hashed?"
// lines, which is what the limit tests look at.
func swFilesSummary(sec *inventoryv1.Files) []string {
	var out []string
	for _, f := range sec.GetFiles() {
		h := "-"
		switch {
		case f.Sha256 != "":
			h = "hashed"
		case f.HashSkipped:
			h = "skipped"
		}
		out = append(out, f.Path+" "+f.Type+" "+f.Mode+" "+h)
	}
	return out
}

func TestFilesCollector(t *testing.T) {
	root := swFilesRoot(t)
	tests := []struct {
		name          string
		env           Env
		want          []string
		wantTruncated bool
		wantWarns     []string // with ROOT for the root
	}{
		{
			name:      "exact paths, missing path absent and warned about",
			env:       Env{Track: []string{"/etc/passwd", "/etc/absent", "/usr/bin/su"}},
			want:      []string{"/etc/passwd file 0644 hashed", "/usr/bin/su file 4755 hashed"},
			wantWarns: []string{"track /etc/absent: lstat ROOT/etc/absent: no such file or directory"},
		},
		{
			name:      "missing parent directory",
			env:       Env{Track: []string{"/etc/nginx/nginx.conf"}},
			wantWarns: []string{"track /etc/nginx/nginx.conf: lstat ROOT/etc/nginx/nginx.conf: no such file or directory"},
		},
		{
			name:      "glob without a match",
			env:       Env{Track: []string{"/etc/*.conf", "/etc/passwd"}},
			want:      []string{"/etc/passwd file 0644 hashed"},
			wantWarns: []string{`track "/etc/*.conf": no match`},
		},
		{
			name: "glob within one element, setuid and setgid",
			env:  Env{Track: []string{"/usr/b?n/*"}},
			want: []string{"/usr/bin/passwd file 6755 hashed", "/usr/bin/su file 4755 hashed"},
		},
		{
			name: "directory recursively, symlinks not followed, duplicates once",
			env:  Env{Track: []string{"/etc/ssh", "/etc/ssh/sshd_config", "/etc/ssh/*"}},
			want: []string{
				"/etc/ssh dir 0755 -",
				"/etc/ssh/escape.link symlink 0777 -",
				"/etc/ssh/sshd_config file 0644 hashed",
				"/etc/ssh/sshd_config.d dir 0755 -",
				"/etc/ssh/sshd_config.d/hardening.conf file 0600 hashed",
				"/etc/ssh/sshd_config.link symlink 0777 -",
			},
		},
		{
			name: "sticky directory",
			env:  Env{Track: []string{"/tmp"}},
			want: []string{"/tmp dir 1777 -"},
		},
		{
			name:          "max files keeps the first paths",
			env:           Env{Track: []string{"/etc/ssh", "/usr/bin"}, MaxFiles: 3},
			want:          []string{"/etc/ssh dir 0755 -", "/etc/ssh/escape.link symlink 0777 -", "/etc/ssh/sshd_config file 0644 hashed"},
			wantTruncated: true,
			// /etc/ssh/sshd_config.d is cut, so what is under it is not
			// counted: "at least".
			wantWarns: []string{"recorded 3 of at least 6 files: raise --max-files"},
		},
		{
			name:          "max files, every path counted",
			env:           Env{Track: []string{"/usr/bin/*", "/usr/bin/su"}, MaxFiles: 1},
			want:          []string{"/usr/bin/passwd file 6755 hashed"},
			wantTruncated: true,
			wantWarns:     []string{"recorded 1 of 2 files: raise --max-files"},
		},
		{
			name: "hash budget runs out in path order",
			// sshd_config is 27 bytes, hardening.conf 26: the second does
			// not fit in 40.
			env: Env{Track: []string{"/etc/ssh"}, MaxHashBytes: 40},
			want: []string{
				"/etc/ssh dir 0755 -",
				"/etc/ssh/escape.link symlink 0777 -",
				"/etc/ssh/sshd_config file 0644 hashed",
				"/etc/ssh/sshd_config.d dir 0755 -",
				"/etc/ssh/sshd_config.d/hardening.conf file 0600 skipped",
				"/etc/ssh/sshd_config.link symlink 0777 -",
			},
			wantTruncated: true,
			wantWarns:     []string{"hashed 27 bytes; 1 file not hashed: raise --max-hash-bytes"},
		},
		{
			name: "nothing tracked",
			env:  Env{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.env.Root = root
			out, warns, err := swRun(t.Context(), Files{}, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			var wantWarns []string
			for _, w := range tc.wantWarns {
				wantWarns = append(wantWarns, strings.ReplaceAll(w, "ROOT", root))
			}
			if diff := cmp.Diff(wantWarns, warns); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			sec := out.GetFiles()
			if diff := cmp.Diff(tc.want, swFilesSummary(sec)); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
			if sec.Truncated != tc.wantTruncated {
				t.Errorf("truncated = %v, want %v", sec.Truncated, tc.wantTruncated)
			}
			if diff := cmp.Diff(tc.env.Track, sec.Patterns); diff != "" {
				t.Errorf("patterns (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFilesDetails(t *testing.T) {
	root := swFilesRoot(t)
	// Map the test runner's ids to names in the root's own passwd/group:
	// names come from the root, not from the machine running the audit.
	uid, gid := os.Getuid(), os.Getgid()
	passwd := "root:x:0:0::/root:/bin/sh\nauditor:x:" + strconv.Itoa(uid) + ":" + strconv.Itoa(gid) + "::/:/bin/sh\n"
	group := "root:x:0:\nauditors:x:" + strconv.Itoa(gid) + ":\n"
	if err := os.WriteFile(filepath.Join(root, "etc/passwd"), []byte(passwd), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/group"), []byte(group), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := swRun(t.Context(), Files{}, Env{Root: root, Track: []string{"/etc/ssh/sshd_config", "/etc/ssh/*.link"}})
	if err != nil {
		t.Fatal(err)
	}
	wantOwner, wantGroup := "auditor", "auditors"
	if uid == 0 {
		wantOwner = "root"
	}
	if gid == 0 {
		wantGroup = "root"
	}
	want := []*inventoryv1.File{
		{Key: "/etc/ssh/escape.link", Path: "/etc/ssh/escape.link", Type: "symlink", Size: 22, Mode: "0777",
			LinkTarget: "../../../../etc/shadow"},
		{Key: "/etc/ssh/sshd_config", Path: "/etc/ssh/sshd_config", Type: "file", Size: 27, Mode: "0644",
			Sha256: swSHA256(t, filepath.Join(root, "etc/ssh/sshd_config"))},
		{Key: "/etc/ssh/sshd_config.link", Path: "/etc/ssh/sshd_config.link", Type: "symlink", Size: 11, Mode: "0777",
			LinkTarget: "sshd_config"},
	}
	for _, f := range want {
		f.Uid, f.Gid, f.Owner, f.Group = uint32(uid), uint32(gid), wantOwner, wantGroup
	}
	got := out.GetFiles().GetFiles()
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestFilesRefusesTraversal: a pattern with ".." is refused whatever it
// would resolve to, and a symlink out of the root is recorded, not
// followed.
func TestFilesRefusesTraversal(t *testing.T) {
	root := swFilesRoot(t)
	for _, pat := range []string{"/../etc/passwd", "/etc/../../../etc/shadow", "../x", "/etc/ssh/..", "/usr/*/../../etc"} {
		t.Run(pat, func(t *testing.T) {
			out, _, err := swRun(t.Context(), Files{}, Env{Root: root, Track: []string{"/etc/passwd", pat}})
			if !errors.Is(err, ErrOutsideRoot) {
				t.Errorf("err = %v, want ErrOutsideRoot", err)
			}
			if out.GetFiles() != nil {
				t.Errorf("section set despite the refusal")
			}
		})
	}

	// A directory symlink out of the root is not descended into.
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "etc/outside")); err != nil {
		t.Fatal(err)
	}
	out, _, err := swRun(t.Context(), Files{}, Env{Root: root, Track: []string{"/etc/outside", "/etc/outside/secret", "/etc/outside/*"}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"/etc/outside symlink 0777 -"}, swFilesSummary(out.GetFiles())); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestTrackPattern(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  error
	}{
		{"/etc/ssh", "etc/ssh", nil},
		{"etc/ssh/", "etc/ssh", nil},
		{"/", ".", nil},
		{"/etc//ssh/./*.conf", "etc/ssh/*.conf", nil},
		{"/etc/..", "", ErrOutsideRoot},
		{"/etc/[", "", nil},
	}
	for _, tc := range tests {
		got, err := trackPattern(tc.in)
		if tc.in == "/etc/[" {
			if err == nil {
				t.Errorf("trackPattern(%q): no error for a malformed pattern", tc.in)
			}
			continue
		}
		if !errors.Is(err, tc.wantErr) || got != tc.want {
			t.Errorf("trackPattern(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestModeString(t *testing.T) {
	tests := map[fs.FileMode]string{
		0o644:                                 "0644",
		0o755 | fs.ModeSetuid:                 "4755",
		0o2755&0o777 | fs.ModeSetgid:          "2755",
		0o777 | fs.ModeSticky | fs.ModeDir:    "1777",
		0o700 | fs.ModeSetuid | fs.ModeSetgid: "6700",
		0o777 | fs.ModeSymlink:                "0777",
	}
	for m, want := range tests {
		if got := swModeString(m); got != want {
			t.Errorf("swModeString(%v) = %q, want %q", m, got, want)
		}
	}
}

// swSHA256 hashes a file independently of the collector.
func swSHA256(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
