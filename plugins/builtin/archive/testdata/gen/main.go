//go:build ignore

// Command gen writes the archive plugin's test corpus: the malicious
// archives in testdata/malicious (each must be refused whole, with the
// bad member named, and nothing written outside the destination) and the
// good ones in testdata/good. Run from the package directory:
//
//	go run testdata/gen/main.go
//
// and commit its outputs together with this file.
package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"
)

var mtime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// member is one archive entry to write.
type member struct {
	name string
	typ  byte // tar type flag; for zip only Reg, Dir, Symlink are used
	mode int64
	body string // content, or link target
}

func reg(name, body string) member {
	return member{name: name, typ: tar.TypeReg, mode: 0o644, body: body}
}
func dir(name string) member { return member{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) member {
	return member{name: name, typ: tar.TypeSymlink, mode: 0o777, body: target}
}
func hardlink(name, target string) member {
	return member{name: name, typ: tar.TypeLink, mode: 0o644, body: target}
}

func tarBytes(ms []member) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		h := &tar.Header{Name: m.name, Typeflag: m.typ, Mode: m.mode, ModTime: mtime, Format: tar.FormatPAX}
		switch m.typ {
		case tar.TypeSymlink, tar.TypeLink:
			h.Linkname = m.body
		case tar.TypeReg:
			h.Size = int64(len(m.body))
		case tar.TypeChar, tar.TypeBlock:
			h.Devmajor, h.Devminor = 1, 3
		}
		if err := tw.WriteHeader(h); err != nil {
			log.Fatalf("tar header %q: %v", m.name, err)
		}
		if m.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(m.body)); err != nil {
				log.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		log.Fatal(err)
	}
	return buf.Bytes()
}

func tgzBytes(ms []member) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.ModTime = mtime
	zw.Write(tarBytes(ms))
	if err := zw.Close(); err != nil {
		log.Fatal(err)
	}
	return buf.Bytes()
}

func zipBytes(ms []member) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range ms {
		h := &zip.FileHeader{Name: m.name, Method: zip.Deflate, Modified: mtime}
		switch m.typ {
		case tar.TypeDir:
			h.SetMode(fs.ModeDir | fs.FileMode(m.mode))
		case tar.TypeSymlink:
			h.SetMode(fs.ModeSymlink | 0o777)
		default:
			h.SetMode(fs.FileMode(m.mode))
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			log.Fatalf("zip header %q: %v", m.name, err)
		}
		if m.typ != tar.TypeDir {
			w.Write([]byte(m.body))
		}
	}
	if err := zw.Close(); err != nil {
		log.Fatal(err)
	}
	return buf.Bytes()
}

func write(dir, name string, data []byte) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		log.Fatal(err)
	}
}

func main() {
	long := strings.Repeat("a", 200) + "/" + strings.Repeat("b", 200) + "/"
	longName := strings.Repeat(long, 11) + "cairn-long" // over 4096 bytes
	longElement := strings.Repeat("e", 300)

	mal := map[string][]member{
		"dotdot":             {reg("ok.txt", "fine"), reg("../cairn-escape-dotdot", "x")},
		"dotdot-deep":        {dir("a/"), reg("a/b/../../../cairn-escape-deep", "x")},
		"absolute":           {reg("/tmp/cairn-escape-absolute", "x")},
		"symlink-etc":        {symlink("etc", "/etc"), reg("etc/cairn-escape-symlink", "x")},
		"symlink-relative":   {dir("d/"), symlink("d/up", "../../outside"), reg("d/up/cairn-escape-up", "x")},
		"symlink-chain":      {dir("d/"), symlink("d/x", ".."), symlink("d/y", "x/.."), reg("d/y/cairn-escape-chain", "x")},
		"write-through-link": {dir("sub/"), symlink("lnk", "sub"), reg("lnk/cairn-through-link", "x")},
		"dot-file":           {reg(".", "x")},
		"long-name":          {reg(longName, "x")},
		"long-element":       {reg(longElement, "x")},
		"backslash":          {reg(`..\..\cairn-escape-backslash`, "x")},
	}
	tarOnly := map[string][]member{
		"hardlink-etc":     {hardlink("passwd", "/etc/passwd")},
		"hardlink-outside": {hardlink("h", "../outside/cairn-escape-hardlink")},
		"hardlink-missing": {reg("a.txt", "a"), hardlink("h", "not-in-archive")},
		"device":           {member{name: "cairn-null", typ: tar.TypeChar, mode: 0o666}},
		"block-device":     {member{name: "cairn-sda", typ: tar.TypeBlock, mode: 0o660}},
		"fifo":             {member{name: "cairn-fifo", typ: tar.TypeFifo, mode: 0o644}},
		"empty-name":       {reg("", "x")},
		"duplicate-link":   {reg("f", "x"), symlink("f", "/etc/passwd")},
	}
	out := "testdata/malicious"
	for name, ms := range mal {
		write(out, name+".tar", tarBytes(ms))
		write(out, name+".zip", zipBytes(ms))
	}
	for name, ms := range tarOnly {
		write(out, name+".tar", tarBytes(ms))
	}
	write(out, "dotdot.tar.gz", tgzBytes(mal["dotdot"]))
	write(out, "symlink-chain.tar.gz", tgzBytes(mal["symlink-chain"]))
	write(out, "hardlink-etc.tar.gz", tgzBytes(tarOnly["hardlink-etc"]))

	good := []member{
		dir("app-1.0/"),
		dir("app-1.0/bin/"),
		{name: "app-1.0/bin/run", typ: tar.TypeReg, mode: 0o755, body: "#!/bin/sh\necho run\n"},
		dir("app-1.0/etc/"),
		{name: "app-1.0/etc/secret.conf", typ: tar.TypeReg, mode: 0o600, body: "token=1\n"},
		reg("app-1.0/README", "read me\n"),
		reg("app-1.0/lib/deep/data.txt", "data\n"), // parents not in the archive
		symlink("app-1.0/current", "bin/run"),
		symlink("app-1.0/lib/up", "../etc"),
	}
	write("testdata/good", "app.tar", tarBytes(append(good, hardlink("app-1.0/README.link", "app-1.0/README"))))
	write("testdata/good", "app.tar.gz", tgzBytes(append(good, hardlink("app-1.0/README.link", "app-1.0/README"))))
	write("testdata/good", "app.zip", zipBytes(good))
	write("testdata/good", "app2.tar", tarBytes([]member{
		dir("app-1.0/"),
		reg("app-1.0/README", "read me, version 2\n"),
		reg("app-1.0/NEW", "new\n"),
	}))
}
