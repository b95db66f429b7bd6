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
package rollout
