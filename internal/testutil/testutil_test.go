package testutil

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// entry is one tar entry of a test archive.
type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func dir(name string, mode int64) entry { return entry{name: name, typ: tar.TypeDir, mode: mode} }
func file(name, body string, mode int64) entry {
	return entry{name: name, body: body, typ: tar.TypeReg, mode: mode}
}
func symlink(name, target string) entry {
	return entry{name: name, link: target, typ: tar.TypeSymlink, mode: 0o777}
}

// writeArchive writes entries as a .tar.gz in a directory of its own and
// returns its path.
func writeArchive(t *testing.T, entries ...entry) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.body))}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tree.tar.gz")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// listTree describes every entry under dir: type, permission bits and
// content or link target.
func listTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			got[filepath.ToSlash(rel)] = fmt.Sprintf("dir %o", info.Mode().Perm())
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			got[filepath.ToSlash(rel)] = "link " + target
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got[filepath.ToSlash(rel)] = fmt.Sprintf("file %o %s", info.Mode().Perm(), b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestUnpackTarGz(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
		want    map[string]string
	}{
		{
			name: "sysfs-like tree",
			entries: []entry{
				dir("./", 0o755),
				dir("./sys/", 0o755),
				dir("./sys/bus/pci/devices/", 0o755), // parents not listed
				symlink("./sys/bus/pci/devices/0000:00:1f.6", "../../../devices/pci0000:00/0000:00:1f.6"),
				dir("./sys/devices/pci0000:00/0000:00:1f.6/", 0o750),
				file("./sys/devices/pci0000:00/0000:00:1f.6/vendor", "0x8086\n", 0o644),
				file("./sys/firmware/dmi/tables/DMI", "\x00\x01", 0o444),
				file("run/udev/data/b8:0", "E:ID_SERIAL=x\n", 0o600),
				file("bin/tool", "#!/bin/sh\n", 0o755),
				symlink("dev-null", "/dev/null"), // absolute targets kept too
			},
			want: map[string]string{
				"sys":                                 "dir 755",
				"sys/bus":                             "dir 755",
				"sys/bus/pci":                         "dir 755",
				"sys/bus/pci/devices":                 "dir 755",
				"sys/bus/pci/devices/0000:00:1f.6":    "link ../../../devices/pci0000:00/0000:00:1f.6",
				"sys/devices":                         "dir 755",
				"sys/devices/pci0000:00":              "dir 755",
				"sys/devices/pci0000:00/0000:00:1f.6": "dir 750",
				"sys/devices/pci0000:00/0000:00:1f.6/vendor": "file 644 0x8086\n",
				"sys/firmware":                "dir 755",
				"sys/firmware/dmi":            "dir 755",
				"sys/firmware/dmi/tables":     "dir 755",
				"sys/firmware/dmi/tables/DMI": "file 444 \x00\x01",
				"run":                         "dir 755",
				"run/udev":                    "dir 755",
				"run/udev/data":               "dir 755",
				"run/udev/data/b8:0":          "file 600 E:ID_SERIAL=x\n",
				"bin":                         "dir 755",
				"bin/tool":                    "file 755 #!/bin/sh\n",
				"dev-null":                    "link /dev/null",
			},
		},
		{
			name:    "read-only directory still filled",
			entries: []entry{dir("ro/", 0o555), file("ro/f", "x", 0o644)},
			want:    map[string]string{"ro": "dir 755", "ro/f": "file 644 x"},
		},
		{
			name:    "directory mode without the umask",
			entries: []entry{dir("open/", 0o777), file("open/f", "x", 0o666)},
			want:    map[string]string{"open": "dir 777", "open/f": "file 666 x"},
		},
		{
			name: "empty archive",
			want: map[string]string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := UnpackTarGz(t, writeArchive(t, tc.entries...))
			if diff := cmp.Diff(tc.want, listTree(t, dir)); diff != "" {
				t.Errorf("unpacked tree (-want +got):\n%s", diff)
			}
			// The links resolve inside the tree.
			if _, ok := tc.want["sys/bus/pci/devices/0000:00:1f.6"]; ok {
				b, err := os.ReadFile(filepath.Join(dir, "sys", "bus", "pci", "devices", "0000:00:1f.6", "vendor"))
				if err != nil || string(b) != "0x8086\n" {
					t.Errorf("read through symlink: %q, %v", b, err)
				}
			}
		})
	}
}

