package release

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/cairn-ops/cairn/controller/auditlog"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/manifest"
	signed "github.com/cairn-ops/cairn/internal/release"
	"github.com/cairn-ops/cairn/internal/stamp"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// Test results and decisions.
const (
	ResultPass      = "pass"
	ResultFail      = "fail"
	DecisionApprove = "approve"
	DecisionReject  = "reject"
)

// Object names the release in the audit log: "release/NAME@VERSION".
func Object(name, version string) string {
	return "release/" + name + "@" + version
}

// Create stores a DRAFT release of m. A component given by path needs
// its DML digest in digests (by component name); every component must be
// in the DML (artifacts looks one up; nil means tx.Artifact). A release
// with m's name and version must not exist: a change is a new version.
func Create(tx store.Tx, now time.Time, actor string, m *manifest.Manifest, yaml []byte, digests map[string]string, artifacts func(digest string) (*controllerv1.ArtifactRecord, error)) (*controllerv1.ReleaseRecord, error) {
	if artifacts == nil {
		artifacts = tx.Artifact
	}
	if err := CheckNew(tx, m.Name, m.Version); err != nil {
		return nil, err
	}
	canonical, err := m.Canonical()
	if err != nil {
		return nil, fmt.Errorf("canonical manifest: %w", err)
	}
	rec := &controllerv1.ReleaseRecord{
		Name:              m.Name,
		Version:           m.Version,
		State:             controllerv1.ReleaseRecord_STATE_DRAFT,
		ManifestYaml:      slices.Clone(yaml),
		ManifestCanonical: canonical,
		CreatedBy:         actor,
		CreatedAt:         stamp.Format(now),
		ApprovalsRequired: uint32(max(m.Approvals.Required, manifest.DefaultApprovals)),
		Service:           m.Service,
	}
	var problems []string
	for _, c := range m.Components {
		digest := c.Digest
		if c.Path != "" {
			digest = digests[c.Name]
			if digest == "" {
				problems = append(problems, fmt.Sprintf("component %s (%s): no DML digest given; push the file first", c.Name, c.Path))
				continue
			}
			if c.SHA256 != "" && !strings.EqualFold(c.SHA256, digest) {
				problems = append(problems, fmt.Sprintf("component %s: the manifest expects sha256 %s, but %s was pushed", c.Name, c.SHA256, digest))
				continue
			}
		}
		a, err := artifacts(digest)
		if errors.Is(err, store.ErrNotFound) {
			problems = append(problems, fmt.Sprintf("component %s: artifact %s is not in the DML", c.Name, digest))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("component %s: %w", c.Name, err)
		}
		rec.Components = append(rec.Components, &controllerv1.ReleaseComponent{
			Name: c.Name, Kind: c.Kind, Digest: a.GetDigest(), SizeBytes: a.GetSizeBytes(),
		})
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrArtifact, strings.Join(problems, "; "))
	}
	if err := put(tx, now, actor, "release.create", rec, map[string]string{"components": fmt.Sprint(len(rec.Components))}); err != nil {
		return nil, err
	}
	return rec, nil
}

// Digest is the release digest, by the one rule agents verify with
// (internal/release.Digest): sha256 (hex) over the canonical manifest, a
// newline, and a "name=digest" line per component in name order.
func Digest(canonical []byte, components []*controllerv1.ReleaseComponent) string {
	comps := make([]signed.Component, 0, len(components))
	for _, c := range components {
		comps = append(comps, signed.Component{Name: c.GetName(), Digest: c.GetDigest()})
	}
	return signed.Digest(canonical, comps)
}

// Seal fixes a DRAFT: its digest and the release key's signature of it.
func Seal(tx store.Tx, now time.Time, actor, name, version string, key ed25519.PrivateKey) (*controllerv1.ReleaseRecord, error) {
	rec, err := tx.Release(name, version)
	if err != nil {
		return nil, err
	}
	if rec.GetState() != controllerv1.ReleaseRecord_STATE_DRAFT {
		return nil, fmt.Errorf("%w: %s@%s is %s; only a draft can be sealed", ErrState, name, version, StateName(rec.GetState()))
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("seal: the controller has no release key")
	}
	rec.Digest = Digest(rec.GetManifestCanonical(), rec.GetComponents())
	rec.Signature = ed25519.Sign(key, []byte(rec.Digest))
	rec.SealedBy, rec.SealedAt = actor, stamp.Format(now)
	rec.State = controllerv1.ReleaseRecord_STATE_SEALED
	if err := put(tx, now, actor, "release.seal", rec, map[string]string{"digest": rec.Digest}); err != nil {
		return nil, err
	}
	return rec, nil
}

