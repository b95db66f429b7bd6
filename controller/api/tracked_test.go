package api_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"

	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/limits"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// TestTrackedSet: a node's tracked paths accumulate over its baselines,
// every audit run covers them besides what it asks for, and drift names
// a path only one side tracked.
func TestTrackedSet(t *testing.T) {
	e := newEnv(t)
	e.addNode(t, "n1", "web1", nil)
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	cms := controllerv1.NewCMSClient(e.conn)
	op := e.ctx[auth.RoleOperator]
	accept := func(t *testing.T, a *controllerv1.AuditRecord) *controllerv1.BaselineRecord {
		t.Helper()
		b, err := cms.AcceptBaseline(op, &controllerv1.AcceptBaselineRequest{Node: "n1", AuditId: a.GetId(), Reason: "test"})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	a1 := e.addAuditTracking(t, "n1", "debian-a", "", t0, []string{"/etc/os-release"})
	if got := accept(t, a1).GetTracked(); !cmp.Equal(got, []string{"/etc/os-release"}) {
		t.Errorf("baseline 1 tracks %q, want the audit's /etc/os-release", got)
	}
	// An audit that did not track /etc/os-release keeps it tracked.
	a2 := e.addAuditTracking(t, "n1", "debian-a", "", t0.Add(time.Minute), []string{"/etc/passwd"})
	if got, want := accept(t, a2).GetTracked(), []string{"/etc/os-release", "/etc/passwd"}; !cmp.Equal(got, want) {
		t.Errorf("baseline 2 tracks %q, want %q", got, want)
	}

	t.Run("audit run covers the tracked set", func(t *testing.T) {
		resp, err := controllerv1.NewAuditsClient(e.conn).RunAudit(op, &controllerv1.RunAuditRequest{Node: "n1", Track: []string{"/etc/hosts", "/etc/passwd"}})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := resp.GetCommands()[0].GetTrack(), []string{"/etc/hosts", "/etc/os-release", "/etc/passwd"}; !cmp.Equal(got, want) {
			t.Errorf("command tracks %q, want %q", got, want)
		}
	})

	t.Run("drift names what the baseline did not cover", func(t *testing.T) {
		e.addAuditTracking(t, "n1", "debian-a", "", t0.Add(time.Hour), []string{"/etc/os-release", "/etc/passwd"})
		got, err := cms.Drift(e.ctx[auth.RoleAuditor], &controllerv1.DriftRequest{})
		if err != nil {
			t.Fatal(err)
		}
		d := got.GetNodes()[0]
		if d.GetChanges() != 0 || d.GetPathsNotCompared() != 1 || got.GetTotalPathsNotCompared() != 1 {
			t.Errorf("drift: %d changes, %d paths not compared (total %d); want 0, 1, 1", d.GetChanges(), d.GetPathsNotCompared(), got.GetTotalPathsNotCompared())
		}
		if want := "no changes where both audits looked; 1 tracked path not compared: /etc/os-release"; d.GetSummary() != want {
			t.Errorf("drift summary %q, want %q", d.GetSummary(), want)
		}
	})

	t.Run("too many tracked paths are refused", func(t *testing.T) {
		var many []string
		for i := range limits.TrackedPaths {
			many = append(many, fmt.Sprintf("/etc/many-%03d", i))
		}
		a := e.addAuditTracking(t, "n1", "debian-a", "", t0.Add(2*time.Hour), many)
		_, err := cms.AcceptBaseline(op, &controllerv1.AcceptBaselineRequest{Node: "n1", AuditId: a.GetId(), Reason: "too much"})
		checkCode(t, err, codes.FailedPrecondition, fmt.Sprintf("the node would track %d paths; the limit is %d", limits.TrackedPaths+2, limits.TrackedPaths))
		err = e.st.View(t.Context(), func(tx store.Tx) error {
			bs, err := tx.Baselines("n1")
			if len(bs) != 2 {
				t.Errorf("%d baselines after the refusal, want 2", len(bs))
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
