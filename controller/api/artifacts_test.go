package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/controller/api"
	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/controller/auth/authtest"
	"github.com/cairn-ops/cairn/controller/blob"
	"github.com/cairn-ops/cairn/controller/dml"
	"github.com/cairn-ops/cairn/controller/store"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// artifactEnv serves the Artifacts service over TLS with a real DML
// (limit 10000 bytes) on a memory store; releases reference the digests
// in referenced.
func artifactEnv(t *testing.T, referenced map[string]bool) (controllerv1.ArtifactsClient, map[string]context.Context) {
	t.Helper()
	st := store.NewMemory()
	blobs, err := blob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	lib, err := dml.New(st, blobs, dml.Options{MaxBytes: 10000, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	srv := authtest.Start(t, st, func(s *grpc.Server) {
		api.Register(s, api.Deps{Store: st, Blobs: blobs, DML: lib, Now: func() time.Time { return now },
			ArtifactReferenced: func(_ store.Tx, d string) bool { return referenced[d] }})
	})
	ctx := map[string]context.Context{}
	for _, role := range []string{auth.RoleReleaseManager, auth.RoleAuditor} {
		ctx[role] = authtest.WithToken(context.Background(), authtest.AddUser(t, st, role+"1", role))
	}
	return controllerv1.NewArtifactsClient(srv.Dial(t, nil)), ctx
}

func header(id string, offset int64, name string, data []byte) *controllerv1.PushRequest {
	return &controllerv1.PushRequest{Msg: &controllerv1.PushRequest_Header{Header: &controllerv1.PushHeader{
		UploadId: id, Offset: offset, Name: name, Kind: "application", SizeBytes: int64(len(data)),
	}}}
}

func chunk(data []byte) *controllerv1.PushRequest {
	return &controllerv1.PushRequest{Msg: &controllerv1.PushRequest_Data{Data: data}}
}

// push sends data from offset on upload id in one stream.
func push(ctx context.Context, c controllerv1.ArtifactsClient, id string, offset int64, name string, data []byte) (*controllerv1.ArtifactRecord, error) {
	stream, err := c.Push(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(header(id, offset, name, data)); err != nil {
		return nil, err
	}
	if err := stream.Send(chunk(data[offset:])); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return stream.CloseAndRecv()
}

// TestArtifactsPushResume breaks a real Push stream halfway, asks
// UploadStatus how far it got and pushes the rest: the result is the
// artifact a one-shot push makes.
func TestArtifactsPushResume(t *testing.T) {
	c, ctx := artifactEnv(t, nil)
	rm := ctx[auth.RoleReleaseManager]
	data := bytes.Repeat([]byte("0123456789"), 800)
	sum := sha256.Sum256(data)

	st, err := c.UploadStatus(rm, &controllerv1.UploadStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := st.GetUploadId()
	broken, cancel := context.WithCancel(rm)
	stream, err := c.Push(broken)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(header(id, 0, "app.tar", data)); err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(chunk(data[:3000])); err != nil {
		t.Fatal(err)
	}
	// Wait until the controller holds the first part, then drop the stream.
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err = c.UploadStatus(rm, &controllerv1.UploadStatusRequest{UploadId: id})
		if err != nil {
			t.Fatal(err)
		}
		if st.GetReceivedBytes() == 3000 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if st.GetReceivedBytes() != 3000 || st.GetSizeBytes() != 8000 || st.GetMaxBytes() != 10000 {
		t.Fatalf("UploadStatus after the break = %v, want 3000 of 8000 bytes", st)
	}

	// The wrong offset is refused and says where to go on.
	if _, err := push(rm, c, id, 0, "app.tar", data); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("push from offset 0: %v, want FailedPrecondition", err)
	}
	rec, err := push(rm, c, id, 3000, "app.tar", data)
	if err != nil {
		t.Fatal(err)
	}
	if rec.GetDigest() != hex.EncodeToString(sum[:]) || rec.GetSizeBytes() != 8000 || rec.GetAlreadyStored() || rec.GetCreatedBy() != "user:release-manager1" {
		t.Errorf("resumed push = %v", rec)
	}

	// Again in one go: the same record, marked as already stored.
	st, err = c.UploadStatus(rm, &controllerv1.UploadStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	again, err := push(rm, c, st.GetUploadId(), 0, "other-name", data)
	if err != nil {
		t.Fatal(err)
	}
	if again.GetDigest() != rec.GetDigest() || again.GetName() != "app.tar" || !again.GetAlreadyStored() {
		t.Errorf("second push = %v, want the first record, already stored", again)
	}

	// Every role may download; the content arrives whole.
	dl, err := c.Download(ctx[auth.RoleAuditor], &controllerv1.GetArtifactRequest{Digest: rec.GetDigest()[:8]})
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	for {
		ch, err := dl.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ch.GetData()...)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("downloaded %d bytes, want the pushed %d", len(got), len(data))
	}
	// An auditor may not push.
	if _, err := c.UploadStatus(ctx[auth.RoleAuditor], &controllerv1.UploadStatusRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("auditor UploadStatus: %v, want PermissionDenied", err)
	}
}

func TestArtifactsOversize(t *testing.T) {
	c, ctx := artifactEnv(t, nil)
	rm := ctx[auth.RoleReleaseManager]
	st, err := c.UploadStatus(rm, &controllerv1.UploadStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = push(rm, c, st.GetUploadId(), 0, "big", make([]byte, 10001))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("push of 10001 bytes: %v, want ResourceExhausted", err)
	}
	if _, err := c.UploadStatus(rm, &controllerv1.UploadStatusRequest{UploadId: st.GetUploadId()}); status.Code(err) != codes.NotFound {
		t.Errorf("the refused upload: %v, want NotFound", err)
	}
	list, err := c.ListArtifacts(rm, &controllerv1.ListArtifactsRequest{})
	if err != nil || len(list.GetArtifacts()) != 0 {
		t.Errorf("artifacts after the refusal: %v, %v", list.GetArtifacts(), err)
	}
}

func TestArtifactsCollectGarbage(t *testing.T) {
	keep := bytes.Repeat([]byte("k"), 100)
	sum := sha256.Sum256(keep)
	c, ctx := artifactEnv(t, map[string]bool{hex.EncodeToString(sum[:]): true})
	rm := ctx[auth.RoleReleaseManager]
	for _, data := range [][]byte{keep, bytes.Repeat([]byte("g"), 50)} {
		st, err := c.UploadStatus(rm, &controllerv1.UploadStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := push(rm, c, st.GetUploadId(), 0, string(data[:1]), data); err != nil {
			t.Fatal(err)
		}
	}
	res, err := c.CollectGarbage(rm, &controllerv1.CollectGarbageRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.GetRemoved()) != 1 || res.GetRemoved()[0].GetName() != "g" || res.GetKept() != 1 || res.GetFreedBytes() != 50 {
		t.Errorf("CollectGarbage = %v, want g removed and k kept", res)
	}
	list, err := c.ListArtifacts(ctx[auth.RoleAuditor], &controllerv1.ListArtifactsRequest{})
	if err != nil || len(list.GetArtifacts()) != 1 || list.GetArtifacts()[0].GetName() != "k" {
		t.Errorf("artifacts after gc: %v, %v", list.GetArtifacts(), err)
	}
}

// TestArtifactsCollectGarbageWithoutReleases: with nothing to say which
// artifacts releases use, garbage collection refuses rather than treat
// every artifact as unused.
func TestArtifactsCollectGarbageWithoutReleases(t *testing.T) {
	st := store.NewMemory()
	blobs, err := blob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	lib, err := dml.New(st, blobs, dml.Options{MaxBytes: 10000, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	srv := authtest.Start(t, st, func(s *grpc.Server) {
		api.Register(s, api.Deps{Store: st, Blobs: blobs, DML: lib, Now: func() time.Time { return now }})
	})
	rm := authtest.WithToken(context.Background(), authtest.AddUser(t, st, "rm1", auth.RoleReleaseManager))
	c := controllerv1.NewArtifactsClient(srv.Dial(t, nil))
	data := bytes.Repeat([]byte("a"), 10)
	up, err := c.UploadStatus(rm, &controllerv1.UploadStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := push(rm, c, up.GetUploadId(), 0, "a", data); err != nil {
		t.Fatal(err)
	}
	_, err = c.CollectGarbage(rm, &controllerv1.CollectGarbageRequest{})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "nothing removed") {
		t.Fatalf("CollectGarbage without a release store = %v, want FailedPrecondition", err)
	}
	list, err := c.ListArtifacts(rm, &controllerv1.ListArtifactsRequest{})
	if err != nil || len(list.GetArtifacts()) != 1 {
		t.Errorf("artifacts after a refused gc: %v, %v", list.GetArtifacts(), err)
	}
}

// TestArtifactsUploadCaps is the review's abandoned uploads over the
// API: a user opening upload after upload hits the per-user cap with
// RESOURCE_EXHAUSTED naming it; refused pushes leave no file in
// tmp/uploads; an owner (not another user) discards an upload.
func TestArtifactsUploadCaps(t *testing.T) {
	st := store.NewMemory()
	dir := t.TempDir()
	blobs, err := blob.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	lib, err := dml.New(st, blobs, dml.Options{MaxBytes: 10000, Now: func() time.Time { return now },
		Sessions: dml.SessionLimits{PerUser: 3, Total: 10}})
	if err != nil {
		t.Fatal(err)
	}
	srv := authtest.Start(t, st, func(s *grpc.Server) {
		api.Register(s, api.Deps{Store: st, Blobs: blobs, DML: lib, Now: func() time.Time { return now }})
	})
	c := controllerv1.NewArtifactsClient(srv.Dial(t, nil))
	rm := authtest.WithToken(context.Background(), authtest.AddUser(t, st, "rm1", auth.RoleReleaseManager))
	other := authtest.WithToken(context.Background(), authtest.AddUser(t, st, "rm2", auth.RoleReleaseManager))
	listUploads := func() []string {
		t.Helper()
		entries, err := os.ReadDir(filepath.Join(dir, "tmp", "uploads"))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}

	var ids []string
	for range 3 {
		st, err := c.UploadStatus(rm, &controllerv1.UploadStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, st.GetUploadId())
	}
	_, err = c.UploadStatus(rm, &controllerv1.UploadStatusRequest{})
	checkCode(t, err, codes.ResourceExhausted, "user:rm1 holds 3 unfinished uploads, the most one user may hold")
	checkCode(t, err, codes.ResourceExhausted, "(upload_sessions_per_user)")
	checkCode(t, err, codes.ResourceExhausted, ids[0])

	// A refused push leaves nothing: a bad kind, and a protocol error.
	stream, err := c.Push(rm)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&controllerv1.PushRequest{Msg: &controllerv1.PushRequest_Header{Header: &controllerv1.PushHeader{
		UploadId: ids[0], Name: "a", Kind: "firmware", SizeBytes: 10,
	}}}); err != nil {
		t.Fatal(err)
	}
	_, err = stream.CloseAndRecv()
	checkCode(t, err, codes.InvalidArgument, "kind")
	stream, err = c.Push(rm)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("0123456789")
	for _, m := range []*controllerv1.PushRequest{header(ids[1], 0, "a", data), chunk(data[:5]), header(ids[1], 5, "a", data)} {
		if err := stream.Send(m); err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
	}
	_, err = stream.CloseAndRecv()
	checkCode(t, err, codes.InvalidArgument, "only the first message of a push is a header")

	// Someone else may not discard rm1's upload; rm1 may.
	_, err = c.DiscardUpload(other, &controllerv1.DiscardUploadRequest{UploadId: ids[2]})
	checkCode(t, err, codes.PermissionDenied, "belongs to user:rm1")
	if _, err := c.DiscardUpload(rm, &controllerv1.DiscardUploadRequest{UploadId: ids[2]}); err != nil {
		t.Fatal(err)
	}
	if got := listUploads(); len(got) != 0 {
		t.Errorf("tmp/uploads holds %v after two refused pushes and a discard, want nothing", got)
	}
	_, err = c.DiscardUpload(rm, &controllerv1.DiscardUploadRequest{UploadId: ids[2]})
	checkCode(t, err, codes.NotFound, ids[2])
	// The caps are free again.
	if _, err := c.UploadStatus(rm, &controllerv1.UploadStatusRequest{}); err != nil {
		t.Errorf("UploadStatus after the uploads went: %v", err)
	}
}

// TestArtifactsUploadBelongsToItsOwner: an upload session is its owner's.
// Another uploader who learns its ID may not read it, push into it (and
// so complete it with content of their own), nor discard it by sending a
// header it refuses; the owner's push goes on as if nothing happened.
func TestArtifactsUploadBelongsToItsOwner(t *testing.T) {
	st := store.NewMemory()
	blobs, err := blob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	lib, err := dml.New(st, blobs, dml.Options{MaxBytes: 10000, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	srv := authtest.Start(t, st, func(s *grpc.Server) {
		api.Register(s, api.Deps{Store: st, Blobs: blobs, DML: lib, Now: func() time.Time { return now }})
	})
	c := controllerv1.NewArtifactsClient(srv.Dial(t, nil))
	rm := authtest.WithToken(context.Background(), authtest.AddUser(t, st, "rm1", auth.RoleReleaseManager))
	other := authtest.WithToken(context.Background(), authtest.AddUser(t, st, "rm2", auth.RoleReleaseManager))
	up, err := c.UploadStatus(rm, &controllerv1.UploadStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := up.GetUploadId()
	data := []byte("rm1's artifact")

	_, err = c.UploadStatus(other, &controllerv1.UploadStatusRequest{UploadId: id})
	checkCode(t, err, codes.PermissionDenied, "belongs to user:rm1")
	stream, err := c.Push(other)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&controllerv1.PushRequest{Msg: &controllerv1.PushRequest_Header{Header: &controllerv1.PushHeader{
		UploadId: id, Name: "a", Kind: "firmware", SizeBytes: 10,
	}}}); err != nil {
		t.Fatal(err)
	}
	_, err = stream.CloseAndRecv()
	checkCode(t, err, codes.PermissionDenied, "belongs to user:rm1")
	_, err = push(other, c, id, 0, "theirs", []byte("rm2's content"))
	checkCode(t, err, codes.PermissionDenied, "belongs to user:rm1")

	rec, err := push(rm, c, id, 0, "mine", data)
	if err != nil {
		t.Fatalf("the owner's push after the others' attempts: %v", err)
	}
	if rec.GetName() != "mine" || rec.GetCreatedBy() != "user:rm1" || rec.GetSizeBytes() != int64(len(data)) {
		t.Errorf("artifact = %v, want rm1's %q", rec, data)
	}
}
