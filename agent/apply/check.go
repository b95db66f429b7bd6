package apply

import (
	"context"
	"fmt"

	"github.com/cairn-ops/cairn/internal/manifest"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// Check validates every step of every list and asks the plugins of the
// steps list for their Plan (with dry_run set). It changes nothing and
// does not touch the journal. Problems go in the report; the error is for
// a context that ended, or wraps ErrUnverified when the runner has a
// Bundle that does not verify (then no plugin was asked anything).
func (r *Runner) Check(ctx context.Context, m *manifest.Manifest) (*agentv1.PlanReport, error) {
	id := r.deploymentID(m)
	rep := &agentv1.PlanReport{DeploymentId: id, Release: m.Name + "@" + m.Version, Root: r.Root}
	if r.Bundle != nil {
		if err := r.verifyRelease(m); err != nil {
			return rep, err
		}
	}
	artifacts, errs := r.artifacts(m)
	for _, err := range errs {
		rep.ArtifactErrors = append(rep.ArtifactErrors, err.Error())
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

func (r *Runner) checkStep(ctx context.Context, m *manifest.Manifest, id string, st *manifest.Step, artifacts map[string]string) *agentv1.StepPlan {
	p := &agentv1.StepPlan{List: st.List, Name: st.Name, Plugin: st.Plugin, Line: int32(st.Line)}
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
	p.WouldChange, p.Actions = plan.GetWouldChange(), plan.GetActions()
	for _, c := range changesOf(plan.GetChanges()) {
		p.Changes = append(p.Changes, c.Report())
	}
	return p
}
