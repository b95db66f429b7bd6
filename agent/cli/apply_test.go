package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/cairn-ops/cairn/internal/testutil"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// TestApplyOutput: what 'cairn-agent apply' and 'apply --check' print,
// as text and as JSON (-o json: the reports of proto/agent/v1 with their
// .proto field names, zero values left out), against the golden files
// in testdata (UPDATE_GOLDEN=1 rewrites them).
func TestApplyOutput(t *testing.T) {
	rep := &agentv1.ApplyReport{
		DeploymentId: strings.Repeat("ab", 32), Release: "webshop@2.4.0", Root: "/srv/root", State: agentv1.StateRolledBack,
		Error: "verify homepage failed: status 500 (rolled back)", Duration: 3_500_000_000,
		Steps: []*agentv1.StepResult{
			{List: "steps", Name: "install", Plugin: "dpkg", Outcome: agentv1.OutcomeChanged, Duration: 1_200_000_000, Attempts: 1,
				Changes: []*agentv1.Change{{Kind: "package", Name: "webshop", State: "present", Version: "2.4.0"}}},
			{List: "verify", Name: "homepage", Plugin: "httpcheck", Outcome: agentv1.OutcomeFailed, Duration: 300_000_000, Attempts: 1,
				Error: "status 500", Outputs: map[string]string{"evidence": "GET http://localhost/ 500"}},
			{List: agentv1.ListUndo, Name: "install", Plugin: "dpkg", Outcome: agentv1.OutcomeRolledBack, Duration: 900_000_000},
		},
	}
	plan := &agentv1.PlanReport{
		DeploymentId: strings.Repeat("cd", 32), Release: "webshop@2.4.0", Root: "/srv/root",
		Steps: []*agentv1.StepPlan{
			{List: "steps", Name: "install", Plugin: "dpkg", Line: 12, Idempotent: true, WouldChange: true,
				Actions: []string{"install webshop 2.4.0 (now 2.3.9)"},
				Changes: []*agentv1.Change{{Kind: "package", Name: "webshop", State: "present", Version: "2.4.0"}, {Kind: "file", Name: "/etc/webshop.conf", State: "present", Sha256: strings.Repeat("0123456789abcdef", 4)}}},
			{List: "steps", Name: "drain", Plugin: "manual", Line: 20, NeedsConfirmation: true,
				Problems: []*agentv1.FieldProblem{{File: "release.yaml", Line: 22, Field: "steps[1].params.instructions", Message: "required"}}},
			{List: "verify", Name: "homepage", Plugin: "httpcheck", Line: 30, Idempotent: true},
		},
	}
	for _, tc := range []struct {
		golden string
		write  func(*bytes.Buffer) error
	}{
		{"apply.txt", func(b *bytes.Buffer) error { return writeReport(b, "text", rep) }},
		{"apply.json", func(b *bytes.Buffer) error { return writeReport(b, "json", rep) }},
		{"check.txt", func(b *bytes.Buffer) error { return writeCheck(b, "text", plan) }},
		{"check.json", func(b *bytes.Buffer) error { return writeCheck(b, "json", plan) }},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.write(&b); err != nil {
				t.Fatal(err)
			}
			testutil.Golden(t, "testdata/"+tc.golden, b.Bytes())
		})
	}
}
