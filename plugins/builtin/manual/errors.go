package manual

import (
	"errors"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

var (
	// ErrInvalidParams means the step's parameters failed validation.
	ErrInvalidParams = sdk.ErrInvalidParams
	// ErrAwaitingConfirmation means Apply ran without an operator's
	// confirmation; the error's message carries the instructions
	// ("waiting for an operator: <instructions>").
	ErrAwaitingConfirmation = errors.New("waiting for an operator")
)
