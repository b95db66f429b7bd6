package cms_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/agent/inventory"
	"github.com/cairn-ops/cairn/controller/blob"
	"github.com/cairn-ops/cairn/controller/cms"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/audit"
	"github.com/cairn-ops/cairn/internal/diff"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

func fixture(name string) string {
	return filepath.Join("..", "..", "agent", "collector", "testdata", "sw", name)
}

// storeAudit audits a fixture root, puts the document into blobs and its
// record into st, as the fleet does for an uploaded audit.
func storeAudit(t *testing.T, st store.Store, blobs *blob.Store, nodeID, root string, at time.Time) *controllerv1.AuditRecord {
	return storeHostAudit(t, st, blobs, nodeID, root, "", at)
}

// storeHostAudit is storeAudit with the audit's hostname replaced (when
// not empty): debian-b's software with debian-a's hostname is debian-a
// after a change. With track, the files collector records those paths.
func storeHostAudit(t *testing.T, st store.Store, blobs *blob.Store, nodeID, root, hostname string, at time.Time, track ...string) *controllerv1.AuditRecord {
	t.Helper()
	ctx := context.Background()
	collectors := []string{"os", "packages", "services"}
	if len(track) > 0 {
		collectors = append(collectors, "files")
	}
	a, err := inventory.Collect(ctx, inventory.Options{
		Root:       root,
		Collectors: collectors,
		Track:      track,
		Now:        func() time.Time { return at },
	})
	if err != nil {
		t.Fatal(err)
	}
	if hostname != "" {
		a.GetOs().Hostname = hostname
		if err := audit.Seal(a); err != nil {
			t.Fatal(err)
		}
	}
	data, err := audit.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	digest, size, err := blobs.Put(ctx, bytes.NewReader(data), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	rec := &controllerv1.AuditRecord{
		Id:          a.GetHashes().GetDocument(),
		NodeId:      nodeID,
		StoredAt:    at.UTC().Format("2006-01-02T15:04:05.000000000Z"),
		ContentHash: a.GetHashes().GetContent(),
		SizeBytes:   size,
		Blob:        digest,
	}
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutAudit(rec) }); err != nil {
		t.Fatal(err)
	}
	return rec
}

func accept(t *testing.T, st store.Store, rec *controllerv1.AuditRecord, version uint32) {
	t.Helper()
	err := st.Update(context.Background(), func(tx store.Tx) error {
		return tx.PutBaseline(&controllerv1.BaselineRecord{NodeId: rec.GetNodeId(), Version: version, AuditId: rec.GetId(), Reason: "test"})
	})
	if err != nil {
		t.Fatal(err)
	}
}

type change struct{ Section, Verb, Kind, Key string }

func TestDrift(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	blobs, err := blob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	nodes := []*controllerv1.NodeRecord{
		{Id: "drifted", Hostname: "web1"},
		{Id: "clean", Hostname: "web2"},
		{Id: "new", Hostname: "web3"},
		{Id: "unaudited", Hostname: "web4"},
	}
	// drifted: baseline debian-a, latest debian-b. clean: its baseline is
	// its latest audit. new: audited, no baseline. unaudited: nothing.
	base := storeAudit(t, st, blobs, "drifted", fixture("debian-a"), t0)
	latest := storeHostAudit(t, st, blobs, "drifted", fixture("debian-b"), "debian-a", t0.Add(time.Hour))
	accept(t, st, base, 1)
	storeAudit(t, st, blobs, "clean", fixture("debian-a"), t0.Add(2*time.Hour))
	clean := storeAudit(t, st, blobs, "clean", fixture("debian-b"), t0.Add(3*time.Hour))
	accept(t, st, clean, 1)
	storeAudit(t, st, blobs, "new", fixture("debian-a"), t0.Add(4*time.Hour))

	got, err := cms.Drift(ctx, st, blobs, nodes)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(nodes) {
		t.Fatalf("Drift returned %d nodes, want %d", len(got), len(nodes))
	}

	// The drifted node's report is internal/diff's, as JSON.
	var report diff.Report
	if err := json.Unmarshal(got[0].GetReportJson(), &report); err != nil {
		t.Fatalf("report_json: %v", err)
	}
	var changes []change
	for _, sec := range report.Sections {
		for _, ch := range sec.Changes {
			changes = append(changes, change{sec.Name, ch.Verb, ch.Kind, ch.Key})
		}
	}
	if len(changes) != 3 {
		t.Errorf("debian-a → debian-b: %d changes, want 3 (1 package upgraded, 1 added, 1 service disabled): %+v", len(changes), changes)
	}
	verbs := map[string]int{}
	for _, ch := range changes {
		verbs[ch.Section+" "+ch.Verb]++
	}
	if diff := cmp.Diff(map[string]int{"packages upgraded": 1, "packages added": 1, "services disabled": 1}, verbs); diff != "" {
		t.Errorf("changes by section and verb (-want +got):\n%s", diff)
	}

	for _, d := range got {
		d.ReportJson = nil
	}
	want := []*controllerv1.NodeDrift{
		{NodeId: "drifted", Hostname: "web1", HasBaseline: true, BaselineAuditId: base.GetId(), LatestAuditId: latest.GetId(), Summary: report.Summary, Changes: 3},
		{NodeId: "clean", Hostname: "web2", HasBaseline: true, BaselineAuditId: clean.GetId(), LatestAuditId: clean.GetId(), Summary: "no changes"},
		{NodeId: "new", Hostname: "web3"},
		{NodeId: "unaudited", Hostname: "web4"},
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("Drift (-want +got):\n%s", diff)
	}
	resp := cms.Response(got)
	if diff := cmp.Diff([4]uint32{1, 2, 3, 0}, [4]uint32{resp.GetNodesDrifted(), resp.GetNodesWithoutBaseline(), resp.GetTotalChanges(), resp.GetTotalPathsNotCompared()}); diff != "" {
		t.Errorf("Response totals (drifted, without baseline, changes, paths not compared) (-want +got):\n%s", diff)
	}
}

