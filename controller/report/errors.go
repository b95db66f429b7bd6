package report

import "errors"

// Errors of the report package; check them with errors.Is.
var (
	// ErrFormat means a report format is not one of Formats.
	ErrFormat = errors.New("unknown report format")
)
