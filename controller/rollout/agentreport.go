package rollout

import (
	"fmt"

	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// What the engine reads of the agents' reports, which the fleet stores
// with their commands (CommandRecord.apply_report, plan_report) and the
// engine with the rollout's nodes (RolloutNode.deploy_report,
// rollback_report). The reports' own vocabulary and predicates are in
// proto/agent/v1 (report.go).

// failure says why the deployment r reports failed: the first failed
// step, else the report's error ("" without a report).
func failure(r *agentv1.ApplyReport) string {
	for _, s := range r.GetSteps() {
		if s.GetOutcome() == agentv1.OutcomeFailed {
			if s.GetError() == "" {
				return fmt.Sprintf("step %s failed", s.GetName())
			}
			return fmt.Sprintf("step %s failed: %s", s.GetName(), s.GetError())
		}
	}
	return r.GetError()
}

// interruptedStep names the step a crash cut off when the deployment r
// reports is interrupted, "" when it is not.
func interruptedStep(r *agentv1.ApplyReport) string {
	if r.GetState() != agentv1.StateInterrupted {
		return ""
	}
	if s := r.GetInterrupted(); s != "" {
		return s
	}
	return "(not named by the agent)"
}
