package cms

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/audit"
	"github.com/cairn-ops/cairn/internal/diff"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// Blobs is where full audit documents are kept, by sha256 digest
// (controller/blob's Store).
type Blobs interface {
	Open(digest string) (io.ReadCloser, error)
}

// LoadAudit reads the document rec points at from blobs, decodes it and
// verifies its hashes, and checks that it is the audit rec names.
func LoadAudit(blobs Blobs, rec *controllerv1.AuditRecord) (*inventoryv1.Audit, error) {
	rc, err := blobs.Open(rec.GetBlob())
	if err != nil {
		return nil, fmt.Errorf("audit %s: open blob %s: %w", rec.GetId(), rec.GetBlob(), err)
	}
	defer rc.Close()
	a, err := audit.Read(rc)
	if err != nil {
		return nil, fmt.Errorf("audit %s: blob %s: %w", rec.GetId(), rec.GetBlob(), err)
	}
	if got := a.GetHashes().GetDocument(); got != rec.GetId() {
		return nil, fmt.Errorf("%w: audit %s: blob %s holds document %s", ErrAuditMismatch, rec.GetId(), rec.GetBlob(), got)
	}
	return a, nil
}

// Drift compares each node's latest audit with its newest baseline, in
// the order of nodes. A node without a baseline has HasBaseline false and
// nothing else to report. A tracked path only one of the two audits
// tracked (one the baseline did not cover, say) is counted in
// PathsNotCompared and listed in the report, never as unchanged.
func Drift(ctx context.Context, st store.Store, blobs Blobs, nodes []*controllerv1.NodeRecord) ([]*controllerv1.NodeDrift, error) {
	out := make([]*controllerv1.NodeDrift, 0, len(nodes))
	for _, n := range nodes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		d, err := nodeDrift(ctx, st, blobs, n)
		if err != nil {
			return nil, fmt.Errorf("drift of node %s: %w", n.GetId(), err)
		}
		out = append(out, d)
	}
	return out, nil
}

func nodeDrift(ctx context.Context, st store.Store, blobs Blobs, n *controllerv1.NodeRecord) (*controllerv1.NodeDrift, error) {
	d := &controllerv1.NodeDrift{NodeId: n.GetId(), Hostname: n.GetHostname()}
	var base, latest *controllerv1.AuditRecord
	err := st.View(ctx, func(tx store.Tx) error {
		bs, err := tx.Baselines(n.GetId())
		if err != nil || len(bs) == 0 {
			return err
		}
		audits, err := tx.NodeAudits(n.GetId())
		if err != nil || len(audits) == 0 {
			return err
		}
		if base, err = tx.Audit(bs[len(bs)-1].GetAuditId()); err != nil {
			return fmt.Errorf("baseline %d: %w", bs[len(bs)-1].GetVersion(), err)
		}
		latest = audits[len(audits)-1]
		return nil
	})
	if err != nil {
		return nil, err
	}
	if base == nil || latest == nil {
		return d, nil
	}
	before, err := LoadAudit(blobs, base)
	if err != nil {
		return nil, err
	}
	after := before
	if latest.GetId() != base.GetId() {
		if after, err = LoadAudit(blobs, latest); err != nil {
			return nil, err
		}
	}
	report := diff.Compare(before, after)
	var js bytes.Buffer
	if err := diff.WriteJSON(&js, report); err != nil {
		return nil, err
	}
	d.HasBaseline = true
	d.BaselineAuditId = base.GetId()
	d.LatestAuditId = latest.GetId()
	d.ReportJson = js.Bytes()
	d.Summary = report.Summary
	d.Changes = uint32(Changes(report))
	d.PathsNotCompared = uint32(report.Counts.PathsNotCompared)
	return d, nil
}

// Changes counts a report's changes: items added, removed, changed or
// replaced (sections that could not be compared are not changes).
func Changes(r *diff.Report) int {
	c := r.Counts
	return c.Added + c.Removed + c.Changed + c.Replaced
}

// Response is a drift listing with its totals: nodes with at least one
// change, nodes without a baseline, changes and tracked paths not
// compared over all nodes.
func Response(nodes []*controllerv1.NodeDrift) *controllerv1.DriftResponse {
	r := &controllerv1.DriftResponse{Nodes: nodes}
	for _, d := range nodes {
		switch {
		case !d.GetHasBaseline():
			r.NodesWithoutBaseline++
		case d.GetChanges() > 0:
			r.NodesDrifted++
		}
		r.TotalChanges += d.GetChanges()
		r.TotalPathsNotCompared += d.GetPathsNotCompared()
	}
	return r
}
