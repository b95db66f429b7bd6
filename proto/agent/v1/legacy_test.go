package agentv1_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// legacyChanges are the changes the fixtures' install step declares.
var legacyChanges = []*agentv1.Change{
	{Kind: "package", Name: "webshop", State: "present", Version: "2.4.0"},
	{Kind: "file", Name: "/etc/webshop.conf", State: "present", Sha256: strings.Repeat("ab", 32)},
}

// TestUnmarshalLegacy reads the JSON reports the agent code before the
// typed reports wrote (testdata/legacy, made by its gen.go) as messages,
// every field kept.
func TestUnmarshalLegacy(t *testing.T) {
	tests := []struct {
		file string
		want proto.Message
	}{
		{"apply-report.json", &agentv1.ApplyReport{
			DeploymentId: "d-1", CommandId: "cmd-1", Release: "webshop@2.4.0", Root: "/", State: agentv1.StateRolledBack,
			Error: "step steps/install failed: boom (rolled back)", Duration: 97e9,
			Steps: []*agentv1.StepResult{
				{List: "steps", Name: "install", Plugin: "dpkg", Outcome: agentv1.OutcomeChanged, Duration: 12e8, Attempts: 2,
					Outputs: map[string]string{"version": "2.4.0"}, Changes: legacyChanges},
				{List: "verify", Name: "homepage", Plugin: "httpcheck", Outcome: agentv1.OutcomeFailedIgnored, Error: "status 500",
					Outputs: map[string]string{"evidence": "GET / 500"}},
				{List: agentv1.ListUndo, Name: "install", Plugin: "dpkg", Outcome: agentv1.OutcomeRolledBack, Duration: 1e9},
			},
		}},
		{"apply-report-interrupted.json", &agentv1.ApplyReport{
			DeploymentId: "d-2", Release: "webshop@2.4.0", Root: "/srv/root", State: agentv1.StateInterrupted,
			Error: "interrupted", Interrupted: "steps/migrate",
		}},
		{"plan-report.json", &agentv1.PlanReport{
			DeploymentId: "d-3", Release: "webshop@2.4.0", Root: "/", ArtifactErrors: []string{"component app: missing"},
			Steps: []*agentv1.StepPlan{
				{List: "steps", Name: "install", Plugin: "dpkg", Line: 12, Idempotent: true, WouldChange: true,
					Actions: []string{"install webshop 2.4.0"}, Changes: legacyChanges},
				{List: "steps", Name: "drain", Plugin: "manual", Line: 20, NeedsConfirmation: true,
					Problems: []*agentv1.FieldProblem{{File: "release.yaml", Line: 22, Field: "steps[1].params.instructions", Message: "required"}}},
				{List: "rollback", Name: "remove", Plugin: "dpkg", Line: 30, Error: "start plugin dpkg: no such plugin"},
			},
		}},
		{"interruption.json", &agentv1.Interruption{
			CommandId: "cmd-4", DeploymentId: "d-4", Release: "shop@2.0.1", Step: "steps/migrate", Plugin: "exec", State: agentv1.StateInterrupted,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "legacy", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got := tc.want.ProtoReflect().New().Interface()
			if err := agentv1.UnmarshalLegacy(data, got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestUnmarshalLegacyRefuses: what is not an old report is refused with
// ErrLegacyReport and leaves the message empty; nothing is dropped
// silently.
func TestUnmarshalLegacyRefuses(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"empty", "", "the ApplyReport is not a JSON object"},
		{"not JSON", "not json", "the ApplyReport is not a JSON object"},
		{"an array", `[{"state":"failed"}]`, "the ApplyReport is not a JSON object"},
		{"cut off", `{"state":"failed","steps":[`, "the ApplyReport: "},
		{"a field the report does not have", `{"state":"failed","index":3}`, `unknown field "index"`},
		{"a field of the wrong type", `{"state":"failed","steps":"none"}`, "the ApplyReport: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := &agentv1.ApplyReport{Error: "before"}
			err := agentv1.UnmarshalLegacy([]byte(tc.data), rep)
			if !errors.Is(err, agentv1.ErrLegacyReport) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want ErrLegacyReport saying %q", err, tc.want)
			}
			if !proto.Equal(rep, &agentv1.ApplyReport{}) {
				t.Errorf("report %v after a refusal, want it empty", rep)
			}
		})
	}
}

// TestUnmarshalLegacyTruncated reads the report an agent shrank to its
// size limit (agent/session's boundJSON added "truncated").
func TestUnmarshalLegacyTruncated(t *testing.T) {
	var rep agentv1.ApplyReport
	if err := agentv1.UnmarshalLegacy([]byte(`{"state":"succeeded","duration":5,"truncated":"left out: everything but the summary"}`), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.GetTruncated() != "left out: everything but the summary" || rep.Elapsed() != 5 {
		t.Errorf("report %v", &rep)
	}
}
