package cms_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/controller/cms"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/limits"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

func TestNextTracked(t *testing.T) {
	many := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("/etc/p%04d", i)
		}
		return out
	}
	tests := []struct {
		name                    string
		prev, patterns, untrack []string
		want                    []string
		wantErr                 string
	}{
		{name: "a node's first baseline tracks what its audit tracked", patterns: []string{"/etc/b", "/etc/a"}, want: []string{"/etc/a", "/etc/b"}},
		{name: "an earlier release's paths stay tracked", prev: []string{"/etc/a"}, patterns: []string{"/etc/b"}, want: []string{"/etc/a", "/etc/b"}},
		{name: "an audit that tracked nothing keeps the set", prev: []string{"/etc/a"}, want: []string{"/etc/a"}},
		{name: "duplicates are one path", prev: []string{"/etc/a"}, patterns: []string{"/etc/a", "/etc/a"}, want: []string{"/etc/a"}},
		{name: "untrack drops a path", prev: []string{"/etc/a", "/etc/b"}, patterns: []string{"/etc/b", "/etc/c"}, untrack: []string{"/etc/a"}, want: []string{"/etc/b", "/etc/c"}},
		{name: "untrack wins over the audit", prev: []string{"/etc/a"}, patterns: []string{"/etc/a"}, untrack: []string{"/etc/a"}, want: []string{}},
		{name: "untrack matches the path as written, not as a glob", prev: []string{"/etc/a.conf", "/etc/*.conf"}, untrack: []string{"/etc/*.conf"}, want: []string{"/etc/a.conf"}},
		{name: "untracking what is not tracked changes nothing", prev: []string{"/etc/a"}, untrack: []string{"/etc/z"}, want: []string{"/etc/a"}},
		{name: "at the limit", patterns: many(limits.TrackedPaths), want: many(limits.TrackedPaths)},
		{name: "past the limit", prev: many(limits.TrackedPaths), patterns: []string{"/srv/one-more"},
			wantErr: fmt.Sprintf("the node would track %d paths; the limit is %d", limits.TrackedPaths+1, limits.TrackedPaths)},
		{name: "untracking makes room", prev: many(limits.TrackedPaths), patterns: []string{"/srv/one-more"}, untrack: []string{"/etc/p0000"},
			want: append(many(limits.TrackedPaths)[1:], "/srv/one-more")},
		{name: "a new path too long", patterns: []string{"/" + strings.Repeat("x", limits.Path.Max)}, wantErr: "the audit tracked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cms.NextTracked(tt.prev, tt.patterns, tt.untrack)
			if tt.wantErr != "" {
				if !errors.Is(err, cms.ErrTracked) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NextTracked: %v, want ErrTracked saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("NextTracked (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPutBaseline: baselines number themselves, accumulate what their
// audits tracked, drop what a release untracks, and each is logged with
// what it started and stopped tracking; AuditTrack gives every audit the
// newest set.
func TestPutBaseline(t *testing.T) {
	st := store.NewMemory()
	ctx := t.Context()
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	steps := []struct {
		name     string
		b        *controllerv1.BaselineRecord
		patterns []string
		// want is the baseline's tracked set; track what an audit run
		// with --track /tmp/x then collects.
		want, track []string
		details     map[string]string
	}{
		{
			name:     "release A installs /etc/a",
			b:        &controllerv1.BaselineRecord{AuditId: "a1", AcceptedBy: "system", Reason: "rollout ro-1 of a@1.0.0", Release: "a@1.0.0", RolloutId: "ro-1", Approvers: []string{"ann"}},
			patterns: []string{"/etc/a"},
			want:     []string{"/etc/a"},
			track:    []string{"/etc/a", "/tmp/x"},
			details: map[string]string{"version": "1", "audit_id": "a1", "reason": "rollout ro-1 of a@1.0.0", "tracked_paths": "1", "tracked_added": "/etc/a",
				"release": "a@1.0.0", "rollout": "ro-1", "approvers": "ann"},
		},
		{
			name:     "release B installs /etc/b; /etc/a stays tracked",
			b:        &controllerv1.BaselineRecord{AuditId: "a2", AcceptedBy: "system", Reason: "rollout ro-2 of b@1.0.0", Release: "b@1.0.0", RolloutId: "ro-2"},
			patterns: []string{"/etc/a", "/etc/b"},
			want:     []string{"/etc/a", "/etc/b"},
			track:    []string{"/etc/a", "/etc/b", "/tmp/x"},
			details: map[string]string{"version": "2", "audit_id": "a2", "reason": "rollout ro-2 of b@1.0.0", "tracked_paths": "2", "tracked_added": "/etc/b",
				"release": "b@1.0.0", "rollout": "ro-2", "approvers": ""},
		},
		{
			name:     "an operator accepts an audit that tracked nothing",
			b:        &controllerv1.BaselineRecord{AuditId: "a3", AcceptedBy: "user:op", Reason: "CHG-1"},
			want:     []string{"/etc/a", "/etc/b"},
			track:    []string{"/etc/a", "/etc/b", "/tmp/x"},
			details:  map[string]string{"version": "3", "audit_id": "a3", "reason": "CHG-1", "tracked_paths": "2"},
			patterns: nil,
		},
		{
			name:     "release C stops tracking /etc/a",
			b:        &controllerv1.BaselineRecord{AuditId: "a4", AcceptedBy: "system", Reason: "rollout ro-3 of c@1.0.0", Release: "c@1.0.0", RolloutId: "ro-3", Untracked: []string{"/etc/a"}},
			patterns: []string{"/etc/b"},
			want:     []string{"/etc/b"},
			track:    []string{"/etc/b", "/tmp/x"},
			details: map[string]string{"version": "4", "audit_id": "a4", "reason": "rollout ro-3 of c@1.0.0", "tracked_paths": "1", "untracked": "/etc/a",
				"release": "c@1.0.0", "rollout": "ro-3", "approvers": ""},
		},
	}
	for i, s := range steps {
		s.b.NodeId = "n1"
		err := st.Update(ctx, func(tx store.Tx) error { return cms.PutBaseline(tx, now, s.b, s.patterns) })
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		err = st.View(ctx, func(tx store.Tx) error {
			bs, err := tx.Baselines("n1")
			if err != nil {
				return err
			}
			if got := bs[len(bs)-1]; got.GetVersion() != uint32(i+1) || !cmp.Equal(s.want, got.GetTracked()) {
				t.Errorf("%s: stored version %d tracking %q, want version %d tracking %q", s.name, got.GetVersion(), got.GetTracked(), i+1, s.want)
			}
			track, err := cms.AuditTrack(tx, "n1", []string{"/tmp/x"}, nil)
			if err != nil {
				return err
			}
			if diff := cmp.Diff(s.track, track); diff != "" {
				t.Errorf("%s: AuditTrack (-want +got):\n%s", s.name, diff)
			}
			last, err := tx.LastLogEntry()
			if err != nil {
				return err
			}
			if last.GetAction() != "baseline.accept" || last.GetObject() != "node/n1" || last.GetActor() != s.b.GetAcceptedBy() {
				t.Errorf("%s: log entry %s %s by %s", s.name, last.GetAction(), last.GetObject(), last.GetActor())
			}
			if diff := cmp.Diff(s.details, last.GetDetails()); diff != "" {
				t.Errorf("%s: log details (-want +got):\n%s", s.name, diff)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	t.Run("a node without a baseline tracks what the command adds", func(t *testing.T) {
		err := st.View(ctx, func(tx store.Tx) error {
			track, err := cms.AuditTrack(tx, "n2", []string{"/etc/y", "/etc/x", "/etc/y"}, []string{"/etc/z"})
			if diff := cmp.Diff([]string{"/etc/x", "/etc/y"}, track); diff != "" {
				t.Errorf("AuditTrack (-want +got):\n%s", diff)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
