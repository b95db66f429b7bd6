package apply

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cairn-ops/cairn/agent/journal"
	"github.com/cairn-ops/cairn/internal/manifest"
	"github.com/cairn-ops/cairn/plugins/sdk"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// run is one Run in progress.
type run struct {
	*Runner
	m         *manifest.Manifest
	id        string
	artifacts map[string]string
	journaled map[string]journal.Step // by list/index
	rep       *agentv1.ApplyReport
	started   time.Time
	log       *slog.Logger
	// resume makes rollback skip the rollback steps that already
	// succeeded: an Undo that was cut off goes on where it stopped.
	resume bool
}

func key(list string, index int) string { return fmt.Sprintf("%s/%d", list, index) }

// Run applies m: it recovers the journal, records the deployment, checks
// the artifacts, runs the steps in order, on failure undoes the applied
// steps and runs the rollback steps, and on success runs the verify
// checks. With a Bundle, it first verifies the signed release and, if it
// does not verify, returns ErrUnverified before journaling anything. The
// error is nil when the deployment succeeded; it wraps ErrFailed,
// ErrInterrupted, ErrArtifact or ErrUnverified otherwise (with the report
// filled in as far as Run got), or is an infrastructure error (journal,
// context).
func (r *Runner) Run(ctx context.Context, m *manifest.Manifest) (*agentv1.ApplyReport, error) {
	x, err := r.prepare(ctx, m)
	defer x.took()
	if err != nil {
		return x.rep, err
	}
	id := x.id
	if err := x.begin(ctx, false); err != nil {
		return x.rep, err
	}
	if err := r.Journal.SetDeployment(ctx, id, journal.StateRunning, ""); err != nil {
		return x.rep, err
	}
	artifacts, errs := r.artifacts(m)
	if len(errs) > 0 {
		return x.finish(ctx, journal.StateFailed, fmt.Errorf("%w: %w", ErrFailed, errors.Join(errs...)))
	}
	x.artifacts = artifacts

	if err := x.validate(ctx); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return x.rep, cerr
		}
		return x.finish(ctx, journal.StateFailed, fmt.Errorf("%w: %w", ErrFailed, err))
	}
	failure := x.runSteps(ctx)
	if failure == nil {
		failure = x.verify(ctx)
	}
	if err := ctx.Err(); err != nil {
		return x.rep, err
	}
	if failure == nil {
		return x.finish(ctx, journal.StateSucceeded, nil)
	}
	// The applied steps are undone by their plugins whether or not the
	// manifest has rollback steps of its own.
	if rbErr := x.rollback(ctx); rbErr != nil {
		return x.finish(ctx, journal.StateFailed, fmt.Errorf("%w: %w; rollback failed too: %w", ErrFailed, failure, rbErr))
	}
	return x.finish(ctx, journal.StateRolledBack, fmt.Errorf("%w: %w (rolled back)", ErrFailed, failure))
}

// begin journals the deployment and its steps (a deployment journaled
// before keeps its steps' states) and, unless undo, refuses with
// ErrInterrupted a deployment that has an interrupted step (an Undo
// undoes what it can around it).
func (x *run) begin(ctx context.Context, undo bool) error {
	var recs []journal.Step
	for _, list := range x.m.Lists() {
		for _, st := range list {
			recs = append(recs, journal.Step{List: st.List, Index: st.Index, Name: st.Name, Plugin: st.Plugin})
		}
	}
	d, steps, err := x.Journal.Begin(ctx, journal.Deployment{
		ID: x.id, CommandID: x.Command, Manifest: x.m.Name + "@" + x.m.Version, ManifestFile: x.m.File, Root: x.Root,
	}, recs)
	if err != nil {
		return err
	}
	x.journaled = map[string]journal.Step{}
	for _, s := range steps {
		x.journaled[key(s.List, s.Index)] = s
	}
	for _, s := range steps {
		if s.State == journal.StateInterrupted && !undo {
			x.rep.State = string(journal.StateInterrupted)
			x.rep.Interrupted = s.Ref()
			err := fmt.Errorf("%w: step %s of deployment %s was interrupted while it ran, and its plugin (%s) is not idempotent, so it may or may not have taken effect; check the host, then run\n  cairn-agent journal resolve %s %s --as succeeded|failed|retry --note TEXT\n(with the same --data-dir) and apply again",
				ErrInterrupted, s.Ref(), d.ID, s.Plugin, shortID(d.ID), s.Name)
			x.rep.Error = err.Error()
			return err
		}
	}
	return nil
}

