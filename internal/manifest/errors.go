package manifest

import "errors"

// ErrInvalid is what Parse and Load return (wrapped in an *Error listing
// every problem) when a manifest breaks the schema.
var ErrInvalid = errors.New("invalid release manifest")
