// Package dml is the Definitive Media Library: the controller's store of
// release artifacts. An artifact is content-addressed (its ID is the
// sha256 of its bytes), stored once however often it is pushed, and
// immutable: its content, name and kind never change, and nothing but
// garbage collection removes it. Each artifact also records where it is
// installed (node, release, rollout), which rollouts fill in.
//
// The bytes live in controller/blob (files are 0400); the records live in
// controller/store. A push is a resumable upload session: BeginUpload
// opens one, Declare names the file, Write appends at an offset the
// caller must know (Status tells it after a break), and Complete hashes
// the whole file, moves it into the blob store and records the artifact
// together with its audit-log entry. Sessions are files under the blob
// directory's tmp/uploads (<id> for the data, <id>.json for a small
// sidecar). They are capped per user and in total, by count and by
// declared bytes (SessionLimits), and discarded Idle after their last
// write (Run sweeps; opening the library also drops what cannot be
// resumed). A push refused at its declaration (invalid, too large, over
// a cap) or at completion (not the declared content) is discarded at
// once; a broken stream leaves its session to be resumed (or discarded
// by the caller, or when idle).
//
// Garbage collection removes the artifacts no release references. The
// DML does not know releases; the caller passes the reference test.
package dml

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairn-ops/cairn/controller/auditlog"
	"github.com/cairn-ops/cairn/controller/blob"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/limits"
	"github.com/cairn-ops/cairn/internal/stamp"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// DefaultMaxBytes is the largest artifact accepted when Options.MaxBytes
// is 0.
const DefaultMaxBytes = 1 << 30

// MinPrefix is the shortest digest prefix Get, Open and Where accept.
const MinPrefix = 8

// Kinds are the artifact kinds, ITIL's release component kinds.
var Kinds = []string{"application", "off-the-shelf", "utility", "system-software", "hardware-spec", "documentation"}

// Options configures New.
type Options struct {
	// MaxBytes is the largest artifact accepted (0: DefaultMaxBytes).
	MaxBytes int64
	// Sessions caps the unfinished uploads; zero fields take defaults.
	Sessions SessionLimits
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives what Run cannot do; nil discards.
	Logger *slog.Logger
}

// DML is the library. It is safe for concurrent use by one controller
// process.
type DML struct {
	st       store.Store
	blobs    *blob.Store
	sessions *sessions
	maxBytes int64
	now      func() time.Time
	log      *slog.Logger

	// gc keeps garbage collection apart from completing pushes: a push
	// that finds its blob already there must not have it removed under
	// it by a collection that just deleted the blob's record.
	gc sync.RWMutex

	// kept and removed are what New found in the upload directory.
	kept, removed int
}

// New opens the library over st and blobs. It creates the upload
// directory, keeps the upload sessions that can be resumed and removes
// the rest (see Recovered).
func New(st store.Store, blobs *blob.Store, opts Options) (*DML, error) {
	d := &DML{
		st:       st,
		blobs:    blobs,
		maxBytes: opts.MaxBytes,
		now:      opts.Now,
		log:      opts.Logger,
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.maxBytes <= 0 {
		d.maxBytes = DefaultMaxBytes
	}
	if d.now == nil {
		d.now = time.Now
	}
	d.sessions = newSessions(filepath.Join(blobs.Dir(), "tmp", "uploads"), opts.Sessions.withDefaults(d.maxBytes))
	if err := os.MkdirAll(d.sessions.dir, 0o700); err != nil {
		return nil, fmt.Errorf("open DML: %w", err)
	}
	var err error
	if d.kept, d.removed, err = d.sessions.load(d.now()); err != nil {
		return nil, fmt.Errorf("open DML: %w", err)
	}
	return d, nil
}

// MaxBytes is the largest artifact the library accepts.
func (d *DML) MaxBytes() int64 { return d.maxBytes }

// Limits are the caps on unfinished uploads, defaults filled in.
func (d *DML) Limits() SessionLimits { return d.sessions.limits }

// Recovered says what New found in the upload directory: the sessions it
// kept for resuming, and the files it removed (sessions idle too long,
// half-created or damaged ones, leftovers).
func (d *DML) Recovered() (kept, removed int) { return d.kept, d.removed }

// Stats is what the unfinished uploads hold, for /metrics.
func (d *DML) Stats() SessionStats { return d.sessions.stats() }

// SweepInterval is how often Run looks for idle upload sessions.
const SweepInterval = time.Minute

// Run discards idle upload sessions every SweepInterval (more often when
// SessionLimits.Idle is shorter) until ctx ends. A sweep that fails is
// logged and counted (SessionStats.SweepErrors), and the next one tries
// again.
func (d *DML) Run(ctx context.Context) error {
	every := min(SweepInterval, max(d.sessions.limits.Idle/2, time.Second))
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if n, err := d.RemoveStale(); err != nil {
				d.sessions.sweepFailed()
				d.log.Error("discard idle uploads", "err", err)
			} else if n > 0 {
				d.log.Info("idle uploads discarded", "sessions", n)
			}
		}
	}
}

