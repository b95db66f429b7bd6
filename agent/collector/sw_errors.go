package collector

import "errors"

// Sentinel errors of the software collectors. Check them with errors.Is;
// the returned errors wrap them with the file, line or path concerned.
var (
	// ErrMalformedDatabase means a package database (dpkg status, apk
	// installed) could not be parsed. The error names the file and line.
	ErrMalformedDatabase = errors.New("malformed package database")

	// ErrOutsideRoot means a tracked path or pattern would resolve outside
	// the collector's root, e.g. "/../../etc/shadow" or a pattern with "..".
	ErrOutsideRoot = errors.New("path outside root")
)
