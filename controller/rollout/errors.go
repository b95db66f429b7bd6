package rollout

import (
	"errors"
	"fmt"

	"github.com/cairn-ops/cairn/controller/store"
)

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

// noRollout is the error for an unknown rollout ID: it wraps
// store.ErrNotFound and says where the IDs are.
type noRollout struct{ id string }

func (e noRollout) Error() string {
	return fmt.Sprintf("rollout %q: no such rollout ('cairnctl rollout list' shows them)", e.id)
}

func (e noRollout) Unwrap() error { return store.ErrNotFound }

// rolloutError wraps an error reading rollout id.
func rolloutError(id string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return noRollout{id: id}
	}
	return fmt.Errorf("rollout %s: %w", id, err)
}
