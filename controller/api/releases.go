package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/controller/blob"
	"github.com/cairn-ops/cairn/controller/release"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/limits"
	"github.com/cairn-ops/cairn/internal/manifest"
	signed "github.com/cairn-ops/cairn/internal/release"
	"github.com/cairn-ops/cairn/plugins/preflight"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// releases serves the release lifecycle (controller/release).
type releases struct {
	controllerv1.UnimplementedReleasesServer
	*base
}

// releaseError maps the lifecycle's errors to gRPC codes, then the rest
// as every service does.
func (s *base) releaseError(method string, err error) error {
	var code codes.Code
	switch {
	case err == nil:
		return nil
	case errors.Is(err, manifest.ErrInvalid), errors.Is(err, release.ErrInvalid), errors.Is(err, release.ErrArtifact):
		code = codes.InvalidArgument
	case errors.Is(err, release.ErrExists):
		code = codes.AlreadyExists
	case errors.Is(err, release.ErrSeparation):
		code = codes.PermissionDenied
	case errors.Is(err, release.ErrState), errors.Is(err, release.ErrAlreadyDecided):
		code = codes.FailedPrecondition
	default:
		return s.rpcError(method, err)
	}
	return status.Error(code, err.Error())
}

func checkRef(ref *controllerv1.ReleaseRef) error {
	if ref.GetName() == "" {
		return invalid("release.name", "required")
	}
	if ref.GetVersion() == "" {
		return invalid("release.version", "required")
	}
	if err := checkText("release.name", limits.ReleaseName, ref.GetName()); err != nil {
		return err
	}
	return checkText("release.version", limits.ReleaseVersion, ref.GetVersion())
}

// checkReleaseFilter checks a filter naming releases: "", NAME or
// NAME@VERSION.
func checkReleaseFilter(field, filter string) error {
	name, version, _ := strings.Cut(filter, "@")
	if err := checkOptional(field, limits.ReleaseName, name); err != nil {
		return err
	}
	return checkOptional(field, limits.ReleaseVersion, version)
}

// checkDigests checks the digests a request names: at most
// limits.ListEntries, each a sha256 (hex).
func checkDigests(field string, digests []string) error {
	if len(digests) > limits.ListEntries {
		return invalid(field, "%d entries; the limit is %d", len(digests), limits.ListEntries)
	}
	for i, d := range digests {
		if err := blob.Check(d); err != nil {
			return invalid(fmt.Sprintf("%s[%d]", field, i), "%s is not a sha256 digest (64 lowercase hex digits)", limits.Quote(d))
		}
	}
	return nil
}

// checkCreateRelease checks what CreateRelease takes besides the
// manifest, which manifest.Parse checks.
func checkCreateRelease(req *controllerv1.CreateReleaseRequest) error {
	if err := checkOptional("filename", limits.Filename, req.GetFilename()); err != nil {
		return err
	}
	if n := len(req.GetComponentDigests()); n > limits.ListEntries {
		return invalid("component_digests", "%d entries; the limit is %d", n, limits.ListEntries)
	}
	for _, c := range slices.Sorted(maps.Keys(req.GetComponentDigests())) {
		if err := checkText("component_digests", limits.ComponentName, c); err != nil {
			return err
		}
		if err := blob.Check(req.GetComponentDigests()[c]); err != nil {
			return invalid("component_digests["+c+"]", "%s is not a sha256 digest (64 lowercase hex digits)", limits.Quote(req.GetComponentDigests()[c]))
		}
	}
	return nil
}

