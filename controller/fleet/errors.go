package fleet

import "errors"

// Reasons a session ends from the controller's side; the agent sees them
// as the stream's status message.
var (
	// ErrReplaced ends a session when the same node opens a newer one.
	ErrReplaced = errors.New("replaced by a newer session from the same node")
	// ErrShutdown ends every session when the fleet stops.
	ErrShutdown = errors.New("controller shutting down")
	// ErrRevoked ends a revoked node's session and refuses its calls.
	ErrRevoked = errors.New("node revoked")
	// ErrCertificateRetired ends the session of a node whose certificate
	// was issued by a CA that retired (the end of a CA rotation's
	// overlap).
	ErrCertificateRetired = errors.New("node certificate issued by a retired CA")
)

// errForeignCommand means an agent reported on another node's command.
var errForeignCommand = errors.New("command belongs to another node")
