package rollout

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// The agent's deploy results, decoded from CommandRecord.result_json.
// These mirror agent/apply's PlanReport and Report field by field (the
// JSON is the contract; the controller does not import the agent).

// planReport is agent/apply.PlanReport: a dry run.
type planReport struct {
	DeploymentID string     `json:"deployment_id"`
	Release      string     `json:"release"`
	Artifacts    []string   `json:"artifact_errors,omitempty"`
	Steps        []stepPlan `json:"steps"`
}

type stepPlan struct {
	List              string         `json:"list"`
	Name              string         `json:"name"`
	Plugin            string         `json:"plugin"`
	NeedsConfirmation bool           `json:"needs_confirmation,omitempty"`
	Problems          []fieldProblem `json:"problems,omitempty"`
	Error             string         `json:"error,omitempty"`
	WouldChange       bool           `json:"would_change"`
	Actions           []string       `json:"actions,omitempty"`
	Changes           []change       `json:"changes,omitempty"`
}

type fieldProblem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// change is agent/journal.Change: a change a step declared.
type change struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	State   string `json:"state,omitempty"`
	Version string `json:"version,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
}

func (c change) String() string {
	s := c.Kind + " " + c.Name
	if c.State != "" {
		s += " " + c.State
	}
	if c.Version != "" {
		s += " " + c.Version
	}
	if c.SHA256 != "" {
		s += " sha256 " + shortDigest(c.SHA256)
	}
	return s
}

// applyReport is agent/apply.Report: what a deployment or a rollback did.
type applyReport struct {
	DeploymentID string        `json:"deployment_id"`
	Release      string        `json:"release"`
	State        string        `json:"state"`
	Steps        []stepResult  `json:"steps"`
	Error        string        `json:"error,omitempty"`
	Duration     time.Duration `json:"duration"`
	// Interrupted names the step (LIST/NAME) a crash cut off, when the
	// deployment is interrupted.
	Interrupted string `json:"interrupted,omitempty"`
}

type stepResult struct {
	List     string        `json:"list"`
	Name     string        `json:"name"`
	Plugin   string        `json:"plugin"`
	Outcome  string        `json:"outcome"`
	Error    string        `json:"error,omitempty"`
	Changes  []change      `json:"changes,omitempty"`
	Duration time.Duration `json:"duration"`
	Attempts int           `json:"attempts,omitempty"`
}

// Values of applyReport that the engine reads.
const (
	// reportRolledBack is the state of a deployment the agent undid
	// itself after a failure (agent/journal.StateRolledBack).
	reportRolledBack = "rolled-back"
	// reportInterrupted is the state of a deployment with a step a crash
	// cut off (agent/journal.StateInterrupted).
	reportInterrupted = "interrupted"
	outcomeChanged    = "changed"
	outcomeFailed     = "failed"
)

func decodePlanReport(data []byte) (*planReport, error) {
	if len(data) == 0 {
		return nil, nil
	}
	var r planReport
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decode the agent's plan report: %w", err)
	}
	return &r, nil
}

func decodeApplyReport(data []byte) (*applyReport, error) {
	if len(data) == 0 {
		return nil, nil
	}
	var r applyReport
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decode the agent's deployment report: %w", err)
	}
	return &r, nil
}

// ok reports whether every step validated and planned and every
// artifact was found.
func (p *planReport) ok() bool {
	if len(p.Artifacts) > 0 {
		return false
	}
	for _, s := range p.Steps {
		if len(s.Problems) > 0 || s.Error != "" {
			return false
		}
	}
	return true
}

// problems says what is wrong with the dry run, "" when nothing is.
func (p *planReport) problems() string {
	var out []string
	out = append(out, p.Artifacts...)
	for _, s := range p.Steps {
		if s.Error != "" {
			out = append(out, fmt.Sprintf("%s %s: %s", s.List, s.Name, s.Error))
		}
		for _, fp := range s.Problems {
			out = append(out, fmt.Sprintf("%s %s: %s: %s", s.List, s.Name, fp.Field, fp.Message))
		}
	}
	return strings.Join(out, "; ")
}

// stepsChanged reports whether any step of the report changed the node.
func (r *applyReport) stepsChanged() bool {
	if r == nil {
		return false
	}
	for _, s := range r.Steps {
		if s.Outcome == outcomeChanged {
			return true
		}
	}
	return false
}

// changed reports whether the deployment left the node changed: a step
// changed it and the agent did not undo the deployment itself.
func (r *applyReport) changed() bool {
	return r != nil && r.State != reportRolledBack && r.stepsChanged()
}

// failure says why the deployment failed: the first failed step, else
// the report's error.
func (r *applyReport) failure() string {
	if r == nil {
		return ""
	}
	for _, s := range r.Steps {
		if s.Outcome == outcomeFailed {
			if s.Error == "" {
				return fmt.Sprintf("step %s failed", s.Name)
			}
			return fmt.Sprintf("step %s failed: %s", s.Name, s.Error)
		}
	}
	return r.Error
}

func shortDigest(d string) string {
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

// interruptedStep names the step a crash cut off when the deployment is
// interrupted, "" when it is not.
func (r *applyReport) interruptedStep() string {
	if r == nil || r.State != reportInterrupted {
		return ""
	}
	if r.Interrupted != "" {
		return r.Interrupted
	}
	return "(not named by the agent)"
}