func (s *releases) CreateRelease(ctx context.Context, req *controllerv1.CreateReleaseRequest) (*controllerv1.ReleaseRecord, error) {
	if err := checkCreateRelease(req); err != nil {
		return nil, s.releaseError("CreateRelease", err)
	}
	name := req.GetFilename()
	if name == "" {
		name = "release.yaml"
	}
	m, err := manifest.Parse(req.GetManifestYaml(), name)
	if err != nil {
		return nil, s.releaseError("CreateRelease", err)
	}
	if req.GetCheckOnly() {
		err := s.Store.View(ctx, func(tx store.Tx) error { return release.CheckNew(tx, m.Name, m.Version) })
		if err != nil {
			return nil, s.releaseError("CreateRelease", err)
		}
		return &controllerv1.ReleaseRecord{Name: m.Name, Version: m.Version, State: controllerv1.ReleaseRecord_STATE_DRAFT, Service: m.Service}, nil
	}
	expect, err := s.preflight(ctx, m, req.GetComponentDigests())
	if err != nil {
		return nil, s.releaseError("CreateRelease", err)
	}
	var rec *controllerv1.ReleaseRecord
	err = s.Store.Update(ctx, func(tx store.Tx) (err error) {
		rec, err = release.Create(tx, s.Now(), actor(ctx), m, req.GetManifestYaml(), req.GetComponentDigests(), tx.Artifact)
		if err != nil {
			return err
		}
		rec.ExpectJson = expect
		return tx.PutRelease(rec)
	})
	if err != nil {
		return nil, s.releaseError("CreateRelease", err)
	}
	return rec, nil
}

// preflight checks every step against its built-in plugin (Validate;
// Plan on an empty root with the components' DML files) and returns the
// manifest's expect merged with what the plans declare, as JSON. Plugins
// the controller does not have are refused: it cannot check them.
func (s *releases) preflight(ctx context.Context, m *manifest.Manifest, digests map[string]string) ([]byte, error) {
	paths := map[string]string{}
	for _, c := range m.Components {
		d := c.Digest
		if d == "" {
			d = digests[c.Name]
		}
		if d == "" || s.Blobs == nil {
			continue // release.Create reports it
		}
		if p, err := s.Blobs.Path(d); err == nil {
			paths[c.Name] = p
		}
	}
	r := preflight.Check(ctx, m, preflight.Options{Paths: paths})
	if len(r.Problems) > 0 {
		lines := make([]string, len(r.Problems))
		for i, p := range r.Problems {
			lines[i] = p.String()
		}
		return nil, fmt.Errorf("%w: %s", release.ErrInvalid, strings.Join(lines, "\n"))
	}
	merged := manifest.MergeDeclared(m, r.Declared)
	b, err := json.Marshal(merged.Expect)
	if err != nil {
		return nil, fmt.Errorf("encode expect: %w", err)
	}
	return b, nil
}

func (s *releases) SealRelease(ctx context.Context, req *controllerv1.ReleaseRef) (*controllerv1.ReleaseRecord, error) {
	if err := checkRef(req); err != nil {
		return nil, s.releaseError("SealRelease", err)
	}
	if s.ReleaseKeys == nil {
		return nil, status.Error(codes.Unavailable, "this controller has no release key configured")
	}
	var rec *controllerv1.ReleaseRecord
	err := s.Store.Update(ctx, func(tx store.Tx) (err error) {
		rec, err = release.Seal(tx, s.Now(), actor(ctx), req.GetName(), req.GetVersion(), s.ReleaseKeys.SigningKey())
		return err
	})
	if err != nil {
		return nil, s.releaseError("SealRelease", err)
	}
	return rec, nil
}

func (s *releases) RecordTest(ctx context.Context, req *controllerv1.RecordTestRequest) (*controllerv1.ReleaseRecord, error) {
	if err := checkRef(req.GetRelease()); err != nil {
		return nil, s.releaseError("RecordTest", err)
	}
	if err := checkOptional("note", limits.Note, req.GetNote()); err != nil {
		return nil, s.releaseError("RecordTest", err)
	}
	if err := checkDigests("evidence", req.GetEvidence()); err != nil {
		return nil, s.releaseError("RecordTest", err)
	}
	var rec *controllerv1.ReleaseRecord
	err := s.Store.Update(ctx, func(tx store.Tx) (err error) {
		rec, err = release.RecordTest(tx, s.Now(), actor(ctx), req.GetRelease(), req.GetResult(), req.GetNote(), req.GetEvidence())
		return err
	})
	if err != nil {
		return nil, s.releaseError("RecordTest", err)
	}
	return rec, nil
}

