// Command gen wrote cairn.db, a schema-version-7 store whose deploy
// commands, rollout nodes and agent events hold the agents' reports as
// the JSON bytes that version stored (CommandRecord.result_json,
// RolloutNode.deploy_report_json and rollback_report_json,
// AgentEventRecord.payload), read from
// proto/agent/v1/testdata/legacy. One report of each is not JSON.
// TestBoltMigrateTypedReports opens a copy and checks that each readable
// report reads back as its message and each unreadable one is kept as it
// was.
//
// It ran once, at commit fd56ca3 (the last with JSON reports), as
//
//	go run ./controller/store/testdata/v7/gen.go controller/store/testdata/v7/cairn.db
//
// (its output was moved to testdata/v7-reports when another v7 fixture
// took testdata/v7)
//
// and does not build against later code: it is kept to say how the file
// was made.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/cairn-ops/cairn/controller/store"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

func legacy(name string) []byte {
	b, err := os.ReadFile("proto/agent/v1/testdata/legacy/" + name)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	return b
}

func main() {
	st, err := store.OpenBolt(os.Args[1], store.BoltOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer st.Close()
	applyJSON, interruptedJSON, planJSON, interruptionJSON := legacy("apply-report.json"), legacy("apply-report-interrupted.json"), legacy("plan-report.json"), legacy("interruption.json")
	stepJSON := []byte(`{"deployment_id":"d-1","list":"steps","index":0,"name":"install","plugin":"dpkg","idempotent":true,"state":"succeeded","attempts":1,"changed":true}` + "\n")
	err = st.Update(context.Background(), func(tx store.Tx) error {
		for _, n := range []string{"node-1", "node-2"} {
			if err := tx.PutNode(&controllerv1.NodeRecord{Id: n, Hostname: "web-" + n}); err != nil {
				return err
			}
		}
		deploy := func(id, node, action string, result []byte) *controllerv1.CommandRecord {
			return &controllerv1.CommandRecord{
				Id: id, NodeId: node, Kind: controllerv1.CommandKindDeploy, State: controllerv1.CommandRecord_STATE_SUCCEEDED,
				CreatedBy: "rollout", CreatedAt: "2026-11-01T10:00:00.000000000Z", RolloutId: "ro-1",
				Deploy: &agentv1.DeployCommand{RolloutId: "ro-1", Action: action}, ResultJson: result,
			}
		}
		for _, c := range []*controllerv1.CommandRecord{
			deploy("cmd-apply", "node-1", "apply", applyJSON),
			deploy("cmd-rollback", "node-1", "rollback", interruptedJSON),
			deploy("cmd-plan", "node-1", "plan", planJSON),
			deploy("cmd-garbled", "node-2", "apply", []byte("not json")),
			deploy("cmd-noreport", "node-2", "apply", nil),
			{Id: "cmd-audit", NodeId: "node-1", Kind: controllerv1.CommandKindAudit, State: controllerv1.CommandRecord_STATE_SUCCEEDED, AuditId: "a1"},
		} {
			if err := tx.PutCommand(c); err != nil {
				return err
			}
		}
		if err := tx.PutRollout(&controllerv1.RolloutRecord{Id: "ro-1", Release: &controllerv1.ReleaseRef{Name: "webshop", Version: "2.4.0"}, CreatedAt: "2026-11-01T10:00:00.000000000Z"}); err != nil {
			return err
		}
		for _, n := range []*controllerv1.RolloutNode{
			{RolloutId: "ro-1", NodeId: "node-1", Hostname: "web-node-1", Wave: 1, State: controllerv1.NodeState_NODE_STATE_ROLLED_BACK,
				DeployCommand: "cmd-apply", RollbackCommand: "cmd-rollback", DeployReportJson: applyJSON, RollbackReportJson: interruptedJSON},
			{RolloutId: "ro-1", NodeId: "node-2", Hostname: "web-node-2", Wave: 1, State: controllerv1.NodeState_NODE_STATE_FAILED,
				DeployCommand: "cmd-garbled", DeployReportJson: []byte("not json")},
		} {
			if err := tx.PutRolloutNode(n); err != nil {
				return err
			}
		}
		for _, ev := range []*controllerv1.AgentEventRecord{
			{NodeId: "node-1", Id: "d-1/deployment/1", Kind: "deployment_result", DeploymentId: "d-1", Payload: applyJSON},
			{NodeId: "node-1", Id: "d-4/interrupted/steps/migrate/1", Kind: "deployment_interrupted", DeploymentId: "d-4", Payload: interruptionJSON},
			{NodeId: "node-1", Id: "d-1/steps/install/1", Kind: "step_result", DeploymentId: "d-1", Payload: stepJSON},
			{NodeId: "node-2", Id: "d-5/deployment/1", Kind: "deployment_result", DeploymentId: "d-5", Payload: []byte(`{"state":`)},
		} {
			ev.ReceivedAt = "2026-11-01T10:05:00.000000000Z"
			if err := tx.PutAgentEvent(ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
