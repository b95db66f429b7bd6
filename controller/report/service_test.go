package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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
