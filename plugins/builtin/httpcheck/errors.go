package httpcheck

import (
	"errors"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

var (
	// ErrInvalidParams means the step's parameters failed validation.
	ErrInvalidParams = sdk.ErrInvalidParams
	// ErrCheckFailed means the check ran, as an Apply step, and did not pass.
	ErrCheckFailed = errors.New("http check failed")
)
