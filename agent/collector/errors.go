package collector

import (
	"errors"
	"fmt"
)

// Sentinel errors of the collectors. Check them with errors.Is; the
// returned errors wrap them with the file, line or path concerned.
var (
	// ErrNoSource means the source a collector reads does not exist under
	// the root at all (no package database, no systemd unit directory, no
	// /sys/bus/pci/devices), e.g. because the root is not a host's root
	// file system. The section is then not comparable; it is never
	// reported as empty.
	ErrNoSource = errors.New("nothing to collect")

	// ErrMalformedDatabase means a package database (dpkg status, apk
	// installed) could not be parsed. The error names the file and line.
	ErrMalformedDatabase = errors.New("malformed package database")

	// ErrOutsideRoot means a tracked path or pattern would resolve outside
	// the collector's root, e.g. "/../../etc/shadow" or a pattern with "..".
	ErrOutsideRoot = errors.New("path outside root")
)

// noSource returns an error wrapping ErrNoSource, its message formatted
// like fmt.Sprintf. The message names the paths looked for as they are on
// disk (Env.Path).
func noSource(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrNoSource)
}
