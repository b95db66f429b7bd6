package dpkg

import (
	"errors"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

var (
	// ErrBadDeb is returned when an artifact is not a readable Debian
	// package (dpkg-deb cannot read its control data).
	ErrBadDeb = errors.New("not a valid .deb")

	// ErrNoArtifact is returned when the step's artifact parameter names
	// no artifact of the step context.
	ErrNoArtifact = errors.New("artifact not provided")

	// ErrPackageMismatch is returned when the package parameter of an
	// install step differs from the Package field of the .deb.
	ErrPackageMismatch = errors.New("package does not match the .deb")

	// ErrNotCached is returned by Rollback of a remove or purge when the
	// .deb of the removed version is not in the cache directory, so the
	// package cannot be reinstalled.
	ErrNotCached = errors.New("no cached .deb to reinstall")

	// ErrBadRecord is returned by Rollback for a rollback record this
	// plugin did not write.
	ErrBadRecord = errors.New("malformed rollback record")

	// ErrInvalidParams is returned by Plan, Apply, Verify and Rollback
	// when the parameters do not pass Validate.
	ErrInvalidParams = sdk.ErrInvalidParams
)
