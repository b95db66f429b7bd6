package apply

import (
	"context"
	"fmt"

	"github.com/cairn-ops/cairn/agent/journal"
	"github.com/cairn-ops/cairn/internal/manifest"
)

// PlanReport is what Check found: per step, the parameter problems and
// (for the steps list) what the plugin would do.
type PlanReport struct {
	DeploymentID string     `json:"deployment_id"`
	Release      string     `json:"release"`
	Root         string     `json:"root"`
	Artifacts    []string   `json:"artifact_errors,omitempty"`
	Steps        []StepPlan `json:"steps"`
}

// StepPlan is one step's check.
type StepPlan struct {
	List              string           `json:"list"`
	Name              string           `json:"name"`
	Plugin            string           `json:"plugin"`
	Line              int              `json:"line"`
	Idempotent        bool             `json:"idempotent"`
	NeedsConfirmation bool             `json:"needs_confirmation,omitempty"`
	Problems          []FieldProblem   `json:"problems,omitempty"`
	Error             string           `json:"error,omitempty"`
	WouldChange       bool             `json:"would_change"`
	Actions           []string         `json:"actions,omitempty"`
	Changes           []journal.Change `json:"changes,omitempty"`
}

// OK reports whether every step validated and planned and every artifact
// was found.
func (p *PlanReport) OK() bool {
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

// Check validates every step of every list and asks the plugins of the
// steps list for their Plan (with dry_run set). It changes nothing and
// does not touch the journal. Problems go in the report; the error is for
// a context that ended, or wraps ErrUnverified when the runner has a
// Bundle that does not verify (then no plugin was asked anything).
func (r *Runner) Check(ctx context.Context, m *manifest.Manifest) (*PlanReport, error) {
	id := r.deploymentID(m)
	rep := &PlanReport{DeploymentID: id, Release: m.Name + "@" + m.Version, Root: r.Root}
	if r.Bundle != nil {
		if err := r.verifyRelease(m); err != nil {
			return rep, err
		}
	}
	artifacts, errs := r.artifacts(m)
	for _, err := range errs {
		rep.Artifacts = append(rep.Artifacts, err.Error())
	}
	for _, list := range m.Lists() {
		for i := range list {
			st := &list[i]
			rep.Steps = append(rep.Steps, r.checkStep(ctx, m, id, st, artifacts))
			if err := ctx.Err(); err != nil {
				return rep, err
			}
		}
	}
	return rep, nil
}

func (r *Runner) checkStep(ctx context.Context, m *manifest.Manifest, id string, st *manifest.Step, artifacts map[string]string) StepPlan {
	p := StepPlan{List: st.List, Name: st.Name, Plugin: st.Plugin, Line: st.Line}
	call, err := r.prepareStep(ctx, id, st, artifacts, true)
	if err != nil {
		p.Error = err.Error()
		return p
	}
	defer call.close()
	p.Idempotent, p.NeedsConfirmation = call.desc.GetIdempotent(), call.desc.GetNeedsConfirmation()
	if p.Problems, err = call.problems(m, st); err != nil {
		p.Error = err.Error()
		return p
	}
	if len(p.Problems) > 0 || st.List != manifest.ListSteps {
		return p
	}
	plan, err := call.inst.Plugin.Plan(call.ctx, call.sc)
	if err != nil {
		p.Error = fmt.Sprintf("plan: %v", err)
		return p
	}
	p.WouldChange, p.Actions, p.Changes = plan.GetWouldChange(), plan.GetActions(), changesOf(plan.GetChanges())
	return p
}
