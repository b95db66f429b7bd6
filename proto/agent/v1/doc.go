// Package agentv1 is the generated Go code for agent.proto (enrollment
// and the long-lived session between cairn-agent and the controller) and
// report.proto (the agent's reports of what it did), with the
// hand-written vocabulary of those reports (report.go) and the reader of
// the JSON reports older agents sent (legacy.go). Regenerate with `make
// proto`.
package agentv1
