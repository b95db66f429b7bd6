package apply

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cairn-ops/cairn/agent/journal"
	"github.com/cairn-ops/cairn/internal/manifest"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// validateTimeout bounds starting one plugin and validating its steps.
const validateTimeout = time.Minute

// validate asks each plugin the manifest uses, started once, to validate
// every step of every list it runs, before any step runs: a manifest
// whose last step has bad parameters changes nothing. On failure the
// report has a line per step (failed with its problems, or not run), the
// steps with problems are journaled failed, and the error lists every
// problem.
func (x *run) validate(ctx context.Context) error {
	var order []string
	byPlugin := map[string][]*manifest.Step{}
	for _, list := range x.m.Lists() {
		for i := range list {
			st := &list[i]
			if _, ok := byPlugin[st.Plugin]; !ok {
				order = append(order, st.Plugin)
			}
			byPlugin[st.Plugin] = append(byPlugin[st.Plugin], st)
		}
	}
	problems := map[string]string{} // by step key
	var lines []string
	for _, name := range order {
		for k, msg := range x.validatePlugin(ctx, name, byPlugin[name]) {
			problems[k] = msg
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if len(problems) == 0 {
		return nil
	}
	for _, list := range x.m.Lists() {
		for i := range list {
			st := &list[i]
			k := key(st.List, st.Index)
			msg, bad := problems[k]
			if !bad {
				x.rep.Steps = append(x.rep.Steps, line(st, agentv1.OutcomeNotRun, 0, ""))
				continue
			}
			lines = append(lines, fmt.Sprintf("step %s: %s", st.Ref(), msg))
			err := x.failBeforeRun(ctx, x.journaled[k], fmt.Errorf("%s", msg))
			x.rep.Steps = append(x.rep.Steps, line(st, agentv1.OutcomeFailed, 0, err.Error()))
		}
	}
	return fmt.Errorf("no step was run: %d of the manifest's steps are invalid:\n  %s", len(lines), strings.Join(lines, "\n  "))
}

// validatePlugin starts the plugin name once and validates steps with it;
// it returns the problems by step key.
func (x *run) validatePlugin(ctx context.Context, name string, steps []*manifest.Step) map[string]string {
	out := map[string]string{}
	ctx, cancel := context.WithTimeout(ctx, validateTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	inst, _, err := x.start(ctx, steps[0])
	if err != nil {
		for _, st := range steps {
			out[key(st.List, st.Index)] = err.Error()
		}
		return out
	}
	defer inst.Close()
	for _, st := range steps {
		k := key(st.List, st.Index)
		if js := x.journaled[k]; js.State == journal.StateSucceeded && js.RolledBackAt.IsZero() {
			continue // ran already; its parameters were valid then
		}
		sc, err := x.stepContext(x.id, st, x.artifacts, false, deadline)
		if err != nil {
			out[k] = err.Error()
			continue
		}
		ferrs, err := inst.Plugin.Validate(ctx, sc)
		if err != nil {
			out[k] = fmt.Sprintf("validate: %v", err)
			continue
		}
		if probs := fieldErrors(x.m, st, ferrs); len(probs) > 0 {
			msgs := make([]string, len(probs))
			for i, p := range probs {
				msgs[i] = p.Text()
			}
			out[k] = "invalid parameters: " + strings.Join(msgs, "; ")
		}
	}
	return out
}
