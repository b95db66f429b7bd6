package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/controller/blob"
	"github.com/cairn-ops/cairn/controller/dml"
	"github.com/cairn-ops/cairn/internal/limits"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// downloadChunk is the size of the data in one DownloadChunk.
const downloadChunk = 1 << 20

// artifacts serves the DML (controller/dml).
type artifacts struct {
	controllerv1.UnimplementedArtifactsServer
	*base
}

// artifactError maps the DML's errors to gRPC codes, then the rest as
// every service does.
func (s *artifacts) artifactError(method string, err error) error {
	var code codes.Code
	switch {
	case err == nil:
		return nil
	case errors.Is(err, dml.ErrTooLarge), errors.Is(err, dml.ErrLimit):
		code = codes.ResourceExhausted
	case errors.Is(err, dml.ErrInvalid), errors.Is(err, dml.ErrAmbiguous), errors.Is(err, dml.ErrDigestMismatch):
		code = codes.InvalidArgument
	case errors.Is(err, dml.ErrOffset), errors.Is(err, dml.ErrIncomplete):
		code = codes.FailedPrecondition
	case errors.Is(err, dml.ErrUploadNotFound):
		code = codes.NotFound
	case errors.Is(err, dml.ErrCorrupt), errors.Is(err, blob.ErrCorrupt):
		code = codes.DataLoss
	default:
		return s.rpcError(method, err)
	}
	return status.Error(code, err.Error())
}

// lib returns the DML, or an error when the controller runs without one.
func (s *artifacts) lib() (*dml.DML, error) {
	if s.DML == nil {
		return nil, status.Error(codes.Unavailable, "this controller has no definitive media library configured")
	}
	return s.DML, nil
}

func (s *artifacts) UploadStatus(ctx context.Context, req *controllerv1.UploadStatusRequest) (*controllerv1.UploadStatusResponse, error) {
	d, err := s.lib()
	if err != nil {
		return nil, err
	}
	var u *dml.Upload
	if req.GetUploadId() == "" {
		u, err = d.BeginUpload(ctx, actor(ctx))
		if err != nil {
			return nil, s.artifactError("UploadStatus", err)
		}
	} else if u, err = s.ownUpload(ctx, d, "UploadStatus", "read", req.GetUploadId()); err != nil {
		return nil, err
	}
	return &controllerv1.UploadStatusResponse{
		UploadId:      u.ID,
		ReceivedBytes: u.Received,
		SizeBytes:     u.Size,
		Name:          u.Name,
		Kind:          u.Kind,
		ExpiresAt:     u.ExpiresAt.UTC().Format(time.RFC3339),
		MaxBytes:      d.MaxBytes(),
	}, nil
}

// Push receives a header, then data, into an upload session. Everything
// received before the stream breaks stays in the session (UploadStatus
// says how much); the push completes when the declared size has arrived.
func (s *artifacts) Push(stream controllerv1.Artifacts_PushServer) error {
	d, err := s.lib()
	if err != nil {
		return err
	}
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return s.artifactError("Push", err)
	}
	h := first.GetHeader()
	if h == nil {
		return s.artifactError("Push", invalid("header", "the first message of a push must be its header"))
	}
	if h.GetUploadId() == "" {
		return s.artifactError("Push", invalid("upload_id", "open an upload with UploadStatus first"))
	}
	if _, err := s.ownUpload(ctx, d, "Push", "push into", h.GetUploadId()); err != nil {
		return err
	}
	meta := dml.Meta{Name: h.GetName(), Kind: h.GetKind(), Size: h.GetSizeBytes(), SHA256: h.GetSha256()}
	u, err := d.Declare(ctx, h.GetUploadId(), meta)
	if err != nil {
		return s.artifactError("Push", err)
	}
	if h.GetOffset() != u.Received {
		return s.artifactError("Push", fmt.Errorf("%w: upload %s holds %d bytes; push from offset %d, not %d", dml.ErrOffset, u.ID, u.Received, u.Received, h.GetOffset()))
	}
	offset := u.Received
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return s.artifactError("Push", err)
		}
		if m.GetHeader() != nil {
			// A broken protocol, not a broken stream: nothing to resume.
			refused := invalid("header", "only the first message of a push is a header; upload %s is discarded", u.ID)
			if err := d.Discard(ctx, u.ID); err != nil {
				refused = errors.Join(refused, err)
			}
			return s.artifactError("Push", refused)
		}
		if offset, err = d.Write(ctx, u.ID, offset, m.GetData()); err != nil {
			return s.artifactError("Push", err)
		}
	}
	rec, existed, err := d.Complete(ctx, u.ID, actor(ctx))
	if err != nil {
		return s.artifactError("Push", err)
	}
	if existed {
		rec = proto.Clone(rec).(*controllerv1.ArtifactRecord)
		rec.AlreadyStored = true
	}
	return stream.SendAndClose(rec)
}

