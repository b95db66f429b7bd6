// Package release is the signed form of a release, shared by the
// controller (signs) and agents (verify).
//
// A release's digest is the lowercase hex sha256 of its manifest's
// canonical JSON (manifest.Manifest.Canonical), a newline, and one line
// "NAME=DIGEST\n" per component, sorted by name. The controller signs the
// digest's hex string with its ed25519 release key; an agent checks the
// digest, the signature, the approvals bound to the digest and the
// artifacts' sha256s before it runs any step (Verify).
package release
