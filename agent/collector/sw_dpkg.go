package collector

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/cairn-ops/cairn/internal/readlimit"
)

// dpkgAdminDir is dpkg's database directory on the audited host.
const dpkgAdminDir = "/var/lib/dpkg"

// dpkgPackage is one stanza of dpkg's status database, reduced to the
// fields the packages collector reports.
type dpkgPackage struct {
	Name      string // lowercased, as dpkg stores it
	Version   string
	Arch      string
	MultiArch string
	Want      string // unknown, install, hold, deinstall, purge
	Flag      string // ok, reinstreq
	Status    string // not-installed, config-files, ..., installed
}

// Installed reports whether the package is installed: the third word of
// its Status field is "installed", whatever the selection (install,
// hold, deinstall, purge) or flag. This is dpkg's ${db:Status-Status}
// "installed"; config-files, half-installed, unpacked, half-configured
// and triggers-* states do not count.
func (p dpkgPackage) Installed() bool { return p.Status == "installed" }

// binaryPackage returns the name as dpkg-query's ${binary:Package} shows
// it: arch-qualified for Multi-Arch: same packages and for packages of a
// foreign architecture (neither native nor "all").
func (p dpkgPackage) binaryPackage(native string) string {
	if p.Arch == "" {
		return p.Name
	}
	if p.MultiArch == "same" || (p.Arch != native && p.Arch != "all") {
		return p.Name + ":" + p.Arch
	}
	return p.Name
}

var (
	dpkgWants    = []string{"unknown", "install", "hold", "deinstall", "purge"}
	dpkgFlags    = []string{"ok", "reinstreq", "hold", "hold-reinstreq"}
	dpkgStatuses = []string{"not-installed", "config-files", "half-installed", "unpacked",
		"half-configured", "triggers-awaited", "triggers-pending", "installed"}
)

// dpkgSyntaxError is a parse error at a line of a dpkg database file.
func dpkgSyntaxError(file string, line int, format string, args ...any) error {
	return fmt.Errorf("parse %s: line %d: %s: %w", file, line, fmt.Sprintf(format, args...), ErrMalformedDatabase)
}

// parseDpkgStatus reads a dpkg status-format file (RFC 822-style stanzas
// separated by blank lines; continuation lines start with a space or tab)
// in one pass and calls fn for every stanza, installed or not. file names
// the input in errors, which carry the line number.
//
// It rejects what dpkg itself refuses to load and that would change the
// package list: a line that is neither "Field: value" nor a continuation,
// a continuation with no field before it, a stanza without Package, a
// repeated Package/Version/Architecture/Status/Multi-Arch field, a Status
// that is not three known words, an installed package without Version, a
// Version with embedded spaces, and the same name:arch twice in one file.
func parseDpkgStatus(r io.Reader, file string, fn func(dpkgPackage) error) error {
	sc := readlimit.NewLines(r, file, maxLineBytes)

	var (
		lineNo    int
		cur       dpkgPackage
		inStanza  bool
		start     int // line the stanza started on
		seen      uint8
		haveField bool
		status    string
		seenKeys  = make(map[string]struct{}, 1024)
	)
	const (
		seenPackage = 1 << iota
		seenVersion
		seenArch
		seenStatus
		seenMultiArch
	)

	finish := func() error {
		if !inStanza {
			return nil
		}
		inStanza, haveField = false, false
		if seen&seenPackage == 0 {
			return dpkgSyntaxError(file, lineNo, "stanza starting at line %d has no Package field", start)
		}
		if seen&seenStatus != 0 {
			f := strings.Fields(status)
			if len(f) != 3 {
				return dpkgSyntaxError(file, lineNo, "package %s: Status %q is not three words", cur.Name, status)
			}
			if !swContains(dpkgWants, f[0]) || !swContains(dpkgFlags, f[1]) || !swContains(dpkgStatuses, f[2]) {
				return dpkgSyntaxError(file, lineNo, "package %s: invalid Status %q", cur.Name, status)
			}
			cur.Want, cur.Flag, cur.Status = f[0], f[1], f[2]
		} else {
			cur.Want, cur.Flag, cur.Status = "unknown", "ok", "not-installed"
		}
		if cur.Status == "installed" && cur.Version == "" {
			return dpkgSyntaxError(file, lineNo, "installed package %s has no Version", cur.Name)
		}
		key := cur.Name + ":" + cur.Arch
		if _, dup := seenKeys[key]; dup {
			return dpkgSyntaxError(file, lineNo, "package %s listed twice", key)
		}
		seenKeys[key] = struct{}{}
		return fn(cur)
	}

	for sc.Scan() {
		lineNo++
		line := sc.Bytes()
		if !inStanza && len(bytes.TrimLeft(line, " \t\r\v\f")) == 0 {
			continue // whitespace between stanzas
		}
		if len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
			// An empty line ends the stanza.
			if err := finish(); err != nil {
				return err
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if !haveField {
				return dpkgSyntaxError(file, lineNo, "continuation line outside a field")
			}
			continue // only multi-line fields continue; none of them is reported
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return dpkgSyntaxError(file, lineNo, "field name %q must be followed by a colon", swTrimSpace(line))
		}
		name := line[:colon]
		if len(name) == 0 || bytes.ContainsAny(name, " \t") {
			return dpkgSyntaxError(file, lineNo, "invalid field name %q", name)
		}
		if !inStanza {
			inStanza, start = true, lineNo
			cur, seen, status = dpkgPackage{}, 0, ""
		}
		haveField = true
		value := line[colon+1:]
		var bit uint8
		switch {
		case swEqualFold(name, "Package"):
			bit = seenPackage
			cur.Name = strings.ToLower(swTrimSpace(value))
			if cur.Name == "" {
				return dpkgSyntaxError(file, lineNo, "empty Package field")
			}
		case swEqualFold(name, "Version"):
			bit = seenVersion
			cur.Version = swTrimSpace(value)
			if strings.ContainsAny(cur.Version, " \t") {
				return dpkgSyntaxError(file, lineNo, "Version %q has embedded spaces", cur.Version)
			}
		case swEqualFold(name, "Architecture"):
			bit = seenArch
			cur.Arch = swTrimSpace(value)
		case swEqualFold(name, "Status"):
			bit = seenStatus
			status = swTrimSpace(value)
		case swEqualFold(name, "Multi-Arch"):
			bit = seenMultiArch
			cur.MultiArch = strings.ToLower(swTrimSpace(value))
		}
		if bit != 0 {
			if seen&bit != 0 {
				return dpkgSyntaxError(file, lineNo, "duplicate %s field", name)
			}
			seen |= bit
		}
	}
	if err := sc.Err(); err != nil {
		return readErr(file, err)
	}
	return finish()
}

