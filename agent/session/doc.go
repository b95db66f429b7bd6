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
//	journal.db      the agent's one database (agent/journal, bbolt): the
//	                step journal, the IDs of completed commands, and the
//	                one outbox of command results and journal reports
//	                the controller has not acknowledged yet
//	artifacts/      DML artifacts fetched for deploy commands, by sha256
//	cache/          what plugins keep to roll their steps back
//	steps/          each step's state directory (write-ahead undo records)
//	procs/          the plugin processes running now, one file each
//
// An agent from before the one outbox kept completed commands and
// results in state.json; the agent moves that file's contents into
// journal.db in one transaction when it starts and removes it (a stop
// part-way leaves what the next start finishes; a file it cannot read
// stops the agent with an error naming it, and is left as it is).
//
// A session dials out with mutual TLS, says Hello, and runs the commands
// the controller sends, one at a time. Each command ID runs at most once:
// its ID and its result are saved in one journal transaction before the
// result is sent (for a deploy command, the transaction that ends its
// deployment, so a crash cannot leave a deployment ended and its command
// to run again), and a redelivered command is acknowledged without
// running again. When a session opens and after each command, the
// outbox is sent, oldest first, each item once per session: a result as
// a CommandResult, which the controller acknowledges with a ResultAck,
// and every other item as an OutboxItem, acknowledged with an OutboxAck.
// Either acknowledgement removes the item; until then it is sent again
// on the next session. The journal keeps the last 1000 completed command
// IDs and at most 4096 outbox items, dropping (and logging) the oldest.
// Reconnects back off exponentially with full jitter. The node
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
// manual step asks the controller for an operator's confirmation over
// the session. A deployment goes on when the session drops, and its result waits in
// the outbox; only a step waiting for its confirmation stops it, without
// completing the command, which then runs again when it is redelivered
// (the journal skips the steps that succeeded). The journal is open only
// while the agent uses it, so 'cairn-agent journal' works beside an idle
// agent; while another process holds it (a local 'cairn-agent apply'),
// a command the agent cannot check or complete ends the session, and
// the controller delivers it again on the next.
package session
