// Package collector reads one part of a host's inventory each: CPUs,
// memory, disks, NICs, PCI and GPU devices, DMI, the OS, installed
// packages, systemd units, tracked files, kernel modules and volatile
// facts. Every collector reads relative to a root directory, so tests run
// on fixture trees under testdata/, and fills exactly one section of an
// audit. The registry of collectors is the explicit map in registry.go.
//
// A collector returns an error when it cannot produce its section; it does
// not log. The caller (agent/inventory) records the error as the
// collector's status, so a failed collector never reads as "everything
// was removed". A collector whose source does not exist under the root at
// all fails with an error wrapping ErrNoSource; a source that exists and
// lists nothing is an empty section.
//
// Messages name the paths read as they are on disk (Env.Path): the root
// joined with the host path, e.g. "open /mnt/host/sys/block: no such file
// or directory". Warnings are single lines.
package collector

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// Env is what a collector reads from and the limits it works within.
type Env struct {
	// Root is the absolute directory the host's files are read under;
	// "/" for the running host.
	Root string
	// Track lists the paths and glob patterns the files collector records.
	Track []string
	// MaxFiles bounds how many tracked files are recorded.
	MaxFiles int
	// MaxHashBytes bounds how many bytes of tracked files are hashed.
	MaxHashBytes int64
	// Warn records something the collector could not read but could do
	// without. Warnings go into the collector's status; never nil.
	Warn func(msg string)
}

// Path returns the host path p (absolute, as seen on the audited host)
// under the root.
func (e Env) Path(p string) string {
	if e.Root == "" || e.Root == "/" {
		return filepath.Clean("/" + p)
	}
	return filepath.Join(e.Root, filepath.Clean("/"+p))
}

// IsHost reports whether the root is the running host's own root, so that
// live sources (a running systemd, rpm's database via the rpm binary) can
// be asked as well as files.
func (e Env) IsHost() bool {
	return e.Root == "" || e.Root == "/"
}

// Collector fills one section of an audit.
type Collector interface {
	// Section is the audit section the collector owns, e.g. "hardware.cpu".
	Section() string
	// Collect fills the collector's section of out, which is a fresh audit
	// used by this collector alone. It returns an error when the section
	// cannot be produced at all; partial trouble goes to env.Warn.
	Collect(ctx context.Context, env Env, out *inventoryv1.Audit) error
}

// warn passes msg to e.Warn as a single line: the newlines of multi-line
// errors (errors.Join, a tool's stderr) become "; ".
func (e Env) warn(msg string) {
	e.Warn(oneLine(msg))
}

// warnf is warn with fmt.Sprintf formatting.
func (e Env) warnf(format string, args ...any) {
	e.warn(fmt.Sprintf(format, args...))
}

// oneLine joins the non-blank lines of s with "; ".
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	var lines []string
	for _, l := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}

// pathErrCause strips an *fs.PathError to its cause, for messages that
// name the path themselves: os.Root reports paths relative to the root.
func pathErrCause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// trimNul trims whitespace and NUL bytes, as sysfs and DMI strings carry.
func trimNul(s string) string {
	return strings.Trim(s, " \t\r\n\x00")
}