func (s *releases) ApproveRelease(ctx context.Context, req *controllerv1.DecisionRequest) (*controllerv1.ReleaseRecord, error) {
	return s.decide(ctx, "ApproveRelease", req, release.Approve)
}

func (s *releases) RejectRelease(ctx context.Context, req *controllerv1.DecisionRequest) (*controllerv1.ReleaseRecord, error) {
	return s.decide(ctx, "RejectRelease", req, release.Reject)
}

func (s *releases) decide(ctx context.Context, method string, req *controllerv1.DecisionRequest,
	fn func(store.Tx, time.Time, string, *controllerv1.ReleaseRef, string) (*controllerv1.ReleaseRecord, error)) (*controllerv1.ReleaseRecord, error) {
	if err := checkRef(req.GetRelease()); err != nil {
		return nil, s.releaseError(method, err)
	}
	if err := checkOptional("note", limits.Note, req.GetNote()); err != nil {
		return nil, s.releaseError(method, err)
	}
	var rec *controllerv1.ReleaseRecord
	err := s.Store.Update(ctx, func(tx store.Tx) (err error) {
		rec, err = fn(tx, s.Now(), actor(ctx), req.GetRelease(), req.GetNote())
		return err
	})
	if err != nil {
		return nil, s.releaseError(method, err)
	}
	return rec, nil
}

// get reads one release.
func (s *releases) get(ctx context.Context, ref *controllerv1.ReleaseRef) (*controllerv1.ReleaseRecord, error) {
	if err := checkRef(ref); err != nil {
		return nil, err
	}
	var rec *controllerv1.ReleaseRecord
	err := s.Store.View(ctx, func(tx store.Tx) (err error) {
		rec, err = tx.Release(ref.GetName(), ref.GetVersion())
		return err
	})
	return rec, err
}

func (s *releases) GetRelease(ctx context.Context, req *controllerv1.ReleaseRef) (*controllerv1.ReleaseRecord, error) {
	rec, err := s.get(ctx, req)
	if err != nil {
		return nil, s.releaseError("GetRelease", err)
	}
	return rec, nil
}

func (s *releases) ListReleases(ctx context.Context, req *controllerv1.ListReleasesRequest) (*controllerv1.ListReleasesResponse, error) {
	if err := checkOptional("name", limits.ReleaseName, req.GetName()); err != nil {
		return nil, s.releaseError("ListReleases", err)
	}
	resp := &controllerv1.ListReleasesResponse{}
	err := s.Store.View(ctx, func(tx store.Tx) error {
		all, err := tx.Releases()
		for _, r := range all {
			if req.GetName() == "" || r.GetName() == req.GetName() {
				resp.Releases = append(resp.Releases, r)
			}
		}
		return err
	})
	if err != nil {
		return nil, s.releaseError("ListReleases", err)
	}
	return resp, nil
}

func (s *releases) VerifyRelease(ctx context.Context, req *controllerv1.ReleaseRef) (*controllerv1.VerifyReleaseResponse, error) {
	rec, err := s.get(ctx, req)
	if err != nil {
		return nil, s.releaseError("VerifyRelease", err)
	}
	open := func(digest string) (io.ReadCloser, error) {
		if s.Blobs == nil {
			return nil, errors.New("this controller has no blob store")
		}
		return s.Blobs.Open(digest)
	}
	var keys signed.Keys
	if s.ReleaseKeys != nil {
		keys = s.ReleaseKeys.PublicKeys()
	}
	problems := release.Verify(rec, keys, s.Now(), open)
	return &controllerv1.VerifyReleaseResponse{Ok: len(problems) == 0, Problems: problems, Digest: rec.GetDigest()}, nil
}

