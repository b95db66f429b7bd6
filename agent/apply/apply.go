// Package apply runs a release manifest's steps on this machine: each step
// in its plugin process, journaled before and after it runs, with a
// per-step deadline; on failure the applied steps are rolled back and the
// manifest's rollback steps run; on success the verify checks run.
//
// Check is the dry run: it validates every step's parameters and asks
// each plugin for its Plan, and changes nothing.
//
// Undo rolls a deployment back on request (a rollout's rollback): the
// applied steps are undone newest first and the rollback steps run, as
// after a failure, and the deployment is journaled rolled back.
//
// A deployment has an ID, under which the journal keeps its steps.
// Locally (cairn-agent apply) it is the sha256 of the manifest's bytes
// and the root (DeploymentID): re-running a manifest against the same
// root is the same deployment. The agent's session names each deploy
// command's deployment after the command (CommandDeploymentID): a
// redelivered command continues its deployment, while a new command runs
// the steps again even for a release the node had before, each plugin
// deciding from the host whether there is work. Either way, steps of the
// same deployment that succeeded are skipped, failed ones run again, and
// a step a crash interrupted blocks the deployment until an operator
// resolves it.
package apply

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairn-ops/cairn/agent/journal"
	"github.com/cairn-ops/cairn/internal/manifest"
	"github.com/cairn-ops/cairn/internal/readlimit"
	"github.com/cairn-ops/cairn/internal/release"
	"github.com/cairn-ops/cairn/plugins/sdk"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// Host starts plugin processes. *pluginhost.Host satisfies it through a
// small adapter in the CLI.
type Host interface {
	// Start starts the named plugin. ctx bounds the plugin's life: when it
	// ends, the plugin is killed.
	Start(ctx context.Context, name string) (Instance, error)
}

// Instance is one started plugin.
type Instance struct {
	Plugin sdk.Plugin
	// Close stops the plugin process.
	Close func()
}

// ConfirmFunc obtains an operator's confirmation for a step whose plugin
// needs one (the manual plugin), showing them instructions. It returns an
// error wrapping ErrConfirmation when no confirmation can be had.
type ConfirmFunc func(ctx context.Context, step, instructions string) (*sdk.Confirmation, error)

// Runner applies manifests to one root.
type Runner struct {
	Host    Host
	Journal *journal.Journal
	// Root is the directory steps work under ("/" on a real host).
	Root string
	// ArtifactsDir is where component paths are resolved; empty means
	// the manifest's directory.
	ArtifactsDir string
	// CacheDir is the agent's artifact cache, handed to plugins.
	CacheDir string
	// StateDir holds each step's state directory,
	// STATE_DIR/DEPLOYMENT/LIST-INDEX, handed to its plugin: where the
	// plugin makes its undo record durable before it changes anything
	// (sdk.SaveUndo). Empty gives plugins no state directory, and steps
	// cut off by a crash can then not be undone.
	StateDir string
	Confirm  ConfirmFunc
	Logger   *slog.Logger
	// Bundle, when set, is the signed release the manifest must be: Run
	// verifies it against ReleaseKeys and the local artifacts before it
	// journals or runs anything, and refuses with ErrUnverified.
	Bundle *release.Bundle
	// ReleaseKeys are the controller's release public keys the agent
	// trusts, with when each retires (a key retires at the end of a
	// signing-key rotation's overlap).
	ReleaseKeys release.Keys
	// Now is the clock release keys retire by; nil means time.Now.
	Now func() time.Time
	// ArtifactPaths maps component names to local files the agent
	// fetched from the DML by digest. A component listed here uses that
	// file, also when the manifest gives it a path: a release's paths
	// are relative to where it was created, not to this machine.
	ArtifactPaths map[string]string
	// Deployment is the ID of the deployment Run runs (or continues) and
	// Undo undoes. Empty means DeploymentID(m, Root): the same manifest
	// on the same root is the same deployment (cairn-agent apply). The
	// agent's session sets CommandDeploymentID of the deploy command.
	Deployment string
	// Command is the ID of the controller's deploy command the
	// deployment belongs to, journaled with a deployment Run begins
	// (journal.Deployment.CommandID) and put in the report; empty for a
	// local apply.
	Command string
	// Complete, when set, is the result of the controller's command for
	// a deployment that ended with rep and err. The journal records the
	// command as completed with it in the transaction that records the
	// end of the deployment (journal.EndDeployment), so a crash cannot
	// leave a deployment ended and its command to run again.
	Complete func(rep *agentv1.ApplyReport, err error) *journal.Completion
}

