package file

import (
	"errors"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

var (
	// ErrInvalidParams means the step's parameters failed validation.
	ErrInvalidParams = sdk.ErrInvalidParams
	// ErrNotRegular means the path exists but is not a regular file (a
	// directory, a symlink, a device); the plugin manages regular files only.
	ErrNotRegular = errors.New("not a regular file")
	// ErrNoRecord means Rollback got a rollback record it cannot use.
	ErrNoRecord = errors.New("unusable rollback record")
)
