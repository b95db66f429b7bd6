package readlimit

import "errors"

var (
	// ErrTooLarge is matched by every error for input past its limit
	// (a *LimitError).
	ErrTooLarge = errors.New("larger than its limit")
	// ErrNotRegular: the input must be a regular file and is a pipe, a
	// device, a socket or a directory.
	ErrNotRegular = errors.New("not a regular file")
)
