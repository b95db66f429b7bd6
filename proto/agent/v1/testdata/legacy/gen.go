// Command gen wrote the JSON files beside it: the deploy reports and the
// interruption that agents sent as JSON bytes (CommandResult.report_json,
// OutboxItem.payload) before the typed messages of report.proto, encoded
// by the agent code of that time (agent/apply's Report and PlanReport,
// agent/journal's Interruption, and agent/session's size bound).
// TestUnmarshalLegacy reads each back as its message.
//
// It ran once, at commit fd56ca3 (the last with JSON reports), as
//
//	go run ./proto/agent/v1/testdata/legacy/gen.go proto/agent/v1/testdata/legacy
//
// and does not build against later code: it is kept to say how the files
// were made.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairn-ops/cairn/agent/apply"
	"github.com/cairn-ops/cairn/agent/journal"
)

func main() {
	dir := os.Args[1]
	install := apply.StepResult{
		List: "steps", Name: "install", Plugin: "dpkg", Outcome: apply.OutcomeChanged, Duration: 1200 * time.Millisecond, Attempts: 2,
		Outputs: map[string]string{"version": "2.4.0"},
		Changes: []journal.Change{{Kind: "package", Name: "webshop", State: "present", Version: "2.4.0"}, {Kind: "file", Name: "/etc/webshop.conf", State: "present", SHA256: strings.Repeat("ab", 32)}},
	}
	files := map[string]any{
		"apply-report.json": &apply.Report{
			DeploymentID: "d-1", CommandID: "cmd-1", Release: "webshop@2.4.0", Root: "/", State: journal.StateRolledBack,
			Error: "step steps/install failed: boom (rolled back)", Duration: 97 * time.Second,
			Steps: []apply.StepResult{install,
				{List: "verify", Name: "homepage", Plugin: "httpcheck", Outcome: apply.OutcomeFailedIgnored, Error: "status 500", Outputs: map[string]string{"evidence": "GET / 500"}},
				{List: apply.ListUndo, Name: "install", Plugin: "dpkg", Outcome: apply.OutcomeRolledBack, Duration: time.Second}},
		},
		"apply-report-interrupted.json": &apply.Report{
			DeploymentID: "d-2", Release: "webshop@2.4.0", Root: "/srv/root", State: journal.StateInterrupted,
			Error: "interrupted", Interrupted: "steps/migrate",
		},
		"plan-report.json": &apply.PlanReport{
			DeploymentID: "d-3", Release: "webshop@2.4.0", Root: "/", Artifacts: []string{"component app: missing"},
			Steps: []apply.StepPlan{
				{List: "steps", Name: "install", Plugin: "dpkg", Line: 12, Idempotent: true, WouldChange: true,
					Actions: []string{"install webshop 2.4.0"}, Changes: install.Changes},
				{List: "steps", Name: "drain", Plugin: "manual", Line: 20, NeedsConfirmation: true,
					Problems: []apply.FieldProblem{{File: "release.yaml", Line: 22, Field: "steps[1].params.instructions", Message: "required"}}},
				{List: "rollback", Name: "remove", Plugin: "dpkg", Line: 30, Error: "start plugin dpkg: no such plugin"},
			},
		},
		"interruption.json": journal.Interruption{
			CommandID: "cmd-4", DeploymentID: "d-4", Release: "shop@2.0.1", Step: "steps/migrate", Plugin: "exec", State: journal.StateInterrupted,
		},
	}
	for name, v := range files {
		b, err := json.Marshal(v)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := os.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