// RemoveStale discards the upload sessions whose last write is
// SessionLimits.Idle ago or older and returns how many it removed: one
// pass of Run.
func (d *DML) RemoveStale() (int, error) {
	return d.sessions.sweep(d.now())
}

// BeginUpload opens an upload session for actor, unless its user or all
// users together hold as many unfinished uploads as the caps allow
// (ErrLimit). Idle sessions are discarded first, so they never count.
func (d *DML) BeginUpload(ctx context.Context, actor string) (*Upload, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, err := d.RemoveStale(); err != nil {
		return nil, err
	}
	return d.sessions.create(actor, d.now())
}

// Status reports an upload session: above all, how many bytes it holds.
// It waits for a write in progress, so that what it reports (the
// declaration and the bytes received) is one moment's.
func (d *DML) Status(ctx context.Context, id string) (*Upload, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkID(id); err != nil {
		return nil, err
	}
	defer d.sessions.lock(id)()
	return d.sessions.status(id, d.now())
}

// Declare names the file an upload carries. The first call records m,
// reserving its size under the byte caps; a resumed push declares the
// same m again. A first declaration that is refused — invalid, a size
// over MaxBytes (ErrTooLarge), over a cap (ErrLimit) — discards the
// session, so nothing of the push stays behind. A resumed push that
// declares another file is refused and leaves the session, which holds
// the first file's bytes, as it was.
func (d *DML) Declare(ctx context.Context, id string, m Meta) (*Upload, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkID(id); err != nil {
		return nil, err
	}
	defer d.sessions.lock(id)()
	u, err := d.sessions.status(id, d.now())
	if err != nil {
		return nil, err
	}
	if err := d.declare(u, m); err != nil {
		if u.Declared {
			return nil, err
		}
		return nil, d.discard(id, err)
	}
	return u, nil
}

// declare checks m against u and the caps and records it.
func (d *DML) declare(u *Upload, m Meta) error {
	if err := checkMeta(m); err != nil {
		return err
	}
	if m.Size > d.maxBytes {
		return fmt.Errorf("%w: %s is %d bytes, more than the limit of %d bytes (max_artifact_bytes); upload %s is discarded", ErrTooLarge, m.Name, m.Size, d.maxBytes, u.ID)
	}
	if u.Declared {
		if u.Meta != m {
			return fmt.Errorf("%w: upload %s carries %s (%s, %d bytes, sha256 %q), not %s (%s, %d bytes, sha256 %q): resume it with that file, or start a new push",
				ErrInvalid, u.ID, u.Name, u.Kind, u.Size, u.SHA256, m.Name, m.Kind, m.Size, m.SHA256)
		}
		return nil
	}
	if err := d.sessions.reserve(u.ID, m.Size); err != nil {
		return err
	}
	sc := &sidecar{
		ID: u.ID, CreatedBy: u.CreatedBy, CreatedAt: u.CreatedAt, Declared: true,
		Name: m.Name, Kind: m.Kind, Size: m.Size, SHA256: m.SHA256,
	}
	if err := d.sessions.writeSidecar(sc); err != nil {
		return err
	}
	u.Declared, u.Meta = true, m
	return nil
}

