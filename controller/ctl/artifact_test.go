package ctl

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-ops/cairn/internal/termsafe"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// fakeArtifacts is the fake controller's DML: uploads and artifacts in
// memory. breaks makes that many Push streams fail with Unavailable after
// their first data chunk, as a dropped connection would; corrupt makes
// Download send altered content.
type fakeArtifacts struct {
	controllerv1.UnimplementedArtifactsServer

	mu        sync.Mutex
	uploads   map[string][]byte
	artifacts map[string]*controllerv1.ArtifactRecord
	content   map[string][]byte
	pushes    int
	nextID    int
	breaks    int
	corrupt   bool
	gcDryRun  []bool
	// interrupt, when set, is called once a push's first data arrives:
	// the user presses Ctrl-C.
	interrupt func()
	discarded []string
}

func newFakeArtifacts() *fakeArtifacts {
	return &fakeArtifacts{uploads: map[string][]byte{}, artifacts: map[string]*controllerv1.ArtifactRecord{}, content: map[string][]byte{}}
}

func (f *fakeArtifacts) UploadStatus(_ context.Context, req *controllerv1.UploadStatusRequest) (*controllerv1.UploadStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := req.GetUploadId()
	if id == "" {
		f.nextID++
		id = fmt.Sprintf("%032d", f.nextID)
		f.uploads[id] = []byte{}
	}
	data, ok := f.uploads[id]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "upload not found: %s", id)
	}
	return &controllerv1.UploadStatusResponse{UploadId: id, ReceivedBytes: int64(len(data)), MaxBytes: 1 << 30}, nil
}

func (f *fakeArtifacts) Push(stream grpc.ClientStreamingServer[controllerv1.PushRequest, controllerv1.ArtifactRecord]) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	h := first.GetHeader()
	f.mu.Lock()
	f.pushes++
	brk := f.breaks > 0
	if brk {
		f.breaks--
	}
	data, ok := f.uploads[h.GetUploadId()]
	f.mu.Unlock()
	if !ok {
		return status.Error(codes.NotFound, "upload not found")
	}
	if int64(len(data)) != h.GetOffset() {
		return status.Errorf(codes.FailedPrecondition, "offset %d, have %d", h.GetOffset(), len(data))
	}
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		f.mu.Lock()
		f.uploads[h.GetUploadId()] = append(f.uploads[h.GetUploadId()], m.GetData()...)
		interrupt := f.interrupt
		f.interrupt = nil
		f.mu.Unlock()
		if interrupt != nil {
			interrupt()
			<-stream.Context().Done()
			return status.FromContextError(stream.Context().Err()).Err()
		}
		if brk {
			return status.Error(codes.Unavailable, "connection reset")
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	data = f.uploads[h.GetUploadId()]
	if int64(len(data)) != h.GetSizeBytes() {
		return status.Errorf(codes.FailedPrecondition, "incomplete: %d of %d", len(data), h.GetSizeBytes())
	}
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	delete(f.uploads, h.GetUploadId())
	if rec, ok := f.artifacts[digest]; ok {
		rec = proto.Clone(rec).(*controllerv1.ArtifactRecord)
		rec.AlreadyStored = true
		return stream.SendAndClose(rec)
	}
	rec := &controllerv1.ArtifactRecord{Digest: digest, Name: h.GetName(), Kind: h.GetKind(), SizeBytes: h.GetSizeBytes(), CreatedBy: "user:admin", CreatedAt: ts(0)}
	f.artifacts[digest], f.content[digest] = rec, data
	return stream.SendAndClose(rec)
}

func (f *fakeArtifacts) DiscardUpload(_ context.Context, req *controllerv1.DiscardUploadRequest) (*controllerv1.DiscardUploadResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.uploads[req.GetUploadId()]; !ok {
		return nil, status.Errorf(codes.NotFound, "upload not found: %s", req.GetUploadId())
	}
	delete(f.uploads, req.GetUploadId())
	f.discarded = append(f.discarded, req.GetUploadId())
	return &controllerv1.DiscardUploadResponse{}, nil
}