func TestUnpackRefuses(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
		wantErr string
	}{
		{
			name:    "parent escape",
			entries: []entry{file("../escape", "x", 0o644)},
			wantErr: `entry "../escape": name has a ".." element`,
		},
		{
			name:    "dot-dot inside the name",
			entries: []entry{file("a/../b", "x", 0o644)},
			wantErr: `entry "a/../b": name has a ".." element`,
		},
		{
			name:    "absolute name",
			entries: []entry{file("/abs", "x", 0o644)},
			wantErr: `entry "/abs": absolute name`,
		},
		{
			name:    "hard link",
			entries: []entry{file("f", "x", 0o644), {name: "hl", link: "f", typ: tar.TypeLink, mode: 0o644}},
			wantErr: `entry "hl": hard link not supported`,
		},
		{
			name:    "character device",
			entries: []entry{{name: "dev/null", typ: tar.TypeChar, mode: 0o666}},
			wantErr: `entry "dev/null": character device not supported`,
		},
		{
			name:    "block device",
			entries: []entry{{name: "dev/sda", typ: tar.TypeBlock, mode: 0o660}},
			wantErr: `entry "dev/sda": block device not supported`,
		},
		{
			name:    "fifo",
			entries: []entry{{name: "pipe", typ: tar.TypeFifo, mode: 0o644}},
			wantErr: `entry "pipe": FIFO not supported`,
		},
		{
			name:    "write through a link out of the tree",
			entries: []entry{symlink("up", ".."), file("up/escape", "x", 0o644)},
			wantErr: `entry "up/escape": openat up/escape: path escapes from parent`,
		},
		{
			name:    "write through an absolute link",
			entries: []entry{symlink("tmp", os.TempDir()), file("tmp/escape", "x", 0o644)},
			wantErr: `entry "tmp/escape": openat tmp/escape: path escapes from parent`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "root")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			err := Unpack(writeArchive(t, tc.entries...), dir)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Unpack: err = %v, want it to contain %q", err, tc.wantErr)

			}
			// Nothing beside the destination.
			names, err := os.ReadDir(parent)
			if err != nil {
				t.Fatal(err)
			}
			if len(names) != 1 {
				t.Errorf("entries next to the destination: %v", names)
			}
			if _, err := os.Lstat(filepath.Join(os.TempDir(), "escape")); err == nil {
				t.Errorf("%s written", filepath.Join(os.TempDir(), "escape"))
			}
		})
	}
}

func TestUnpackBadArchive(t *testing.T) {
	notGzip := filepath.Join(t.TempDir(), "plain.tar.gz")
	if err := os.WriteFile(notGzip, []byte("not gzip"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, archive, wantErr string
	}{
		{"missing", filepath.Join(t.TempDir(), "none.tar.gz"), "open archive: "},
		{"not gzip", notGzip, "read " + notGzip + ": "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Unpack(tc.archive, t.TempDir())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// fatalTB records Fatalf and stops the goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestUnpackTarGzFailsTest(t *testing.T) {
	archive := writeArchive(t, file("../escape", "x", 0o644))
	tb := &fatalTB{TB: t}
	done := make(chan string)
	go func() {
		defer func() { done <- tb.msg }()
		UnpackTarGz(tb, archive)
		tb.msg = "returned"
	}()
	msg := <-done
	want := "unpack " + archive + `: entry "../escape": name has a ".." element`
	if diff := cmp.Diff(want, msg); diff != "" {
		t.Errorf("Fatalf message (-want +got):\n%s", diff)
	}
}
