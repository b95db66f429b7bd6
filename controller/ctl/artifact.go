package ctl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/internal/atomicfile"
	"github.com/cairn-ops/cairn/internal/readlimit"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// pushChunk is the data in one PushRequest.
const pushChunk = 1 << 20

// pushRetries is how many times artifact push resumes a broken stream.
const pushRetries = 3

// artifactKinds are the kinds the DML accepts (ITIL's component kinds).
var artifactKinds = []string{"application", "off-the-shelf", "utility", "system-software", "hardware-spec", "documentation"}

func (a *app) newArtifactCommand() *cobra.Command {
	return group("artifact", "The definitive media library: push, list, fetch and locate artifacts",
		`The definitive media library (DML) keeps every release artifact once, by
the sha256 of its content, and never changes it. Pushing the same content
again returns the existing artifact. 'where' lists the nodes an artifact is
installed on; garbage collection removes only artifacts no release
references.`,
		`  cairnctl artifact push ./shop_1.4.2_amd64.deb --kind application
  cairnctl artifact list
  cairnctl artifact get 3f9a1c2e -o shop.deb`,
		a.newArtifactPushCommand(),
		a.newArtifactListCommand(),
		a.newArtifactShowCommand(),
		a.newArtifactGetCommand(),
		a.newArtifactWhereCommand(),
		a.newArtifactGCCommand(),
		a.newArtifactDiscardCommand(),
	)
}

func (a *app) newArtifactPushCommand() *cobra.Command {
	var name, kind, resume string
	cmd := &cobra.Command{
		Use:   "push FILE [--name N] [--kind KIND] [--resume UPLOAD_ID]",
		Short: "Upload a file into the DML and print its digest",
		Long: `Push streams FILE to the controller in 1 MiB chunks; the controller hashes
it and stores it once. The digest (sha256) is printed on standard output.

A push is resumable: when the connection breaks, push asks the controller
how much it holds and continues from there, up to 3 times. A push that
still fails prints its upload ID; --resume UPLOAD_ID continues it later
(the controller discards an upload an hour after its last data, by
default: upload_idle_timeout), and 'cairnctl artifact discard UPLOAD_ID'
drops it at once. An interrupted push (Ctrl-C) discards its upload.

The controller caps unfinished uploads per user and in all, by count and
by bytes; past a cap, push fails and says which cap, how much is in use
and which uploads to finish or discard.

Progress goes to standard error: a running count on a terminal, plain
lines otherwise. Pushing content the DML already holds changes nothing and
says so; the name and kind of the first push stay.`,
		Example: `  cairnctl artifact push ./shop_1.4.2_amd64.deb --kind application
  cairnctl artifact push ./manual.pdf --name shop-manual --kind documentation
  cairnctl artifact push ./big.iso --kind system-software --resume 5f0c...`,
		Args: exactArgs("FILE"),
	}
	cmd.Flags().StringVar(&name, "name", "", "artifact name (default: the file's base name)")
	cmd.Flags().StringVar(&kind, "kind", "application", "kind: "+orList(artifactKinds))
	cmd.Flags().StringVar(&resume, "resume", "", "continue the upload with this ID")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if !slices.Contains(artifactKinds, kind) {
			return usageErrorf("unknown kind %q: use %s", kind, orList(artifactKinds))
		}
		path := args[0]
		if name == "" {
			name = filepath.Base(path)
		}
		f, err := readlimit.Open(path)
		if err != nil {
			return usageError(fmt.Errorf("artifact push: %w", err))
		}
		defer f.Close()
		info, err := f.Stat()
		if err != nil {
			return usageError(fmt.Errorf("artifact push: %w", err))
		}
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return failedf("artifact push: read %s: %w", path, err)
		}
		cc, err := a.conn()
		if err != nil {
			return err
		}
		p := &pusher{
			a:      a,
			client: controllerv1.NewArtifactsClient(cc),
			file:   f,
			header: &controllerv1.PushHeader{
				Name: name, Kind: kind, SizeBytes: info.Size(), Sha256: hex.EncodeToString(h.Sum(nil)),
			},
			progress: newProgress(a.rawErr, info.Size()),
		}
		rec, err := p.push(cmd.Context(), resume)
		if err != nil {
			return err
		}
		if rec.GetAlreadyStored() {
			fmt.Fprintf(a.errOut, "already in the DML as %s (%s, pushed by %s); nothing stored\n", rec.GetName(), rec.GetKind(), rec.GetCreatedBy())
		}
		_, err = fmt.Fprintln(a.out, rec.GetDigest())
		return err
	}
	return cmd
}

