package report

import "errors"

// Errors of the report package; check them with errors.Is.
var (
	// ErrFormat means a report format is not one of Formats.
	ErrFormat = errors.New("unknown report format")
	// ErrMalformed means a file is not a report that carries a digest
	// (Inspect); the message says why.
	ErrMalformed = errors.New("malformed report")
)