func (s *releases) ReleaseNotes(ctx context.Context, req *controllerv1.RenderRequest) (*controllerv1.RenderResponse, error) {
	if err := checkOptional("format", limits.Word, req.GetFormat()); err != nil {
		return nil, s.releaseError("ReleaseNotes", err)
	}
	rec, err := s.get(ctx, req.GetRelease())
	if err != nil {
		return nil, s.releaseError("ReleaseNotes", err)
	}
	content, ctype, err := release.Notes(rec, req.GetFormat())
	if err != nil {
		return nil, s.releaseError("ReleaseNotes", err)
	}
	return &controllerv1.RenderResponse{Content: content, ContentType: ctype}, nil
}

func (s *releases) ReleaseDossier(ctx context.Context, req *controllerv1.RenderRequest) (*controllerv1.RenderResponse, error) {
	if err := checkRef(req.GetRelease()); err != nil {
		return nil, s.releaseError("ReleaseDossier", err)
	}
	if err := checkOptional("format", limits.Word, req.GetFormat()); err != nil {
		return nil, s.releaseError("ReleaseDossier", err)
	}
	var rec *controllerv1.ReleaseRecord
	var log []*controllerv1.AuditLogEntry
	err := s.Store.View(ctx, func(tx store.Tx) (err error) {
		if rec, err = tx.Release(req.GetRelease().GetName(), req.GetRelease().GetVersion()); err != nil {
			return err
		}
		log, err = tx.LogEntries(0, 0)
		return err
	})
	if err != nil {
		return nil, s.releaseError("ReleaseDossier", err)
	}
	content, ctype, err := release.Dossier(rec, log, req.GetFormat())
	if err != nil {
		return nil, s.releaseError("ReleaseDossier", err)
	}
	return &controllerv1.RenderResponse{Content: content, ContentType: ctype}, nil
}

// knownErrors serves the known errors of stored releases.
type knownErrors struct {
	controllerv1.UnimplementedKnownErrorsServer
	*base
}

// ListKnownErrors lists the known errors of every stored release (or of
// the one named by release: NAME or NAME@VERSION), by release; open_only
// leaves out resolved ones.
func (s *knownErrors) ListKnownErrors(ctx context.Context, req *controllerv1.ListKnownErrorsRequest) (*controllerv1.ListKnownErrorsResponse, error) {
	if err := checkReleaseFilter("release", req.GetRelease()); err != nil {
		return nil, s.rpcError("ListKnownErrors", err)
	}
	wantName, wantVersion, _ := strings.Cut(req.GetRelease(), "@")
	resp := &controllerv1.ListKnownErrorsResponse{}
	err := s.Store.View(ctx, func(tx store.Tx) error {
		all, err := tx.Releases()
		if err != nil {
			return err
		}
		for _, r := range all {
			if wantName != "" && r.GetName() != wantName || wantVersion != "" && r.GetVersion() != wantVersion {
				continue
			}
			ref := r.GetName() + "@" + r.GetVersion()
			m, err := manifest.Parse(r.GetManifestYaml(), ref+".yaml")
			if err != nil {
				return fmt.Errorf("parse stored manifest of %s: %w", ref, err)
			}
			for _, k := range m.KnownErrors {
				if req.GetOpenOnly() && k.Status == "resolved" {
					continue
				}
				resp.KnownErrors = append(resp.KnownErrors, &controllerv1.KnownErrorEntry{
					Release: ref, Id: k.ID, Summary: k.Summary, Symptom: k.Symptom, Workaround: k.Workaround, Status: k.Status,
				})
			}
		}
		return nil
	})
	if err != nil {
		return nil, s.rpcError("ListKnownErrors", err)
	}
	return resp, nil
}
