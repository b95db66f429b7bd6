package journal

import "errors"

// Errors returned by the journal; check with errors.Is.
var (
	// ErrLocked means another process (another cairn-agent) holds the
	// journal file.
	ErrLocked = errors.New("journal is locked by another process")
	// ErrSchema means the journal was written by a newer cairn-agent.
	ErrSchema = errors.New("unsupported journal schema version")
	// ErrNotFound means no such deployment or step.
	ErrNotFound = errors.New("not found")
	// ErrAmbiguous means a deployment ID prefix matches more than one
	// deployment.
	ErrAmbiguous = errors.New("ambiguous deployment ID prefix")
	// ErrTransition means a step was asked to move to a state its current
	// state does not lead to (resolving a step that is not interrupted,
	// finishing one that is not running).
	ErrTransition = errors.New("invalid step state transition")
)