// pusher uploads one file, resuming after broken streams.
type pusher struct {
	a        *app
	client   controllerv1.ArtifactsClient
	file     *os.File
	header   *controllerv1.PushHeader
	progress *progress
}

func (p *pusher) push(ctx context.Context, uploadID string) (*controllerv1.ArtifactRecord, error) {
	var lastErr error
	for attempt := 0; attempt <= pushRetries; attempt++ {
		st, err := p.status(ctx, uploadID)
		if err != nil {
			return nil, err
		}
		uploadID = st.GetUploadId()
		if attempt > 0 {
			fmt.Fprintf(p.a.errOut, "stream broken (%v); resuming upload %s at byte %d\n", status.Convert(lastErr).Message(), uploadID, st.GetReceivedBytes())
		}
		rec, err := p.send(ctx, uploadID, st.GetReceivedBytes())
		if err == nil {
			return rec, nil
		}
		if ctx.Err() != nil {
			return nil, p.abandon(ctx, uploadID)
		}
		if !retryable(ctx, err) {
			return nil, rpcErr("artifact push "+p.header.GetName(), err)
		}
		lastErr = err
	}
	return nil, failedf("artifact push %s: the stream broke %d times (%v); continue with --resume %s", p.header.GetName(), pushRetries+1, status.Convert(lastErr).Message(), uploadID)
}

// abandon discards the upload of a push the user interrupted, so that its
// bytes do not wait on the controller for the idle timeout.
func (p *pusher) abandon(ctx context.Context, id string) error {
	dctx, cancel := p.a.callCtx(context.WithoutCancel(ctx))
	defer cancel()
	if _, err := p.client.DiscardUpload(dctx, &controllerv1.DiscardUploadRequest{UploadId: id}); err != nil {
		return failedf("artifact push %s: interrupted; upload %s was not discarded (%s): run 'cairnctl artifact discard %s', or the controller drops it when idle",
			p.header.GetName(), id, status.Convert(err).Message(), id)
	}
	return failedf("artifact push %s: interrupted; upload %s discarded", p.header.GetName(), id)
}

// retryable tells a broken stream from a refusal.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.Aborted, codes.Canceled, codes.Internal, codes.Unknown, codes.DeadlineExceeded:
		return true
	}
	return false
}

// status opens an upload (empty id) or asks how much of it the
// controller holds.
func (p *pusher) status(ctx context.Context, id string) (*controllerv1.UploadStatusResponse, error) {
	ctx, cancel := p.a.callCtx(ctx)
	defer cancel()
	st, err := p.client.UploadStatus(ctx, &controllerv1.UploadStatusRequest{UploadId: id})
	if err != nil {
		if id == "" {
			return nil, rpcErr("artifact push: open upload", err)
		}
		return nil, rpcErr("artifact push: upload "+id, err)
	}
	return st, nil
}

