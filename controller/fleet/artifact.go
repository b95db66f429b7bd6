package fleet

import (
	"errors"
	"io"
	"os"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/controller/blob"
	"github.com/cairn-ops/cairn/controller/store"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// ArtifactChunkSize is the most data one ArtifactChunk carries.
const ArtifactChunkSize = 1 << 20

// FetchArtifact streams a DML artifact's bytes from the requested offset.
// A node may fetch an artifact only while one of its own deploy commands
// that lists the artifact is unfinished (pending or acknowledged). The
// first chunk carries the artifact's whole size; an offset equal to the
// size yields that one chunk and no data.
func (a *agentService) FetchArtifact(req *agentv1.FetchArtifactRequest, stream grpc.ServerStreamingServer[agentv1.ArtifactChunk]) error {
	f := a.f
	ctx := stream.Context()
	id, err := nodeID(ctx)
	if err != nil {
		return err
	}
	if _, err := f.liveNode(ctx, id); err != nil {
		return err
	}
	digest := req.GetDigest()
	if err := blob.Check(digest); err != nil {
		return status.Errorf(codes.InvalidArgument, "digest %q is not a sha256 digest (64 lowercase hex digits)", digest)
	}
	if req.GetOffset() < 0 {
		return status.Errorf(codes.InvalidArgument, "offset %d is negative", req.GetOffset())
	}
	var allowed bool
	err = f.st.View(ctx, func(tx store.Tx) error {
		cmds, err := tx.NodeCommands(id)
		if err != nil {
			return err
		}
		allowed = slices.ContainsFunc(cmds, func(c *controllerv1.CommandRecord) bool {
			return c.GetKind() == controllerv1.CommandKindDeploy && unfinished(c) && slices.ContainsFunc(c.GetDeploy().GetArtifacts(), func(r *agentv1.ArtifactRef) bool {
				return r.GetDigest() == digest
			})
		})
		return nil
	})
	if err != nil {
		return status.Errorf(codes.Internal, "read the commands of node %s: %v", id, err)
	}
	if !allowed {
		return status.Errorf(codes.PermissionDenied, "node %s has no unfinished deploy command that lists artifact %s", id, digest)
	}
	path, err := f.blobs.Path(digest)
	if errors.Is(err, blob.ErrNotFound) {
		return status.Errorf(codes.NotFound, "artifact %s is not in the DML", digest)
	}
	if err != nil {
		return status.Errorf(codes.Internal, "artifact %s: %v", digest, err)
	}
	file, err := os.Open(path)
	if err != nil {
		return status.Errorf(codes.Internal, "open artifact %s: %v", digest, err)
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return status.Errorf(codes.Internal, "artifact %s: %v", digest, err)
	}
	size, offset := info.Size(), req.GetOffset()
	if offset > size {
		return status.Errorf(codes.OutOfRange, "offset %d is beyond the end of artifact %s (%d bytes)", offset, digest, size)
	}
	if _, err := file.Seek(offset, io.SeekStart); err != nil {
		return status.Errorf(codes.Internal, "artifact %s: %v", digest, err)
	}
	f.log.Debug("artifact fetch", "node_id", id, "digest", digest, "offset", offset, "size_bytes", size)
	buf := make([]byte, ArtifactChunkSize)
	first := true
	for {
		n, rerr := io.ReadFull(file, buf)
		if n > 0 || first {
			chunk := &agentv1.ArtifactChunk{Data: buf[:n]}
			if first {
				chunk.SizeBytes, first = size, false
			}
			if err := stream.Send(chunk); err != nil {
				return err
			}
		}
		switch {
		case errors.Is(rerr, io.EOF), errors.Is(rerr, io.ErrUnexpectedEOF):
			return nil
		case rerr != nil:
			return status.Errorf(codes.Internal, "read artifact %s at offset %d: %v", digest, offset, rerr)
		}
		offset += int64(n)
	}
}
