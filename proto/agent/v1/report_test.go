package agentv1_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

func TestChangeText(t *testing.T) {
	tests := []struct {
		c    *agentv1.Change
		want string
	}{
		{&agentv1.Change{Kind: "package", Name: "webshop", State: "present", Version: "2.4.0"}, "package webshop present 2.4.0"},
		{&agentv1.Change{Kind: "file", Name: "/etc/a", State: "present", Sha256: strings.Repeat("0123456789abcdef", 4)}, "file /etc/a present sha256 0123456789ab"},
		{&agentv1.Change{Kind: "file", Name: "/etc/a", Sha256: "abc"}, "file /etc/a sha256 abc"},
		{&agentv1.Change{Kind: "service", Name: "nginx.service"}, "service nginx.service"},
	}
	for _, tc := range tests {
		if got := tc.c.Text(); got != tc.want {
			t.Errorf("Text() = %q, want %q", got, tc.want)
		}
	}
}

func TestPlanReportProblems(t *testing.T) {
	tests := []struct {
		name string
		rep  *agentv1.PlanReport
		want []string
	}{
		{"nil", nil, nil},
		{"clean", &agentv1.PlanReport{Steps: []*agentv1.StepPlan{{List: "steps", Name: "a", WouldChange: true}}}, nil},
		{"all kinds", &agentv1.PlanReport{
			ArtifactErrors: []string{"component app: missing"},
			Steps: []*agentv1.StepPlan{
				{List: "steps", Name: "a", Error: "start plugin x: no such plugin"},
				{List: "verify", Name: "b", Problems: []*agentv1.FieldProblem{
					{File: "release.yaml", Line: 9, Field: "verify[0].params.url", Message: "required"},
					{File: "release.yaml", Line: 10, Field: "verify[0].params.", Message: "unknown parameter x"},
				}},
			},
		}, []string{
			"component app: missing",
			"steps/a: start plugin x: no such plugin",
			"release.yaml:9: verify[0].params.url: required",
			"release.yaml:10: verify[0].params: unknown parameter x",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.rep.Problems()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Problems (-want +got):\n%s", diff)
			}
			if ok := tc.rep.OK(); ok != (len(tc.want) == 0) {
				t.Errorf("OK() = %v with problems %q", ok, got)
			}
		})
	}
}

func TestApplyReportChanged(t *testing.T) {
	changed := []*agentv1.StepResult{{Outcome: agentv1.OutcomeUnchanged}, {Outcome: agentv1.OutcomeChanged}}
	tests := []struct {
		name                  string
		rep                   *agentv1.ApplyReport
		stepsChanged, changed bool
	}{
		{"nil", nil, false, false},
		{"nothing changed", &agentv1.ApplyReport{State: agentv1.StateSucceeded, Steps: changed[:1]}, false, false},
		{"succeeded with a change", &agentv1.ApplyReport{State: agentv1.StateSucceeded, Steps: changed}, true, true},
		{"failed with a change", &agentv1.ApplyReport{State: agentv1.StateFailed, Steps: changed}, true, true},
		{"undone by the agent", &agentv1.ApplyReport{State: agentv1.StateRolledBack, Steps: changed}, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.rep.StepsChanged(); got != tc.stepsChanged {
				t.Errorf("StepsChanged() = %v, want %v", got, tc.stepsChanged)
			}
			if got := tc.rep.Changed(); got != tc.changed {
				t.Errorf("Changed() = %v, want %v", got, tc.changed)
			}
		})
	}
}
