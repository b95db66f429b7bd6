package agentv1

// Hand-written vocabulary of the reports in report.proto, shared by the
// agent that writes them and the controller that reads them (the
// generated code is in report.pb.go).

import (
	"fmt"
	"strings"
	"time"
)

// ListUndo is the list of a StepResult that is a plugin's Rollback of a
// step it applied; the other lists are the manifest's (steps, verify,
// rollback).
const ListUndo = "undo"

// Outcomes of a step: StepResult.outcome.
const (
	OutcomeChanged   = "changed"
	OutcomeUnchanged = "unchanged"
	// OutcomeSkipped is a step that succeeded in an earlier run of the
	// same deployment.
	OutcomeSkipped = "skipped"
	OutcomeFailed  = "failed"
	// OutcomeFailedIgnored is the failure of a continue_on_error step.
	OutcomeFailedIgnored = "failed (ignored)"
	// OutcomeNotRun is a step after one that failed.
	OutcomeNotRun = "not run"
	// OutcomePassed is a verify check that passed.
	OutcomePassed     = "passed"
	OutcomeRolledBack = "rolled back"
	// OutcomeInterrupted is a step a crash cut off that a rollback could
	// neither undo (no undo record) nor run again (not idempotent).
	OutcomeInterrupted = "interrupted"
)

// States of a deployment (ApplyReport.state) and the agent's decisions
// on a step a crash cut off (Interruption.state). They are the names
// agent/journal gives these states.
const (
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
	// StateRolledBack is a deployment the agent undid: after one of its
	// steps failed, or on a rollback command.
	StateRolledBack = "rolled-back"
	// StateInterrupted is a deployment with a step a crash cut off whose
	// plugin is not idempotent: an operator decides.
	StateInterrupted = "interrupted"
	// StatePending is a step a crash cut off whose plugin is idempotent:
	// it runs again.
	StatePending = "pending"
)

// Elapsed is how long the deployment took.
func (x *ApplyReport) Elapsed() time.Duration { return time.Duration(x.GetDuration()) }

// Elapsed is how long the step took.
func (x *StepResult) Elapsed() time.Duration { return time.Duration(x.GetDuration()) }

// StepsChanged reports whether a step of the report changed the host.
func (x *ApplyReport) StepsChanged() bool {
	for _, s := range x.GetSteps() {
		if s.GetOutcome() == OutcomeChanged {
			return true
		}
	}
	return false
}

// Changed reports whether the deployment left the host changed: a step
// changed it and the agent did not undo the deployment itself.
func (x *ApplyReport) Changed() bool {
	return x.GetState() != StateRolledBack && x.StepsChanged()
}

// OK reports whether every step validated and planned and every artifact
// was found.
func (x *PlanReport) OK() bool {
	return len(x.Problems()) == 0
}

// Problems says what the dry run found wrong, one line each: the
// artifacts it could not find, the steps it could not check
// (LIST/NAME: error) and the parameters a plugin refused
// (FieldProblem.Text).
func (x *PlanReport) Problems() []string {
	out := append([]string(nil), x.GetArtifactErrors()...)
	for _, s := range x.GetSteps() {
		if s.GetError() != "" {
			out = append(out, fmt.Sprintf("%s/%s: %s", s.GetList(), s.GetName(), s.GetError()))
		}
		for _, p := range s.GetProblems() {
			out = append(out, p.Text())
		}
	}
	return out
}

// Text is the problem placed in its file: "release.yaml:12:
// steps[0].params.path: required".
func (x *FieldProblem) Text() string {
	return fmt.Sprintf("%s:%d: %s: %s", x.GetFile(), x.GetLine(), strings.TrimSuffix(x.GetField(), "."), x.GetMessage())
}

// Text is the change in words: "package webshop present 2.4.0", "file
// /etc/webshop.conf present sha256 0123456789ab" (a digest's first 12
// digits).
func (x *Change) Text() string {
	words := []string{x.GetKind(), x.GetName()}
	for _, w := range []string{x.GetState(), x.GetVersion()} {
		if w != "" {
			words = append(words, w)
		}
	}
	if d := x.GetSha256(); d != "" {
		words = append(words, "sha256", d[:min(12, len(d))])
	}
	return strings.Join(words, " ")
}
