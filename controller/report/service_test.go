package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/controller/store"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// storeSample puts sampleInput's records into a memory store as the
// controller keeps them, with filler audit-log entries about other
// objects around the rollout's (more than one page of them).
func storeSample(t *testing.T) (store.Store, Input) {
	t.Helper()
	in := sampleInput(t)
	yaml, err := os.ReadFile(filepath.Join("testdata", "release.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	in.Release.ManifestYaml = yaml
	st := store.NewMemory()
	ctx := context.Background()
	err = st.Update(ctx, func(tx store.Tx) error {
		if err := tx.PutRelease(in.Release); err != nil {
			return err
		}
		if err := tx.PutRollout(in.Rollout); err != nil {
			return err
		}
		for _, n := range in.Rollout.GetNodes() {
			n.RolloutId = in.Rollout.GetId()
			if err := tx.PutRolloutNode(n); err != nil {
				return err
			}
		}
		seq := uint64(0)
		filler := func(n int) error {
			for range n {
				seq++
				e := &controllerv1.AuditLogEntry{Sequence: seq, Time: "2026-03-01T21:00:00Z", Actor: "user:admin", Action: "node.label", Object: fmt.Sprintf("node/n-%d", seq)}
				if err := tx.AppendLogEntry(e); err != nil {
					return err
				}
			}
			return nil
		}
		for i, e := range in.Log {
			if err := filler(logPage/2 + i); err != nil {
				return err
			}
			seq++
			e.Sequence = seq
			if err := tx.AppendLogEntry(e); err != nil {
				return err
			}
		}
		return filler(3)
	})
	if err != nil {
		t.Fatal(err)
	}
	return st, in
}

// TestIssueFromStore: the report the service issues is drawn from the
// store alone: the rollout, its nodes, its release and its manifest, and
// the audit-log entries about the rollout (found past the first page of
// the log), and no other.
func TestIssueFromStore(t *testing.T) {
	st, in := storeSample(t)
	s := New(Config{Store: st, Now: func() time.Time { return in.GeneratedAt }, Location: cet})
	got, err := s.Issue(context.Background(), "user:auditor", in.Rollout.GetId(), FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	if got.MIME != "application/json" {
		t.Errorf("MIME %q, want application/json", got.MIME)
	}
	var r Report
	if err := json.Unmarshal(got.Content, &r); err != nil {
		t.Fatal(err)
	}
	want := Build(in)
	want.Digest = got.Digest
	if diff := cmp.Diff(want, &r); diff != "" {
		t.Errorf("the report from the store differs from the report of the same records (-want +got):\n%s", diff)
	}
}

func TestIssueRefused(t *testing.T) {
	st, in := storeSample(t)
	s := New(Config{Store: st})
	ctx := context.Background()
	tests := []struct {
		name, id, format string
		want             error
	}{
		{"unknown rollout", "ro-000000000000", FormatText, store.ErrNotFound},
		{"unknown format", in.Rollout.GetId(), "pdf", ErrFormat},
		{"unknown format is named before the rollout is looked up", "ro-000000000000", "pdf", ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Issue(ctx, "user:auditor", tt.id, tt.format)
			if !errors.Is(err, tt.want) {
				t.Errorf("Issue(%s, %s) = %v, want %v", tt.id, tt.format, err, tt.want)
			}
		})
	}
}

// TestConfirm: the service records every report it issues under its
// digest and confirms exactly those: not a digest it never issued, such
// as that of an edited report whose digest was recomputed.
func TestConfirm(t *testing.T) {
	st, in := storeSample(t)
	s := New(Config{Store: st, Now: func() time.Time { return in.GeneratedAt }, Location: cet})
	ctx := context.Background()
	issued := map[string]*Issued{}
	for _, format := range Formats {
		rep, err := s.Issue(ctx, "user:auditor", in.Rollout.GetId(), format)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Inspect(rep.Content)
		if err != nil || f.Edited() || f.Digest != rep.Digest {
			t.Fatalf("%s report: %+v, %v; want one carrying its digest %s", format, f, err, rep.Digest)
		}
		issued[format] = rep
	}
	for format, rep := range issued {
		got, err := s.Confirm(ctx, rep.Digest)
		if err != nil {
			t.Fatalf("Confirm the %s report: %v", format, err)
		}
		want := &controllerv1.IssuedReport{
			Digest: rep.Digest, RolloutId: in.Rollout.GetId(), Release: in.Rollout.GetRelease(), Format: format,
			GeneratedAt: "2026-03-01T23:00:00.000000000Z", GeneratedAtShown: "2026-03-02 00:00:00 CET", IssuedTo: "user:auditor",
		}
		if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
			t.Errorf("the record of the %s report (-want +got):\n%s", format, diff)
		}
	}

	// The same report again in the same second is the same bytes: issued
	// again, recorded once, for whoever asked first.
	again, err := s.Issue(ctx, "user:other", in.Rollout.GetId(), FormatHTML)
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest != issued[FormatHTML].Digest {
		t.Fatalf("the same report again has digest %s; want %s", again.Digest, issued[FormatHTML].Digest)
	}
	if rec, err := s.Confirm(ctx, again.Digest); err != nil || rec.GetIssuedTo() != "user:auditor" {
		t.Errorf("the record after issuing the same bytes again: %v, %v; want the first", rec, err)
	}

	html := issued[FormatHTML]
	edited := bytes.Replace(html.Content, []byte("user:anna"), []byte("user:anne"), 1)
	forged := digestOf(edited, html.Digest)
	tests := []struct {
		name, digest string
		want         error
	}{
		{"recomputed after an edit", forged, store.ErrNotFound},
		{"not a digest", "sha256:123", ErrMalformed},
		{"empty", "", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Confirm(ctx, tt.digest); !errors.Is(err, tt.want) {
				t.Errorf("Confirm(%q) = %v, want %v", tt.digest, err, tt.want)
			}
		})
	}
}
