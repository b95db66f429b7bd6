package journal

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
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

// outboxIDs lists the outbox's item IDs, oldest first.
func outboxIDs(t *testing.T, j *Journal) []string {
	t.Helper()
	return listIDs(t, j, 0)
}

// listIDs lists the IDs of the first limit outbox items (all when limit
// is 0).
func listIDs(t *testing.T, j *Journal, limit int) []string {
	t.Helper()
	items, err := j.List(t.Context(), 0, limit)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, it := range items {
		out = append(out, it.ID)
	}
	return out
}

// TestListPages: List continues after the Seq of the last item it
// returned, so the outbox is read a page at a time.
func TestListPages(t *testing.T) {
	ctx := t.Context()
	j := open(t, t.TempDir())
	defer j.Close()
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		if err := j.Put(ctx, OutboxItem{ID: id, Kind: "x", Payload: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Ack(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	var pages [][]string
	var after uint64
	for {
		items, err := j.List(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) == 0 {
			break
		}
		var page []string
		for _, it := range items {
			page = append(page, it.ID)
		}
		pages = append(pages, page)
		after = items[len(items)-1].Seq
	}
	if diff := cmp.Diff([][]string{{"a", "b"}, {"d", "e"}}, pages); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}
	if err := j.Put(ctx, OutboxItem{ID: "f", Payload: json.RawMessage(`{"unclosed"`)}); err == nil || !strings.Contains(err.Error(), "outbox item f: payload is not JSON") {
		t.Errorf("Put of a payload that is not JSON: %v", err)
	}
}

// TestFinishQueuesStepResult: the step's result is in the outbox as soon
// as Finish returned (one transaction), as its report line (without its
// rollback record), and a step that fails to finish queues nothing.
func TestFinishQueuesStepResult(t *testing.T) {
	ctx := t.Context()
	j := open(t, t.TempDir())
	defer j.Close()
	begin(t, j)
	if _, err := j.Start(ctx, "d1", ListSteps, 0, false); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Finish(ctx, Step{DeploymentID: "d1", List: ListSteps, Index: 0, Name: "install", State: StateSucceeded,
		Changed: true, RollbackRecord: []byte("secret undo"), Outputs: map[string]string{"version": "1.0"}}); err != nil {
		t.Fatal(err)
	}
	// Not running: refused, and nothing queued.
	if _, err := j.Finish(ctx, Step{DeploymentID: "d1", List: ListSteps, Index: 1, Name: "migrate", State: StateFailed}); !errors.Is(err, ErrTransition) {
		t.Fatalf("Finish of a pending step: %v, want ErrTransition", err)
	}
	items, err := j.List(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 {
		t.Fatalf("outbox holds %v, want one step result", outboxIDs(t, j))
	}
	it := items[0]
	var got agentv1.StepResult
	if err := protojson.Unmarshal(it.Payload, &got); err != nil {
		t.Fatal(err)
	}
	if it.ID != "d1/steps/install/1" || it.Kind != KindStepResult || it.DeploymentID != "d1" {
		t.Errorf("item %s %s %s, want d1/steps/install/1 step_result d1", it.ID, it.Kind, it.DeploymentID)
	}
	want := &agentv1.StepResult{List: ListSteps, Name: "install", Plugin: "dpkg", Outcome: agentv1.OutcomeChanged, Attempts: 1, Duration: 1e9,
		Outputs: map[string]string{"version": "1.0"}}
	if diff := cmp.Diff(want, &got, protocmp.Transform()); diff != "" {
		t.Errorf("step result (-want +got):\n%s", diff)
	}
}

// TestStepResult: a journaled step's line in a report, by its state and
// list; the rollback record and the confirmation stay in the journal.
func TestStepResult(t *testing.T) {
	changes := []Change{{Kind: "package", Name: "webshop", State: "present", Version: "2.4.0", SHA256: "ab"}}
	tests := []struct {
		name string
		step Step
		want *agentv1.StepResult
	}{
		{"changed", Step{List: ListSteps, Name: "install", Plugin: "dpkg", State: StateSucceeded, Changed: true, Attempts: 2,
			Duration: 1500 * time.Millisecond, Changes: changes, RollbackRecord: []byte("undo"), ConfirmedBy: "erin", Log: []string{"info: ok"}},
			&agentv1.StepResult{List: ListSteps, Name: "install", Plugin: "dpkg", Outcome: agentv1.OutcomeChanged, Attempts: 2, Duration: 15e8,
				Changes: []*agentv1.Change{{Kind: "package", Name: "webshop", State: "present", Version: "2.4.0", Sha256: "ab"}}, Log: []string{"info: ok"}}},
		{"unchanged", Step{List: ListRollback, Name: "remove", Plugin: "dpkg", State: StateSucceeded, Attempts: 1},
			&agentv1.StepResult{List: ListRollback, Name: "remove", Plugin: "dpkg", Outcome: agentv1.OutcomeUnchanged, Attempts: 1}},
		{"a verify check", Step{List: ListVerify, Name: "homepage", Plugin: "httpcheck", State: StateSucceeded, Attempts: 1, Outputs: map[string]string{"evidence": "200"}},
			&agentv1.StepResult{List: ListVerify, Name: "homepage", Plugin: "httpcheck", Outcome: agentv1.OutcomePassed, Attempts: 1, Outputs: map[string]string{"evidence": "200"}}},
		{"failed", Step{List: ListVerify, Name: "homepage", Plugin: "httpcheck", State: StateFailed, Error: "status 500", Attempts: 1},
			&agentv1.StepResult{List: ListVerify, Name: "homepage", Plugin: "httpcheck", Outcome: agentv1.OutcomeFailed, Error: "status 500", Attempts: 1}},
		{"not finished", Step{List: ListSteps, Name: "migrate", Plugin: "exec", State: StateInterrupted, Attempts: 1},
			&agentv1.StepResult{List: ListSteps, Name: "migrate", Plugin: "exec", Attempts: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.step.Result(), protocmp.Transform()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestEndDeployment: the end of a deployment, its report and the
// completion of the command it ran for are one transaction; each end
// has its own report.
func TestEndDeployment(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	j := open(t, dir)
	defer j.Close()
	begin(t, j)
	done := &Completion{CommandID: "cmd-1", Result: json.RawMessage(`{"ok":false}`)}
	if err := j.EndDeployment(ctx, "d1", StateRolledBack, "verify failed", &agentv1.ApplyReport{State: agentv1.StateRolledBack}, done); err != nil {
		t.Fatal(err)
	}
	// An operator's rollback ends it again, for another command.
	if err := j.EndDeployment(ctx, "d1", StateRolledBack, "", &agentv1.ApplyReport{State: agentv1.StateRolledBack, Error: "again"},
		&Completion{CommandID: "cmd-2", Result: json.RawMessage(`{"ok":true}`)}); err != nil {
		t.Fatal(err)
	}
	// Refused: not an end, no such deployment. Neither writes anything.
	if err := j.EndDeployment(ctx, "d1", StateRunning, "", nil, &Completion{CommandID: "cmd-3"}); !errors.Is(err, ErrTransition) {
		t.Errorf("EndDeployment(running): %v, want ErrTransition", err)
	}
	if err := j.EndDeployment(ctx, "nope", StateFailed, "", &agentv1.ApplyReport{}, &Completion{CommandID: "cmd-4", Result: json.RawMessage(`{}`)}); !errors.Is(err, ErrNotFound) {
		t.Errorf("EndDeployment(nope): %v, want ErrNotFound", err)
	}
	want := []string{"d1/deployment/1", "command/cmd-1", "d1/deployment/2", "command/cmd-2"}
	if diff := cmp.Diff(want, outboxIDs(t, j)); diff != "" {
		t.Errorf("outbox (-want +got):\n%s", diff)
	}
	items, err := j.List(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var rep agentv1.ApplyReport
	if err := protojson.Unmarshal(items[2].Payload, &rep); err != nil || rep.GetError() != "again" || items[2].Kind != KindDeploymentResult {
		t.Errorf("second deployment result %s %s: %v, %v; want the second report", items[2].Kind, items[2].Payload, &rep, err)
	}
	for _, id := range []string{"cmd-1", "cmd-2"} {
		if ok, r, err := j.Completed(ctx, id); !ok || r == nil || err != nil {
			t.Errorf("Completed(%s) = %v, %v, %v", id, ok, r, err)
		}
	}
	for _, id := range []string{"cmd-3", "cmd-4"} {
		if ok, _, err := j.Completed(ctx, id); ok || err != nil {
			t.Errorf("Completed(%s) = %v, %v; a refused end completed it", id, ok, err)
		}
	}
	d, err := j.Deployment(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if d.State != StateRolledBack || d.Ends != 2 || d.FinishedAt.IsZero() {
		t.Errorf("deployment %+v", d)
	}
}

// TestComplete: a completed command is remembered with its result until
// the controller acknowledges the result, then without it; completing it
// again keeps the first result.
func TestComplete(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	j := open(t, dir)
	for _, c := range []Completion{
		{CommandID: "a", Result: json.RawMessage(`{"n":1}`)},
		{CommandID: "b", Result: json.RawMessage(`{"n":2}`)},
		{CommandID: "a", Result: json.RawMessage(`{"n":3}`)},
	} {
		if err := j.Complete(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Complete(ctx, Completion{Result: json.RawMessage(`{}`)}); err == nil {
		t.Error("Complete without a command ID succeeded")
	}
	if err := j.Ack(ctx, ResultID("b")); err != nil {
		t.Fatal(err)
	}
	j.Close()
	j = open(t, dir)
	defer j.Close()
	type state struct {
		Done   bool
		Result string
	}
	got := map[string]state{}
	for _, id := range []string{"a", "b", "c"} {
		done, r, err := j.Completed(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		s := state{Done: done}
		if r != nil {
			s.Result = r.ID + " " + r.Kind + " " + string(r.Payload)
		}
		got[id] = s
	}
	want := map[string]state{
		"a": {true, `command/a command_result {"n":1}`},
		"b": {true, ""}, // acknowledged
		"c": {false, ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Completed (-want +got):\n%s", diff)
	}
	recent, err := j.Recent(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a", "b"}, recent); diff != "" {
		t.Errorf("Recent (-want +got):\n%s", diff)
	}
}

// TestBounds: past MaxCompleted the oldest command IDs go, past MaxOutbox
// the oldest items, which are logged; a command whose ID went but whose
// result is still queued counts as completed.
func TestBounds(t *testing.T) {
	ctx := t.Context()
	var logs strings.Builder
	j, err := Open(t.TempDir(), Options{MaxCompleted: 3, MaxOutbox: 4, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for i := range 6 {
		id := fmt.Sprintf("c%d", i)
		if err := j.Complete(ctx, Completion{CommandID: id, Result: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
		if i == 4 {
			if err := j.Ack(ctx, ResultID("c4")); err != nil {
				t.Fatal(err)
			}
		}
	}
	recent, err := j.Recent(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"c3", "c4", "c5"}, recent); diff != "" {
		t.Errorf("completed IDs kept (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"command/c1", "command/c2", "command/c3", "command/c5"}, outboxIDs(t, j)); diff != "" {
		t.Errorf("outbox (-want +got):\n%s", diff)
	}
	if !strings.Contains(logs.String(), `msg="outbox full: dropped the oldest items, the controller will not receive them" limit=4 items=[command/c0]`) {
		t.Errorf("log lacks the dropped item:\n%s", logs.String())
	}
	tests := []struct {
		id   string
		done bool
	}{
		{"c0", false}, // ID and result gone
		{"c1", true},  // ID gone, result queued
		{"c4", true},  // result acknowledged, ID kept
		{"c6", false},
	}
	for _, tt := range tests {
		if done, _, err := j.Completed(ctx, tt.id); done != tt.done || err != nil {
			t.Errorf("Completed(%s) = %v, %v; want %v", tt.id, done, err, tt.done)
		}
	}
}

// TestImport: an import is one transaction, done once; what the journal
// has already is not added twice; a bad item writes nothing.
func TestImport(t *testing.T) {
	ctx := t.Context()
	j := open(t, t.TempDir())
	defer j.Close()
	if err := j.Complete(ctx, Completion{CommandID: "b", Result: json.RawMessage(`{"new":true}`)}); err != nil {
		t.Fatal(err)
	}
	item := func(id string) OutboxItem {
		return OutboxItem{ID: ResultID(id), Kind: KindCommandResult, Payload: json.RawMessage(`{"old":true}`)}
	}
	bad := []OutboxItem{item("a"), {Kind: KindCommandResult, Payload: json.RawMessage(`{}`)}}
	if _, err := j.Import(ctx, "state.json", []string{"a", "b"}, bad); err == nil || !strings.Contains(err.Error(), "outbox item needs an ID") {
		t.Fatalf("Import of an item without an ID: %v", err)
	}
	if done, _, _ := j.Completed(ctx, "a"); done {
		t.Fatal("a failed Import wrote a completed ID")
	}
	before, err := j.Import(ctx, "state.json", []string{"a", "b"}, []OutboxItem{item("a"), item("b")})
	if err != nil || before {
		t.Fatalf("Import = %v, %v", before, err)
	}
	before, err = j.Import(ctx, "state.json", []string{"z"}, []OutboxItem{item("z")})
	if err != nil || !before {
		t.Fatalf("second Import = %v, %v; want done before", before, err)
	}
	recent, err := j.Recent(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"b", "a"}, recent); diff != "" {
		t.Errorf("completed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"command/b", "command/a"}, outboxIDs(t, j)); diff != "" {
		t.Errorf("outbox (-want +got):\n%s", diff)
	}
	_, r, err := j.Completed(ctx, "b")
	if err != nil || r == nil || string(r.Payload) != `{"new":true}` {
		t.Errorf("b's result = %+v, %v; want the journal's own", r, err)
	}
}

// TestMigrateFromVersion1: a journal from before completed commands
// opens as version 2 with its outbox counted, so the bound holds.
func TestMigrateFromVersion1(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(dir+"/"+FileName, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := migrations[0](tx); err != nil {
			return err
		}
		if err := tx.Bucket(bucketMeta).Put(keySchemaVersion, binary.BigEndian.AppendUint64(nil, 1)); err != nil {
			return err
		}
		for i, id := range []string{"old-1", "old-2", "old-3"} {
			key := binary.BigEndian.AppendUint64(nil, uint64(i+1))
			v, _ := json.Marshal(OutboxItem{ID: id, Kind: KindStepResult, CreatedAt: t0, Payload: json.RawMessage(`{}`)})
			if err := tx.Bucket(bucketOutbox).Put(key, v); err != nil {
				return err
			}
			if err := tx.Bucket(bucketOutboxIDs).Put([]byte(id), key); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketOutbox).SetSequence(3)
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	j, err := Open(dir, Options{MaxOutbox: 3, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var version uint64
	if err := j.db.View(func(tx *bolt.Tx) error {
		version = binary.BigEndian.Uint64(tx.Bucket(bucketMeta).Get(keySchemaVersion))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if version != 2 {
		t.Errorf("schema version %d, want 2", version)
	}
	if err := j.Complete(t.Context(), Completion{CommandID: "c", Result: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"old-2", "old-3", "command/c"}, outboxIDs(t, j)); diff != "" {
		t.Errorf("outbox (-want +got):\n%s", diff)
	}
}
