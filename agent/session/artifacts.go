package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/internal/atomicfile"
	contentdigest "github.com/cairn-ops/cairn/internal/digest"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// ArtifactsDir is the artifact cache's directory in the data directory.
// It holds one file per DML artifact, named by its sha256:
//
//	artifacts/sha256/<digest>          fetched and verified
//	artifacts/sha256/<digest>.partial  being fetched; a retry resumes
//	                                   from its size
const ArtifactsDir = "artifacts"

// partialSuffix marks an artifact still being fetched.
const partialSuffix = ".partial"

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// artifactCache keeps the DML artifacts deploy commands need, by digest,
// so that an artifact is fetched once per agent, and a fetch cut off
// goes on where it stopped.
type artifactCache struct {
	dir string
	log *slog.Logger
}

func newArtifactCache(dataDir string, log *slog.Logger) *artifactCache {
	return &artifactCache{dir: filepath.Join(dataDir, ArtifactsDir, "sha256"), log: log}
}

// path is where the verified artifact digest lives.
func (c *artifactCache) path(digest string) string { return filepath.Join(c.dir, digest) }

// fetcher is the part of the controller's Agent service the cache uses.
type fetcher interface {
	FetchArtifact(ctx context.Context, in *agentv1.FetchArtifactRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[agentv1.ArtifactChunk], error)
}

// fetch returns the local file of the artifact ref names, fetching it
// from the controller unless the cache holds it already. The fetched
// bytes are verified against the digest before the file is moved into
// place; a file that does not verify is removed. A gRPC error the caller
// may retry on a new connection (see transient) is returned as it is,
// with the partial file kept for the retry to resume.
func (c *artifactCache) fetch(ctx context.Context, f fetcher, ref *agentv1.ArtifactRef) (string, error) {
	digest := ref.GetDigest()
	if !sha256Hex.MatchString(digest) {
		return "", fmt.Errorf("component %s: artifact digest %q is not a sha256 digest (64 lowercase hex digits)", ref.GetComponent(), digest)
	}
	final := c.path(digest)
	switch got, err := contentdigest.File(final); {
	case err == nil && got == digest:
		return final, nil
	case err == nil:
		c.log.Warn("cached artifact is corrupt, fetching it again", "digest", digest, "sha256", got)
		if err := os.Remove(final); err != nil {
			return "", fmt.Errorf("remove corrupt cached artifact: %w", err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("cached artifact %s: %w", digest, err)
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return "", fmt.Errorf("artifact cache: %w", err)
	}
	part := final + partialSuffix
	err := c.download(ctx, f, ref, part)
	if status.Code(err) == codes.OutOfRange {
		// The partial file is longer than the artifact: start over.
		c.log.Warn("partial artifact longer than the artifact, fetching it again", "digest", digest)
		if err := os.Remove(part); err != nil {
			return "", fmt.Errorf("remove partial artifact: %w", err)
		}
		err = c.download(ctx, f, ref, part)
	}
	if err != nil {
		return "", err
	}
	got, err := contentdigest.File(part)
	if err != nil {
		return "", fmt.Errorf("artifact %s: %w", digest, err)
	}
	if got != digest {
		if err := os.Remove(part); err != nil {
			c.log.Warn("cannot remove a fetched artifact that does not verify", "path", part, "err", err)
		}
		return "", fmt.Errorf("component %s: the artifact fetched for digest %s hashes to %s; it was discarded", ref.GetComponent(), digest, got)
	}
	if err := os.Rename(part, final); err != nil {
		return "", fmt.Errorf("artifact %s: %w", digest, err)
	}
	if err := atomicfile.SyncDir(c.dir); err != nil {
		return "", fmt.Errorf("artifact %s: %w", digest, err)
	}
	c.log.Info("artifact fetched", "component", ref.GetComponent(), "digest", digest)
	return final, nil
}

// download appends the artifact's bytes from the partial file's size on
// to the partial file, until the size the controller announced.
func (c *artifactCache) download(ctx context.Context, f fetcher, ref *agentv1.ArtifactRef, part string) error {
	digest := ref.GetDigest()
	file, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_APPEND, filePerm)
	if err != nil {
		return fmt.Errorf("artifact cache: %w", err)
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return fmt.Errorf("artifact cache: %w", err)
	}
	offset := info.Size()
	if offset > 0 {
		c.log.Info("resuming artifact fetch", "digest", digest, "offset", offset)
	}
	stream, err := f.FetchArtifact(ctx, &agentv1.FetchArtifactRequest{Digest: digest, Offset: offset})
	if err != nil {
		return err
	}
	size := int64(-1)
	for {
		chunk, rerr := stream.Recv()
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			// Keep what arrived for the retry.
			if err := file.Sync(); err != nil {
				return fmt.Errorf("artifact cache: %w", err)
			}
			return rerr
		}
		if size < 0 {
			size = chunk.GetSizeBytes()
			if want := ref.GetSizeBytes(); want > 0 && size != want {
				return fmt.Errorf("component %s: the controller has %d bytes for artifact %s, the deploy command says %d", ref.GetComponent(), size, digest, want)
			}
		}
		if offset+int64(len(chunk.GetData())) > size {
			return fmt.Errorf("component %s: the controller sent more than the %d bytes of artifact %s", ref.GetComponent(), size, digest)
		}
		if _, err := file.Write(chunk.GetData()); err != nil {
			return fmt.Errorf("artifact cache: %w", err)
		}
		offset += int64(len(chunk.GetData()))
	}
	if err := file.Sync(); err != nil {
		return fmt.Errorf("artifact cache: %w", err)
	}
	if err := file.Close(); err != nil {
		return fmt.Errorf("artifact cache: %w", err)
	}
	if size < 0 {
		return status.Errorf(codes.Unavailable, "artifact %s: the controller ended the transfer without sending anything", digest)
	}
	if offset != size {
		// Worth a retry on a new connection, which resumes.
		return status.Errorf(codes.Unavailable, "artifact %s: the transfer ended at byte %d of %d", digest, offset, size)
	}
	return nil
}
