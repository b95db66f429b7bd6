package httpcheck

import "errors"

var (
	// ErrInvalidParams means the step's parameters failed validation.
	ErrInvalidParams = errors.New("invalid parameters")
	// ErrCheckFailed means the check ran, as an Apply step, and did not pass.
	ErrCheckFailed = errors.New("http check failed")
)
