package session

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/agent/apply"
	"github.com/cairn-ops/cairn/agent/journal"
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
	s.deploy("cmd-1", ActionApply, d)
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
