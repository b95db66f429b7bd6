package apply

import "errors"

// Errors returned by Run and Check; check with errors.Is.
var (
	// ErrFailed means a step or a verify check failed (the report says
	// which, and whether rollback ran).
	ErrFailed = errors.New("deployment failed")
	// ErrInterrupted means a step of this deployment was cut off by a
	// crash and its plugin is not idempotent: Run runs nothing until an
	// operator resolves it with `cairn-agent journal resolve`; Undo
	// undoes everything else and fails with it when the step left no
	// undo record.
	ErrInterrupted = errors.New("deployment has an interrupted step")
	// ErrArtifact means a component's file is missing or its sha256 is
	// not the manifest's.
	ErrArtifact = errors.New("artifact check failed")
	// ErrConfirmation means a step needs an operator's confirmation and
	// none was given.
	ErrConfirmation = errors.New("operator confirmation needed")
	// ErrUnverified means the runner was given a signed release whose
	// digest, signature, approvals or artifacts do not verify (it also
	// wraps the internal/release error saying which): no step ran.
	ErrUnverified = errors.New("release does not verify")
)
