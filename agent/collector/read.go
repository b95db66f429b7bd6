package collector

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cairn-ops/cairn/internal/readlimit"
)

// Limits on what collectors read under the root. The tree being audited
// need not be the running host's (an image, a mounted disk, a test
// fixture), so nothing in it is trusted to be small or even a file: a file
// past its limit fails its collector, or is a warning where the collector
// can do without it, with an error naming the file on disk and the limit;
// a named pipe, device or socket where a file is expected (a symlink to
// /dev/zero, say) is refused without being opened. What the ghw library
// reads itself (CPU, block, network, PCI and GPU details from /sys and
// /proc) is outside these limits.
const (
	// maxAttrBytes: one sysfs or procfs attribute, a udev database entry,
	// /etc/hostname, /run/systemd/container. Sysfs attributes are at most
	// a page.
	maxAttrBytes = 64 << 10
	// maxProcBytes: /proc/cpuinfo, /proc/meminfo, /proc/stat,
	// /proc/modules, /proc/1/environ, which grow with CPUs, interrupts
	// and modules (a few MiB on the largest machines).
	maxProcBytes = 16 << 20
	// maxSMBIOSBytes: the SMBIOS (DMI) table; SMBIOS 2 tables are at most
	// 64 KiB.
	maxSMBIOSBytes = 16 << 20
	// maxConfigBytes: os-release, lsb-release, debian_version and the
	// like, and systemd unit files.
	maxConfigBytes = 1 << 20
	// maxPackageDBBytes: dpkg's status file (and its updates), apk's
	// installed database: about 3 MiB per thousand packages.
	maxPackageDBBytes = 512 << 20
	// maxAccountsBytes: /etc/passwd and /etc/group, for the names of
	// tracked files' owners (a million accounts is about 64 MiB).
	maxAccountsBytes = 64 << 20
	// maxPCIIDsBytes: pci.ids, about 1.5 MiB (compressed or not).
	maxPCIIDsBytes = 64 << 20
	// maxLineBytes: one line of any file above.
	maxLineBytes = 16 << 20
	// maxToolOutputBytes: what rpm -qa or systemctl list-units prints,
	// and maxToolErrBytes what they print on stderr.
	maxToolOutputBytes = 256 << 20
	maxToolErrBytes    = 64 << 10
)

// readHostFile reads the host file p (an absolute path as seen on the
// audited host) under the root, at most limit bytes; it must be a regular
// file. Errors name the path on disk.
func readHostFile(env Env, p string, limit int64) ([]byte, error) {
	return readlimit.File(env.Path(p), "", limit)
}

// hostFileLines opens the host file p under the root for reading line by
// line, at most limit bytes in all and maxLineBytes a line; it must be a
// regular file. Close the returned closer.
func hostFileLines(env Env, p string, limit int64) (*readlimit.Lines, io.Closer, error) {
	return fileLines(env.Path(p), limit)
}

// fileLines is hostFileLines for a path on disk.
func fileLines(path string, limit int64) (*readlimit.Lines, io.Closer, error) {
	f, err := readlimit.Open(path)
	if err != nil {
		return nil, nil, err
	}
	return readlimit.NewLines(readlimit.NewReader(f, path, limit), path, maxLineBytes), f, nil
}

// openHostFile opens the regular file at path on disk for a reader that
// bounds itself.
func openHostFile(path string) (*os.File, error) {
	return readlimit.Open(path)
}

// readErr wraps an error reading file, unless it already names the file
// (a *readlimit.LimitError does).
func readErr(file string, err error) error {
	if errors.Is(err, readlimit.ErrTooLarge) {
		return err
	}
	return fmt.Errorf("read %s: %w", file, err)
}

// toolError is the error of a tool a collector ran: its output over the
// limit, or how it failed and what it said on stderr.
func toolError(what string, err error, stdout, stderr *readlimit.Output) error {
	if e := stdout.Err(); e != nil {
		return fmt.Errorf("%s: %w", what, e)
	}
	return fmt.Errorf("%s: %w: %s", what, err, oneLine(strings.TrimSpace(stderr.String())))
}

// unreadable reports whether err says a file is there but is not one a
// collector reads: over its limit, or not a regular file. Optional reads
// that skip a missing file quietly warn about these.
func unreadable(err error) bool {
	return errors.Is(err, readlimit.ErrTooLarge) || errors.Is(err, readlimit.ErrNotRegular)
}
