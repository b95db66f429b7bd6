package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// member is one archive entry a test writes.
type member struct {
	name string
	typ  byte // tar type flag; zipOf uses Reg, Dir and Symlink
	mode int64
	body string // content, or link target
}

func file(name, body string) member {
	return member{name: name, typ: tar.TypeReg, mode: 0o644, body: body}
}
func folder(name string) member { return member{name: name, typ: tar.TypeDir, mode: 0o755} }
func link(name, target string) member {
	return member{name: name, typ: tar.TypeSymlink, mode: 0o777, body: target}
}

var testTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// tarOf returns a tar archive of ms, as archive/tar writes it (with the
// two zero blocks at the end).
func tarOf(t testing.TB, ms ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		h := &tar.Header{Name: m.name, Typeflag: m.typ, Mode: m.mode, ModTime: testTime, Format: tar.FormatPAX}
		switch m.typ {
		case tar.TypeSymlink, tar.TypeLink:
			h.Linkname = m.body
		case tar.TypeReg:
			h.Size = int64(len(m.body))
		}
		if !isUTF8(m.name) || !isUTF8(m.body) {
			h.Format = tar.FormatGNU // PAX refuses to write invalid UTF-8 records
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %q: %v", m.name, err)
		}
		if m.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(m.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func isUTF8(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func gzipOf(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zipOf returns a zip archive of ms made on Unix (modes in the external
// attributes).
func zipOf(t testing.TB, ms ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range ms {
		h := &zip.FileHeader{Name: m.name, Method: zip.Deflate, Modified: testTime}
		switch m.typ {
		case tar.TypeDir:
			h.SetMode(fs.ModeDir | zipPerm(m.mode))
		case tar.TypeSymlink:
			h.SetMode(fs.ModeSymlink | 0o777)
		default:
			h.SetMode(zipPerm(m.mode))
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatalf("zip header %q: %v", m.name, err)
		}
		if m.typ != tar.TypeDir {
			w.Write([]byte(m.body))
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zipPerm(mode int64) fs.FileMode {
	m := fs.FileMode(mode) & fs.ModePerm
	if mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	if mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	return m
}

// writeArchive writes data to a file in a fresh temporary directory and
// returns its path.
func writeArchive(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func diffTrees(a, b any) string { return cmp.Diff(a, b) }