// RecordTest records a test of a SEALED or TESTED release. Its author,
// sealer and those who already decided on it cannot test it; a pass
// moves it to TESTED, a fail is recorded and leaves the state. Evidence
// digests must be in the DML.
func RecordTest(tx store.Tx, now time.Time, actor string, ref *controllerv1.ReleaseRef, result, note string, evidence []string) (*controllerv1.ReleaseRecord, error) {
	if result != ResultPass && result != ResultFail {
		return nil, fmt.Errorf("%w: result %q: want pass or fail", ErrInvalid, result)
	}
	rec, err := tx.Release(ref.GetName(), ref.GetVersion())
	if err != nil {
		return nil, err
	}
	switch s := rec.GetState(); s {
	case controllerv1.ReleaseRecord_STATE_SEALED, controllerv1.ReleaseRecord_STATE_TESTED:
	default:
		return nil, fmt.Errorf("%w: %s is %s; only a sealed release can be tested", ErrState, refString(rec), StateName(s))
	}
	if err := separate(tx, rec, actor, "test", false); err != nil {
		return nil, err
	}
	for _, d := range evidence {
		if _, err := tx.Artifact(d); errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%w: evidence %s is not in the DML; push it first", ErrArtifact, d)
		} else if err != nil {
			return nil, err
		}
	}
	rec.Tests = append(rec.Tests, &controllerv1.TestRecord{
		Tester: actor, Result: result, Note: note, Evidence: slices.Clone(evidence), RecordedAt: stamp.Format(now),
	})
	if result == ResultPass {
		rec.State = controllerv1.ReleaseRecord_STATE_TESTED
	}
	if err := put(tx, now, actor, "release.test", rec, map[string]string{"result": result, "evidence": strings.Join(evidence, ",")}); err != nil {
		return nil, err
	}
	return rec, nil
}

// Approve records an approval of a TESTED release, bound to its digest.
// Its author, sealer and testers cannot approve it, and an approver
// counts once; with approvals_required distinct approvals it is APPROVED.
func Approve(tx store.Tx, now time.Time, actor string, ref *controllerv1.ReleaseRef, note string) (*controllerv1.ReleaseRecord, error) {
	rec, err := decide(tx, actor, ref, DecisionApprove)
	if err != nil {
		return nil, err
	}
	rec.Decisions = append(rec.Decisions, &controllerv1.Decision{
		By: actor, Decision: DecisionApprove, Note: note, At: stamp.Format(now), ReleaseDigest: rec.GetDigest(),
	})
	n := Approvals(rec)
	if uint32(n) >= max(rec.GetApprovalsRequired(), 1) {
		rec.State = controllerv1.ReleaseRecord_STATE_APPROVED
	}
	details := map[string]string{"digest": rec.GetDigest(), "approvals": fmt.Sprintf("%d/%d", n, max(rec.GetApprovalsRequired(), 1))}
	if err := put(tx, now, actor, "release.approve", rec, details); err != nil {
		return nil, err
	}
	return rec, nil
}

// Reject rejects a SEALED or TESTED release; the same people as for
// Approve are excluded.
func Reject(tx store.Tx, now time.Time, actor string, ref *controllerv1.ReleaseRef, note string) (*controllerv1.ReleaseRecord, error) {
	rec, err := decide(tx, actor, ref, DecisionReject)
	if err != nil {
		return nil, err
	}
	rec.Decisions = append(rec.Decisions, &controllerv1.Decision{
		By: actor, Decision: DecisionReject, Note: note, At: stamp.Format(now), ReleaseDigest: rec.GetDigest(),
	})
	rec.State = controllerv1.ReleaseRecord_STATE_REJECTED
	if err := put(tx, now, actor, "release.reject", rec, map[string]string{"digest": rec.GetDigest(), "note": note}); err != nil {
		return nil, err
	}
	return rec, nil
}

// decide loads the release and checks that actor may decide on it.
func decide(tx store.Tx, actor string, ref *controllerv1.ReleaseRef, decision string) (*controllerv1.ReleaseRecord, error) {
	rec, err := tx.Release(ref.GetName(), ref.GetVersion())
	if err != nil {
		return nil, err
	}
	s := rec.GetState()
	switch {
	case decision == DecisionApprove && s != controllerv1.ReleaseRecord_STATE_TESTED:
		return nil, fmt.Errorf("%w: %s is %s; %s", ErrState, refString(rec), StateName(s), notApprovable(rec))
	case decision == DecisionReject && s != controllerv1.ReleaseRecord_STATE_SEALED && s != controllerv1.ReleaseRecord_STATE_TESTED:
		return nil, fmt.Errorf("%w: %s is %s; only a sealed or tested release can be rejected", ErrState, refString(rec), StateName(s))
	}
	if err := separate(tx, rec, actor, decision, true); err != nil {
		return nil, err
	}
	return rec, nil
}

