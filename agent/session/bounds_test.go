package session

import (
	"encoding/json"
	"strings"
	"testing"
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
