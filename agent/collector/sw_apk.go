package collector

import (
	"fmt"
	"io"

	"github.com/cairn-ops/cairn/internal/readlimit"
)

// apkInstalled is apk-tools' database of installed packages.
const apkInstalled = "/lib/apk/db/installed"

// apkPackage is one stanza of apk's installed database.
type apkPackage struct {
	Name, Version, Arch string
}

// parseAPKInstalled reads apk's installed database: stanzas separated by
// blank lines, each line a one-letter field, a colon and a value
// ("P:musl"). P is the name, V the version, A the architecture; other
// fields are skipped. A stanza without P or V is an error naming the file
// and line.
func parseAPKInstalled(r io.Reader, file string, fn func(apkPackage) error) error {
	sc := readlimit.NewLines(r, file, maxLineBytes)
	var (
		cur    apkPackage
		in     bool
		lineNo int
	)
	finish := func() error {
		if !in {
			return nil
		}
		in = false
		if cur.Name == "" || cur.Version == "" {
			return fmt.Errorf("parse %s: line %d: package stanza without P: or V: field: %w", file, lineNo, ErrMalformedDatabase)
		}
		return fn(cur)
	}
	for sc.Scan() {
		lineNo++
		line := sc.Bytes()
		if len(line) == 0 {
			if err := finish(); err != nil {
				return err
			}
			continue
		}
		if len(line) < 2 || line[1] != ':' {
			return fmt.Errorf("parse %s: line %d: want \"X:value\", got %q: %w", file, lineNo, line, ErrMalformedDatabase)
		}
		if !in {
			in, cur = true, apkPackage{}
		}
		switch line[0] {
		case 'P':
			cur.Name = string(line[2:])
		case 'V':
			cur.Version = string(line[2:])
		case 'A':
			cur.Arch = string(line[2:])
		}
	}
	if err := sc.Err(); err != nil {
		return readErr(file, err)
	}
	return finish()
}

func readAPKInstalled(file string) ([]apkPackage, error) {
	f, err := openHostFile(file)
	if err != nil {
		return nil, fmt.Errorf("open apk database: %w", err)
	}
	defer f.Close()
	var pkgs []apkPackage
	err = parseAPKInstalled(readlimit.NewReader(f, file, maxPackageDBBytes), file, func(p apkPackage) error {
		pkgs = append(pkgs, p)
		return nil
	})
	return pkgs, err
}
