package builtin

import "errors"

// ErrUnknown means no built-in plugin has the name.
var ErrUnknown = errors.New("no built-in plugin")
