package release

import "errors"

// Errors of the lifecycle; the API maps them to gRPC codes.
var (
	// ErrInvalid means an argument is wrong (a test result other than
	// pass or fail, an unknown render format).
	ErrInvalid = errors.New("invalid release request")
	// ErrExists means a release with the name and version exists: a
	// change is a new version.
	ErrExists = errors.New("release exists")
	// ErrState means the release is not in a state that allows the
	// transition.
	ErrState = errors.New("wrong release state")
	// ErrSeparation means the actor may not take the step because of an
	// earlier role in the same release (segregation of duties).
	ErrSeparation = errors.New("segregation of duties")
	// ErrAlreadyDecided means the approver has already decided on the
	// release.
	ErrAlreadyDecided = errors.New("already decided")
	// ErrArtifact means a component or evidence is missing from the DML,
	// or its contents do not match.
	ErrArtifact = errors.New("release artifact")
)
