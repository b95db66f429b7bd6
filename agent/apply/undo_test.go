package apply

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/agent/journal"
)

// tree returns the regular files under root and their content.
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		out[rel] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		path := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const undoManifest = `
steps:
  - {name: conf, plugin: idem, params: {write: etc/app.conf, content: v2}}
  - {name: bin, plugin: once, params: {write: opt/app/bin}}
  - {name: noop, plugin: once, params: {unchanged: true}}
verify:
  - {name: v, plugin: idem}
rollback:
  - {name: r, plugin: once}
`

func TestUndoRestoresTheTree(t *testing.T) {
	e := newEnv(t)
	before := map[string]string{"etc/app.conf": "v1", "etc/hostname": "web1"}
	writeTree(t, e.runner.Root, before)
	m := e.manifest(t, undoManifest)
	if _, err := e.runner.Run(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	applied := map[string]string{"etc/app.conf": "v2", "etc/hostname": "web1", "opt/app/bin": "new"}
	if diff := cmp.Diff(applied, tree(t, e.runner.Root)); diff != "" {
		t.Fatalf("tree after Run (-want +got):\n%s", diff)
	}
	for _, p := range e.host.plugins {
		p.calls = nil
	}

	rep, err := e.runner.Undo(t.Context(), m)
	if err != nil {
		t.Fatalf("Undo: %v", err)
	}
	// noop changed nothing and is not undone; newest first, then the
	// rollback steps.
	if diff := cmp.Diff([]string{"undo/bin:rolled back", "undo/conf:rolled back", "rollback/r:changed"}, outcomes(rep)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if rep.State != journal.StateRolledBack || rep.Error != "" || rep.DeploymentID != DeploymentID(m, e.runner.Root) {
		t.Errorf("report: state %s, error %q, deployment %s", rep.State, rep.Error, rep.DeploymentID)
	}
	if diff := cmp.Diff(before, tree(t, e.runner.Root)); diff != "" {
		t.Errorf("tree after Undo (-want +got):\n%s", diff)
	}
	d, err := e.runner.Journal.Deployment(t.Context(), rep.DeploymentID)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != journal.StateRolledBack || d.FinishedAt.IsZero() {
		t.Errorf("journaled deployment: state %s, finished %v", d.State, d.FinishedAt)
	}
	items, err := e.runner.Journal.List(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if last := items[len(items)-1]; last.Kind != "deployment_result" || !strings.Contains(string(last.Payload), `"state":"rolled-back"`) {
		t.Errorf("last outbox item %s %s, want the rolled-back deployment result", last.Kind, last.Payload)
	}

	// Undo again: nothing left to do.
	for _, p := range e.host.plugins {
		p.calls = nil
	}
	rep, err = e.runner.Undo(t.Context(), m)
	if err != nil || rep.State != journal.StateRolledBack || len(rep.Steps) != 0 {
		t.Fatalf("second Undo: %v, state %s, steps %v; want a no-op", err, rep.State, outcomes(rep))
	}
	for name, p := range e.host.plugins {
		if calls := p.Calls(); len(calls) != 0 {
			t.Errorf("second Undo called %s: %v", name, calls)
		}
	}
	if diff := cmp.Diff(before, tree(t, e.runner.Root)); diff != "" {
		t.Errorf("tree after the second Undo (-want +got):\n%s", diff)
	}

	// Applying again re-applies the undone steps.
	rep, err = e.runner.Run(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"steps/conf:changed", "steps/bin:changed", "steps/noop:skipped", "verify/v:passed"}, outcomes(rep)); diff != "" {
		t.Errorf("Run after Undo (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(applied, tree(t, e.runner.Root)); diff != "" {
		t.Errorf("tree after Run after Undo (-want +got):\n%s", diff)
	}
}

func TestUndoOfADeploymentThatNeverRan(t *testing.T) {
	e := newEnv(t)
	m := e.manifest(t, undoManifest)
	rep, err := e.runner.Undo(t.Context(), m)
	if err != nil || rep.State != journal.StateRolledBack || len(rep.Steps) != 0 {
		t.Fatalf("Undo: %v, state %s, steps %v; want a no-op", err, rep.State, outcomes(rep))
	}
	for name, p := range e.host.plugins {
		if calls := p.Calls(); len(calls) != 0 {
			t.Errorf("Undo called %s: %v", name, calls)
		}
	}
	if ds, _ := e.runner.Journal.Deployments(t.Context()); len(ds) != 0 {
		t.Errorf("Undo journaled %d deployments", len(ds))
	}
}

func TestUndoResumesWhereItStopped(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	m := e.manifest(t, `
steps:
  - {name: a, plugin: idem}
  - {name: b, plugin: once}
rollback:
  - {name: r1, plugin: once}
  - {name: r2, plugin: once}
`)
	if _, err := e.runner.Run(ctx, m); err != nil {
		t.Fatal(err)
	}
	id := DeploymentID(m, e.runner.Root)
	// An Undo that undid b and ran r1, then stopped.
	j := e.runner.Journal
	if err := j.SetDeployment(ctx, id, journal.StateRollingBack, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Transition(ctx, id, journal.ListSteps, 1, []journal.State{journal.StateSucceeded}, func(s *journal.Step) { s.RolledBackAt = s.FinishedAt }); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Start(ctx, id, journal.ListRollback, 0, false); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Finish(ctx, journal.Step{DeploymentID: id, List: journal.ListRollback, Index: 0, Name: "r1", State: journal.StateSucceeded}); err != nil {
		t.Fatal(err)
	}
	for _, p := range e.host.plugins {
		p.calls = nil
	}

	rep, err := e.runner.Undo(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"undo/a:rolled back", "rollback/r1:skipped", "rollback/r2:changed"}, outcomes(rep)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"apply r2"}, e.host.plugins["once"].Calls()); diff != "" {
		t.Errorf("once's calls (-want +got):\n%s", diff)
	}
}

func TestUndoFailure(t *testing.T) {
	e := newEnv(t)
	m := e.manifest(t, "steps:\n  - {name: a, plugin: idem}\nrollback:\n  - {name: r, plugin: once, params: {fail: true}}\n")
	if _, err := e.runner.Run(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	rep, err := e.runner.Undo(t.Context(), m)
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "rollback of shop@1.0.0: rollback step r: boom") {
		t.Fatalf("Undo: %v, want ErrFailed naming rollback step r", err)
	}
	if diff := cmp.Diff([]string{"undo/a:rolled back", "rollback/r:failed"}, outcomes(rep)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if d, _ := e.runner.Journal.Deployment(t.Context(), rep.DeploymentID); d.State != journal.StateFailed {
		t.Errorf("journaled state %s, want failed", d.State)
	}
}

func TestUndoRefusesAnInterruptedDeployment(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	m := e.manifest(t, "steps:\n  - {name: a, plugin: idem}\n  - {name: b, plugin: once}\n")
	id := DeploymentID(m, e.runner.Root)
	if _, _, err := e.runner.Journal.Begin(ctx, journal.Deployment{ID: id}, []journal.Step{
		{List: "steps", Index: 0, Name: "a", Plugin: "idem"}, {List: "steps", Index: 1, Name: "b", Plugin: "once"},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.runner.Journal.Start(ctx, id, "steps", 1, false); err != nil {
		t.Fatal(err)
	}
	_, err := e.runner.Undo(ctx, m)
	if !errors.Is(err, ErrInterrupted) || !strings.Contains(err.Error(), "cairn-agent journal resolve "+id[:12]+" b") {
		t.Fatalf("Undo: %v, want ErrInterrupted with the resolve hint", err)
	}
	if calls := e.host.plugins["once"].Calls(); len(calls) != 0 {
		t.Errorf("Undo of an interrupted deployment called the plugin: %v", calls)
	}
}

func TestArtifactPaths(t *testing.T) {
	const test = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" // sha256("test")
	dml := "components:\n  - {name: site, kind: application, digest: " + test + "}\nsteps:\n  - {name: a, plugin: once}\n"
	local := "components:\n  - {name: site, kind: application, path: site.tar.gz}\nsteps:\n  - {name: a, plugin: once}\n"
	tests := []struct {
		name    string
		body    string
		content string // of the fetched file; "" means no ArtifactPaths
		bundle  bool
		wantErr error
		says    string
	}{
		{name: "DML component", body: dml, content: "test"},
		{name: "DML component in a signed release", body: dml, content: "test", bundle: true},
		{name: "path component fetched", body: local, content: "test"},
		{name: "DML component not fetched", body: dml, wantErr: ErrArtifact, says: "component site is in the DML"},
		{name: "fetched file is not the digest", body: dml, content: "evil", wantErr: ErrArtifact, says: "the manifest says " + test},
		{name: "fetched file is not the signed one", body: dml, content: "evil", bundle: true, wantErr: ErrUnverified, says: "component site"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			m := e.manifest(t, tt.body)
			fetched := filepath.Join(e.dir, "cache", test)
			if tt.content != "" {
				writeTree(t, filepath.Dir(fetched), map[string]string{test: tt.content})
				e.runner.ArtifactPaths = map[string]string{"site": fetched}
			}
			if tt.bundle {
				e.runner.Bundle, e.runner.ReleaseKey = signed(t, m)
			}
			rep, err := e.runner.Run(t.Context(), m)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.says) {
					t.Fatalf("Run: %v, want %v saying %q", err, tt.wantErr, tt.says)
				}
				if calls := e.host.plugins["once"].Calls(); len(calls) != 0 {
					t.Errorf("plugin was called: %v", calls)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := rep.Steps[0].Outputs["artifact_site"]; got != fetched {
				t.Errorf("the step got artifact %q, want the fetched %q", got, fetched)
			}
		})
	}
}

func TestCheckRefusesAnUnverifiedRelease(t *testing.T) {
	e := newEnv(t)
	m := e.manifest(t, "steps:\n  - {name: a, plugin: once}\n")
	e.runner.Bundle, e.runner.ReleaseKey = signed(t, m)
	e.runner.Bundle.Signature[0] ^= 1
	_, err := e.runner.Check(t.Context(), m)
	if !errors.Is(err, ErrUnverified) {
		t.Fatalf("Check: %v, want ErrUnverified", err)
	}
	if calls := e.host.plugins["once"].Calls(); len(calls) != 0 {
		t.Errorf("Check of an unverified release asked the plugin: %v", calls)
	}
}
