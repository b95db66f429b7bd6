package release

import "errors"

// Errors returned by Verify; check with errors.Is. The wrapping error
// says exactly what failed.
var (
	// ErrTampered means the bundle's digest is not the one recomputed
	// from its manifest and components: the manifest or the component
	// list changed after sealing.
	ErrTampered = errors.New("release bundle tampered with")
	// ErrUnsigned means the bundle has no signature, or its signature
	// does not verify with the controller's release key.
	ErrUnsigned = errors.New("release signature does not verify")
	// ErrKeyRetired means the bundle was signed by a release key whose
	// rotation overlap has ended (cairn-controller rotate signing-key).
	ErrKeyRetired = errors.New("release signed by a retired key")
	// ErrNotApproved means the release is not approved, or has fewer
	// distinct approvals bound to its digest than it requires.
	ErrNotApproved = errors.New("release not approved")
	// ErrArtifact means an artifact file is missing or its sha256 is not
	// its component's digest.
	ErrArtifact = errors.New("release artifact does not match")
)
