package manual

import "errors"

var (
	// ErrInvalidParams means the step's parameters failed validation.
	ErrInvalidParams = errors.New("invalid parameters")
	// ErrAwaitingConfirmation means Apply ran without an operator's
	// confirmation; the error's message carries the instructions
	// ("waiting for an operator: <instructions>").
	ErrAwaitingConfirmation = errors.New("waiting for an operator")
)