// discard removes a refused upload and returns why it was refused; the
// caller holds the session's lock.
func (d *DML) discard(id string, why error) error {
	if err := d.sessions.remove(id); err != nil {
		return errors.Join(why, err)
	}
	return why
}

func checkMeta(m Meta) error {
	if m.Name == "" {
		return fmt.Errorf("%w: name: an artifact needs a name", ErrInvalid)
	}
	if err := limits.ArtifactName.Check(m.Name); err != nil {
		return fmt.Errorf("%w: name: %w", ErrInvalid, err)
	}
	switch {
	case !slices.Contains(Kinds, m.Kind):
		return fmt.Errorf("%w: kind: %s is not one of %s", ErrInvalid, limits.Quote(m.Kind), strings.Join(Kinds, ", "))
	case m.Size < 0:
		return fmt.Errorf("%w: size: %d is negative", ErrInvalid, m.Size)
	}
	if m.SHA256 != "" {
		if err := blob.Check(m.SHA256); err != nil {
			return fmt.Errorf("%w: sha256: %s is not 64 lowercase hex digits", ErrInvalid, limits.Quote(m.SHA256))
		}
	}
	return nil
}

// Write appends data to a declared upload at offset, which must be the
// number of bytes the upload holds (Status's Received), and returns the
// new count once the data is durable. Data beyond the declared size is
// refused.
func (d *DML) Write(ctx context.Context, id string, offset int64, data []byte) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := checkID(id); err != nil {
		return 0, err
	}
	defer d.sessions.lock(id)()
	u, err := d.sessions.status(id, d.now())
	if err != nil {
		return 0, err
	}
	switch {
	case !u.Declared:
		return 0, fmt.Errorf("%w: upload %s: declare the file before sending data", ErrInvalid, id)
	case offset != u.Received:
		return u.Received, fmt.Errorf("%w: upload %s holds %d bytes; write from offset %d, not %d", ErrOffset, id, u.Received, u.Received, offset)
	case u.Received+int64(len(data)) > u.Size:
		return u.Received, fmt.Errorf("%w: upload %s: %d bytes sent, more than the declared size of %d", ErrInvalid, id, u.Received+int64(len(data)), u.Size)
	}
	if len(data) == 0 {
		return u.Received, nil
	}
	if err := d.sessions.append(id, data); err != nil {
		return 0, err
	}
	return u.Received + int64(len(data)), nil
}

// Discard removes an upload session: the caller gave up on the push.
func (d *DML) Discard(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	defer d.sessions.lock(id)()
	if _, err := d.sessions.readSidecar(id); err != nil {
		return err
	}
	return d.sessions.remove(id)
}

