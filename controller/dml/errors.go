package dml

import "errors"

// Errors returned by the DML; check with errors.Is. A missing artifact is
// store.ErrNotFound.
var (
	// ErrInvalid means a name, kind, digest, upload ID or header is wrong;
	// the message names it.
	ErrInvalid = errors.New("invalid artifact request")
	// ErrTooLarge means an upload declared more bytes than the library
	// accepts (Options.MaxBytes). The upload is discarded.
	ErrTooLarge = errors.New("artifact too large")
	// ErrOffset means a write did not start where the upload ends: ask
	// Status and continue from its Received.
	ErrOffset = errors.New("upload offset mismatch")
	// ErrIncomplete means Complete was called before the declared size
	// arrived.
	ErrIncomplete = errors.New("upload incomplete")
	// ErrDigestMismatch means the content does not hash to the sha256
	// the upload declared. The upload is discarded.
	ErrDigestMismatch = errors.New("artifact digest mismatch")
	// ErrLimit means an upload session would exceed a cap on unfinished
	// uploads (SessionLimits); the message names the cap, the current use
	// and how to free it. The refused upload is discarded.
	ErrLimit = errors.New("upload limit reached")
	// ErrUploadNotFound means there is no such upload session, or it
	// expired.
	ErrUploadNotFound = errors.New("upload not found")
	// ErrAmbiguous means a digest prefix matches more than one artifact.
	ErrAmbiguous = errors.New("ambiguous digest prefix")
	// ErrCorrupt means a stored artifact no longer hashes to its digest.
	ErrCorrupt = errors.New("artifact is corrupt")
)
