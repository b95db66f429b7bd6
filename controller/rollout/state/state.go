// Package state is the one description of the states of a rollout, its
// waves and its nodes: their names, the transitions the engine
// (controller/rollout) may make between them, and what each state means
// to the people who read it — is the rollout over, is a node in flight,
// does it count against its wave's failure budget, which count is it in.
//
// The states are the proto enums controllerv1.RolloutState, WaveState and
// NodeState. The engine moves a record only through Check, so a
// transition missing from the tables below is an error, never a silent
// write. Every reader (the API, cairnctl, the reports, /metrics, the
// fleet benchmark) asks this package instead of comparing names; the only
// spelling of a state's name is Name here.
//
// # Rollouts
//
//	running          → paused, halted, completed, aborted, rolling_back
//	paused           → running, halted, aborted, rolling_back
//	halted           → running, aborted, rolling_back
//	completed        → running (a node retried), rolling_back
//	aborted          → rolling_back
//	rolling_back     → rollback_paused, rolled_back, rollback_failed, aborted
//	rollback_paused  → rolling_back, aborted
//	rollback_failed  → rolling_back (a node retried, or rollback again), rolled_back (the last failed node resolved)
//	rolled_back      → (none)
//
// # Waves
//
//	pending  → running, cancelled
//	running  → baking, done, failed
//	baking   → done
//	done     → running (a node of it retried)
//	failed   → running (a node of it retried)
//	cancelled→ (none)
//
// # Nodes
//
//	pending              → pre_audit, aborted, unreachable, skipped
//	pre_audit            → deploying, failed, unreachable, skipped
//	deploying            → waiting_confirmation, post_audit, failed, unreachable, skipped
//	waiting_confirmation → deploying, post_audit, failed, unreachable, skipped
//	post_audit           → passed, failed, unreachable, skipped, interrupted
//	passed               → rolling_back
//	failed, unreachable,
//	skipped              → pre_audit (retry), rolling_back, resolving, interrupted
//	interrupted          → pre_audit (retry), rolling_back, resolving
//	rolling_back         → rolled_back, rollback_failed
//	rollback_failed      → rolling_back (retry), resolving
//	resolving            → resolved, or back where it came from when its audit fails
//	aborted, resolved,
//	rolled_back          → (none)
package state
