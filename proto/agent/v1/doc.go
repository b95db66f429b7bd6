// Package agentv1 is the generated Go code for agent.proto: enrollment and
// the long-lived session between cairn-agent and the controller.
// Regenerate with `make proto`.
package agentv1
