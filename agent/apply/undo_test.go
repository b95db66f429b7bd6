package apply

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cairn-ops/cairn/agent/journal"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
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
	if rep.State != agentv1.StateRolledBack || rep.Error != "" || rep.DeploymentId != DeploymentID(m, e.runner.Root) {
		t.Errorf("report: state %s, error %q, deployment %s", rep.State, rep.Error, rep.DeploymentId)
	}
	if diff := cmp.Diff(before, tree(t, e.runner.Root)); diff != "" {
		t.Errorf("tree after Undo (-want +got):\n%s", diff)
	}
	d, err := e.runner.Journal.Deployment(t.Context(), rep.DeploymentId)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != journal.StateRolledBack || d.FinishedAt.IsZero() {
		t.Errorf("journaled deployment: state %s, finished %v", d.State, d.FinishedAt)
	}
	items, err := e.runner.Journal.List(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	last := items[len(items)-1]
	var got agentv1.ApplyReport
	if err := protojson.Unmarshal(last.Payload, &got); err != nil || last.Kind != journal.KindDeploymentResult || got.GetState() != agentv1.StateRolledBack {
		t.Errorf("last outbox item %s %s (%v), want the rolled-back deployment result", last.Kind, last.Payload, err)
	}

	// Undo again: nothing left to do.
	for _, p := range e.host.plugins {
		p.calls = nil
	}
	rep, err = e.runner.Undo(t.Context(), m)
	if err != nil || rep.State != agentv1.StateRolledBack || len(rep.Steps) != 0 {
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
	if err != nil || rep.State != agentv1.StateRolledBack || len(rep.Steps) != 0 {
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
	if d, _ := e.runner.Journal.Deployment(t.Context(), rep.DeploymentId); d.State != journal.StateFailed {
		t.Errorf("journaled state %s, want failed", d.State)
	}
}

// TestUndoOfAnInterruptedDeployment: the agent is stopped while step b
// runs, after the steps before it succeeded. An Undo undoes everything
// it can: b from its write-ahead undo record (interrupted, or pending
// the re-run of an idempotent plugin), a from its journaled record, and
// runs the rollback steps. A b that left no record is a report line
// saying so, and fails the Undo; Run still refuses the deployment.
func TestUndoOfAnInterruptedDeployment(t *testing.T) {
	const couldNot = "step steps/b was interrupted when the agent stopped and left no undo record, so it could not be undone automatically; it may or may not have taken effect"
	tests := []struct {
		name     string
		b        string // step b
		want     []string
		wantB    journal.State
		wantErr  string // "" for success
		wantTree map[string]string
	}{
		{
			name:     "interrupted with an undo record",
			b:        "{name: b, plugin: once, params: {write: opt/b, hang: true}}",
			want:     []string{"undo/b:rolled back", "undo/a:rolled back", "rollback/r:changed"},
			wantB:    journal.StateFailed,
			wantTree: map[string]string{"etc/a": "old a"},
		},
		{
			name:     "idempotent, cut off, with an undo record",
			b:        "{name: b, plugin: idem, params: {write: opt/b, hang: true}}",
			want:     []string{"undo/b:rolled back", "undo/a:rolled back", "rollback/r:changed"},
			wantB:    journal.StatePending,
			wantTree: map[string]string{"etc/a": "old a"},
		},
		{
			name:     "interrupted without an undo record",
			b:        "{name: b, plugin: once, params: {hang: true}}",
			want:     []string{"undo/b:interrupted", "undo/a:rolled back", "rollback/r:changed"},
			wantB:    journal.StateInterrupted,
			wantErr:  couldNot,
			wantTree: map[string]string{"etc/a": "old a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.runner.StateDir = filepath.Join(e.dir, "data", "steps")
			writeTree(t, e.runner.Root, map[string]string{"etc/a": "old a"})
			m := e.manifest(t, "steps:\n  - {name: a, plugin: idem, params: {write: etc/a}}\n  - "+tt.b+
				"\n  - {name: c, plugin: once}\nrollback:\n  - {name: r, plugin: once}\n")
			// The agent stops while b runs: b stays running in the journal.
			ctx, stop := context.WithCancel(t.Context())
			defer stop()
			for _, p := range e.host.plugins {
				p.hanging = stop
			}
			if _, err := e.runner.Run(ctx, m); !errors.Is(err, context.Canceled) {
				t.Fatalf("Run: %v, want it stopped", err)
			}
			for _, p := range e.host.plugins {
				p.hanging, p.calls = nil, nil
			}

			rep, err := e.runner.Undo(t.Context(), m)
			if diff := cmp.Diff(tt.want, outcomes(rep)); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantTree, tree(t, e.runner.Root)); diff != "" {
				t.Errorf("tree after Undo (-want +got):\n%s", diff)
			}
			steps, jerr := e.runner.Journal.Steps(t.Context(), rep.DeploymentId)
			if jerr != nil {
				t.Fatal(jerr)
			}
			if steps[1].State != tt.wantB {
				t.Errorf("b is %s, want %s", steps[1].State, tt.wantB)
			}
			d, _ := e.runner.Journal.Deployment(t.Context(), rep.DeploymentId)
			if tt.wantErr == "" {
				if err != nil || rep.State != agentv1.StateRolledBack || d.State != journal.StateRolledBack {
					t.Fatalf("Undo: %v, report %s, journal %s; want rolled back", err, rep.State, d.State)
				}
				return
			}
			if !errors.Is(err, ErrFailed) || !errors.Is(err, ErrInterrupted) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Undo: %v; want ErrFailed and ErrInterrupted saying %q", err, tt.wantErr)
			}
			if !strings.Contains(rep.Steps[0].Error, tt.wantErr) || rep.State != agentv1.StateFailed || d.State != journal.StateFailed {
				t.Errorf("report line %q, report %s, journal %s", rep.Steps[0].Error, rep.State, d.State)
			}
			// Run still refuses to go on past the interrupted step.
			rep, err = e.runner.Run(t.Context(), m)
			if !errors.Is(err, ErrInterrupted) || rep.State != agentv1.StateInterrupted {
				t.Errorf("Run after the Undo: %v, state %s; want ErrInterrupted, interrupted", err, rep.State)
			}
			if calls := e.host.plugins["once"].Calls(); !cmp.Equal(calls, []string{"apply r"}) {
				t.Errorf("once's calls = %v, want only the rollback step", calls)
			}
		})
	}
}

