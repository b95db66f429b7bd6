package store

import "errors"

// Errors returned by stores; check with errors.Is.
var (
	// ErrNotFound means the record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a write broke an ordering rule (a baseline or
	// audit-log entry out of sequence).
	ErrConflict = errors.New("conflict")
	// ErrReadOnly means a write was attempted in a View.
	ErrReadOnly = errors.New("read-only transaction")
	// ErrLocked means another process holds the store's file.
	ErrLocked = errors.New("store is locked by another process")
	// ErrSchema means the store's file was written by a newer Cairn.
	ErrSchema = errors.New("unsupported store schema version")
	// ErrInvalid means a record lacks a field its key is made of (an
	// empty ID, name, hash or node ID, or a NUL byte in one).
	ErrInvalid = errors.New("invalid record")
	// ErrClosed means the store was used after Close.
	ErrClosed = errors.New("store is closed")
)
