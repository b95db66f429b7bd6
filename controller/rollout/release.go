package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	ctlrelease "github.com/cairn-ops/cairn/controller/release"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/manifest"
	signed "github.com/cairn-ops/cairn/internal/release"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// releaseInfo is an approved release as the engine uses it, derived once
// from its record.
type releaseInfo struct {
	rec      *controllerv1.ReleaseRecord
	manifest *manifest.Manifest
	// file is the name the agent is given for the manifest, for errors.
	file string
	// expect is the merged expectation (the record's expect_json).
	expect manifest.Expect
	// components maps a component's name to its digest.
	components map[string]string
	// track are the paths of the file expectations: every audit of a
	// rollout collects them (besides the node's tracked set), so file
	// changes are visible. untrack are the tracked paths the release
	// stops tracking (expect.untrack): its post-audits leave them out.
	track     []string
	untrack   []string
	approvers []string
	bundle    []byte
	artifacts []*agentv1.ArtifactRef
}

// ref is NAME@VERSION.
func (r *releaseInfo) ref() string {
	return r.rec.GetName() + "@" + r.rec.GetVersion()
}

func refString(ref *controllerv1.ReleaseRef) string {
	return ref.GetName() + "@" + ref.GetVersion()
}

// newReleaseInfo derives what the engine needs from a release record.
func newReleaseInfo(rec *controllerv1.ReleaseRecord) (*releaseInfo, error) {
	id := rec.GetName() + "@" + rec.GetVersion()
	file := id + ".yaml"
	m, err := manifest.Parse(rec.GetManifestYaml(), file)
	if err != nil {
		return nil, fmt.Errorf("release %s: stored manifest: %w", id, err)
	}
	r := &releaseInfo{rec: rec, manifest: m, file: file, expect: m.Expect, components: map[string]string{}}
	if len(rec.GetExpectJson()) > 0 {
		var exp manifest.Expect
		if err := json.Unmarshal(rec.GetExpectJson(), &exp); err != nil {
			return nil, fmt.Errorf("release %s: stored expectations: %w", id, err)
		}
		r.expect = exp
	}
	for _, f := range r.expect.Files {
		r.track = append(r.track, f.Path)
	}
	r.untrack = r.expect.Untrack
	b := &signed.Bundle{
		Name:              rec.GetName(),
		Version:           rec.GetVersion(),
		ManifestCanonical: rec.GetManifestCanonical(),
		Digest:            rec.GetDigest(),
		Signature:         rec.GetSignature(),
		ApprovalsRequired: int(rec.GetApprovalsRequired()),
		State:             signed.StateApproved,
	}
	for _, c := range rec.GetComponents() {
		r.components[c.GetName()] = c.GetDigest()
		b.Components = append(b.Components, signed.Component{Name: c.GetName(), Digest: c.GetDigest()})
		r.artifacts = append(r.artifacts, &agentv1.ArtifactRef{Component: c.GetName(), Digest: c.GetDigest(), SizeBytes: c.GetSizeBytes()})
	}
	for _, d := range rec.GetDecisions() {
		if d.GetDecision() != ctlrelease.DecisionApprove || d.GetReleaseDigest() != rec.GetDigest() {
			continue
		}
		b.Approvals = append(b.Approvals, signed.Approval{By: d.GetBy(), At: d.GetAt(), ReleaseDigest: d.GetReleaseDigest()})
		if !slices.Contains(r.approvers, d.GetBy()) {
			r.approvers = append(r.approvers, d.GetBy())
		}
	}
	if r.bundle, err = json.Marshal(b); err != nil {
		return nil, fmt.Errorf("release %s: encode bundle: %w", id, err)
	}
	return r, nil
}

// deployCommand is the command that applies, rolls back or plans the
// release on a node.
func (r *releaseInfo) deployCommand(rolloutID, action string) *agentv1.DeployCommand {
	return &agentv1.DeployCommand{
		RolloutId:    rolloutID,
		Action:       action,
		ManifestYaml: r.rec.GetManifestYaml(),
		ManifestFile: r.file,
		BundleJson:   r.bundle,
		Artifacts:    r.artifacts,
	}
}

