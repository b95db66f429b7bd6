package session

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/agent/apply"
	"github.com/cairn-ops/cairn/agent/journal"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// TestDeployCompletedWithItsDeployment: a deploy command is completed in
// the journal transaction that ends its deployment (its result is kept
// with the deployment's ID, which only that transaction sets), after
// the step's and the deployment's results, and the result the controller
// got is the one the journal keeps.
func TestDeployCompletedWithItsDeployment(t *testing.T) {
	f := newFakeController(t)
	f.noAck = true
	content := []byte("<html>shop</html>\n")
	d := newDeployment(t, f.releaseKey, content, "steps:\n  - {name: install, plugin: copy, params: {artifact: site, to: srv/www/index.html}}\n")
	f.artifacts[d.refs[0].GetDigest()] = content
	f.noOutboxAck = true
	dir, root, _, stop := deployAgent(t, f)
	s := f.session()
	s.deploy("cmd-1", agentv1.ActionApply, d)
	f.wait("result", "cmd-1")
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	items := outboxItems(t, dir)
	deployment := apply.CommandDeploymentID("cmd-1", root)
	var got []string
	for _, it := range items {
		got = append(got, strings.ReplaceAll(it.ID+" "+it.Kind+" "+it.DeploymentID, deployment, "DEP"))
	}
	want := []string{
		"DEP/steps/install/1 step_result DEP",
		"DEP/deployment/1 deployment_result DEP",
		"command/cmd-1 command_result DEP",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outbox (-want +got):\n%s", diff)
	}
	if len(items) != len(want) {
		return
	}
	if diff := cmp.Diff(f.result("cmd-1"), storedResult(&items[2]), protocmp.Transform()); diff != "" {
		t.Errorf("the result sent and the one kept differ (-sent +kept):\n%s", diff)
	}
}

// TestCommandWaitsForTheJournal: while another process holds the journal,
// a command the agent cannot check ends the session unrun, and runs when
// the controller delivers it again after the journal is free.
func TestCommandWaitsForTheJournal(t *testing.T) {
	f := newFakeController(t)
	dir := f.enroll(t)
	runAgent(t, dir, nil)
	s := f.session()
	j, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.command("cmd-1", "os")
	s = f.session() // the first one ended
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	s.command("cmd-1", "os")
	f.wait("result", "cmd-1")
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.uploadCmds) != 1 || len(f.results) != 1 || !f.results[0].GetOk() {
		t.Errorf("uploads %v, results %v; want cmd-1 run once", f.uploadCmds, f.results)
	}
}

// TestOutboxItem: the journal's items go to the controller with their
// typed report; an item an agent before the typed reports queued (a
// step_result with the journal's step record), or one whose payload is
// not its report, goes as its JSON payload, for the controller to read.
func TestOutboxItem(t *testing.T) {
	stepJSON := `{"deployment_id":"d1","list":"steps","index":0,"name":"a","state":"succeeded","changed":true}`
	tests := []struct {
		name string
		item journal.OutboxItem
		want *agentv1.OutboxItem
	}{
		{"step result", journal.OutboxItem{ID: "d1/steps/a/1", Kind: journal.KindStepResult, DeploymentID: "d1", Payload: json.RawMessage(`{"list":"steps","name":"a","outcome":"changed"}`)},
			&agentv1.OutboxItem{Id: "d1/steps/a/1", Kind: "step_result", DeploymentId: "d1", Report: &agentv1.OutboxItem_StepResult{
				StepResult: &agentv1.StepResult{List: "steps", Name: "a", Outcome: agentv1.OutcomeChanged}}}},
		{"deployment result", journal.OutboxItem{ID: "d1/deployment/1", Kind: journal.KindDeploymentResult, DeploymentID: "d1", Payload: json.RawMessage(`{"state":"rolled-back"}`)},
			&agentv1.OutboxItem{Id: "d1/deployment/1", Kind: "deployment_result", DeploymentId: "d1", Report: &agentv1.OutboxItem_DeploymentResult{
				DeploymentResult: &agentv1.ApplyReport{State: agentv1.StateRolledBack}}}},
		{"interruption", journal.OutboxItem{ID: "d1/interrupted/steps/a/1", Kind: journal.KindDeploymentInterrupted, DeploymentID: "d1", Payload: json.RawMessage(`{"commandId":"c1","step":"steps/a"}`)},
			&agentv1.OutboxItem{Id: "d1/interrupted/steps/a/1", Kind: "deployment_interrupted", DeploymentId: "d1", Report: &agentv1.OutboxItem_Interruption{
				Interruption: &agentv1.Interruption{CommandId: "c1", Step: "steps/a"}}}},
		{"step result queued before the typed reports", journal.OutboxItem{ID: "d1/steps/a/1", Kind: journal.KindStepResult, DeploymentID: "d1", Payload: json.RawMessage(stepJSON)},
			&agentv1.OutboxItem{Id: "d1/steps/a/1", Kind: "step_result", DeploymentId: "d1", Payload: []byte(stepJSON)}},
		{"unknown kind", journal.OutboxItem{ID: "x", Kind: "news", Payload: json.RawMessage(`{"n":1}`)},
			&agentv1.OutboxItem{Id: "x", Kind: "news", Payload: []byte(`{"n":1}`)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, outboxItem(&tc.item), protocmp.Transform()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