// prepare starts a Run or an Undo of m: with a Bundle it verifies the
// signed release (refusing with ErrUnverified before anything is
// journaled), then recovers the journal after a crash.
func (r *Runner) prepare(ctx context.Context, m *manifest.Manifest) (*run, error) {
	id := r.deploymentID(m)
	x := &run{
		Runner: r, m: m, id: id,
		rep:     &agentv1.ApplyReport{DeploymentId: id, CommandId: r.Command, Release: m.Name + "@" + m.Version, Root: r.Root},
		started: time.Now(),
		log:     r.log().With("deployment", shortID(id), "release", m.Name+"@"+m.Version),
	}
	if r.Bundle != nil {
		if err := r.verifyRelease(m); err != nil {
			x.rep.State = string(journal.StateFailed)
			x.rep.Error = err.Error()
			return x, err
		}
	}
	if _, err := r.Journal.Recover(ctx); err != nil {
		return x, err
	}
	return x, nil
}

// took sets the report's duration: from the start of the run to now.
func (x *run) took() { x.rep.Duration = time.Since(x.started).Nanoseconds() }

// finish journals the end of the deployment with its report and, with
// Runner.Complete, the command's completion, in one transaction.
func (x *run) finish(ctx context.Context, state journal.State, err error) (*agentv1.ApplyReport, error) {
	x.rep.State = string(state)
	msg := ""
	if err != nil {
		msg = err.Error()
		x.rep.Error = msg
	}
	x.took()
	var done *journal.Completion
	if x.Complete != nil {
		done = x.Complete(x.rep, err)
	}
	if jerr := x.Journal.EndDeployment(ctx, x.id, state, msg, x.rep, done); jerr != nil {
		return x.rep, errors.Join(err, jerr)
	}
	x.log.Info("deployment finished", "state", state)
	return x.rep, err
}

// runSteps runs the steps list and returns the first failure that stops
// the deployment.
func (x *run) runSteps(ctx context.Context) error {
	var failure error
	for i := range x.m.Steps {
		st := &x.m.Steps[i]
		js := x.journaled[key(st.List, st.Index)]
		switch {
		case js.State == journal.StateSucceeded && js.RolledBackAt.IsZero():
			x.rep.Steps = append(x.rep.Steps, line(st, agentv1.OutcomeSkipped, js.Attempts, ""))
			continue
		case failure != nil || ctx.Err() != nil:
			x.rep.Steps = append(x.rep.Steps, line(st, agentv1.OutcomeNotRun, 0, ""))
			x.setState(ctx, js, journal.StateSkipped)
			continue
		}
		began := time.Now()
		res, err := x.apply(ctx, st, js)
		res.Duration = time.Since(began).Nanoseconds()
		x.rep.Steps = append(x.rep.Steps, ignored(res, st))
		if err != nil && !st.ContinueOnError {
			failure = fmt.Errorf("step %s failed: %w", st.Ref(), err)
		}
	}
	return failure
}

// line is the report's line of step st when its plugin did not run now.
func line(st *manifest.Step, outcome string, attempts int, errText string) *agentv1.StepResult {
	return &agentv1.StepResult{List: st.List, Name: st.Name, Plugin: st.Plugin, Outcome: outcome, Attempts: int32(attempts), Error: errText}
}

// ignored marks the failure of a continue_on_error step in the report.
func ignored(res *agentv1.StepResult, st *manifest.Step) *agentv1.StepResult {
	if res.Outcome == agentv1.OutcomeFailed && st.ContinueOnError {
		res.Outcome = agentv1.OutcomeFailedIgnored
	}
	return res
}

// result is the report's line of a step whose plugin ran, from the
// journaled step js (its outcome, attempts, error, outputs and
// changes); the plugin's log stays in the journal.
func result(js journal.Step) *agentv1.StepResult {
	res := js.Result()
	res.Log = nil
	return res
}

// setState moves a step that is not running to state (skipped, or back
// to pending for a re-run).
func (x *run) setState(ctx context.Context, js journal.Step, state journal.State) (journal.Step, error) {
	if js.State == state {
		return js, nil
	}
	s, err := x.Journal.Transition(ctx, x.id, js.List, js.Index,
		[]journal.State{journal.StatePending, journal.StateFailed, journal.StateSkipped, journal.StateSucceeded},
		func(s *journal.Step) {
			s.State = state
			if state == journal.StatePending {
				s.Error = ""
			}
		})
	if err == nil {
		x.journaled[key(s.List, s.Index)] = s
	}
	return s, err
}

