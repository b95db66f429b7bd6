package session

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

func TestBoundJSON(t *testing.T) {
	big := strings.Repeat("x", maxPayloadBytes)
	tests := []struct {
		name string
		in   any
		// check looks at the decoded result.
		check func(t *testing.T, out map[string]any)
	}{
		{
			name: "small reports pass unchanged",
			in:   map[string]any{"state": "succeeded", "steps": []any{map[string]any{"name": "a", "outputs": map[string]any{"k": "v"}}}},
			check: func(t *testing.T, out map[string]any) {
				if _, cut := out["truncated"]; cut {
					t.Error("a small report was cut")
				}
			},
		},
		{
			name: "large outputs are left out, the steps kept",
			in:   map[string]any{"state": "failed", "steps": []any{map[string]any{"name": "a", "outcome": "failed", "outputs": map[string]any{"k": big}}}},
			check: func(t *testing.T, out map[string]any) {
				steps, _ := out["steps"].([]any)
				if len(steps) != 1 || steps[0].(map[string]any)["outcome"] != "failed" {
					t.Errorf("steps %v, want the one failed step", steps)
				}
				if _, ok := steps[0].(map[string]any)["outputs"]; ok {
					t.Error("outputs kept")
				}
				if out["state"] != "failed" || !strings.Contains(out["truncated"].(string), "the steps' outputs") {
					t.Errorf("state %v, truncated %v", out["state"], out["truncated"])
				}
			},
		},
		{
			name: "too many steps: only the summary",
			in: func() any {
				var steps []any
				for range 300 {
					steps = append(steps, map[string]any{"name": strings.Repeat("n", 4000)})
				}
				return map[string]any{"state": "succeeded", "error": big, "steps": steps}
			}(),
			check: func(t *testing.T, out map[string]any) {
				if _, ok := out["steps"]; ok {
					t.Error("steps kept")
				}
				if out["state"] != "succeeded" || len(out["error"].(string)) > maxStepText+10 {
					t.Errorf("summary: state %v, error of %d bytes", out["state"], len(out["error"].(string)))
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := json.Marshal(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got := boundJSON(data)
			if len(got) > maxPayloadBytes {
				t.Fatalf("%d bytes, over the limit", len(got))
			}
			var out map[string]any
			if err := json.Unmarshal(got, &out); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			tc.check(t, out)
		})
	}
}

// TestBoundReports: a report within the limit is sent as it is; a larger
// one without its steps' outputs and logs (errors cut), then only its
// summary, each saying what it left out, never over the limit.
func TestBoundReports(t *testing.T) {
	big := strings.Repeat("x", maxPayloadBytes)
	step := func(name string, outputs map[string]string, errText string) *agentv1.StepResult {
		return &agentv1.StepResult{List: "steps", Name: name, Plugin: "exec", Outcome: agentv1.OutcomeFailed, Outputs: outputs, Error: errText, Log: []string{"info: " + name}}
	}
	manySteps := func() []*agentv1.StepResult {
		var out []*agentv1.StepResult
		for i := range 300 {
			out = append(out, step(fmt.Sprintf("%04d-%s", i, strings.Repeat("n", 4000)), nil, ""))
		}
		return out
	}
	tests := []struct {
		name          string
		in            *agentv1.ApplyReport
		wantSteps     int
		wantTruncated string
	}{
		{"small: unchanged", &agentv1.ApplyReport{State: agentv1.StateSucceeded, Steps: []*agentv1.StepResult{step("a", map[string]string{"k": "v"}, "")}}, 1, ""},
		{"large outputs: left out", &agentv1.ApplyReport{State: agentv1.StateFailed, Steps: []*agentv1.StepResult{step("a", map[string]string{"k": big}, big)}}, 1, "the steps' outputs and logs"},
		{"too many steps: the summary", &agentv1.ApplyReport{State: agentv1.StateSucceeded, Error: big, Steps: manySteps()}, 0, "everything but the summary"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := proto.Clone(tc.in)
			got := boundApply(tc.in)
			if n := proto.Size(got); n > maxPayloadBytes {
				t.Fatalf("%d bytes, over the limit", n)
			}
			if !proto.Equal(before, tc.in) {
				t.Error("boundApply changed its argument")
			}
			if len(got.GetSteps()) != tc.wantSteps || got.GetState() != tc.in.GetState() || !strings.Contains(got.GetTruncated(), tc.wantTruncated) {
				t.Errorf("steps %d, state %q, truncated %q; want %d steps, state %q, truncated saying %q",
					len(got.GetSteps()), got.GetState(), got.GetTruncated(), tc.wantSteps, tc.in.GetState(), tc.wantTruncated)
			}
			if tc.wantTruncated == "" && got != tc.in {
				t.Error("a small report was copied")
			}
			for _, s := range got.GetSteps() {
				if tc.wantTruncated != "" && (len(s.GetOutputs()) > 0 || len(s.GetLog()) > 0 || len(s.GetError()) > maxStepText+10) {
					t.Errorf("step %s kept outputs %d, log %d, error of %d bytes", s.GetName(), len(s.GetOutputs()), len(s.GetLog()), len(s.GetError()))
				}
			}
		})
	}

	t.Run("plan", func(t *testing.T) {
		plan := &agentv1.PlanReport{Release: "shop@1", ArtifactErrors: []string{"component a: missing"}}
		for i := range 300 {
			plan.Steps = append(plan.Steps, &agentv1.StepPlan{List: "steps", Name: fmt.Sprint(i), Actions: []string{strings.Repeat("a", 4000)}})
		}
		got := boundPlan(plan)
		if proto.Size(got) > maxPayloadBytes || len(got.GetSteps()) != 300 || len(got.GetSteps()[0].GetActions()) != 0 || !strings.Contains(got.GetTruncated(), "actions") {
			t.Errorf("plan of %d bytes: %d steps, actions %q, truncated %q", proto.Size(got), len(got.GetSteps()), got.GetSteps()[0].GetActions(), got.GetTruncated())
		}
		plan.ArtifactErrors = append(plan.ArtifactErrors, big)
		got = boundPlan(plan)
		if proto.Size(got) > maxPayloadBytes || len(got.GetSteps()) != 0 || len(got.GetArtifactErrors()) != 2 || got.GetRelease() != "shop@1" {
			t.Errorf("plan of %d bytes: %d steps, %d artifact errors, release %q", proto.Size(got), len(got.GetSteps()), len(got.GetArtifactErrors()), got.GetRelease())
		}
	})

	t.Run("step", func(t *testing.T) {
		got := boundStep(step("a", map[string]string{"k": big}, big))
		if proto.Size(got) > maxPayloadBytes || len(got.GetOutputs()) != 0 || got.GetOutcome() != agentv1.OutcomeFailed {
			t.Errorf("step of %d bytes: outputs %d, outcome %q", proto.Size(got), len(got.GetOutputs()), got.GetOutcome())
		}
	})
}