// TestUndoResumedInAnInterruptedRollbackStep: an Undo cut off in a
// rollback step of a plugin that is not idempotent does not run the step
// again; the next Undo says so and fails.
func TestUndoResumedInAnInterruptedRollbackStep(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	m := e.manifest(t, "steps:\n  - {name: a, plugin: idem}\nrollback:\n  - {name: r, plugin: once}\n  - {name: r2, plugin: idem}\n")
	if _, err := e.runner.Run(ctx, m); err != nil {
		t.Fatal(err)
	}
	id := DeploymentID(m, e.runner.Root)
	j := e.runner.Journal
	if err := j.SetDeployment(ctx, id, journal.StateRollingBack, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Start(ctx, id, journal.ListRollback, 0, false); err != nil {
		t.Fatal(err)
	}
	e.host.plugins["once"].calls = nil
	rep, err := e.runner.Undo(ctx, m)
	want := "rollback step r was interrupted when the agent stopped, and its plugin (once) is not idempotent, so it is not run again automatically"
	if !errors.Is(err, ErrInterrupted) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Undo: %v, want ErrInterrupted saying %q", err, want)
	}
	if diff := cmp.Diff([]string{"undo/a:rolled back", "rollback/r:interrupted", "rollback/r2:changed"}, outcomes(rep)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if calls := e.host.plugins["once"].Calls(); len(calls) != 0 {
		t.Errorf("the interrupted rollback step ran again: %v", calls)
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
				e.runner.Bundle, e.runner.ReleaseKeys = signed(t, m)
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
	e.runner.Bundle, e.runner.ReleaseKeys = signed(t, m)
	e.runner.Bundle.Signature[0] ^= 1
	_, err := e.runner.Check(t.Context(), m)
	if !errors.Is(err, ErrUnverified) {
		t.Fatalf("Check: %v, want ErrUnverified", err)
	}
	if calls := e.host.plugins["once"].Calls(); len(calls) != 0 {
		t.Errorf("Check of an unverified release asked the plugin: %v", calls)
	}
}