// failBeforeRun records a step that failed before its plugin's Apply was
// called (the plugin would not start, refused the parameters, or no
// confirmation came).
func (x *run) failBeforeRun(ctx context.Context, js journal.Step, cause error) error {
	s, err := x.Journal.Transition(ctx, x.id, js.List, js.Index, []journal.State{journal.StatePending}, func(s *journal.Step) {
		s.State = journal.StateFailed
		s.Error = cause.Error()
		s.FinishedAt = time.Now().UTC()
	})
	if err != nil {
		return errors.Join(cause, err)
	}
	x.journaled[key(s.List, s.Index)] = s
	return cause
}

// reporter relays a plugin's log lines to the agent's log and keeps the
// last ones for the journal.
type reporter struct {
	log   *slog.Logger
	lines []string
}

const keepLines = 50

func (r *reporter) Log(level, msg string) {
	l := slog.LevelInfo
	switch level {
	case sdk.LevelWarn:
		l = slog.LevelWarn
	case sdk.LevelError:
		l = slog.LevelError
	}
	r.log.Log(context.Background(), l, msg)
	r.lines = append(r.lines, level+": "+msg)
	if len(r.lines) > keepLines {
		r.lines = r.lines[len(r.lines)-keepLines:]
	}
}

func (r *reporter) Progress(fraction float64, msg string) {
	r.log.Debug("progress", "fraction", fraction, "message", msg)
}

// apply runs one step of the steps or rollback list: journal it pending,
// start its plugin, validate, confirm when needed, journal it running,
// Apply under the step's deadline, journal the result.
func (x *run) apply(ctx context.Context, st *manifest.Step, js journal.Step) (*agentv1.StepResult, error) {
	res := line(st, agentv1.OutcomeFailed, 0, "")
	log := x.log.With("step", st.List+"/"+st.Name, "plugin", st.Plugin)
	fail := func(err error) (*agentv1.StepResult, error) {
		err = x.failBeforeRun(ctx, x.journaled[key(st.List, st.Index)], err)
		res.Error = err.Error()
		log.Info("step failed", "err", err)
		return res, err
	}
	js, err := x.setState(ctx, js, journal.StatePending)
	if err != nil {
		res.Error = err.Error()
		return res, err
	}
	call, err := x.prepareStep(ctx, x.id, st, x.artifacts, false)
	if err != nil {
		return fail(err)
	}
	defer call.close()
	if err := call.validate(x.m, st); err != nil {
		return fail(err)
	}
	sctx, sc, d := call.ctx, call.sc, call.desc
	var confirmedBy, confirmedNote string
	if d.GetNeedsConfirmation() {
		c, err := x.confirm(sctx, st, d)
		if err != nil {
			return fail(err)
		}
		sc.Confirmation = c
		confirmedBy, confirmedNote = c.GetBy(), c.GetNote()
	}
	js, err = x.Journal.Start(ctx, x.id, st.List, st.Index, d.GetIdempotent())
	if err != nil {
		res.Error = err.Error()
		return res, err
	}
	res.Attempts = int32(js.Attempts)
	log.Info("step running", "attempt", js.Attempts, "idempotent", d.GetIdempotent())
	rep := &reporter{log: log}
	out, applyErr := call.inst.Plugin.Apply(sctx, sc, rep)
	if applyErr != nil && ctx.Err() != nil {
		// The agent itself is stopping: leave the step running, so that
		// the next start's Recover decides (re-run or interrupted), as
		// after a crash.
		res.Error = applyErr.Error()
		return res, applyErr
	}
	fin := journal.Step{
		DeploymentID: x.id, List: st.List, Index: st.Index, Name: st.Name,
		State: journal.StateSucceeded, Log: rep.lines,
		ConfirmedBy: confirmedBy, ConfirmedNote: confirmedNote,
	}
	if applyErr != nil {
		fin.State = journal.StateFailed
		fin.Error = applyErr.Error()
		if errors.Is(applyErr, context.DeadlineExceeded) {
			fin.Error = fmt.Sprintf("timed out after %v: %v", st.Timeout, applyErr)
		}
	} else {
		fin.Changed, fin.Outputs, fin.RollbackRecord, fin.Changes = out.GetChanged(), out.GetOutputs(), out.GetRollbackRecord(), changesOf(out.GetChanges())
	}
	js, err = x.Journal.Finish(ctx, fin)
	if err != nil {
		return res, errors.Join(applyErr, err)
	}
	x.journaled[key(st.List, st.Index)] = js
	if js.State == journal.StateSucceeded {
		// The journal holds the rollback record now; the write-ahead one
		// would make a later Apply in this state dir look like a re-run.
		if err := sdk.ClearUndo(sc); err != nil {
			log.Warn("clear the step's undo record", "err", err)
		}
	}
	res = result(js)
	if applyErr != nil {
		log.Info("step failed", "err", fin.Error)
		return res, errors.New(fin.Error)
	}
	log.Info("step done", "changed", js.Changed)
	return res, nil
}