// send streams the file from offset.
func (p *pusher) send(ctx context.Context, id string, offset int64) (*controllerv1.ArtifactRecord, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := p.client.Push(ctx)
	if err != nil {
		return nil, err
	}
	h := p.header
	hdr := &controllerv1.PushHeader{UploadId: id, Offset: offset, Name: h.GetName(), Kind: h.GetKind(), SizeBytes: h.GetSizeBytes(), Sha256: h.GetSha256()}
	if err := stream.Send(&controllerv1.PushRequest{Msg: &controllerv1.PushRequest_Header{Header: hdr}}); err != nil {
		return nil, closeErr(stream, err)
	}
	buf := make([]byte, pushChunk)
	sent := offset
	p.progress.update(sent)
	for sent < p.header.GetSizeBytes() {
		n, err := p.file.ReadAt(buf, sent)
		if n > 0 {
			if err := stream.Send(&controllerv1.PushRequest{Msg: &controllerv1.PushRequest_Data{Data: buf[:n]}}); err != nil {
				return nil, closeErr(stream, err)
			}
			sent += int64(n)
			p.progress.update(sent)
		}
		if errors.Is(err, io.EOF) && sent < p.header.GetSizeBytes() {
			return nil, failedf("artifact push: %s shrank while it was pushed", p.file.Name())
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, failedf("artifact push: read %s: %w", p.file.Name(), err)
		}
	}
	rec, err := stream.CloseAndRecv()
	p.progress.done()
	return rec, err
}

// closeErr returns the status a failed Send hides: Send returns io.EOF
// when the server ended the stream, and the reason comes with
// CloseAndRecv.
func closeErr(stream grpc.ClientStreamingClient[controllerv1.PushRequest, controllerv1.ArtifactRecord], err error) error {
	if errors.Is(err, io.EOF) {
		_, err = stream.CloseAndRecv()
	}
	return err
}

// progress reports bytes sent: a line rewritten in place on a terminal,
// a plain line every tenth otherwise.
type progress struct {
	w     io.Writer
	tty   bool
	total int64
	step  int64 // last tenth printed, non-terminal only
}

func newProgress(w io.Writer, total int64) *progress {
	f, ok := raw(w).(*os.File)
	tty := false
	if ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{w: w, tty: tty, total: total, step: -1}
}

func (p *progress) update(sent int64) {
	if p.tty {
		// The carriage return is cairnctl's own: it goes around the
		// escaping of what cairnctl prints, which would show it as "\r".
		fmt.Fprint(raw(p.w), "\r")
		fmt.Fprintf(p.w, "pushed %d/%d bytes", sent, p.total)
		return
	}
	step := int64(10)
	if p.total > 0 {
		step = sent * 10 / p.total
	}
	if step > p.step {
		p.step = step
		fmt.Fprintf(p.w, "pushed %d/%d bytes\n", sent, p.total)
	}
}

func (p *progress) done() {
	if p.tty {
		fmt.Fprintln(p.w)
	}
}

func (a *app) newArtifactListCommand() *cobra.Command {
	var name, kind string
	cmd := &cobra.Command{
		Use:   "list [--name N] [--kind KIND]",
		Short: "List artifacts",
		Long:  `List prints the DML's artifacts by name, then digest.`,
		Example: `  cairnctl artifact list
  cairnctl artifact list --kind documentation -o json`,
		Args: noArgs,
	}
	f := addFormat(cmd, formatTable, listFormats...)
	cmd.Flags().StringVar(&name, "name", "", "only artifacts with this name")
	cmd.Flags().StringVar(&kind, "kind", "", "only artifacts of this kind")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := f.check(); err != nil {
			return err
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		resp, err := controllerv1.NewArtifactsClient(cc).ListArtifacts(ctx, &controllerv1.ListArtifactsRequest{Name: name, Kind: kind})
		if err != nil {
			return rpcErr("list artifacts", err)
		}
		return printProto(a.out, f, resp, func(t *table) {
			t.row("DIGEST", "NAME", "KIND", "SIZE", "INSTALLS", "CREATED BY", "CREATED")
			for _, r := range resp.GetArtifacts() {
				t.row(r.GetDigest()[:min(12, len(r.GetDigest()))], r.GetName(), r.GetKind(), strconv.FormatInt(r.GetSizeBytes(), 10),
					strconv.Itoa(len(r.GetInstalls())), r.GetCreatedBy(), ago(a.now(), r.GetCreatedAt()))
			}
		})
	}
	return cmd
}

