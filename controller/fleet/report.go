package fleet

import (
	"fmt"

	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// The agents' reports reach the controller typed (proto/agent/v1's
// ApplyReport, PlanReport, StepResult, Interruption) and are stored so:
// nothing past the fleet reads JSON. An agent from before the typed
// reports sends them as JSON bytes (CommandResult.report_json,
// OutboxItem.payload); the fleet reads those here, once, with
// agentv1.UnmarshalLegacy, so that such an agent keeps working through
// an upgrade of the controller. JSON that is not the report it should
// be fails its deploy command with an error that says so.

// setCommandReport stores the report of deploy command c's result r in
// c: the report r carries, or the one its JSON holds. It returns why the
// report is refused: a report of the wrong kind for the command (an
// apply or rollback has an ApplyReport, a plan a PlanReport), a report
// for a command that is not a deploy command, or JSON that is not the
// report.
func setCommandReport(c *controllerv1.CommandRecord, r *agentv1.CommandResult) error {
	plan := c.GetDeploy().GetAction() == agentv1.ActionPlan
	deploy := c.GetKind() == controllerv1.CommandKindDeploy
	switch rep := r.GetReport().(type) {
	case *agentv1.CommandResult_ApplyReport:
		if !deploy || plan {
			return fmt.Errorf("the agent answered %s with a deployment report", describeCommand(c))
		}
		c.Report = &controllerv1.CommandRecord_ApplyReport{ApplyReport: rep.ApplyReport}
		return nil
	case *agentv1.CommandResult_PlanReport:
		if !deploy || !plan {
			return fmt.Errorf("the agent answered %s with a dry run's report", describeCommand(c))
		}
		c.Report = &controllerv1.CommandRecord_PlanReport{PlanReport: rep.PlanReport}
		return nil
	}
	data := r.GetReportJson()
	switch {
	case len(data) == 0:
		return nil
	case !deploy:
		return fmt.Errorf("the agent answered %s with a report (report_json)", describeCommand(c))
	}
	if err := c.SetLegacyReport(data); err != nil {
		return fmt.Errorf("the agent sent its report as JSON (report_json: an agent older than this controller), and it cannot be read: %w; upgrade the agent", err)
	}
	return nil
}

// describeCommand names a command in a refusal: "deploy command X
// (plan)" or "audit command X".
func describeCommand(c *controllerv1.CommandRecord) string {
	if c.GetKind() == controllerv1.CommandKindDeploy {
		return fmt.Sprintf("deploy command %s (%s)", c.GetId(), c.GetDeploy().GetAction())
	}
	return fmt.Sprintf("%s command %s", c.GetKind(), c.GetId())
}

// setEventReport stores the report an outbox item carries in rec: the
// typed report, or, from an agent before the typed reports, the one its
// JSON payload holds. A payload that does not read as its kind's report
// (a step_result of such an agent held the agent's journal record of
// the step) is kept as it came.
func setEventReport(rec *controllerv1.AgentEventRecord, item *agentv1.OutboxItem) {
	switch rep := item.GetReport().(type) {
	case *agentv1.OutboxItem_StepResult:
		rec.Report = &controllerv1.AgentEventRecord_StepResult{StepResult: rep.StepResult}
		return
	case *agentv1.OutboxItem_DeploymentResult:
		rec.Report = &controllerv1.AgentEventRecord_DeploymentResult{DeploymentResult: rep.DeploymentResult}
		return
	case *agentv1.OutboxItem_Interruption:
		rec.Report = &controllerv1.AgentEventRecord_Interruption{Interruption: rep.Interruption}
		return
	}
	data := item.GetPayload()
	if len(data) == 0 {
		return
	}
	if !rec.SetLegacyReport(data) {
		rec.Payload = data
	}
}