func (x *run) confirm(ctx context.Context, st *manifest.Step, d *sdk.Description) (*sdk.Confirmation, error) {
	if x.Confirm == nil {
		return nil, fmt.Errorf("step %s needs an operator's confirmation: pass --confirm %s=NOTE: %w", st.Name, st.Name, ErrConfirmation)
	}
	c, err := x.Confirm(ctx, st.Name, instructions(st, d))
	if err != nil {
		return nil, err
	}
	if c.GetAt() == "" {
		c.At = time.Now().UTC().Format(time.RFC3339)
	}
	return c, nil
}

// verify runs the verify checks (always, also on a re-run: they check
// the present state) and returns the first failure.
func (x *run) verify(ctx context.Context) error {
	var failure error
	for i := range x.m.Verify {
		st := &x.m.Verify[i]
		began := time.Now()
		res, err := x.check(ctx, st)
		res.Duration = time.Since(began).Nanoseconds()
		x.rep.Steps = append(x.rep.Steps, ignored(res, st))
		if err != nil && failure == nil && !st.ContinueOnError {
			failure = fmt.Errorf("verify %s failed: %w", st.Name, err)
		}
	}
	return failure
}

func (x *run) check(ctx context.Context, st *manifest.Step) (*agentv1.StepResult, error) {
	res := line(st, agentv1.OutcomeFailed, 0, "")
	log := x.log.With("step", st.List+"/"+st.Name, "plugin", st.Plugin)
	js, err := x.setState(ctx, x.journaled[key(st.List, st.Index)], journal.StatePending)
	if err != nil {
		res.Error = err.Error()
		return res, err
	}
	fail := func(err error) (*agentv1.StepResult, error) {
		err = x.failBeforeRun(ctx, js, err)
		res.Error = err.Error()
		return res, err
	}
	call, err := x.prepareStep(ctx, x.id, st, x.artifacts, false)
	if err != nil {
		return fail(err)
	}
	defer call.close()
	if err := call.validate(x.m, st); err != nil {
		return fail(err)
	}
	// A check changes nothing, so it counts as idempotent for Recover.
	if js, err = x.Journal.Start(ctx, x.id, st.List, st.Index, true); err != nil {
		res.Error = err.Error()
		return res, err
	}
	res.Attempts = int32(js.Attempts)
	v, verr := call.inst.Plugin.Verify(call.ctx, call.sc)
	fin := journal.Step{DeploymentID: x.id, List: st.List, Index: st.Index, Name: st.Name, State: journal.StateSucceeded}
	switch {
	case verr != nil:
		fin.State, fin.Error = journal.StateFailed, "the check could not run: "+verr.Error()
	case !v.GetPassed():
		fin.State, fin.Error = journal.StateFailed, "check failed: "+v.GetEvidence()
	}
	if v.GetEvidence() != "" {
		fin.Outputs = map[string]string{"evidence": v.GetEvidence()}
	}
	if js, err = x.Journal.Finish(ctx, fin); err != nil {
		return res, err
	}
	x.journaled[key(st.List, st.Index)] = js
	res = result(js)
	if fin.State == journal.StateFailed {
		log.Info("check failed", "err", fin.Error)
		return res, errors.New(fin.Error)
	}
	return res, nil
}

