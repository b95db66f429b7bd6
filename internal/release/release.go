package release

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cairn-ops/cairn/internal/digest"
)

// StateApproved is the State of a release that may be deployed.
const StateApproved = "APPROVED"

// Bundle is a sealed release as the controller hands it to agents.
// MaxBundleBytes bounds a bundle's JSON as read from a file: the
// manifest's canonical JSON (at most about manifest.MaxBytes, base64 in
// the bundle) and a few hundred bytes per component and approval.
const MaxBundleBytes = 4 << 20

type Bundle struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// ManifestCanonical is the manifest's canonical JSON
	// (manifest.Manifest.Canonical).
	ManifestCanonical []byte      `json:"manifest_canonical"`
	Components        []Component `json:"components"`
	// Digest is Digest(ManifestCanonical, Components).
	Digest string `json:"digest"`
	// Signature is the ed25519 signature of Digest's hex string.
	Signature         []byte     `json:"signature"`
	Approvals         []Approval `json:"approvals,omitempty"`
	ApprovalsRequired int        `json:"approvals_required"`
	// State is the release's state: DRAFT, SEALED, TESTED, APPROVED or
	// REJECTED.
	State string `json:"state"`
}

// Component is one artifact of a release and its sha256 (lowercase hex).
type Component struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
}

// Approval is one approver's decision, bound to the digest they approved.
type Approval struct {
	By            string `json:"by"`
	At            string `json:"at"`
	ReleaseDigest string `json:"release_digest"`
}

// Digest is the release digest: the lowercase hex sha256 of canonical, a
// newline, and "NAME=DIGEST\n" per component sorted by name.
func Digest(canonical []byte, comps []Component) string {
	sorted := slices.Clone(comps)
	slices.SortFunc(sorted, func(a, b Component) int { return strings.Compare(a.Name, b.Name) })
	h := sha256.New()
	h.Write(canonical)
	h.Write([]byte("\n"))
	for _, c := range sorted {
		fmt.Fprintf(h, "%s=%s\n", c.Name, c.Digest)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Sign sets b's Digest from its manifest and components and signs it
// with key.
func Sign(b *Bundle, key ed25519.PrivateKey) {
	b.Digest = Digest(b.ManifestCanonical, b.Components)
	b.Signature = ed25519.Sign(key, []byte(b.Digest))
}

// Verify checks b before anything of it runs: its digest is the one
// recomputed from its manifest and components (ErrTampered), a key of
// keys not retired at now signed it (ErrUnsigned, or ErrKeyRetired for a
// key whose rotation overlap has ended), it is approved by at least as
// many distinct approvers as it requires, each approval bound to this
// digest (ErrNotApproved), and each component's file in artifacts
// (component name → local path) has the component's sha256
// (ErrArtifact). The error names what failed.
func Verify(b *Bundle, keys Keys, now time.Time, artifacts map[string]string) error {
	id := b.Name + "@" + b.Version
	got := Digest(b.ManifestCanonical, b.Components)
	if b.Digest == "" {
		return fmt.Errorf("release %s: %w: the bundle has no digest (was it sealed?)", id, ErrUnsigned)
	}
	if got != b.Digest {
		return fmt.Errorf("release %s: %w: its digest is %s but its manifest and components hash to %s (the manifest or the component list changed after sealing)", id, ErrTampered, b.Digest, got)
	}
	if err := keys.CheckSignature(b.Digest, b.Signature, now); err != nil {
		return fmt.Errorf("release %s: %w", id, err)
	}
	if err := verifyApprovals(b, id); err != nil {
		return err
	}
	for _, c := range b.Components {
		path, ok := artifacts[c.Name]
		if !ok {
			return fmt.Errorf("release %s: %w: component %s has no local file to check", id, ErrArtifact, c.Name)
		}
		sum, err := digest.File(path)
		if err != nil {
			return fmt.Errorf("release %s: %w: component %s: %w", id, ErrArtifact, c.Name, err)
		}
		if sum != c.Digest {
			return fmt.Errorf("release %s: %w: component %s: sha256 of %s is %s, the signed release says %s", id, ErrArtifact, c.Name, path, sum, c.Digest)
		}
	}
	return nil
}

// verifyApprovals checks the approval record. The approvals are not
// covered by the signature, so the number required is also read from
// the signed manifest and the larger of the two counts.
func verifyApprovals(b *Bundle, id string) error {
	state := strings.TrimPrefix(b.State, "STATE_")
	if state != StateApproved {
		return fmt.Errorf("release %s: %w: its state is %s, not %s", id, ErrNotApproved, orNone(b.State), StateApproved)
	}
	required := max(b.ApprovalsRequired, 1)
	var m struct {
		Approvals struct {
			Required int `json:"required"`
		} `json:"approvals"`
	}
	if err := json.Unmarshal(b.ManifestCanonical, &m); err != nil {
		return fmt.Errorf("release %s: %w: its manifest is not canonical JSON: %w", id, ErrTampered, err)
	}
	required = max(required, m.Approvals.Required)
	by := map[string]bool{}
	var other []string
	for _, a := range b.Approvals {
		if a.ReleaseDigest != b.Digest {
			other = append(other, a.By)
			continue
		}
		if a.By != "" {
			by[a.By] = true
		}
	}
	if len(by) < required {
		elsewhere := ""
		if len(other) > 0 {
			elsewhere = fmt.Sprintf(" (approvals by %s are bound to another digest)", strings.Join(other, ", "))
		}
		return fmt.Errorf("release %s: %w: %d distinct approval(s) of digest %s, %d required%s", id, ErrNotApproved, len(by), b.Digest, required, elsewhere)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// PublicKey returns raw as an ed25519 public key: the form the agent
// stores at enrollment (the release_public_key of identity.json).
func PublicKey(raw []byte) (ed25519.PublicKey, error) {
	if len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("release public key: %d bytes, want %d (is the agent enrolled with a controller that signs releases?)", len(raw), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(slices.Clone(raw)), nil
}

// ParsePublicKeyPEM decodes a PEM "PUBLIC KEY" block (PKIX) holding an
// ed25519 key, as cairn-controller writes DATA/release.pub.pem.
func ParsePublicKeyPEM(data []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("release public key: no PEM PUBLIC KEY block")
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("release public key: %w", err)
	}
	pub, ok := key.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("release public key: not an ed25519 key (%T)", key)
	}
	return pub, nil
}