// DeploymentID is the ID of applying m to root: the sha256 of the
// manifest's bytes and the root, hex.
func DeploymentID(m *manifest.Manifest, root string) string {
	h := sha256.New()
	h.Write(m.Raw)
	h.Write([]byte{0})
	h.Write([]byte(root))
	return hex.EncodeToString(h.Sum(nil))
}

// CommandDeploymentID is the ID of the deployment a controller's deploy
// command commandID runs on root: the sha256 of both, hex. Its input
// starts with "command" and a NUL byte, which no YAML manifest does, so
// it never equals a DeploymentID.
func CommandDeploymentID(commandID, root string) string {
	h := sha256.New()
	h.Write([]byte("command\x00"))
	h.Write([]byte(commandID))
	h.Write([]byte{0})
	h.Write([]byte(root))
	return hex.EncodeToString(h.Sum(nil))
}

// deploymentID is the ID of the deployment of m this Runner works on.
func (r *Runner) deploymentID(m *manifest.Manifest) string {
	if r.Deployment != "" {
		return r.Deployment
	}
	return DeploymentID(m, r.Root)
}

// shortID is a deployment ID's first 12 characters, for logs and hints.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func (r *Runner) log() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

// artifacts resolves the manifest's components to local paths, checking
// each sha256 (or DML digest) the manifest gives. It returns what it
// could resolve and one error per component it could not.
//
// A component's path must lead to a file inside the artifacts directory
// (the manifest's when ArtifactsDir is empty), symlinks resolved
// (manifest.LocalPath); plugins get that real path.
func (r *Runner) artifacts(m *manifest.Manifest) (map[string]string, []error) {
	out := map[string]string{}
	var errs []error
	for _, c := range m.Components {
		if p, ok := r.ArtifactPaths[c.Name]; ok {
			want := c.Digest
			if want == "" {
				want = c.SHA256
			}
			if err := checkFile(p, want); err != nil {
				errs = append(errs, fmt.Errorf("component %s (%s:%d): %w: %w", c.Name, m.File, c.Line, ErrArtifact, err))
				continue
			}
			out[c.Name] = p
			continue
		}
		if c.Path == "" {
			errs = append(errs, fmt.Errorf("%w: component %s is in the DML (digest %s): local apply needs a path to the file, or an --artifacts dir with it", ErrArtifact, c.Name, c.Digest))
			continue
		}
		path, err := m.LocalPath(c, r.ArtifactsDir)
		if err == nil {
			err = checkFile(path, c.SHA256)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("component %s (%s:%d): %w: %w", c.Name, m.File, c.Line, ErrArtifact, err))
			continue
		}
		out[c.Name] = path
	}
	return out, errs
}

// verifyRelease checks that m is the manifest r.Bundle signs, and the
// bundle with release.Verify against the components' local files.
func (r *Runner) verifyRelease(m *manifest.Manifest) error {
	canon, err := m.Canonical()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnverified, err)
	}
	if !bytes.Equal(canon, r.Bundle.ManifestCanonical) {
		return fmt.Errorf("%w: %w: %s is not the manifest of release %s@%s (digest %s)",
			ErrUnverified, release.ErrTampered, m.File, r.Bundle.Name, r.Bundle.Version, r.Bundle.Digest)
	}
	paths := map[string]string{}
	for _, c := range m.Components {
		if p, ok := r.ArtifactPaths[c.Name]; ok {
			paths[c.Name] = p
		} else if c.Path != "" {
			p, err := m.LocalPath(c, r.ArtifactsDir)
			if err != nil {
				return fmt.Errorf("%w: component %s (%s:%d): %w", ErrUnverified, c.Name, m.File, c.Line, err)
			}
			paths[c.Name] = p
		}
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	if err := release.Verify(r.Bundle, r.ReleaseKeys, now(), paths); err != nil {
		return fmt.Errorf("%w: %w", ErrUnverified, err)
	}
	return nil
}

// checkFile checks that path is a regular file (without opening a named
// pipe or a device) with the sha256 want, when want is given.
func checkFile(path, want string) error {
	f, err := readlimit.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if want == "" {
		return nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("sha256 of %s is %s, the manifest says %s", path, got, want)
	}
	return nil
}

// stepContext builds what a plugin call receives.
func (r *Runner) stepContext(id string, st *manifest.Step, artifacts map[string]string, dryRun bool, deadline time.Time) (*sdk.StepContext, error) {
	params, err := sdk.ParamsOf(st.Params)
	if err != nil {
		return nil, fmt.Errorf("step %s: %w", st.Ref(), err)
	}
	arts := map[string]string{}
	if len(st.NeedsArtifacts) > 0 {
		for _, name := range st.NeedsArtifacts {
			if p, ok := artifacts[name]; ok {
				arts[name] = p
			}
		}
	} else {
		for name, p := range artifacts {
			arts[name] = p
		}
	}
	sc := &sdk.StepContext{
		RootDir:        r.Root,
		Params:         params,
		Artifacts:      arts,
		IdempotencyKey: id + "/" + st.List + "/" + st.Name,
		DryRun:         dryRun,
		CacheDir:       r.CacheDir,
		Step:           st.Name,
	}
	if !dryRun {
		sc.StateDir = r.stepStateDir(id, st.List, st.Index)
	}
	if !deadline.IsZero() {
		sc.DeadlineUnixMs = deadline.UnixMilli()
	}
	return sc, nil
}

