package cms

import "errors"

// Errors returned by this package; check with errors.Is.
var (
	// ErrAuditMismatch means a stored audit document is not the one its
	// record names (its document hash differs from the record's ID).
	ErrAuditMismatch = errors.New("audit document does not match its record")
)
