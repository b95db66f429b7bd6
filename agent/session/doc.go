// Package session is cairn-agent's side of the controller protocol
// (proto/agent/v1): enrolling once, then holding one long-lived session.
//
// Enrollment trades a join token and a CSR for a node certificate. The key
// is generated here and never leaves the data directory. The controller's
// CA must be given by the operator on first contact (there is no trust on
// first use); it is pinned from then on.
//
// The data directory (created 0700, every file 0600, written atomically):
//
//	node-key.pem    the node's ECDSA key
//	node.pem        the node's client certificate
//	ca.pem          the controller CA pinned at enrollment
//	identity.json   node ID, controller address, release public key
//	trust.json      what the controller last said to trust: its CAs and
//	                release keys, each until it retires (supersedes
//	                ca.pem and identity.json's release key)
//	state.json      IDs of completed commands and the outbox of results
//	                the controller has not acknowledged yet
//	journal.db      the step journal and its outbox (agent/journal)
//	artifacts/      DML artifacts fetched for deploy commands, by sha256
//	cache/          what plugins keep to roll their steps back
//	steps/          each step's state directory (write-ahead undo records)
//	procs/          the plugin processes running now, one file each
//
// A session dials out with mutual TLS, says Hello, and runs the commands
// the controller sends, one at a time. Each command ID runs at most once:
// its ID and result are saved before the result is sent, a redelivered
// command is acknowledged without running again, and results stay in the
// outbox (and are resent after a reconnect) until the controller sends a
// ResultAck. Reconnects back off exponentially with full jitter. The node
// certificate is renewed over the session when two thirds of its lifetime
// have passed.
//
// The controller sends a Trust when a session opens and again after a
// rotation (cairn-controller rotate): the agent saves it to trust.json
// (atomically, before using it), verifies the controller and releases
// with it from then on, keeping an old CA or release key until its
// retirement time, and renews its certificate at once when a CA other
// than the one that issued it issues certificates now. Refusals of the
// node are recognised by their reason (internal/refusal), never their
// text: a revoked node stops with ErrRevoked, any other refusal with
// ErrRefused.
//
// A deploy command (apply, rollback or plan of a signed release) fetches
// the release's artifacts into the cache by digest (resumable, verified
// before use, fetched once), then hands the manifest, the signed bundle,
// the pinned release key and the cached files to agent/apply, which
// verifies everything before a step runs. Each apply command is its own
// deployment in the journal, named after the command
// (apply.CommandDeploymentID): a redelivered command continues it, a new
// command runs the release's steps again even when the node had that
// release before. A rollback command undoes the deployment of the apply
// command it names (undo_command_id) and is refused without one. A
// manual step asks the
// controller for an operator's confirmation over the session. A
// deployment goes on when the session drops, and its result waits in
// state.json; only a step waiting for its confirmation stops it, without
// completing the command, which then runs again when it is redelivered
// (the journal skips the steps that succeeded). After each deploy command,
// and when a session opens, the journal's outbox is sent; an item leaves
// it when the controller acknowledges it. The journal is open only while
// the agent uses it, so 'cairn-agent journal' works beside an idle agent.
package session
