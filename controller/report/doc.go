// Package report is the management report on a rollout, for the people
// who manage and audit a release: the summary, the waves, each node's
// outcome, deployment, before/after comparison, drift, rollback proof and
// resolution, SLA compliance, the release's known errors and the
// audit-log entries about the rollout.
//
// The report reads stored records only, never the rollout engine: Load
// reads the rollout, its nodes, its release and the audit log from the
// store; Build draws the report (Report, what the JSON format encodes)
// from them; Render writes it as text, JSON, Markdown or one
// self-contained HTML page. Service does all three for the operator API.
package report
