package exec

import (
	"errors"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

var (
	// ErrInvalidParams means the step's parameters failed validation.
	ErrInvalidParams = sdk.ErrInvalidParams
	// ErrNotFound means the program is not an executable file or not in PATH.
	ErrNotFound = errors.New("program not found")
	// ErrExitCode means the program exited with a code not in accept_exit_codes.
	ErrExitCode = errors.New("exit code not accepted")
	// ErrDir means the working directory does not resolve to a directory
	// inside the root.
	ErrDir = errors.New("bad working directory")
)