// stepNames are the names of the release's steps, verify checks and
// rollback steps: what a confirmation can name.
func (r *releaseInfo) stepNames() []string {
	var names []string
	for _, list := range r.manifest.Lists() {
		for _, st := range list {
			names = append(names, st.Name)
		}
	}
	return names
}

// release returns the release a rollout deploys, derived once per engine
// (an approved release does not change).
func (e *Engine) release(ctx context.Context, ref *controllerv1.ReleaseRef) (*releaseInfo, error) {
	key := refString(ref)
	e.relMu.Lock()
	r := e.releases[key]
	e.relMu.Unlock()
	if r != nil {
		return r, nil
	}
	var rec *controllerv1.ReleaseRecord
	err := e.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		rec, err = tx.Release(ref.GetName(), ref.GetVersion())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", key, err)
	}
	if r, err = newReleaseInfo(rec); err != nil {
		return nil, err
	}
	e.relMu.Lock()
	e.releases[key] = r
	e.relMu.Unlock()
	return r, nil
}

// approvedRelease loads the release ref names and checks that it may be
// rolled out: it is APPROVED by as many distinct approvers as it needs
// (the record's and its manifest's requirement), each approval bound to
// its digest, and its digest, signature and artifacts verify.
func (e *Engine) approvedRelease(ctx context.Context, ref *controllerv1.ReleaseRef) (*releaseInfo, error) {
	id := refString(ref)
	var rec *controllerv1.ReleaseRecord
	err := e.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		rec, err = tx.Release(ref.GetName(), ref.GetVersion())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", id, err)
	}
	if s := rec.GetState(); s != controllerv1.ReleaseRecord_STATE_APPROVED {
		return nil, fmt.Errorf("%w: release %s is %s; only an approved release can be rolled out", ErrNotApproved, id, ctlrelease.StateName(s))
	}
	if rec.GetDigest() == "" {
		return nil, fmt.Errorf("%w: release %s has no digest (it was never sealed)", ErrNotApproved, id)
	}
	r, err := newReleaseInfo(rec)
	if err != nil {
		return nil, err
	}
	required := max(int(rec.GetApprovalsRequired()), r.manifest.Approvals.Required, 1)
	if n := ctlrelease.Approvals(rec); n < required {
		var elsewhere []string
		for _, d := range rec.GetDecisions() {
			if d.GetDecision() == ctlrelease.DecisionApprove && d.GetReleaseDigest() != rec.GetDigest() {
				elsewhere = append(elsewhere, fmt.Sprintf("%s (digest %s)", d.GetBy(), orNone(d.GetReleaseDigest())))
			}
		}
		msg := fmt.Sprintf("release %s has %d approval(s) bound to its digest %s, %d required", id, n, rec.GetDigest(), required)
		if len(elsewhere) > 0 {
			msg += "; approvals bound to another digest do not count: " + strings.Join(elsewhere, ", ")
		}
		return nil, fmt.Errorf("%w: %s", ErrNotApproved, msg)
	}
	open := func(digest string) (io.ReadCloser, error) {
		if e.cfg.DML != nil {
			_, rc, err := e.cfg.DML.Open(ctx, digest)
			return rc, err
		}
		if e.cfg.Blobs != nil {
			return e.cfg.Blobs.Open(digest)
		}
		return nil, errors.New("the controller has no DML to read it from")
	}
	var keys signed.Keys
	if e.cfg.ReleaseKeys != nil {
		keys = e.cfg.ReleaseKeys.PublicKeys()
	}
	if problems := ctlrelease.Verify(rec, keys, e.cfg.Now(), open); len(problems) > 0 {
		return nil, fmt.Errorf("%w: release %s does not verify: %s", ErrNotApproved, id, strings.Join(problems, "; "))
	}
	return r, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