// TestDriftPathsNotCompared: a path the latest audit tracked and the
// baseline did not is not compared, and drift says so: it is counted, in
// the summary and in the report, never "no changes".
func TestDriftPathsNotCompared(t *testing.T) {
	st := store.NewMemory()
	blobs, err := blob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	base := storeHostAudit(t, st, blobs, "n1", fixture("debian-a"), "", t0, "/etc/os-release")
	accept(t, st, base, 1)
	storeHostAudit(t, st, blobs, "n1", fixture("debian-a"), "", t0.Add(time.Hour), "/etc/os-release", "/etc/passwd")

	got, err := cms.Drift(t.Context(), st, blobs, []*controllerv1.NodeRecord{{Id: "n1", Hostname: "web1"}})
	if err != nil {
		t.Fatal(err)
	}
	d := got[0]
	if d.GetChanges() != 0 || d.GetPathsNotCompared() != 1 {
		t.Errorf("drift: %d changes, %d paths not compared; want 0 and 1", d.GetChanges(), d.GetPathsNotCompared())
	}
	if want := "no changes where both audits looked; 1 tracked path not compared: /etc/passwd"; d.GetSummary() != want {
		t.Errorf("summary %q, want %q", d.GetSummary(), want)
	}
	var report diff.Report
	if err := json.Unmarshal(d.GetReportJson(), &report); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]diff.PathNotCompared{{Path: "/etc/passwd", TrackedBy: diff.SideAfter, Files: 1}}, report.PathsNotCompared()); diff != "" {
		t.Errorf("report's paths not compared (-want +got):\n%s", diff)
	}
	if r := cms.Response(got); r.GetTotalPathsNotCompared() != 1 || r.GetNodesDrifted() != 0 {
		t.Errorf("Response: %d paths not compared, %d drifted; want 1, 0", r.GetTotalPathsNotCompared(), r.GetNodesDrifted())
	}
}

func TestLoadAudit(t *testing.T) {
	st := store.NewMemory()
	blobs, err := blob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rec := storeAudit(t, st, blobs, "n1", fixture("debian-a"), time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	tests := []struct {
		name    string
		rec     *controllerv1.AuditRecord
		wantErr error
	}{
		{name: "stored audit", rec: rec},
		{name: "record names another document", rec: &controllerv1.AuditRecord{Id: "sha256:other", Blob: rec.GetBlob()}, wantErr: cms.ErrAuditMismatch},
		{name: "missing blob", rec: &controllerv1.AuditRecord{Id: rec.GetId(), Blob: strings.Repeat("0", 64)}, wantErr: blob.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := cms.LoadAudit(blobs, tt.rec)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("LoadAudit: %v, want %v", err, tt.wantErr)
			}
			if err == nil && a.GetHashes().GetDocument() != rec.GetId() {
				t.Errorf("LoadAudit returned document %s, want %s", a.GetHashes().GetDocument(), rec.GetId())
			}
		})
	}
}

func TestSelect(t *testing.T) {
	nodes := []*controllerv1.NodeRecord{
		{Id: "a", Labels: map[string]string{"env": "prod", "role": "web"}},
		{Id: "b", Labels: map[string]string{"env": "prod", "role": "db"}},
		{Id: "c", Labels: map[string]string{"env": "prod", "role": "web"}, State: controllerv1.NodeRecord_STATE_REVOKED},
		{Id: "d"},
	}
	tests := []struct {
		name        string
		selector    map[string]string
		withRevoked bool
		want        []string
	}{
		{name: "empty selector", want: []string{"a", "b", "d"}},
		{name: "empty selector with revoked", withRevoked: true, want: []string{"a", "b", "c", "d"}},
		{name: "one label", selector: map[string]string{"env": "prod"}, want: []string{"a", "b"}},
		{name: "all labels must match", selector: map[string]string{"env": "prod", "role": "web"}, withRevoked: true, want: []string{"a", "c"}},
		{name: "no match", selector: map[string]string{"env": "dev"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, n := range cms.Select(nodes, tt.selector, tt.withRevoked) {
				got = append(got, n.GetId())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Select (-want +got):\n%s", diff)
			}
		})
	}
}
