// Package rollout plans and drives rollouts: an approved release
// deployed to a set of nodes in waves, each node audited before and
// after, the difference compared with the release's declared changes
// (internal/compare), passing nodes' CMS baselines advanced, failing
// waves halted, and changed nodes rolled back on request.
//
// The engine is a persisted state machine. Every transition of a
// rollout, a wave or a node is written to the store before it is acted
// on, and every command it sends an agent is stored in the same
// transaction as the node state that waits for it, so a controller
// killed at any point resumes from the store on restart and never sends
// a node's steps twice (the agent's completed-command IDs and journal
// make redelivery idempotent).
//
// # Planning
//
// Normalize fills in a spec's defaults and parses it (spec.go); Plan
// adds the nodes, their waves, connection, drift from the CMS baseline,
// the known errors that match them and their dry runs (plan.go); Start
// checks the same and stores the rollout (start.go). Only an APPROVED
// release whose approvals are bound to its digest and whose signature
// and artifacts verify is planned or started (release.go).
//
// # Driving
//
// Run's loop runs a pass (pass.go) over each rollout with work in it
// whenever the fleet reports a finished command, a confirmation request
// or a connection, and every Config.Tick. A pass reads the rollout and
// its nodes, moves each node in flight on when its command has finished
// (node.go: pre_audit → deploying → waiting_confirmation → post_audit →
// passed or failed), then drives the rollout by its state: waves, their
// failure budget, bake time, gates and window, and the nodes that start
// (waves.go), or the rollback (rollback.go). All of a pass's decisions
// are committed in one transaction, with the commands they issue and
// their audit-log entries; only then is the fleet notified.
//
// Every audit a rollout issues collects the node's tracked set (its CMS
// baseline's tracked paths, controller/cms) with the release's expected
// files and what the node's pre-audit tracked; the post-audit leaves out
// what the release stops tracking (expect.untrack). Commit completes the
// track lists in its transaction, and a passing node's baseline carries
// the tracked set on (cms.PutBaseline).
//
// Operator actions (actions.go) run as passes under the same lock, so
// the loop and the operators each decide on what the store holds.
package rollout
