package apply

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairn-ops/cairn/agent/journal"
	"github.com/cairn-ops/cairn/internal/manifest"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// Undo rolls back the deployment of m on r.Root (the same deployment ID
// Run uses, r.Deployment when set): the steps not rolled back yet are
// undone newest first by their plugins' Rollback — those that succeeded
// and changed something with their journaled rollback record, those
// that failed or were cut off by a crash (interrupted, or pending a
// re-run) and left a write-ahead undo record with an empty record —
// then the manifest's rollback steps run, and the deployment is
// journaled rolled back.
//
// A deployment a crash interrupted is undone as far as it can be: an
// interrupted step without an undo record may or may not have taken
// effect and cannot be undone; it is a report line with the outcome
// "interrupted", everything else is still undone, and Undo fails with
// an error that wraps both ErrFailed and ErrInterrupted (the step stays
// interrupted until an operator resolves it).
//
// Undo of a deployment that never ran here, or that is rolled back
// already, changes nothing and succeeds. An Undo cut off by a crash or a
// stop goes on where it stopped when it runs again: undone steps stay
// undone and rollback steps that succeeded are not run twice.
//
// With a Bundle, the signed release is verified first, as in Run. The
// error is nil when the rollback succeeded; it wraps ErrFailed or
// ErrUnverified otherwise, or is an infrastructure error (journal,
// context).
func (r *Runner) Undo(ctx context.Context, m *manifest.Manifest) (*agentv1.ApplyReport, error) {
	x, err := r.prepare(ctx, m)
	defer x.took()
	if err != nil {
		return x.rep, err
	}
	id := x.id
	d, err := r.Journal.Deployment(ctx, id)
	switch {
	case errors.Is(err, journal.ErrNotFound):
		x.log.Info("nothing to roll back: the deployment never ran on this root")
		x.rep.State = string(journal.StateRolledBack)
		return x.rep, nil
	case err != nil:
		return x.rep, err
	case d.State == journal.StateRolledBack:
		x.log.Info("nothing to roll back: the deployment is rolled back already")
		x.rep.State = string(journal.StateRolledBack)
		return x.rep, nil
	}
	if err := x.begin(ctx, true); err != nil {
		return x.rep, err
	}
	x.resume = d.State == journal.StateRollingBack
	if err := r.Journal.SetDeployment(ctx, id, journal.StateRollingBack, ""); err != nil {
		return x.rep, err
	}
	// A rollback goes ahead without a component it cannot find: undoing
	// mostly needs the journaled rollback records, and a step that does
	// need the file fails and says so.
	artifacts, errs := r.artifacts(m)
	for _, err := range errs {
		x.log.Warn("rolling back without an artifact", "err", err)
	}
	x.artifacts = artifacts
	x.log.Info("rolling back", "resume", x.resume)
	failure := x.rollback(ctx)
	if err := ctx.Err(); err != nil {
		return x.rep, err
	}
	if failure != nil {
		return x.finish(ctx, journal.StateFailed, fmt.Errorf("%w: rollback of %s: %w", ErrFailed, x.rep.Release, failure))
	}
	return x.finish(ctx, journal.StateRolledBack, nil)
}