// rollback undoes the applied steps, newest first, then runs the
// manifest's rollback steps. It returns every failure but tries
// everything. A step is undone by its plugin's Rollback when it
// succeeded and changed something (with its journaled rollback record),
// or when its plugin ran, was cut off or failed, and left a write-ahead
// undo record in its state directory (with no record: the plugin loads
// its own). An interrupted step without an undo record cannot be
// undone: it is a report line and an error wrapping ErrInterrupted.
func (x *run) rollback(ctx context.Context) error {
	var errs []error
	for i := len(x.m.Steps) - 1; i >= 0; i-- {
		st := &x.m.Steps[i]
		js := x.journaled[key(st.List, st.Index)]
		if !x.needsUndo(js) {
			if js.State == journal.StateInterrupted && js.RolledBackAt.IsZero() {
				err := fmt.Errorf("%w: step %s/%s was interrupted when the agent stopped and left no undo record, so it could not be undone automatically; it may or may not have taken effect (check the host, then record what you found with 'cairn-agent journal resolve %s %s')",
					ErrInterrupted, st.List, st.Name, shortID(x.id), st.Name)
				res := line(st, agentv1.OutcomeInterrupted, js.Attempts, err.Error())
				res.List = agentv1.ListUndo
				x.rep.Steps = append(x.rep.Steps, res)
				errs = append(errs, err)
			}
			continue
		}
		began := time.Now()
		res, err := x.undo(ctx, st, js)
		res.Duration = time.Since(began).Nanoseconds()
		x.rep.Steps = append(x.rep.Steps, res)
		if err != nil {
			errs = append(errs, fmt.Errorf("undo %s: %w", st.Ref(), err))
		}
	}
	for i := range x.m.Rollback {
		st := &x.m.Rollback[i]
		js := x.journaled[key(st.List, st.Index)]
		if x.resume && js.State == journal.StateSucceeded {
			x.rep.Steps = append(x.rep.Steps, line(st, agentv1.OutcomeSkipped, js.Attempts, ""))
			continue
		}
		if js.State == journal.StateInterrupted {
			// An earlier rollback was cut off in this step, whose plugin
			// is not idempotent: running it again is an operator's call.
			err := fmt.Errorf("%w: rollback step %s was interrupted when the agent stopped, and its plugin (%s) is not idempotent, so it is not run again automatically; it may or may not have taken effect (check the host, then record what you found with 'cairn-agent journal resolve %s %s/%s')",
				ErrInterrupted, st.Name, st.Plugin, shortID(x.id), st.List, st.Name)
			x.rep.Steps = append(x.rep.Steps, line(st, agentv1.OutcomeInterrupted, js.Attempts, err.Error()))
			errs = append(errs, err)
			continue
		}
		began := time.Now()
		res, err := x.apply(ctx, st, js)
		res.Duration = time.Since(began).Nanoseconds()
		x.rep.Steps = append(x.rep.Steps, ignored(res, st))
		if err != nil && !st.ContinueOnError {
			errs = append(errs, fmt.Errorf("rollback step %s: %w", st.Name, err))
		}
	}
	return errors.Join(errs...)
}

// needsUndo reports whether the journaled step js is to be undone by its
// plugin's Rollback: it succeeded and changed something, or its plugin
// ran (attempts > 0) and left a write-ahead undo record, whether it
// failed, was interrupted, or was cut off and then not run again
// (pending the re-run of an idempotent plugin, or skipped).
func (x *run) needsUndo(js journal.Step) bool {
	if !js.RolledBackAt.IsZero() {
		return false
	}
	switch js.State {
	case journal.StateSucceeded:
		return js.Changed
	case journal.StateFailed, journal.StateInterrupted, journal.StatePending, journal.StateSkipped:
		return js.Attempts > 0 && sdk.HasUndo(x.stepStateDir(x.id, js.List, js.Index))
	}
	return false
}

func (x *run) undo(ctx context.Context, st *manifest.Step, js journal.Step) (*agentv1.StepResult, error) {
	res := line(st, agentv1.OutcomeFailed, 0, "")
	res.List = agentv1.ListUndo
	call, err := x.prepareStep(ctx, x.id, st, x.artifacts, false)
	if err != nil {
		res.Error = err.Error()
		return res, err
	}
	defer call.close()
	var record []byte
	if js.State == journal.StateSucceeded {
		record = js.RollbackRecord
	}
	rb, err := call.inst.Plugin.Rollback(call.ctx, call.sc, record)
	if err != nil {
		res.Error = err.Error()
		return res, err
	}
	undone := []journal.State{journal.StateSucceeded, journal.StateFailed, journal.StateInterrupted, journal.StatePending, journal.StateSkipped}
	s, err := x.Journal.Transition(ctx, x.id, st.List, st.Index, undone, func(s *journal.Step) {
		s.RolledBackAt = time.Now().UTC()
		if rb.GetMessage() != "" {
			s.Log = append(s.Log, "rollback: "+rb.GetMessage())
		}
		if s.State == journal.StateInterrupted {
			// Undone from its undo record: whatever it did is gone.
			s.State = journal.StateFailed
			s.Error = "interrupted when the agent stopped; undone by a rollback from its undo record"
		}
	})
	if err != nil {
		res.Error = err.Error()
		return res, err
	}
	x.journaled[key(st.List, st.Index)] = s
	res.Outcome = agentv1.OutcomeRolledBack
	if rb.GetMessage() != "" {
		res.Outputs = map[string]string{"message": rb.GetMessage()}
	}
	return res, nil
}
