package audit

import (
	"errors"

	"github.com/cairn-ops/cairn/internal/readlimit"
)

// Errors returned by Decode and Verify; check with errors.Is.
var (
	// ErrMalformed means the document is not a well-formed audit: empty,
	// truncated, not JSON, or with fields the schema does not have.
	ErrMalformed = errors.New("malformed audit")
	// ErrSchemaVersion means the document is written for another schema version.
	ErrSchemaVersion = errors.New("unsupported audit schema version")
	// ErrTampered means a recorded hash does not match the content: the
	// document was edited after it was sealed.
	ErrTampered = errors.New("audit hash mismatch (tampered or corrupted)")
	// ErrTooLarge means the document exceeds its limit (MaxDocumentBytes
	// for ReadFile and Read). It is readlimit.ErrTooLarge.
	ErrTooLarge = readlimit.ErrTooLarge
)
