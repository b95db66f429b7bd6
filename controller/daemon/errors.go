package daemon

import "errors"

// Errors returned by Init and NewServer; check with errors.Is.
var (
	// ErrInitialized means init found a data directory that already holds
	// a controller's store.
	ErrInitialized = errors.New("data directory already initialized")
	// ErrNotInitialized means serve found no store in the data directory.
	ErrNotInitialized = errors.New("data directory not initialized")
)