// readDpkgDatabase returns the packages of the dpkg database in admindir:
// the status file with the journal files in updates/ applied on top, as
// dpkg-query reads it. Packages are keyed by name and architecture.
func readDpkgDatabase(admindir string) ([]dpkgPackage, error) {
	byKey := make(map[string]dpkgPackage, 1024)
	var order []string
	add := func(p dpkgPackage) error {
		k := p.Name + ":" + p.Arch
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = p
		return nil
	}
	statusFile := filepath.Join(admindir, "status")
	if err := parseDpkgFile(statusFile, add); err != nil {
		return nil, err
	}
	updates, err := os.ReadDir(filepath.Join(admindir, "updates"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read dpkg updates: %w", err)
	}
	var journal []string
	for _, e := range updates {
		if _, err := strconv.ParseUint(e.Name(), 10, 64); err == nil && e.Type().IsRegular() {
			journal = append(journal, e.Name())
		}
	}
	sort.Slice(journal, func(i, j int) bool {
		a, _ := strconv.ParseUint(journal[i], 10, 64)
		b, _ := strconv.ParseUint(journal[j], 10, 64)
		return a < b
	})
	for _, name := range journal {
		if err := parseDpkgFile(filepath.Join(admindir, "updates", name), add); err != nil {
			return nil, err
		}
	}
	pkgs := make([]dpkgPackage, 0, len(order))
	for _, k := range order {
		pkgs = append(pkgs, byKey[k])
	}
	return pkgs, nil
}

func parseDpkgFile(file string, fn func(dpkgPackage) error) error {
	f, err := openHostFile(file)
	if err != nil {
		return fmt.Errorf("open dpkg database: %w", err)
	}
	defer f.Close()
	return parseDpkgStatus(readlimit.NewReader(f, file, maxPackageDBBytes), file, fn)
}

func swContains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// trimSpaceString trims ASCII whitespace, as dpkg does around values.
func swTrimSpace(b []byte) string {
	return string(bytes.Trim(b, " \t\r\n\v\f"))
}

// asciiEqualFold reports whether b equals s ignoring ASCII case, without
// allocating.
func swEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c, d := b[i], s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}
