package cms

import "errors"

// Errors returned by this package; check with errors.Is.
var (
	// ErrAuditMismatch means a stored audit document is not the one its
	// record names (its document hash differs from the record's ID).
	ErrAuditMismatch = errors.New("audit document does not match its record")
	// ErrTracked means a baseline was refused because of the tracked set
	// it would give its node: too many paths, or a path too long.
	ErrTracked = errors.New("tracked set refused")
)
