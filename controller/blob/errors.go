package blob

import "errors"

// Errors returned by Store; check with errors.Is.
var (
	// ErrNotFound means no blob has the digest.
	ErrNotFound = errors.New("blob not found")
	// ErrTooLarge means Put read more than its limit.
	ErrTooLarge = errors.New("blob too large")
	// ErrInvalidDigest means a digest is not 64 lowercase hex digits.
	ErrInvalidDigest = errors.New("invalid blob digest")
	// ErrCorrupt means a blob's content no longer hashes to its name.
	ErrCorrupt = errors.New("blob is corrupt")
)
