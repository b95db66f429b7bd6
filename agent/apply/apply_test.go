package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/agent/journal"
	"github.com/cairn-ops/cairn/internal/manifest"
	"github.com/cairn-ops/cairn/plugins/builtin/file"
	"github.com/cairn-ops/cairn/plugins/sdk"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

type env struct {
	runner *Runner
	host   *fakeHost
	dir    string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	j, err := journal.Open(filepath.Join(dir, "data"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	host := &fakeHost{plugins: map[string]*fakePlugin{
		"idem":   {name: "idem", idempotent: true},
		"once":   {name: "once"},
		"manual": {name: "manual", confirm: true},
	}}
	return &env{runner: &Runner{Host: host, Journal: j, Root: filepath.Join(dir, "root")}, host: host, dir: dir}
}

func (e *env) manifest(t *testing.T, body string) *manifest.Manifest {
	t.Helper()
	path := filepath.Join(e.dir, "release.yaml")
	if err := os.WriteFile(path, []byte("apiVersion: cairn/v1\nkind: Release\nname: shop\nversion: 1.0.0\n"+body), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func outcomes(rep *agentv1.ApplyReport) []string {
	var out []string
	for _, s := range rep.Steps {
		out = append(out, s.List+"/"+s.Name+":"+s.Outcome)
	}
	return out
}

func TestRunTwice(t *testing.T) {
	e := newEnv(t)
	m := e.manifest(t, `
steps:
  - {name: a, plugin: idem}
  - {name: b, plugin: once, params: {unchanged: true}}
verify:
  - {name: v, plugin: idem}
`)
	rep, err := e.runner.Run(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"steps/a:changed", "steps/b:unchanged", "verify/v:passed"}, outcomes(rep)); diff != "" {
		t.Errorf("first run (-want +got):\n%s", diff)
	}
	if rep.State != agentv1.StateSucceeded {
		t.Errorf("state = %s", rep.State)
	}
	if got, want := rep.Steps[0].Outputs["key"], rep.DeploymentId+"/steps/a"; got != want {
		t.Errorf("idempotency key = %q, want %q", got, want)
	}
	rep, err = e.runner.Run(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"steps/a:skipped", "steps/b:skipped", "verify/v:passed"}, outcomes(rep)); diff != "" {
		t.Errorf("second run (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"apply a", "verify v", "verify v"}, e.host.plugins["idem"].Calls()); diff != "" {
		t.Errorf("idem calls (-want +got):\n%s", diff)
	}
	items, err := e.runner.Journal.List(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	// a, b, v, deployment; v again and deployment again on the second run.
	var ids []string
	for _, it := range items {
		ids = append(ids, strings.TrimPrefix(it.ID, rep.DeploymentId+"/")+" "+it.Kind)
	}
	want := []string{"steps/a/1 step_result", "steps/b/1 step_result", "verify/v/1 step_result", "deployment/1 deployment_result",
		"verify/v/2 step_result", "deployment/2 deployment_result"}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("outbox (-want +got):\n%s", diff)
	}
}

// TestRunCompletesTheCommand: with Runner.Complete, the end of a run and
// of an undo completes the command in the same journal transaction, with
// the result Complete made from the final report; an undo that finds
// nothing to do ends nothing and completes nothing (the session does).
func TestRunCompletesTheCommand(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	var seen []string
	complete := func(command string) func(*agentv1.ApplyReport, error) *journal.Completion {
		return func(rep *agentv1.ApplyReport, err error) *journal.Completion {
			seen = append(seen, fmt.Sprintf("%s %s err=%v", command, rep.State, err != nil))
			return &journal.Completion{CommandID: command, Result: json.RawMessage(fmt.Sprintf(`{"state":%q}`, rep.State))}
		}
	}
	m := e.manifest(t, "steps:\n  - {name: a, plugin: once}\n")
	e.runner.Deployment, e.runner.Command = CommandDeploymentID("cmd-1", e.runner.Root), "cmd-1"
	e.runner.Complete = complete("cmd-1")
	if _, err := e.runner.Run(ctx, m); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Rollback commands undo cmd-1's deployment: the second finds it
	// rolled back already.
	for _, cmd := range []string{"cmd-2", "cmd-3"} {
		e.runner.Complete = complete(cmd)
		if _, err := e.runner.Undo(ctx, m); err != nil {
			t.Fatalf("Undo as %s: %v", cmd, err)
		}
	}
	if diff := cmp.Diff([]string{"cmd-1 succeeded err=false", "cmd-2 rolled-back err=false"}, seen); diff != "" {
		t.Errorf("Complete calls (-want +got):\n%s", diff)
	}
	for id, want := range map[string]string{"cmd-1": `{"state":"succeeded"}`, "cmd-2": `{"state":"rolled-back"}`, "cmd-3": ""} {
		done, r, err := e.runner.Journal.Completed(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if r != nil {
			got = string(r.Payload)
		}
		if done != (want != "") || got != want {
			t.Errorf("Completed(%s) = %v, %s; want the result %s", id, done, got, want)
		}
	}
}

// TestRunDeploymentByCommand: with Runner.Deployment set, each deploy
// command is its own deployment. A new command runs the steps of a
// manifest applied before; the same command again continues its
// deployment; the command ID is journaled and reported.
func TestRunDeploymentByCommand(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	m := e.manifest(t, "steps:\n  - {name: a, plugin: once}\n")
	runAs := func(command string) []string {
		t.Helper()
		e.runner.Deployment, e.runner.Command = CommandDeploymentID(command, e.runner.Root), command
		rep, err := e.runner.Run(ctx, m)
		if err != nil {
			t.Fatalf("run as %s: %v", command, err)
		}
		if rep.DeploymentId != e.runner.Deployment || rep.CommandId != command {
			t.Errorf("run as %s: report names deployment %s of command %q", command, rep.DeploymentId, rep.CommandId)
		}
		return outcomes(rep)
	}
	steps := map[string][]string{}
	for _, c := range []string{"cmd-1", "cmd-2", "cmd-1"} {
		steps[c] = append(steps[c], runAs(c)...)
	}
	want := map[string][]string{
		"cmd-1": {"steps/a:changed", "steps/a:skipped"},
		"cmd-2": {"steps/a:changed"},
	}
	if diff := cmp.Diff(want, steps); diff != "" {
		t.Errorf("outcomes by command (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"apply a", "apply a"}, e.host.plugins["once"].Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	ds, err := e.runner.Journal.Deployments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range ds {
		got[d.ID] = d.CommandID
	}
	wantIDs := map[string]string{
		CommandDeploymentID("cmd-1", e.runner.Root): "cmd-1",
		CommandDeploymentID("cmd-2", e.runner.Root): "cmd-2",
	}
	if diff := cmp.Diff(wantIDs, got); diff != "" {
		t.Errorf("journaled deployments (-want +got):\n%s", diff)
	}
	// Without Deployment: the manifest's ID, as cairn-agent apply uses.
	e.runner.Deployment, e.runner.Command = "", ""
	rep, err := e.runner.Run(ctx, m)
	if err != nil || rep.DeploymentId != DeploymentID(m, e.runner.Root) || rep.CommandId != "" {
		t.Errorf("local run: %v, deployment %s, command %q", err, rep.DeploymentId, rep.CommandId)
	}
}

func TestRunFailureRollsBack(t *testing.T) {
	e := newEnv(t)
	m := e.manifest(t, `
steps:
  - {name: a, plugin: idem}
  - {name: b, plugin: once}
  - {name: c, plugin: once, params: {fail: true}}
  - {name: d, plugin: once}
verify:
  - {name: v, plugin: idem}
rollback:
  - {name: r, plugin: once}
`)
	rep, err := e.runner.Run(t.Context(), m)
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "step steps[2] (c) failed: boom") {
		t.Fatalf("err = %v, want ErrFailed naming step c", err)
	}
	want := []string{"steps/a:changed", "steps/b:changed", "steps/c:failed", "steps/d:not run",
		"undo/b:rolled back", "undo/a:rolled back", "rollback/r:changed"}
	if diff := cmp.Diff(want, outcomes(rep)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if rep.State != agentv1.StateRolledBack {
		t.Errorf("state = %s, want rolled-back", rep.State)
	}
	if diff := cmp.Diff([]string{"apply a", "rollback(undo a) a"}, e.host.plugins["idem"].Calls()); diff != "" {
		t.Errorf("idem calls (-want +got):\n%s", diff)
	}
	// A re-run applies the rolled-back steps again.
	e.host.plugins["once"].calls = nil
	if _, err := e.runner.Run(t.Context(), m); !errors.Is(err, ErrFailed) {
		t.Fatalf("second run: err = %v", err)
	}
	if got := e.host.plugins["once"].Calls(); got[0] != "apply b" || got[1] != "apply c" {
		t.Errorf("second run's calls = %v, want b and c applied again", got)
	}
}

func TestRunFailureWithoutRollback(t *testing.T) {
	e := newEnv(t)
	m := e.manifest(t, "steps:\n  - {name: a, plugin: once, params: {fail: true}, continue_on_error: true}\n  - {name: b, plugin: once}\nverify:\n  - {name: v, plugin: idem, params: {pass: false}}\n")
	rep, err := e.runner.Run(t.Context(), m)
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "(rolled back)") {
		t.Fatalf("err = %v", err)
	}
	// Without rollback steps the applied steps are still undone by their
	// plugins, as apply --help says.
	if diff := cmp.Diff([]string{"steps/a:failed (ignored)", "steps/b:changed", "verify/v:failed", "undo/b:rolled back"}, outcomes(rep)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if rep.State != agentv1.StateRolledBack {
		t.Errorf("state = %s, want rolled-back", rep.State)
	}
	if got := rep.Steps[2].Outputs["evidence"]; got != "checked v: false" {
		t.Errorf("evidence = %q", got)
	}
}

// TestRunValidatesEveryStepFirst: a manifest whose later steps have bad
// parameters runs no step at all, and says which steps are wrong.
func TestRunValidatesEveryStepFirst(t *testing.T) {
	e := newEnv(t)
	m := e.manifest(t, `
steps:
  - {name: a, plugin: idem}
  - {name: b, plugin: once}
  - {name: c, plugin: once, params: {bad: argv}}
verify:
  - {name: v, plugin: idem, params: {bad: url}}
rollback:
  - {name: r, plugin: once}
`)
	rep, err := e.runner.Run(t.Context(), m)
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("err = %v, want ErrFailed", err)
	}
	for _, want := range []string{"no step was run", "steps[2].params.argv: is wrong", "verify[0].params.url: is wrong"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v\nwant it to contain %q", err, want)
		}
	}
	for _, p := range []string{"idem", "once"} {
		if calls := e.host.plugins[p].Calls(); len(calls) != 0 {
			t.Errorf("plugin %s was called: %v", p, calls)
		}
	}
	want := []string{"steps/a:not run", "steps/b:not run", "steps/c:failed", "verify/v:failed", "rollback/r:not run"}
	if diff := cmp.Diff(want, outcomes(rep)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if rep.State != agentv1.StateFailed {
		t.Errorf("state = %s, want failed", rep.State)
	}
}

// TestRunUndoesAFailedStepFromItsUndoRecord: a step that changed the
// root, saved its undo record first and then failed is undone with that
// record, like the steps that succeeded before it.
func TestRunUndoesAFailedStepFromItsUndoRecord(t *testing.T) {
	e := newEnv(t)
	e.runner.StateDir = filepath.Join(e.dir, "data", "steps")
	root := e.runner.Root
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/app.conf"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := e.manifest(t, `
steps:
  - {name: a, plugin: idem, params: {write: etc/a.conf}}
  - {name: b, plugin: once, params: {write: etc/app.conf, fail_after_write: true}}
`)
	rep, err := e.runner.Run(t.Context(), m)
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("err = %v, want ErrFailed", err)
	}
	want := []string{"steps/a:changed", "steps/b:failed", "undo/b:rolled back", "undo/a:rolled back"}
	if diff := cmp.Diff(want, outcomes(rep)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if got, err := os.ReadFile(filepath.Join(root, "etc/app.conf")); err != nil || string(got) != "old" {
		t.Errorf("etc/app.conf = %q, %v; want the old content back", got, err)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/a.conf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("etc/a.conf still there after the rollback: %v", err)
	}
}

func TestRunInvalidParams(t *testing.T) {
	e := newEnv(t)
	m := e.manifest(t, "steps:\n  - name: a\n    plugin: once\n    params:\n      bad: argv\n      argv: [x]\n")
	_, err := e.runner.Run(t.Context(), m)
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "release.yaml:10: steps[0].params.argv: is wrong") {
		t.Fatalf("err = %v, want the field error with file:line", err)
	}
	if calls := e.host.plugins["once"].Calls(); len(calls) != 0 {
		t.Errorf("plugin was applied: %v", calls)
	}
}

func TestRunInterruptedBlocks(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	m := e.manifest(t, "steps:\n  - {name: a, plugin: idem}\n  - {name: b, plugin: once}\n  - {name: c, plugin: idem}\n")
	id := DeploymentID(m, e.runner.Root)
	// A crash while b and then c ran: journal them running, as Run does
	// just before Apply.
	if _, _, err := e.runner.Journal.Begin(ctx, journal.Deployment{ID: id}, []journal.Step{
		{List: "steps", Index: 0, Name: "a", Plugin: "idem"}, {List: "steps", Index: 1, Name: "b", Plugin: "once"}, {List: "steps", Index: 2, Name: "c", Plugin: "idem"},
	}); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 2} {
		if _, err := e.runner.Journal.Start(ctx, id, "steps", i, i == 2); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.runner.Run(ctx, m)
	if !errors.Is(err, ErrInterrupted) || !strings.Contains(err.Error(), "cairn-agent journal resolve "+id[:12]+" b --as succeeded|failed|retry") {
		t.Fatalf("err = %v, want ErrInterrupted with the resolve hint", err)
	}
	if calls := e.host.plugins["once"].Calls(); len(calls) != 0 {
		t.Fatalf("ran a step of an interrupted deployment: %v", calls)
	}
	if _, err := e.runner.Journal.Resolve(ctx, id, "b", journal.ResolveSucceeded, "it ran; checked by hand", "ops"); err != nil {
		t.Fatal(err)
	}
	rep, err := e.runner.Run(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	// b is settled and not run again; c, idempotent, re-ran.
	if diff := cmp.Diff([]string{"steps/a:changed", "steps/b:skipped", "steps/c:changed"}, outcomes(rep)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if rep.Steps[2].Attempts != 2 {
		t.Errorf("c's attempts = %d, want 2", rep.Steps[2].Attempts)
	}
}

func TestRunConfirmation(t *testing.T) {
	e := newEnv(t)
	m := e.manifest(t, "steps:\n  - {name: rack, plugin: manual, params: {instructions: fit the disk}}\n")
	_, err := e.runner.Run(t.Context(), m)
	if !errors.Is(err, ErrConfirmation) || !strings.Contains(err.Error(), "step rack needs an operator's confirmation: pass --confirm rack=NOTE") {
		t.Fatalf("err = %v", err)
	}
	var shown string
	e.runner.Confirm = func(_ context.Context, step, instr string) (*sdk.Confirmation, error) {
		shown = step + ": " + instr
		return &sdk.Confirmation{By: "ops", Note: "done"}, nil
	}
	rep, err := e.runner.Run(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	if shown != "rack: fit the disk" || rep.Steps[0].Outputs["confirmed_by"] != "ops" {
		t.Errorf("shown %q, outputs %v", shown, rep.Steps[0].Outputs)
	}
	steps, _ := e.runner.Journal.Steps(t.Context(), rep.DeploymentId)
	if steps[0].ConfirmedBy != "ops" || steps[0].ConfirmedNote != "done" {
		t.Errorf("journal: %+v", steps[0])
	}
}

func TestRunTimeout(t *testing.T) {
	e := newEnv(t)
	m := e.manifest(t, "steps:\n  - {name: slow, plugin: once, params: {hang: true}, timeout: 100ms}\n")
	start := time.Now()
	_, err := e.runner.Run(t.Context(), m)
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "timed out after 100ms") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestArtifacts(t *testing.T) {
	e := newEnv(t)
	if err := os.WriteFile(filepath.Join(e.dir, "site.tar.gz"), []byte("test"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	m := e.manifest(t, "components:\n  - {name: site, kind: application, path: site.tar.gz, sha256: "+good+"}\nsteps:\n  - {name: a, plugin: once}\n")
	rep, err := e.runner.Run(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Steps[0].Outputs["artifact_site"]; got != filepath.Join(e.dir, "site.tar.gz") {
		t.Errorf("artifact path = %q", got)
	}
	bad := strings.Replace(good, "9f", "00", 1)
	m = e.manifest(t, "components:\n  - {name: site, kind: application, path: site.tar.gz, sha256: "+bad+"}\nsteps:\n  - {name: a, plugin: once}\n")
	_, err = e.runner.Run(t.Context(), m)
	if !errors.Is(err, ErrArtifact) || !strings.Contains(err.Error(), "the manifest says "+bad) {
		t.Fatalf("err = %v, want ErrArtifact", err)
	}
}

func TestCheck(t *testing.T) {
	e := newEnv(t)
	m := e.manifest(t, `
steps:
  - {name: a, plugin: idem}
  - name: b
    plugin: once
    params: {bad: mode}
  - {name: c, plugin: nope}
verify:
  - {name: v, plugin: idem}
`)
	rep, err := e.runner.Check(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() {
		t.Error("OK() with problems")
	}
	if diff := cmp.Diff([]string{"would a"}, rep.Steps[0].Actions); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]*agentv1.FieldProblem{{File: m.File, Line: 10, Field: "steps[1].params.mode", Message: "is wrong"}}, rep.Steps[1].Problems, protocmp.Transform()); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if !strings.Contains(rep.Steps[2].Error, `plugin "nope"`) {
		t.Errorf("unknown plugin: %q", rep.Steps[2].Error)
	}
	for _, p := range e.host.plugins {
		for _, c := range p.Calls() {
			if !strings.HasPrefix(c, "plan ") {
				t.Errorf("Check called %q", c)
			}
		}
	}
	if ds, _ := e.runner.Journal.Deployments(t.Context()); len(ds) != 0 {
		t.Errorf("Check journaled %d deployments", len(ds))
	}
}

// TestRunAfterACrashBetweenChangeAndJournal: the agent dies after the
// file plugin replaced a file and before the journal recorded the step's
// result. The re-run finds the file up to date, yet keeps the first
// attempt's undo record, so a later failure restores the original.
func TestRunAfterACrashBetweenChangeAndJournal(t *testing.T) {
	e := newEnv(t)
	e.host.builtin = map[string]sdk.Plugin{"file": file.New()}
	e.runner.StateDir = filepath.Join(e.dir, "data", "steps")
	root := e.runner.Root
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/app.conf"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := e.manifest(t, `
steps:
  - {name: conf, plugin: file, params: {path: /etc/app.conf, content: new}}
  - {name: boom, plugin: once, params: {fail: true}}
`)
	// The first attempt: journaled running, the file replaced, then the
	// agent is killed before the journal hears of it.
	id := DeploymentID(m, root)
	var recs []journal.Step
	for _, st := range m.Steps {
		recs = append(recs, journal.Step{List: st.List, Index: st.Index, Name: st.Name, Plugin: st.Plugin})
	}
	if _, _, err := e.runner.Journal.Begin(t.Context(), journal.Deployment{ID: id, Manifest: "shop@1.0.0", Root: root}, recs); err != nil {
		t.Fatal(err)
	}
	if _, err := e.runner.Journal.Start(t.Context(), id, manifest.ListSteps, 0, true); err != nil {
		t.Fatal(err)
	}
	sc, err := e.runner.stepContext(id, &m.Steps[0], nil, false, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := file.New().Apply(t.Context(), sc, &reporter{log: e.runner.log()}); err != nil {
		t.Fatal(err)
	}

	rep, err := e.runner.Run(t.Context(), m)
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("err = %v, want ErrFailed", err)
	}
	want := []string{"steps/conf:changed", "steps/boom:failed", "undo/conf:rolled back"}
	if diff := cmp.Diff(want, outcomes(rep)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if got, err := os.ReadFile(filepath.Join(root, "etc/app.conf")); err != nil || string(got) != "old" {
		t.Errorf("etc/app.conf = %q, %v; want the content before the first attempt", got, err)
	}
}