func (a *app) newArtifactShowCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show DIGEST",
		Short: "Show one artifact",
		Long:  `Show prints an artifact's record. DIGEST may be a unique prefix of at least 8 hex digits.`,
		Example: `  cairnctl artifact show 3f9a1c2e
  cairnctl artifact show 3f9a1c2e -o yaml`,
		Args: exactArgs("DIGEST"),
	}
	f := addFormat(cmd, formatText, formatText, formatJSON, formatYAML)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := f.check(); err != nil {
			return err
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		r, err := controllerv1.NewArtifactsClient(cc).GetArtifact(ctx, &controllerv1.GetArtifactRequest{Digest: args[0]})
		if err != nil {
			return rpcErr("artifact "+args[0], err)
		}
		if f.name != formatText {
			return printProto(a.out, f, r, nil)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "digest:     sha256:%s\n", r.GetDigest())
		fmt.Fprintf(&b, "name:       %s\n", r.GetName())
		fmt.Fprintf(&b, "kind:       %s\n", r.GetKind())
		fmt.Fprintf(&b, "size:       %d bytes\n", r.GetSizeBytes())
		fmt.Fprintf(&b, "created:    %s by %s\n", r.GetCreatedAt(), r.GetCreatedBy())
		fmt.Fprintf(&b, "installed:  on %d node(s)\n", len(r.GetInstalls()))
		_, err = io.WriteString(a.out, b.String())
		return err
	}
	return cmd
}

func (a *app) newArtifactGetCommand() *cobra.Command {
	var out string
	var force bool
	cmd := &cobra.Command{
		Use:   "get DIGEST -o FILE [--force]",
		Short: "Download an artifact into a file",
		Long: `Get downloads an artifact into FILE, writing it atomically (FILE appears
whole or not at all) and checking its sha256 before it does. An existing
FILE is kept unless --force. DIGEST may be a unique prefix of at least 8
hex digits.`,
		Example: `  cairnctl artifact get 3f9a1c2e -o shop.deb
  cairnctl artifact get 3f9a1c2e -o shop.deb --force`,
		Args: exactArgs("DIGEST"),
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write (required)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite FILE if it exists")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if out == "" {
			return usageErrorf("artifact get needs -o FILE: see 'cairnctl artifact get --help'")
		}
		if _, err := os.Lstat(out); err == nil && !force {
			return failedf("artifact get: %s exists; use --force to overwrite it", out)
		}
		cc, err := a.conn()
		if err != nil {
			return err
		}
		stream, err := controllerv1.NewArtifactsClient(cc).Download(cmd.Context(), &controllerv1.GetArtifactRequest{Digest: args[0]})
		if err != nil {
			return rpcErr("artifact get "+args[0], err)
		}
		var rec *controllerv1.ArtifactRecord
		err = atomicfile.WriteFrom(out, func(w io.Writer) error {
			h := sha256.New()
			var n int64
			for {
				c, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					return rpcErr("artifact get "+args[0], err)
				}
				if c.GetArtifact() != nil {
					rec = c.GetArtifact()
				}
				if _, err := w.Write(c.GetData()); err != nil {
					return err
				}
				h.Write(c.GetData())
				n += int64(len(c.GetData()))
			}
			if rec == nil {
				return failedf("artifact get %s: the controller sent no record", args[0])
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != rec.GetDigest() || n != rec.GetSizeBytes() {
				return failedf("artifact get %s: downloaded %d bytes hashing to %s, want %d bytes hashing to %s; %s not written", args[0], n, got, rec.GetSizeBytes(), rec.GetDigest(), out)
			}
			return nil
		}, 0o644)
		if err != nil {
			var ee *exitError
			var re *rpcError
			if errors.As(err, &ee) || errors.As(err, &re) {
				return err
			}
			return failedf("artifact get: %w", err)
		}
		_, err = fmt.Fprintf(a.out, "%s: %s (%d bytes, sha256 verified)\n", out, rec.GetName(), rec.GetSizeBytes())
		return err
	}
	return cmd
}

