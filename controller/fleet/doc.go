// Package fleet serves the agent-facing side of the controller: enrollment
// (a join token and a CSR traded for a node certificate), each agent's one
// live session (commands down, acknowledgements and results up), audit
// uploads and certificate renewal.
//
// A node's identity always comes from the principal the auth interceptor
// derived from its verified client certificate, never from a field the
// agent sends. The fleet keeps the live sessions in memory (one per node:
// a new session replaces the old one), records connection state and
// last-seen times in the store (last-seen at most every 30 s per node, so
// a large fleet does not turn into a stream of writes), and marks nodes
// that stay disconnected for longer than Config.LostAfter as lost.
//
// Commands are persisted by the operator API before the fleet is told
// about them (Notify), so an offline node receives its commands when it
// reconnects; each command has an ID and a node that lists an ID as
// completed in its Hello is not given it again as new work.
//
// The rollout engine drives nodes through the same sessions: it stores
// audit and deploy commands and calls Notify; the fleet delivers them,
// stores their results (a deploy command's report, typed: apply_report
// or plan_report; report.go reads an older agent's JSON as one) and
// tells the engine through Events (command finished, confirmation
// requested, connection opened or ended). Confirm relays an operator's
// confirmation of a manual step to the node's session. Agents drain
// their journal outbox over the session: each item is stored once per
// node and item ID (AgentEventRecord) and acknowledged, however often it
// is sent; a "deployment_interrupted" item (an agent that restarted
// found a step of its deploy command cut off) stored for the first time
// is also told to Events (DeploymentInterrupted) when it names one of
// the node's own deploy commands. FetchArtifact streams a DML artifact, resumable from an
// offset, to a node that has an unfinished deploy command listing it.
package fleet
