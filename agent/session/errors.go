package session

import "errors"

// Errors returned by Enroll, LoadIdentity, New and Run; check with errors.Is.
var (
	// ErrNotEnrolled means the data directory holds no identity yet: the
	// agent has to enroll with a join token first.
	ErrNotEnrolled = errors.New("not enrolled")
	// ErrEnrollRefused means the controller refused the join token
	// (expired, used up or unknown). Retrying with the same token is
	// pointless.
	ErrEnrollRefused = errors.New("enrollment refused")
	// ErrUntrusted means the controller's certificate does not verify
	// against the CA the agent was given or has pinned.
	ErrUntrusted = errors.New("controller not trusted")
	// ErrRevoked means the controller revoked this node's identity.
	ErrRevoked = errors.New("node revoked")
	// ErrRefused means the controller refused this node's identity for
	// another reason (for example it does not know the node).
	ErrRefused = errors.New("node refused by the controller")
)