func (a *app) newArtifactWhereCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "where DIGEST",
		Short: "List the nodes an artifact is installed on",
		Long: `Where lists the nodes an artifact is installed on, with the release and
rollout that installed it. Rollouts record installs.`,
		Example: `  cairnctl artifact where 3f9a1c2e
  cairnctl artifact where 3f9a1c2e -o json`,
		Args: exactArgs("DIGEST"),
	}
	f := addFormat(cmd, formatTable, listFormats...)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := f.check(); err != nil {
			return err
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		resp, err := controllerv1.NewArtifactsClient(cc).Where(ctx, &controllerv1.WhereRequest{Digest: args[0]})
		if err != nil {
			return rpcErr("artifact where "+args[0], err)
		}
		if f.name == formatTable && len(resp.GetInstalls()) == 0 {
			_, err := fmt.Fprintf(a.out, "%s is not installed on any node\n", resp.GetDigest())
			return err
		}
		return printProto(a.out, f, resp, func(t *table) {
			t.row("NODE", "RELEASE", "ROLLOUT", "INSTALLED")
			for _, in := range resp.GetInstalls() {
				t.row(in.GetNodeId(), in.GetRelease(), in.GetRolloutId(), ago(a.now(), in.GetInstalledAt()))
			}
		})
	}
	return cmd
}

func (a *app) newArtifactDiscardCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "discard UPLOAD_ID",
		Short: "Drop an unfinished push and the bytes it holds",
		Long: `Discard drops an unfinished upload of yours (admins: anyone's), freeing its
place under the controller's caps on unfinished uploads. A push that failed
or hit a cap names the upload IDs.`,
		Example: `  cairnctl artifact discard 5f0c3e1d9a8b7c6d5e4f3a2b1c0d9e8f`,
		Args:    exactArgs("UPLOAD_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cc, ctx, cancel, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			defer cancel()
			if _, err := controllerv1.NewArtifactsClient(cc).DiscardUpload(ctx, &controllerv1.DiscardUploadRequest{UploadId: args[0]}); err != nil {
				return rpcErr("discard upload "+args[0], err)
			}
			_, err = fmt.Fprintf(a.out, "upload %s discarded\n", args[0])
			return err
		},
	}
}

func (a *app) newArtifactGCCommand() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "gc [--dry-run]",
		Short: "Remove the artifacts no release references",
		Long: `Gc removes every artifact that no release references: its record and its
content. Each removal goes into the audit log. --dry-run lists what would
go and removes nothing.`,
		Example: `  cairnctl artifact gc --dry-run
  cairnctl artifact gc`,
		Args: noArgs,
	}
	f := addFormat(cmd, formatTable, listFormats...)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list what would be removed; remove nothing")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := f.check(); err != nil {
			return err
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		resp, err := controllerv1.NewArtifactsClient(cc).CollectGarbage(ctx, &controllerv1.CollectGarbageRequest{DryRun: dryRun})
		if err != nil {
			return rpcErr("artifact gc", err)
		}
		if f.name != formatTable {
			return printProto(a.out, f, resp, nil)
		}
		verb := "removed"
		if dryRun {
			verb = "would remove"
		}
		t := newTable(a.out)
		for _, r := range resp.GetRemoved() {
			t.row(verb, r.GetDigest(), r.GetName(), strconv.FormatInt(r.GetSizeBytes(), 10))
		}
		if err := t.flush(); err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.out, "%s %d artifact(s), %d bytes; kept %d referenced by releases\n", verb, len(resp.GetRemoved()), resp.GetFreedBytes(), resp.GetKept())
		return err
	}
	return cmd
}
