package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"

	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/agent/apply"
	"github.com/cairn-ops/cairn/agent/journal"
	"github.com/cairn-ops/cairn/internal/manifest"
	"github.com/cairn-ops/cairn/internal/release"
	"github.com/cairn-ops/cairn/plugins/sdk"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// PluginCacheDir is the directory in the data directory where plugins
// keep what they need to roll a step back (cairn-agent apply uses the
// same one).
const PluginCacheDir = "cache"

// StepStateDir is the directory in the data directory that holds each
// step's state directory (apply.Runner.StateDir).
const StepStateDir = "steps"

// PluginProcDir is the directory in the data directory where the plugin
// host records the plugin processes it runs (pluginhost.Config.ProcDir),
// for the next start to reap one that outlived its agent.
const PluginProcDir = "procs"

// errSessionLost stops a deploy command whose manual step waited for a
// confirmation when the session ended. The command is not completed: the
// controller delivers it again and it re-runs, skipping the steps that
// succeeded.
var errSessionLost = errors.New("the session ended while a step waited for an operator's confirmation")

// runDeploy runs one deploy command: it verifies nothing itself but
// hands the signed release, the manifest and the fetched artifacts to
// agent/apply, which verifies before it runs anything. ctx bounds the
// deployment (it goes on when the session drops, so a network blip does
// not cut a step off); sctx is the session's, for the calls to the
// controller and the confirmations of manual steps.
//
// The error is not nil only when the command did not finish and must run
// again when it is delivered again: the agent is stopping, the session
// ended while a step waited for its confirmation, or a fetch failed in a
// way a new connection may cure. Everything else is a failed result.
func (a *Agent) runDeploy(ctx, sctx context.Context, l *link, id string, cmd *agentv1.DeployCommand) (result, error) {
	log := a.log.With("command", id, "action", cmd.GetAction(), "rollout", cmd.GetRolloutId())
	fail := func(format string, args ...any) (result, error) {
		return result{CommandID: id, Error: fmt.Sprintf(format, args...)}, nil
	}
	if a.cfg.Plugins == nil {
		return fail("this agent runs no deploy commands: it was started without a plugin host")
	}
	// Each apply command is its own deployment, named after the command:
	// a redelivered command continues it, a new one runs the steps again.
	// A rollback undoes the deployment of the apply command it names.
	command := id
	switch cmd.GetAction() {
	case agentv1.ActionApply, agentv1.ActionPlan:
	case agentv1.ActionRollback:
		command = cmd.GetUndoCommandId()
		if command == "" {
			return fail("rollback command %s names no deployment to undo (undo_command_id is empty): nothing was rolled back; the controller must name the apply command whose deployment to roll back", id)
		}
	default:
		return fail("unknown deploy action %q: want %s, %s or %s", cmd.GetAction(), agentv1.ActionApply, agentv1.ActionRollback, agentv1.ActionPlan)
	}
	var bundle release.Bundle
	if err := json.Unmarshal(cmd.GetBundleJson(), &bundle); err != nil {
		return fail("the deploy command's signed release (bundle_json) is not a release bundle: %v", err)
	}
	file := cmd.GetManifestFile()
	if file == "" {
		file = "release.yaml"
	}
	m, err := manifest.Parse(cmd.GetManifestYaml(), file)
	if err != nil {
		return fail("%v", err)
	}
	paths := make(map[string]string, len(cmd.GetArtifacts()))
	for _, ref := range cmd.GetArtifacts() {
		p, err := a.cache.fetch(sctx, l.client.agent, ref)
		if err != nil {
			if transient(sctx, err) {
				return result{}, fmt.Errorf("fetch artifact %s: %w", ref.GetDigest(), err)
			}
			if st, ok := status.FromError(err); ok {
				return fail("fetch artifact %s (component %s): %s", ref.GetDigest(), ref.GetComponent(), st.Message())
			}
			return fail("fetch artifact %s: %v", ref.GetDigest(), err)
		}
		paths[ref.GetComponent()] = p
	}
	j, done, err := a.journal.acquire()
	if err != nil {
		return fail("%v", err)
	}
	defer done()

	deployment := apply.CommandDeploymentID(command, a.root)
	if cmd.GetAction() == agentv1.ActionRollback {
		if deployment, err = undoTarget(ctx, j, deployment, apply.DeploymentID(m, a.root)); err != nil {
			return fail("rollback of the deployment of command %s: %v", command, err)
		}
	}

	dctx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	r := &apply.Runner{
		Deployment:    deployment,
		Command:       command,
		Host:          a.cfg.Plugins,
		Journal:       j,
		Root:          a.root,
		CacheDir:      filepath.Join(a.cfg.DataDir, PluginCacheDir),
		StateDir:      filepath.Join(a.cfg.DataDir, StepStateDir),
		Confirm:       confirmer(sctx, l, id, abort, log),
		Logger:        log,
		Bundle:        &bundle,
		ReleaseKeys:   a.trustNow().ReleaseKeys,
		Now:           a.cfg.Now,
		ArtifactPaths: paths,
		// The deployment's end completes this command (a rollback
		// command, not the apply command it undoes) in the same journal
		// transaction.
		Complete: func(rep *agentv1.ApplyReport, err error) *journal.Completion {
			c, cerr := completion(deployResult(id, rep, err))
			if cerr != nil {
				log.Warn("the command is completed after the deployment's end, not with it", "err", cerr)
			}
			return c
		},
	}
	log.Info("deploy command running", "release", m.Name+"@"+m.Version)
	var (
		rep    *agentv1.ApplyReport
		plan   *agentv1.PlanReport
		runErr error
	)
	switch cmd.GetAction() {
	case agentv1.ActionApply:
		rep, runErr = r.Run(dctx, m)
	case agentv1.ActionRollback:
		rep, runErr = r.Undo(dctx, m)
	case agentv1.ActionPlan:
		plan, runErr = r.Check(dctx, m)
		if runErr == nil && !plan.OK() {
			runErr = fmt.Errorf("the dry run found problems: %s", strings.Join(plan.Problems(), "; "))
		}
	}
	if dctx.Err() != nil {
		if cause := context.Cause(dctx); errors.Is(cause, errSessionLost) {
			return result{}, cause
		}
		return result{}, dctx.Err()
	}
	if plan != nil {
		return planResult(id, plan, runErr), nil
	}
	return deployResult(id, rep, runErr), nil
}

