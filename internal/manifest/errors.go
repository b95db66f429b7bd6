package manifest

import "errors"

// ErrInvalid is what Parse and Load return (wrapped in an *Error listing
// every problem) when a manifest breaks the schema.
var ErrInvalid = errors.New("invalid release manifest")

// ErrOutside is what LocalPath returns (wrapped) for a component whose
// file is outside the directory component paths are relative to.
var ErrOutside = errors.New("component file outside its directory")