// ownUpload returns the upload session id when the caller owns it (the
// user who opened it, whatever token they use now) or is an admin, and
// PermissionDenied otherwise: reading, pushing into (which a refused
// header ends with a discard) and discarding a session are its owner's.
func (s *artifacts) ownUpload(ctx context.Context, d *dml.DML, method, what, id string) (*dml.Upload, error) {
	u, err := d.Status(ctx, id)
	if err != nil {
		return nil, s.artifactError(method, err)
	}
	p, _ := auth.FromContext(ctx)
	if u.Owner != "user:"+p.User && !p.HasRole(auth.RoleAdmin) {
		return nil, status.Errorf(codes.PermissionDenied, "upload %s belongs to %s; only they or an admin may %s it", u.ID, u.Owner, what)
	}
	return u, nil
}

// DiscardUpload drops an unfinished upload: its owner gave up on it.
// Only the owner (the user who opened it, whatever token they use now)
// or an admin may.
func (s *artifacts) DiscardUpload(ctx context.Context, req *controllerv1.DiscardUploadRequest) (*controllerv1.DiscardUploadResponse, error) {
	d, err := s.lib()
	if err != nil {
		return nil, err
	}
	u, err := s.ownUpload(ctx, d, "DiscardUpload", "discard", req.GetUploadId())
	if err != nil {
		return nil, err
	}
	if err := d.Discard(ctx, u.ID); err != nil {
		return nil, s.artifactError("DiscardUpload", err)
	}
	return &controllerv1.DiscardUploadResponse{}, nil
}

func (s *artifacts) ListArtifacts(ctx context.Context, req *controllerv1.ListArtifactsRequest) (*controllerv1.ListArtifactsResponse, error) {
	d, err := s.lib()
	if err != nil {
		return nil, err
	}
	if err := checkOptional("name", limits.ArtifactName, req.GetName()); err != nil {
		return nil, s.artifactError("ListArtifacts", err)
	}
	if err := checkOptional("kind", limits.Word, req.GetKind()); err != nil {
		return nil, s.artifactError("ListArtifacts", err)
	}
	recs, err := d.List(ctx, dml.Filter{Name: req.GetName(), Kind: req.GetKind()})
	if err != nil {
		return nil, s.artifactError("ListArtifacts", err)
	}
	return &controllerv1.ListArtifactsResponse{Artifacts: recs}, nil
}

func (s *artifacts) GetArtifact(ctx context.Context, req *controllerv1.GetArtifactRequest) (*controllerv1.ArtifactRecord, error) {
	d, err := s.lib()
	if err != nil {
		return nil, err
	}
	rec, err := d.Get(ctx, req.GetDigest())
	return rec, s.artifactError("GetArtifact", err)
}

// Download streams the record, then the content; the DML verifies the
// digest as it reads, and a mismatch ends the stream with DataLoss.
func (s *artifacts) Download(req *controllerv1.GetArtifactRequest, stream controllerv1.Artifacts_DownloadServer) error {
	d, err := s.lib()
	if err != nil {
		return err
	}
	rec, r, err := d.Open(stream.Context(), req.GetDigest())
	if err != nil {
		return s.artifactError("Download", err)
	}
	defer r.Close()
	if err := stream.Send(&controllerv1.DownloadChunk{Artifact: rec}); err != nil {
		return err
	}
	buf := make([]byte, downloadChunk)
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if err := stream.Send(&controllerv1.DownloadChunk{Data: buf[:n]}); err != nil {
				return err
			}
		}
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return nil
		case err != nil:
			return s.artifactError("Download", err)
		}
	}
}

func (s *artifacts) Where(ctx context.Context, req *controllerv1.WhereRequest) (*controllerv1.WhereResponse, error) {
	d, err := s.lib()
	if err != nil {
		return nil, err
	}
	rec, err := d.Where(ctx, req.GetDigest())
	if err != nil {
		return nil, s.artifactError("Where", err)
	}
	return &controllerv1.WhereResponse{Digest: rec.GetDigest(), Installs: rec.GetInstalls()}, nil
}

func (s *artifacts) CollectGarbage(ctx context.Context, req *controllerv1.CollectGarbageRequest) (*controllerv1.CollectGarbageResponse, error) {
	d, err := s.lib()
	if err != nil {
		return nil, err
	}
	if s.ArtifactReferenced == nil {
		// Without releases nothing can say which artifacts are in use, and
		// "none is" would delete them all.
		return nil, status.Error(codes.FailedPrecondition, "garbage collection needs to know which releases reference which artifacts, and this controller has no release store yet: nothing removed")
	}
	res, err := d.CollectGarbage(ctx, actor(ctx), s.ArtifactReferenced, req.GetDryRun())
	if err != nil {
		return nil, s.artifactError("CollectGarbage", err)
	}
	return &controllerv1.CollectGarbageResponse{
		Removed:    res.Removed,
		FreedBytes: res.FreedBytes,
		DryRun:     req.GetDryRun(),
		Kept:       uint32(res.Kept),
	}, nil
}