// stepStateDir is the state directory of one step of the deployment id,
// or "" without a Runner.StateDir.
func (r *Runner) stepStateDir(id, list string, index int) string {
	if r.StateDir == "" {
		return ""
	}
	return filepath.Join(r.StateDir, id, fmt.Sprintf("%s-%d", list, index))
}

// fieldErrors turns a plugin's field errors into problems naming the
// file, the line and the parameter.
func fieldErrors(m *manifest.Manifest, st *manifest.Step, errs []*sdk.FieldError) []*agentv1.FieldProblem {
	var out []*agentv1.FieldProblem
	for _, fe := range errs {
		out = append(out, &agentv1.FieldProblem{
			File:    m.File,
			Line:    int32(st.ParamLine(fe.GetField())),
			Field:   fmt.Sprintf("%s[%d].params.%s", st.List, st.Index, fe.GetField()),
			Message: fe.GetMessage(),
		})
	}
	return out
}

func changesOf(cs []*sdk.Change) []journal.Change {
	var out []journal.Change
	for _, c := range cs {
		out = append(out, journal.Change{Kind: c.GetKind(), Name: c.GetName(), State: c.GetState(), Version: c.GetVersion(), SHA256: c.GetSha256()})
	}
	return out
}

// stepCall is one step's plugin, started and ready to call: every call
// runs under ctx, which the step's timeout bounds. close ends both.
type stepCall struct {
	ctx    context.Context
	cancel context.CancelFunc
	inst   Instance
	desc   *sdk.Description
	sc     *sdk.StepContext
}

// prepareStep is what applying, checking, verifying and undoing a step
// share: the step's timeout, its plugin started and described, and the
// StepContext of deployment id.
func (r *Runner) prepareStep(ctx context.Context, id string, st *manifest.Step, artifacts map[string]string, dryRun bool) (*stepCall, error) {
	ctx, cancel := context.WithTimeout(ctx, st.Timeout)
	deadline, _ := ctx.Deadline()
	inst, d, err := r.start(ctx, st)
	if err != nil {
		cancel()
		return nil, err
	}
	sc, err := r.stepContext(id, st, artifacts, dryRun, deadline)
	if err != nil {
		inst.Close()
		cancel()
		return nil, err
	}
	return &stepCall{ctx: ctx, cancel: cancel, inst: inst, desc: d, sc: sc}, nil
}

func (c *stepCall) close() {
	c.inst.Close()
	c.cancel()
}

// problems asks the plugin to validate the step's parameters and places
// what it reports in the manifest.
func (c *stepCall) problems(m *manifest.Manifest, st *manifest.Step) ([]*agentv1.FieldProblem, error) {
	ferrs, err := c.inst.Plugin.Validate(c.ctx, c.sc)
	if err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	return fieldErrors(m, st, ferrs), nil
}

// validate is problems as one error, for the calls that change or check
// something and must not run on invalid parameters.
func (c *stepCall) validate(m *manifest.Manifest, st *manifest.Step) error {
	probs, err := c.problems(m, st)
	if err != nil || len(probs) == 0 {
		return err
	}
	lines := make([]string, len(probs))
	for i, p := range probs {
		lines[i] = p.Text()
	}
	return fmt.Errorf("invalid parameters:\n  %s", strings.Join(lines, "\n  "))
}

// instructions are what an operator is shown before confirming a step.
func instructions(st *manifest.Step, d *sdk.Description) string {
	if s, ok := st.Params["instructions"].(string); ok && s != "" {
		return s
	}
	return d.GetSummary()
}

// describe starts the step's plugin and asks who it is.
func (r *Runner) start(ctx context.Context, st *manifest.Step) (Instance, *sdk.Description, error) {
	inst, err := r.Host.Start(ctx, st.Plugin)
	if err != nil {
		return Instance{}, nil, fmt.Errorf("start plugin %s: %w", st.Plugin, err)
	}
	d, err := inst.Plugin.Describe(ctx)
	if err != nil {
		inst.Close()
		return Instance{}, nil, fmt.Errorf("plugin %s: describe: %w", st.Plugin, err)
	}
	return inst, d, nil
}