func (f *fakeArtifacts) find(digest string) (*controllerv1.ArtifactRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for d, rec := range f.artifacts {
		if strings.HasPrefix(d, digest) {
			return rec, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "artifact %s: not found", digest)
}

func (f *fakeArtifacts) ListArtifacts(context.Context, *controllerv1.ListArtifactsRequest) (*controllerv1.ListArtifactsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &controllerv1.ListArtifactsResponse{}
	for _, rec := range f.artifacts {
		resp.Artifacts = append(resp.Artifacts, rec)
	}
	return resp, nil
}

func (f *fakeArtifacts) GetArtifact(_ context.Context, req *controllerv1.GetArtifactRequest) (*controllerv1.ArtifactRecord, error) {
	return f.find(req.GetDigest())
}

func (f *fakeArtifacts) Download(req *controllerv1.GetArtifactRequest, stream grpc.ServerStreamingServer[controllerv1.DownloadChunk]) error {
	rec, err := f.find(req.GetDigest())
	if err != nil {
		return err
	}
	f.mu.Lock()
	data := bytes.Clone(f.content[rec.GetDigest()])
	if f.corrupt {
		data[0] ^= 1
	}
	f.mu.Unlock()
	if err := stream.Send(&controllerv1.DownloadChunk{Artifact: rec}); err != nil {
		return err
	}
	return stream.Send(&controllerv1.DownloadChunk{Data: data})
}

func (f *fakeArtifacts) Where(_ context.Context, req *controllerv1.WhereRequest) (*controllerv1.WhereResponse, error) {
	rec, err := f.find(req.GetDigest())
	if err != nil {
		return nil, err
	}
	return &controllerv1.WhereResponse{Digest: rec.GetDigest(), Installs: rec.GetInstalls()}, nil
}

func (f *fakeArtifacts) CollectGarbage(_ context.Context, req *controllerv1.CollectGarbageRequest) (*controllerv1.CollectGarbageResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gcDryRun = append(f.gcDryRun, req.GetDryRun())
	resp := &controllerv1.CollectGarbageResponse{DryRun: req.GetDryRun(), Kept: 1}
	for _, rec := range f.artifacts {
		resp.Removed = append(resp.Removed, rec)
		resp.FreedBytes += rec.GetSizeBytes()
	}
	return resp, nil
}

func TestArtifactCommands(t *testing.T) {
	f := startFake(t)
	dir := t.TempDir()
	data := bytes.Repeat([]byte("cairn artifact "), 200000) // 3 MB: three chunks
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	file := filepath.Join(dir, "shop.deb")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("push resumes after broken streams", func(t *testing.T) {
		f.artifacts.breaks = 2
		r := f.run(t, nil, "", "artifact", "push", file, "--kind", "application")
		if r.code != 0 || strings.TrimSpace(r.stdout) != digest {
			t.Fatalf("exit %d, stdout %q, stderr %q; want the digest", r.code, r.stdout, r.stderr)
		}
		if n := strings.Count(r.stderr, "stream broken"); n != 2 {
			t.Errorf("stderr tells of %d resumptions, want 2:\n%s", n, r.stderr)
		}
		// Not a terminal: plain progress lines, ending with the total.
		if !strings.Contains(r.stderr, "pushed 3000000/3000000 bytes\n") || strings.Contains(r.stderr, "\r") {
			t.Errorf("progress on a non-terminal:\n%s", r.stderr)
		}
		if f.artifacts.pushes != 3 {
			t.Errorf("%d Push streams, want 3", f.artifacts.pushes)
		}
	})
	t.Run("push gives up after 3 retries", func(t *testing.T) {
		other := filepath.Join(dir, "other.bin")
		// Five chunks: each of the four streams breaks after one.
		if err := os.WriteFile(other, make([]byte, 5<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		f.artifacts.breaks = 10
		defer func() { f.artifacts.breaks = 0 }()
		r := f.run(t, nil, "", "artifact", "push", other)
		if r.code != 1 || !strings.Contains(r.stderr, "continue with --resume ") {
			t.Errorf("exit %d, stderr %q; want exit 1 naming --resume", r.code, r.stderr)
		}
	})
	t.Run("an interrupted push discards its upload", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		f.artifacts.mu.Lock()
		f.artifacts.interrupt, f.artifacts.discarded = cancel, nil
		f.artifacts.mu.Unlock()
		r := f.runCtx(t, ctx, nil, "", "artifact", "push", file)
		f.artifacts.mu.Lock()
		discarded := f.artifacts.discarded
		f.artifacts.mu.Unlock()
		if r.code != 1 || len(discarded) != 1 || !strings.Contains(r.stderr, "interrupted; upload "+discarded[0]+" discarded") {
			t.Errorf("exit %d, stderr %q, discarded %v; want exit 1 and the upload discarded", r.code, r.stderr, discarded)
		}
	})
	t.Run("discard", func(t *testing.T) {
		st, err := f.artifacts.UploadStatus(context.Background(), &controllerv1.UploadStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if r := f.run(t, nil, "", "artifact", "discard", st.GetUploadId()); r.code != 0 || r.stdout != "upload "+st.GetUploadId()+" discarded\n" {
			t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		if r := f.run(t, nil, "", "artifact", "discard", st.GetUploadId()); r.code != 1 || !strings.Contains(r.stderr, "upload not found") {
			t.Errorf("discard twice: exit %d, stderr %q; want 1, not found", r.code, r.stderr)
		}
	})
	t.Run("push same content again", func(t *testing.T) {
		r := f.run(t, nil, "", "artifact", "push", file, "--name", "renamed")
		if r.code != 0 || strings.TrimSpace(r.stdout) != digest || !strings.Contains(r.stderr, "already in the DML as shop.deb") {
			t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("push bad kind", func(t *testing.T) {
		if r := f.run(t, nil, "", "artifact", "push", file, "--kind", "firmware"); r.code != 2 || !strings.Contains(r.stderr, `unknown kind "firmware"`) {
			t.Errorf("exit %d, stderr %q; want 2", r.code, r.stderr)
		}
	})
	t.Run("list", func(t *testing.T) {
		r := f.run(t, nil, "", "artifact", "list")
		if r.code != 0 || !strings.Contains(r.stdout, digest[:12]) || !strings.Contains(r.stdout, "shop.deb") || !strings.Contains(r.stdout, "3000000") {
			t.Errorf("exit %d:\n%s%s", r.code, r.stdout, r.stderr)
		}
		if r := f.run(t, nil, "", "artifact", "list", "-o", "json"); r.code != 0 || !strings.Contains(r.stdout, `"digest": "`+digest) {
			t.Errorf("-o json: exit %d:\n%s", r.code, r.stdout)
		}
	})
	t.Run("show by prefix", func(t *testing.T) {
		r := f.run(t, nil, "", "artifact", "show", digest[:8])
		if r.code != 0 || !strings.Contains(r.stdout, "sha256:"+digest) || !strings.Contains(r.stdout, "3000000 bytes") {
			t.Errorf("exit %d:\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("get", func(t *testing.T) {
		out := filepath.Join(dir, "fetched.deb")
		r := f.run(t, nil, "", "artifact", "get", digest, "-o", out)
		if b, err := os.ReadFile(out); r.code != 0 || err != nil || !bytes.Equal(b, data) {
			t.Fatalf("exit %d, %v, stderr %q", r.code, err, r.stderr)
		}
		if r := f.run(t, nil, "", "artifact", "get", digest, "-o", out); r.code != 1 || !strings.Contains(r.stderr, "exists; use --force") {
			t.Errorf("get over an existing file: exit %d, %q", r.code, r.stderr)
		}
		if r := f.run(t, nil, "", "artifact", "get", digest); r.code != 2 {
			t.Errorf("get without -o: exit %d, want 2", r.code)
		}
	})
	t.Run("get refuses corrupt content", func(t *testing.T) {
		f.artifacts.corrupt = true
		defer func() { f.artifacts.corrupt = false }()
		out := filepath.Join(dir, "corrupt.deb")
		r := f.run(t, nil, "", "artifact", "get", digest, "-o", out)
		if r.code != 1 || !strings.Contains(r.stderr, "not written") {
			t.Errorf("exit %d, stderr %q; want 1", r.code, r.stderr)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("a corrupt download left %s: %v", out, err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 3 { // shop.deb, other.bin, fetched.deb; no temporary file
			t.Errorf("files after a refused download: %v", entries)
		}
	})
	t.Run("where", func(t *testing.T) {
		r := f.run(t, nil, "", "artifact", "where", digest[:8])
		if r.code != 0 || !strings.Contains(r.stdout, "not installed on any node") {
			t.Errorf("exit %d:\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("gc dry run", func(t *testing.T) {
		r := f.run(t, nil, "", "artifact", "gc", "--dry-run")
		if r.code != 0 || !strings.Contains(r.stdout, "would remove 1 artifact(s), 3000000 bytes; kept 1") {
			t.Errorf("exit %d:\n%s%s", r.code, r.stdout, r.stderr)
		}
		if len(f.artifacts.gcDryRun) != 1 || !f.artifacts.gcDryRun[0] {
			t.Errorf("dry_run sent: %v", f.artifacts.gcDryRun)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		if r := f.run(t, nil, "", "artifact", "show", "deadbeefdeadbeef"); r.code != 1 || !strings.Contains(r.stderr, "not found") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

// TestProgressOnATerminal: on a terminal the push progress rewrites its
// line with a carriage return of cairnctl's own, which the escaping of
// what cairnctl prints must not turn into a visible "\r".
func TestProgressOnATerminal(t *testing.T) {
	var buf bytes.Buffer
	p := &progress{w: termsafe.NewWriter(&buf), tty: true, total: 10, step: -1}
	p.update(5)
	p.update(10)
	p.done()
	if diff := cmp.Diff("\rpushed 5/10 bytes\rpushed 10/10 bytes\n", buf.String()); diff != "" {
		t.Errorf("progress on a terminal (-want +got):\n%s", diff)
	}
}
