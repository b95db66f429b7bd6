package rollout

import "errors"

// Errors the API maps to status codes. Each is wrapped with the details;
// check with errors.Is.
var (
	// ErrInvalid: the spec or request is malformed (InvalidArgument). The
	// message names the field and the value.
	ErrInvalid = errors.New("invalid rollout request")
	// ErrNotApproved: the release is not approved, or its approvals are
	// not bound to its digest, or it does not verify
	// (FailedPrecondition).
	ErrNotApproved = errors.New("release is not approved")
	// ErrState: the rollout is not in a state that allows the action, or
	// its nodes are in another rollout that is still going
	// (FailedPrecondition).
	ErrState = errors.New("not allowed in the rollout's state")
	// ErrNoNodes: the selector or service matches no node
	// (FailedPrecondition).
	ErrNoNodes = errors.New("no nodes to deploy to")
)