// notApprovable says why a release in a state other than tested cannot be
// approved, and what would let it be.
func notApprovable(rec *controllerv1.ReleaseRecord) string {
	switch rec.GetState() {
	case controllerv1.ReleaseRecord_STATE_DRAFT:
		return "it must be sealed and pass a test before approval"
	case controllerv1.ReleaseRecord_STATE_SEALED:
		return "it needs a passing test before approval"
	case controllerv1.ReleaseRecord_STATE_APPROVED:
		return fmt.Sprintf("it is already approved (%d of %d approvals); nothing is left to decide", Approvals(rec), max(rec.GetApprovalsRequired(), 1))
	case controllerv1.ReleaseRecord_STATE_REJECTED:
		return "a rejected release cannot be approved; fix it and create a new version"
	}
	return "only a tested release can be approved"
}

// CheckNew returns ErrExists when the release name@version is stored: a
// release is created once, and a changed one needs a new version.
func CheckNew(tx store.Tx, name, version string) error {
	switch _, err := tx.Release(name, version); {
	case err == nil:
		return fmt.Errorf("%w: %s@%s; a changed release needs a new version", ErrExists, name, version)
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	return nil
}

// Approvals counts the distinct approvers bound to the release's digest:
// distinct users, whatever tokens they approved with.
func Approvals(rec *controllerv1.ReleaseRecord) int {
	seen := map[string]bool{}
	for _, d := range rec.GetDecisions() {
		if d.GetDecision() == DecisionApprove && d.GetReleaseDigest() == rec.GetDigest() {
			seen[holder(d.GetBy())] = true
		}
	}
	return len(seen)
}

// put stores rec and appends its audit-log entry.
func put(tx store.Tx, now time.Time, actor, action string, rec *controllerv1.ReleaseRecord, details map[string]string) error {
	if err := tx.PutRelease(rec); err != nil {
		return fmt.Errorf("store release %s: %w", refString(rec), err)
	}
	details["state"] = StateName(rec.GetState())
	_, err := auditlog.Append(tx, now, actor, action, Object(rec.GetName(), rec.GetVersion()), details)
	return err
}

// Verify recomputes the release digest from the stored canonical manifest
// and components, checks the signature with a key of keys not retired at
// now (a release signed by a retired key is refused by that key's name,
// signed.ErrKeyRetired), and re-hashes every
// component and evidence blob that open returns. It returns the problems
// found; none means the release is intact.
func Verify(rec *controllerv1.ReleaseRecord, keys signed.Keys, now time.Time, open func(digest string) (io.ReadCloser, error)) []string {
	var problems []string
	if rec.GetDigest() == "" {
		return []string{fmt.Sprintf("%s is not sealed: it has no digest to verify", refString(rec))}
	}
	if got := Digest(rec.GetManifestCanonical(), rec.GetComponents()); got != rec.GetDigest() {
		problems = append(problems, fmt.Sprintf("digest mismatch: the stored manifest and components hash to %s, but the release was sealed as %s", got, rec.GetDigest()))
	}
	if err := keys.CheckSignature(rec.GetDigest(), rec.GetSignature(), now); err != nil {
		problems = append(problems, "signature: "+err.Error())
	}
	check := func(what, digest string) {
		r, err := open(digest)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: artifact %s: %v", what, digest, err))
			return
		}
		defer r.Close()
		h := sha256.New()
		if _, err := io.Copy(h, r); err != nil {
			problems = append(problems, fmt.Sprintf("%s: artifact %s: read: %v", what, digest, err))
			return
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != digest {
			problems = append(problems, fmt.Sprintf("%s: artifact %s: contents hash to %s", what, digest, got))
		}
	}
	for _, c := range rec.GetComponents() {
		check("component "+c.GetName(), c.GetDigest())
	}
	for i, t := range rec.GetTests() {
		for _, d := range t.GetEvidence() {
			check(fmt.Sprintf("test %d evidence", i+1), d)
		}
	}
	return problems
}

// Referenced reports whether any release uses the artifact, as a
// component or as test evidence, for the DML's garbage collection. An
// error reading the store counts as referenced, so nothing is removed.
func Referenced(tx store.Tx, digest string) bool {
	recs, err := tx.Releases()
	if err != nil {
		return true
	}
	for _, r := range recs {
		for _, c := range r.GetComponents() {
			if c.GetDigest() == digest {
				return true
			}
		}
		for _, t := range r.GetTests() {
			if slices.Contains(t.GetEvidence(), digest) {
				return true
			}
		}
	}
	return false
}

// StateName is the state's lowercase name ("draft", "sealed", …).
func StateName(s controllerv1.ReleaseRecord_State) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "STATE_"))
}

func refString(rec *controllerv1.ReleaseRecord) string {
	return rec.GetName() + "@" + rec.GetVersion()
}