// Complete finishes an upload that holds its declared size: it hashes the
// file, checks the declared sha256 (a mismatch discards the upload),
// stores the content in the blob store and records the artifact with an
// "artifact.push" audit-log entry in one transaction. When the content
// is already in the library, it returns the existing record (its name
// and kind stay those of the first push) with existed true, and changes
// nothing. The session is gone afterwards either way.
func (d *DML) Complete(ctx context.Context, id, actor string) (rec *controllerv1.ArtifactRecord, existed bool, err error) {
	if err := checkID(id); err != nil {
		return nil, false, err
	}
	defer d.sessions.lock(id)()
	u, err := d.sessions.status(id, d.now())
	if err != nil {
		return nil, false, err
	}
	if !u.Declared || u.Received != u.Size {
		return nil, false, fmt.Errorf("%w: upload %s holds %d of %d bytes; push the rest from offset %d", ErrIncomplete, id, u.Received, u.Size, u.Received)
	}
	digest, err := hashFile(ctx, d.sessions.dataPath(id))
	if err != nil {
		return nil, false, err
	}
	if u.SHA256 != "" && digest != u.SHA256 {
		return nil, false, d.discard(id, fmt.Errorf("%w: %s hashes to %s, not the declared %s; nothing was stored", ErrDigestMismatch, u.Name, digest, u.SHA256))
	}

	d.gc.RLock()
	defer d.gc.RUnlock()
	if err := d.putBlob(ctx, id, digest); err != nil {
		return nil, false, err
	}
	now := d.now()
	err = d.st.Update(ctx, func(tx store.Tx) error {
		old, err := tx.Artifact(digest)
		switch {
		case err == nil:
			rec, existed = old, true
			return nil
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		rec, existed = &controllerv1.ArtifactRecord{
			Digest:    digest,
			Name:      u.Name,
			Kind:      u.Kind,
			SizeBytes: u.Size,
			CreatedBy: actor,
			CreatedAt: stamp.Format(now),
		}, false
		if err := tx.PutArtifact(rec); err != nil {
			return fmt.Errorf("record artifact %s: %w", digest, err)
		}
		_, err = auditlog.Append(tx, now, actor, "artifact.push", "artifact/"+digest, map[string]string{
			"name": u.Name, "kind": u.Kind, "size_bytes": strconv.FormatInt(u.Size, 10), "upload_id": id,
		})
		return err
	})
	if err != nil {
		return nil, false, err
	}
	if err := d.sessions.remove(id); err != nil {
		return nil, false, err
	}
	return rec, existed, nil
}

// putBlob copies the upload into the blob store (a no-op when the content
// is there) and checks that it arrived as hashed.
func (d *DML) putBlob(ctx context.Context, id, digest string) error {
	f, err := os.Open(d.sessions.dataPath(id))
	if err != nil {
		return fmt.Errorf("upload %s: %w", id, err)
	}
	defer f.Close()
	got, _, err := d.blobs.Put(ctx, f, d.maxBytes)
	if err != nil {
		return fmt.Errorf("store artifact %s: %w", digest, err)
	}
	if got != digest {
		return fmt.Errorf("store artifact %s: upload %s changed while it was stored (now %s)", digest, id, got)
	}
	return nil
}

func hashFile(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hash upload: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, &ctxReader{ctx: ctx, r: f}); err != nil {
		return "", fmt.Errorf("hash upload: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Get returns the artifact with the given digest or unique digest prefix
// (at least MinPrefix hex digits).
func (d *DML) Get(ctx context.Context, digest string) (*controllerv1.ArtifactRecord, error) {
	var rec *controllerv1.ArtifactRecord
	err := d.st.View(ctx, func(tx store.Tx) (err error) {
		rec, err = resolve(tx, digest)
		return err
	})
	return rec, err
}

// resolve finds an artifact by digest or unique prefix.
func resolve(tx store.Tx, digest string) (*controllerv1.ArtifactRecord, error) {
	if len(digest) == 2*sha256.Size {
		if err := blob.Check(digest); err != nil {
			return nil, fmt.Errorf("%w: digest: %s is not 64 lowercase hex digits", ErrInvalid, limits.Quote(digest))
		}
		return tx.Artifact(digest)
	}
	if len(digest) < MinPrefix || len(digest) > 2*sha256.Size || strings.Trim(digest, "0123456789abcdef") != "" {
		return nil, fmt.Errorf("%w: digest: %s is neither a sha256 digest nor a prefix of at least %d lowercase hex digits", ErrInvalid, limits.Quote(digest), MinPrefix)
	}
	all, err := tx.Artifacts()
	if err != nil {
		return nil, err
	}
	var found []*controllerv1.ArtifactRecord
	for _, a := range all {
		if strings.HasPrefix(a.GetDigest(), digest) {
			found = append(found, a)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("artifact %s: %w", digest, store.ErrNotFound)
	case 1:
		return found[0], nil
	}
	names := make([]string, len(found))
	for i, a := range found {
		names[i] = a.GetDigest() + " (" + a.GetName() + ")"
	}
	slices.Sort(names)
	return nil, fmt.Errorf("%w: %s matches %s; give more digits", ErrAmbiguous, digest, strings.Join(names, ", "))
}

// Filter narrows List; empty fields match everything.
type Filter struct {
	Name string
	Kind string
}

// List returns the artifacts that match f, by name, then digest.
func (d *DML) List(ctx context.Context, f Filter) ([]*controllerv1.ArtifactRecord, error) {
	var out []*controllerv1.ArtifactRecord
	err := d.st.View(ctx, func(tx store.Tx) error {
		all, err := tx.Artifacts()
		if err != nil {
			return err
		}
		for _, a := range all {
			if (f.Name == "" || a.GetName() == f.Name) && (f.Kind == "" || a.GetKind() == f.Kind) {
				out = append(out, a)
			}
		}
		return nil
	})
	return out, err
}

// Open returns an artifact's record and its content. The reader hashes
// what it yields and fails with ErrCorrupt at the end instead of io.EOF
// when the content no longer matches the digest. The caller closes it.
func (d *DML) Open(ctx context.Context, digest string) (*controllerv1.ArtifactRecord, io.ReadCloser, error) {
	rec, err := d.Get(ctx, digest)
	if err != nil {
		return nil, nil, err
	}
	r, err := d.blobs.Open(rec.GetDigest())
	if err != nil {
		return nil, nil, fmt.Errorf("artifact %s: %w", rec.GetDigest(), err)
	}
	return rec, &verifyingReader{r: r, h: sha256.New(), want: rec.GetDigest()}, nil
}

// Where returns the artifact (by digest or unique prefix) with its
// install records, by node ID, then release.
func (d *DML) Where(ctx context.Context, digest string) (*controllerv1.ArtifactRecord, error) {
	return d.Get(ctx, digest)
}

// RecordInstall records that the artifact is installed on a node by a
// release's rollout, with an "artifact.install" audit-log entry. A record
// for the same node and release is replaced. It is the only change an
// artifact's record ever sees.
func (d *DML) RecordInstall(ctx context.Context, actor, digest string, in *controllerv1.InstallRecord) error {
	now := d.now()
	return d.st.Update(ctx, func(tx store.Tx) error {
		return PutInstall(tx, now, actor, digest, in)
	})
}

// PutInstall is RecordInstall inside the caller's transaction: the
// rollout engine records installs in the same transaction as the node
// that passed.
func PutInstall(tx store.Tx, now time.Time, actor, digest string, in *controllerv1.InstallRecord) error {
	switch {
	case in.GetNodeId() == "":
		return fmt.Errorf("%w: install: node ID is required", ErrInvalid)
	case in.GetRelease() == "":
		return fmt.Errorf("%w: install: release is required", ErrInvalid)
	}
	if err := blob.Check(digest); err != nil {
		return fmt.Errorf("%w: digest: %s is not 64 lowercase hex digits", ErrInvalid, limits.Quote(digest))
	}
	rec, err := tx.Artifact(digest)
	if err != nil {
		return err
	}
	installs := slices.DeleteFunc(rec.GetInstalls(), func(x *controllerv1.InstallRecord) bool {
		return x.GetNodeId() == in.GetNodeId() && x.GetRelease() == in.GetRelease()
	})
	installs = append(installs, in)
	slices.SortFunc(installs, func(a, b *controllerv1.InstallRecord) int {
		return cmp.Or(cmp.Compare(a.GetNodeId(), b.GetNodeId()), cmp.Compare(a.GetRelease(), b.GetRelease()))
	})
	rec.Installs = installs
	if err := tx.PutArtifact(rec); err != nil {
		return err
	}
	_, err = auditlog.Append(tx, now, actor, "artifact.install", "artifact/"+digest, map[string]string{
		"node": in.GetNodeId(), "release": in.GetRelease(), "rollout": in.GetRolloutId(),
	})
	return err
}

// GCResult is what CollectGarbage removed (or, in a dry run, would
// remove).
type GCResult struct {
	// Removed are the unreferenced artifacts, by name, then digest.
	Removed []*controllerv1.ArtifactRecord
	// Kept counts the referenced artifacts.
	Kept int
	// FreedBytes is the removed artifacts' total size.
	FreedBytes int64
}

// CollectGarbage removes every artifact for which referenced returns
// false: its record, with one "artifact.gc" audit-log entry per artifact
// in the same transaction, then its blob (unless an audit document shares
// it). referenced is the releases' answer to "does any release use this
// digest?", asked within the collection's own transaction (so it sees
// the same state, and no second transaction is opened); a nil
// referenced means nothing is referenced. With dryRun it only reports.
// Pushes wait while a collection runs.
func (d *DML) CollectGarbage(ctx context.Context, actor string, referenced func(tx store.Tx, digest string) bool, dryRun bool) (*GCResult, error) {
	if referenced == nil {
		referenced = func(store.Tx, string) bool { return false }
	}
	d.gc.Lock()
	defer d.gc.Unlock()
	var res *GCResult
	var shared map[string]bool
	collect := func(tx store.Tx) error {
		res = &GCResult{}
		all, err := tx.Artifacts()
		if err != nil {
			return err
		}
		if shared, err = auditBlobs(tx); err != nil {
			return err
		}
		now := d.now()
		for _, a := range all {
			if referenced(tx, a.GetDigest()) {
				res.Kept++
				continue
			}
			res.Removed = append(res.Removed, a)
			res.FreedBytes += a.GetSizeBytes()
			if dryRun {
				continue
			}
			if err := tx.DeleteArtifact(a.GetDigest()); err != nil {
				return err
			}
			if _, err := auditlog.Append(tx, now, actor, "artifact.gc", "artifact/"+a.GetDigest(), map[string]string{
				"name": a.GetName(), "kind": a.GetKind(), "size_bytes": strconv.FormatInt(a.GetSizeBytes(), 10),
			}); err != nil {
				return err
			}
		}
		return nil
	}
	if dryRun {
		if err := d.st.View(ctx, collect); err != nil {
			return nil, err
		}
		return res, nil
	}
	if err := d.st.Update(ctx, collect); err != nil {
		return nil, err
	}
	// The records are gone; a blob left behind by a failure here is
	// unreachable but harmless, and a later push of the same content
	// reuses it.
	var errs []error
	for _, a := range res.Removed {
		if shared[a.GetDigest()] {
			continue
		}
		if err := d.blobs.Remove(a.GetDigest()); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("collect garbage: records removed, but not every blob: %w", err)
	}
	return res, nil
}

// auditBlobs returns the blob digests audit documents use; an artifact
// with the same content shares the file, which must stay.
func auditBlobs(tx store.Tx) (map[string]bool, error) {
	nodes, err := tx.Nodes()
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, n := range nodes {
		audits, err := tx.NodeAudits(n.GetId())
		if err != nil {
			return nil, err
		}
		for _, a := range audits {
			out[a.GetBlob()] = true
		}
	}
	return out, nil
}

// verifyingReader hashes what it yields and turns the final io.EOF into
// ErrCorrupt when the content does not match.
type verifyingReader struct {
	r    io.ReadCloser
	h    hash.Hash
	want string
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want {
			return n, fmt.Errorf("%w: %s now hashes to %s", ErrCorrupt, v.want, got)
		}
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.r.Close() }

// ctxReader stops a long read whose context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