// deployResult is the result of apply or rollback command id whose run
// returned rep and err: its error cut to maxErrorBytes, its report to
// maxPayloadBytes (boundApply).
func deployResult(id string, rep *agentv1.ApplyReport, err error) result {
	res := failed(id, err)
	res.Apply = boundApply(rep)
	return res
}

// planResult is the result of plan command id: as deployResult, with
// the dry run's report (boundPlan).
func planResult(id string, plan *agentv1.PlanReport, err error) result {
	res := failed(id, err)
	res.Plan = boundPlan(plan)
	return res
}

// failed is the result of command id that ended with err (ok when err
// is nil), its error cut to maxErrorBytes.
func failed(id string, err error) result {
	res := result{CommandID: id, OK: err == nil}
	if err != nil {
		res.Error = cut(err.Error(), maxErrorBytes)
	}
	return res
}

// undoTarget is the deployment a rollback undoes: byCommand, the
// deployment of the apply command it names, or, when the journal has
// none, legacy, the deployment of the same manifest on the same root,
// if an agent from before deployments were named after their commands
// journaled it (it has no command ID). Otherwise byCommand, which Undo
// finds never ran here.
func undoTarget(ctx context.Context, j *journal.Journal, byCommand, legacy string) (string, error) {
	_, err := j.Deployment(ctx, byCommand)
	if !errors.Is(err, journal.ErrNotFound) {
		return byCommand, err
	}
	d, err := j.Deployment(ctx, legacy)
	switch {
	case errors.Is(err, journal.ErrNotFound):
		return byCommand, nil
	case err != nil:
		return "", err
	case d.CommandID == "":
		return legacy, nil
	}
	return byCommand, nil
}

// confirmer asks the controller, over the session, for the confirmation
// of a manual step and waits for it. When the session ends first it
// stops the deployment (abort) without failing the step: the command
// runs again when it is delivered again, and asks again.
func confirmer(sctx context.Context, l *link, commandID string, abort context.CancelCauseFunc, log *slog.Logger) apply.ConfirmFunc {
	return func(ctx context.Context, step, instructions string) (*sdk.Confirmation, error) {
		ch, forget := l.waits.add(commandID, step)
		defer forget()
		err := l.out.send(&agentv1.AgentMessage{Msg: &agentv1.AgentMessage_ConfirmationRequest{ConfirmationRequest: &agentv1.ConfirmationRequest{
			CommandId: commandID, Step: step, Instructions: instructions,
		}}})
		if err != nil {
			abort(errSessionLost)
			return nil, fmt.Errorf("step %s: ask the controller for a confirmation: %w: %w", step, apply.ErrConfirmation, err)
		}
		log.Info("step waits for an operator's confirmation", "step", step)
		select {
		case c := <-ch:
			log.Info("step confirmed", "step", step, "by", c.GetBy())
			return &sdk.Confirmation{By: c.GetBy(), Note: c.GetNote(), At: c.GetAt()}, nil
		case <-sctx.Done():
			abort(errSessionLost)
			return nil, fmt.Errorf("step %s: %w: %w", step, apply.ErrConfirmation, errSessionLost)
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("step %s: no operator confirmed it within the step's timeout: %w", step, apply.ErrConfirmation)
			}
			return nil, fmt.Errorf("step %s: stopped waiting for a confirmation: %w: %w", step, apply.ErrConfirmation, ctx.Err())
		}
	}
}

// confirmations are the manual steps waiting in one session, by command
// and step; the session's receiver hands each Confirmation to its step.
type confirmations struct {
	mu      sync.Mutex
	waiting map[string]chan *agentv1.Confirmation
}

func newConfirmations() *confirmations {
	return &confirmations{waiting: map[string]chan *agentv1.Confirmation{}}
}

func confirmationKey(commandID, step string) string { return commandID + "\x00" + step }

// add registers a wait; forget ends it.
func (w *confirmations) add(commandID, step string) (ch <-chan *agentv1.Confirmation, forget func()) {
	k := confirmationKey(commandID, step)
	c := make(chan *agentv1.Confirmation, 1)
	w.mu.Lock()
	w.waiting[k] = c
	w.mu.Unlock()
	return c, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.waiting[k] == c {
			delete(w.waiting, k)
		}
	}
}

// deliver hands c to the step waiting for it; it reports false when no
// step waits (a confirmation for a step already confirmed, or sent
// twice).
func (w *confirmations) deliver(c *agentv1.Confirmation) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch, ok := w.waiting[confirmationKey(c.GetCommandId(), c.GetStep())]
	if !ok {
		return false
	}
	select {
	case ch <- c:
		return true
	default:
		return false
	}
}
