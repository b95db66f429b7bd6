package session

import (
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/proto"

	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// maxPayloadBytes bounds a deploy report or an outbox item's report as
// the agent sends it. The controller refuses messages over 4 MiB and ends
// the session; a result that large would be sent again at every
// reconnect and never get through. Built-in plugins bound their outputs;
// external ones may not.
const maxPayloadBytes = 1 << 20

// maxErrorBytes bounds a result's error message.
const maxErrorBytes = 64 << 10

// maxStepText bounds a step's error in a shrunk report.
const maxStepText = 4 << 10

// cut returns s cut to n bytes, marked " [cut]" when it was longer.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + " [cut]"
}

// over reports whether m encodes to more than maxPayloadBytes.
func over(m proto.Message) bool { return proto.Size(m) > maxPayloadBytes }

// shrinkStep leaves out a step's outputs and log and cuts its error.
func shrinkStep(s *agentv1.StepResult) {
	s.Outputs, s.Log = nil, nil
	s.Error = cut(s.GetError(), maxStepText)
}

// boundApply returns rep when it is within maxPayloadBytes. Otherwise it
// returns a smaller copy: without the steps' outputs and logs and with
// their errors cut, or, if that is still too large, only its summary
// (the fields that are not steps, long ones cut); Truncated says what was
// left out.
func boundApply(rep *agentv1.ApplyReport) *agentv1.ApplyReport {
	if rep == nil || !over(rep) {
		return rep
	}
	size := proto.Size(rep)
	rep = proto.Clone(rep).(*agentv1.ApplyReport)
	for _, s := range rep.Steps {
		shrinkStep(s)
	}
	rep.Truncated = fmt.Sprintf("left out: the steps' outputs and logs (the report was %d bytes, over the %d-byte limit)", size, maxPayloadBytes)
	if !over(rep) {
		return rep
	}
	return &agentv1.ApplyReport{
		DeploymentId: cut(rep.DeploymentId, maxStepText), CommandId: cut(rep.CommandId, maxStepText),
		Release: cut(rep.Release, maxStepText), Root: cut(rep.Root, maxStepText), State: rep.State,
		Error: cut(rep.Error, maxStepText), Duration: rep.Duration, Interrupted: cut(rep.Interrupted, maxStepText),
		Truncated: fmt.Sprintf("left out: everything but the summary (the report was %d bytes, over the %d-byte limit)", size, maxPayloadBytes),
	}
}

// boundPlan is boundApply for a dry run's report: first the steps'
// actions are left out and their errors cut, then everything but the
// summary and the artifact problems that fit.
func boundPlan(rep *agentv1.PlanReport) *agentv1.PlanReport {
	if rep == nil || !over(rep) {
		return rep
	}
	size := proto.Size(rep)
	rep = proto.Clone(rep).(*agentv1.PlanReport)
	for _, s := range rep.Steps {
		s.Actions = nil
		s.Error = cut(s.GetError(), maxStepText)
	}
	rep.Truncated = fmt.Sprintf("left out: the steps' actions (the report was %d bytes, over the %d-byte limit)", size, maxPayloadBytes)
	if !over(rep) {
		return rep
	}
	small := &agentv1.PlanReport{
		DeploymentId: cut(rep.DeploymentId, maxStepText), Release: cut(rep.Release, maxStepText), Root: cut(rep.Root, maxStepText),
		Truncated: fmt.Sprintf("left out: everything but the summary (the report was %d bytes, over the %d-byte limit)", size, maxPayloadBytes),
	}
	for _, a := range rep.ArtifactErrors {
		small.ArtifactErrors = append(small.ArtifactErrors, cut(a, maxStepText))
		if over(small) {
			small.ArtifactErrors = small.ArtifactErrors[:len(small.ArtifactErrors)-1]
			break
		}
	}
	return small
}

// boundStep is boundApply for one step's result (a step_result outbox
// item): its outputs and log are left out and its error cut, then its
// changes too.
func boundStep(s *agentv1.StepResult) *agentv1.StepResult {
	if s == nil || !over(s) {
		return s
	}
	s = proto.Clone(s).(*agentv1.StepResult)
	shrinkStep(s)
	if over(s) {
		s.Changes = nil
	}
	s.List, s.Name, s.Plugin = cut(s.List, maxStepText), cut(s.Name, maxStepText), cut(s.Plugin, maxStepText)
	return s
}

// boundInterruption cuts an interruption's fields; only a manifest with
// names past all reason makes it long.
func boundInterruption(in *agentv1.Interruption) *agentv1.Interruption {
	if in == nil || !over(in) {
		return in
	}
	in = proto.Clone(in).(*agentv1.Interruption)
	for _, f := range []*string{&in.CommandId, &in.DeploymentId, &in.Release, &in.Step, &in.Plugin} {
		*f = cut(*f, maxStepText)
	}
	return in
}

// boundJSON bounds the JSON payload of an outbox item that an agent
// before the typed reports queued (sent as it is, OutboxItem.payload).
// It returns data when it is within maxPayloadBytes. Otherwise it
// returns a smaller JSON object: the same one without the steps' outputs
// and with their errors cut, or, if that is still too large, only its
// top-level scalar fields; both say what was left out.
func boundJSON(data []byte) []byte {
	if len(data) <= maxPayloadBytes {
		return data
	}
	var obj map[string]any
	if err := json.Unmarshal(data, &obj); err != nil {
		out, _ := json.Marshal(map[string]any{"error": fmt.Sprintf("left out: %d bytes, over the %d-byte limit", len(data), maxPayloadBytes)})
		return out
	}
	note := fmt.Sprintf("left out: the steps' outputs (the report was %d bytes, over the %d-byte limit)", len(data), maxPayloadBytes)
	if steps, ok := obj["steps"].([]any); ok {
		for _, s := range steps {
			if m, ok := s.(map[string]any); ok {
				delete(m, "outputs")
				delete(m, "log")
				if e, ok := m["error"].(string); ok {
					m["error"] = cut(e, maxStepText)
				}
			}
		}
	}
	obj["truncated"] = note
	if out, err := json.Marshal(obj); err == nil && len(out) <= maxPayloadBytes {
		return out
	}
	small := map[string]any{}
	for k, v := range obj {
		switch v.(type) {
		case string, float64, bool, nil:
			if s, ok := v.(string); ok {
				v = cut(s, maxStepText)
			}
			small[k] = v
		}
	}
	small["truncated"] = fmt.Sprintf("left out: everything but the summary (the report was %d bytes, over the %d-byte limit)", len(data), maxPayloadBytes)
	out, _ := json.Marshal(small)
	return out
}
