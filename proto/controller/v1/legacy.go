package controllerv1

import (
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// Readers of the agents' JSON reports that records before the typed
// reports (schema version 10) held and agents before them send: the
// fleet reads what such an agent sends with them, the store's migration
// to schema version 10 what it stored.

// SetLegacyReport reads data, the JSON report of deploy command x
// (result_json, an agent's report_json), into x's report: a PlanReport
// for a plan, an ApplyReport for an apply or a rollback. On an error
// (wrapping agentv1.ErrLegacyReport) x is left as it was.
func (x *CommandRecord) SetLegacyReport(data []byte) error {
	if x.GetDeploy().GetAction() == agentv1.ActionPlan {
		var p agentv1.PlanReport
		if err := agentv1.UnmarshalLegacy(data, &p); err != nil {
			return err
		}
		x.Report = &CommandRecord_PlanReport{PlanReport: &p}
		return nil
	}
	var a agentv1.ApplyReport
	if err := agentv1.UnmarshalLegacy(data, &a); err != nil {
		return err
	}
	x.Report = &CommandRecord_ApplyReport{ApplyReport: &a}
	return nil
}

// SetLegacyReport reads data, the JSON payload of an outbox item of x's
// kind, into x's report: an ApplyReport for a deployment_result, an
// Interruption for a deployment_interrupted. It reports false, x left as
// it was, for any other kind (a step_result held the agent's journal
// record of the step, which is no StepResult) and for JSON that is not
// the report.
func (x *AgentEventRecord) SetLegacyReport(data []byte) bool {
	switch x.GetKind() {
	case agentv1.OutboxDeploymentResult:
		var a agentv1.ApplyReport
		if agentv1.UnmarshalLegacy(data, &a) != nil {
			return false
		}
		x.Report = &AgentEventRecord_DeploymentResult{DeploymentResult: &a}
		return true
	case agentv1.OutboxDeploymentInterrupted:
		var in agentv1.Interruption
		if agentv1.UnmarshalLegacy(data, &in) != nil {
			return false
		}
		x.Report = &AgentEventRecord_Interruption{Interruption: &in}
		return true
	}
	return false
}
