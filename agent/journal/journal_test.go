package journal

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"

	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func open(t *testing.T, dir string) *Journal {
	t.Helper()
	clock := t0
	j, err := Open(dir, Options{Timeout: 100 * time.Millisecond, Now: func() time.Time {
		clock = clock.Add(time.Second)
		return clock
	}})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func begin(t *testing.T, j *Journal) Deployment {
	t.Helper()
	d, steps, err := j.Begin(t.Context(), Deployment{ID: "d1", Manifest: "webshop@1.0.0", Root: "/r"}, []Step{
		{List: ListSteps, Index: 0, Name: "install", Plugin: "dpkg"},
		{List: ListSteps, Index: 1, Name: "migrate", Plugin: "exec"},
		{List: ListVerify, Index: 0, Name: "http", Plugin: "httpcheck"},
		{List: ListRollback, Index: 0, Name: "restore", Plugin: "exec"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range steps {
		names = append(names, s.Ref()+":"+string(s.State))
	}
	want := []string{"steps/install:pending", "steps/migrate:pending", "verify/http:pending", "rollback/restore:pending"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Fatalf("Begin steps (-want +got):\n%s", diff)
	}
	return d
}

func states(t *testing.T, j *Journal, id string) []string {
	t.Helper()
	steps, err := j.Steps(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range steps {
		out = append(out, s.Ref()+":"+string(s.State))
	}
	return out
}

func TestStepLifecycleSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	j := open(t, dir)
	begin(t, j)
	if _, err := j.Start(ctx, "d1", ListSteps, 0, true); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Start(ctx, "d1", ListSteps, 0, true); !errors.Is(err, ErrTransition) {
		t.Errorf("second Start: err = %v, want ErrTransition", err)
	}
	got, err := j.Finish(ctx, Step{DeploymentID: "d1", List: ListSteps, Index: 0, Name: "install", State: StateSucceeded,
		Changed: true, Outputs: map[string]string{"version": "1.0"}, RollbackRecord: []byte{0, 1, 2},
		Changes: []Change{{Kind: "package", Name: "webshop", State: "present", Version: "1.0"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Attempts != 1 || got.Duration <= 0 || !got.Idempotent {
		t.Errorf("finished step = %+v", got)
	}
	j.Close()

	j = open(t, dir)
	defer j.Close()
	// Begin again: the journal keeps what it has.
	begin2, steps, err := j.Begin(ctx, Deployment{ID: "d1", Manifest: "other"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if begin2.Manifest != "webshop@1.0.0" {
		t.Errorf("Begin replaced the deployment: %+v", begin2)
	}
	s := steps[0]
	if s.State != StateSucceeded || string(s.RollbackRecord) != "\x00\x01\x02" || s.Outputs["version"] != "1.0" || len(s.Changes) != 1 {
		t.Errorf("after reopen: %+v", s)
	}
}

func TestRecover(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	j := open(t, dir)
	begin(t, j)
	if _, err := j.Start(ctx, "d1", ListSteps, 0, true); err != nil { // idempotent
		t.Fatal(err)
	}
	if _, err := j.Start(ctx, "d1", ListSteps, 1, false); err != nil { // not idempotent
		t.Fatal(err)
	}
	j.Close() // the "crash": both left running

	j = open(t, dir)
	defer j.Close()
	changed, err := j.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 2 {
		t.Fatalf("Recover changed %d steps, want 2", len(changed))
	}
	want := []string{"steps/install:pending", "steps/migrate:interrupted", "verify/http:pending", "rollback/restore:pending"}
	if diff := cmp.Diff(want, states(t, j, "d1")); diff != "" {
		t.Errorf("after Recover (-want +got):\n%s", diff)
	}
	d, err := j.Deployment(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if d.State != StateInterrupted {
		t.Errorf("deployment state = %s, want interrupted", d.State)
	}
	// Nothing is left running: a second Recover changes nothing.
	if changed, err := j.Recover(ctx); err != nil || len(changed) != 0 {
		t.Errorf("second Recover = %v, %v", changed, err)
	}
	// The re-run of the idempotent step counts a second attempt.
	s, err := j.Start(ctx, "d1", ListSteps, 0, true)
	if err != nil || s.Attempts != 2 {
		t.Errorf("restart idempotent step: %+v, %v", s, err)
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		as        string
		wantStep  State
		wantDeply State
	}{
		{ResolveSucceeded, StateSucceeded, StatePending},
		{ResolveFailed, StateFailed, StateFailed},
		{ResolveRetry, StatePending, StatePending},
	}
	for _, tt := range tests {
		t.Run(tt.as, func(t *testing.T) {
			ctx := t.Context()
			j := open(t, t.TempDir())
			defer j.Close()
			begin(t, j)
			if _, err := j.Resolve(ctx, "d1", "migrate", tt.as, "n", "ops"); !errors.Is(err, ErrTransition) {
				t.Errorf("resolving a pending step: err = %v, want ErrTransition", err)
			}
			if _, err := j.Start(ctx, "d1", ListSteps, 1, false); err != nil {
				t.Fatal(err)
			}
			if _, err := j.Recover(ctx); err != nil {
				t.Fatal(err)
			}
			s, err := j.Resolve(ctx, "d", "steps/migrate", tt.as, "checked the schema by hand", "ops")
			if err != nil {
				t.Fatal(err)
			}
			if s.State != tt.wantStep || len(s.Resolutions) != 1 || s.Resolutions[0].Note != "checked the schema by hand" || s.Resolutions[0].By != "ops" {
				t.Errorf("resolved step = %+v", s)
			}
			d, _ := j.Deployment(ctx, "d1")
			if d.State != tt.wantDeply {
				t.Errorf("deployment state = %s, want %s", d.State, tt.wantDeply)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	ctx := t.Context()
	j := open(t, t.TempDir())
	defer j.Close()
	begin(t, j)
	tests := []struct {
		name, dep, step, as string
		want                error
	}{
		{"unknown deployment", "nope", "migrate", "retry", ErrNotFound},
		{"unknown step", "d1", "nope", "retry", ErrNotFound},
		{"bad decision", "d1", "migrate", "maybe", ErrTransition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := j.Resolve(ctx, tt.dep, tt.step, tt.as, "n", ""); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDeploymentPrefix(t *testing.T) {
	ctx := t.Context()
	j := open(t, t.TempDir())
	defer j.Close()
	for _, id := range []string{"abc1", "abc2", "xyz"} {
		if _, _, err := j.Begin(ctx, Deployment{ID: id}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if d, err := j.Deployment(ctx, "xy"); err != nil || d.ID != "xyz" {
		t.Errorf("prefix xy = %v, %v", d.ID, err)
	}
	if _, err := j.Deployment(ctx, "abc"); !errors.Is(err, ErrAmbiguous) {
		t.Errorf("prefix abc: err = %v, want ErrAmbiguous", err)
	}
	all, err := j.Deployments(ctx)
	if err != nil || len(all) != 3 || all[0].ID != "xyz" {
		t.Errorf("Deployments = %+v, %v (want newest first)", all, err)
	}
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir)
	defer j.Close()
	_, err := Open(dir, Options{Timeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "is another cairn-agent using this data dir?") {
		t.Errorf("second Open: err = %v, want ErrLocked with a hint", err)
	}
}

func TestOutbox(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	j := open(t, dir)
	for _, id := range []string{"a", "b", "a", "c"} {
		if err := j.Put(ctx, OutboxItem{ID: id, Kind: "step_result", Payload: json.RawMessage(`{"id":"` + id + `"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(limit int) []string { return listIDs(t, j, limit) }
	if diff := cmp.Diff([]string{"a", "b", "c"}, ids(0)); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a", "b"}, ids(2)); diff != "" {
		t.Errorf("List(2) (-want +got):\n%s", diff)
	}
	if err := j.Ack(ctx, "a", "c", "unknown"); err != nil {
		t.Fatal(err)
	}
	j.Close()
	j = open(t, dir)
	defer j.Close()
	if diff := cmp.Diff([]string{"b"}, ids(0)); diff != "" {
		t.Errorf("after Ack and reopen (-want +got):\n%s", diff)
	}
	// An acknowledged ID may be put again (a new result under the same ID
	// is the caller's bug, but must not wedge the outbox).
	if err := j.Put(ctx, OutboxItem{ID: "a", Kind: "x", Payload: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"b", "a"}, ids(0)); diff != "" {
		t.Errorf("after re-Put (-want +got):\n%s", diff)
	}
	if err := j.Put(ctx, OutboxItem{Kind: "x"}); err == nil {
		t.Error("Put without an ID succeeded")
	}
}

func TestSetDeploymentFinishTime(t *testing.T) {
	tests := []struct {
		state    State
		finished bool
	}{
		{StatePending, false},
		{StateRunning, false},
		{StateRollingBack, false},
		{StateSucceeded, true},
		{StateFailed, true},
		{StateRolledBack, true},
	}
	for _, tt := range tests {
		t.Run(string(tt.state), func(t *testing.T) {
			j := open(t, t.TempDir())
			defer j.Close()
			begin(t, j)
			if err := j.SetDeployment(t.Context(), "d1", tt.state, ""); err != nil {
				t.Fatal(err)
			}
			d, err := j.Deployment(t.Context(), "d1")
			if err != nil {
				t.Fatal(err)
			}
			if d.State != tt.state || d.FinishedAt.IsZero() == tt.finished {
				t.Errorf("deployment: state %s, finished at %v; want %s, finished %v", d.State, d.FinishedAt, tt.state, tt.finished)
			}
		})
	}
}

// TestDeploymentCommandID: a deployment keeps the command it belongs
// to, and one written before Deployment had a command ID (the JSON has
// no command_id) reads with none: no migration is needed.
func TestDeploymentCommandID(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	j := open(t, dir)
	if _, _, err := j.Begin(ctx, Deployment{ID: "d2", CommandID: "cmd-7", Manifest: "webshop@1.0.0", Root: "/r"}, nil); err != nil {
		t.Fatal(err)
	}
	old := `{"id":"d1","manifest":"webshop@0.9.0","root":"/r","started_at":"2026-04-01T12:00:00Z","state":"succeeded"}`
	if err := j.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketDeployments).Put([]byte("d1"), []byte(old)) }); err != nil {
		t.Fatal(err)
	}
	j.Close()
	j = open(t, dir)
	defer j.Close()
	ds, err := j.Deployments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range ds {
		got[d.ID] = d.CommandID + " " + d.Manifest + " " + string(d.State)
	}
	want := map[string]string{"d1": " webshop@0.9.0 succeeded", "d2": "cmd-7 webshop@1.0.0 pending"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deployments (-want +got):\n%s", diff)
	}
}

// TestRecoverReportsInterruptions: Recover queues one
// deployment_interrupted item for each step it finds cut off in a
// deployment of a deploy command, none for a local apply's, and logs
// each with the way out.
func TestRecoverReportsInterruptions(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	j := open(t, dir)
	if _, _, err := j.Begin(ctx, Deployment{ID: "d1", CommandID: "cmd-1", Manifest: "webshop@2.0.1", Root: "/r"}, []Step{
		{List: ListSteps, Index: 0, Name: "install", Plugin: "dpkg"},
		{List: ListSteps, Index: 1, Name: "migrate", Plugin: "exec"},
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := j.Begin(ctx, Deployment{ID: "local", Manifest: "webshop@2.0.1", Root: "/r"}, []Step{{List: ListSteps, Index: 0, Name: "migrate", Plugin: "exec"}}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		id         string
		index      int
		idempotent bool
	}{{"d1", 0, true}, {"d1", 1, false}, {"local", 0, false}} {
		if _, err := j.Start(ctx, s.id, ListSteps, s.index, s.idempotent); err != nil {
			t.Fatal(err)
		}
	}
	j.Close() // the crash

	var logs strings.Builder
	j, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if _, err := j.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Recover(ctx); err != nil { // finds nothing more
		t.Fatal(err)
	}
	items, err := j.List(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		ID, Kind, DeploymentID string
		Payload                *agentv1.Interruption
	}
	var gots []got
	for _, it := range items {
		g := got{ID: it.ID, Kind: it.Kind, DeploymentID: it.DeploymentID, Payload: &agentv1.Interruption{}}
		if err := protojson.Unmarshal(it.Payload, g.Payload); err != nil {
			t.Fatalf("payload of %s: %v", it.ID, err)
		}
		gots = append(gots, g)
	}
	want := []got{
		{"d1/interrupted/steps/install/1", KindDeploymentInterrupted, "d1", &agentv1.Interruption{
			CommandId: "cmd-1", DeploymentId: "d1", Release: "webshop@2.0.1", Step: "steps/install", Plugin: "dpkg", Idempotent: true, State: agentv1.StatePending}},
		{"d1/interrupted/steps/migrate/1", KindDeploymentInterrupted, "d1", &agentv1.Interruption{
			CommandId: "cmd-1", DeploymentId: "d1", Release: "webshop@2.0.1", Step: "steps/migrate", Plugin: "exec", State: agentv1.StateInterrupted}},
	}
	if diff := cmp.Diff(want, gots, protocmp.Transform()); diff != "" {
		t.Errorf("outbox (-want +got):\n%s", diff)
	}
	for _, line := range []string{
		`level=WARN msg="step was running when the agent stopped; not idempotent, marked interrupted: it may or may not have taken effect" deployment=d1 step=steps/migrate plugin=exec command=cmd-1 hint="reported to the controller`,
		`deployment=local step=steps/migrate plugin=exec hint="check the host, then decide with 'cairn-agent journal resolve local steps/migrate --as succeeded|failed|retry --note TEXT'"`,
	} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("log lacks %s:\n%s", line, logs.String())
		}
	}
}
