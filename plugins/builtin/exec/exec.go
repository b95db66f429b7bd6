// Package exec is the built-in step plugin that runs a program.
//
// The program is given as an argv list and started directly, never
// through a shell; argv[0] is looked up in the PATH of the step's
// environment (or a default PATH). The program runs on the host, not in a
// chroot: the step's root directory applies to "dir" and "creates", which
// name paths inside the root ("/srv/app" means ROOT/srv/app), and is passed
// to the program as CAIRN_ROOT. Since the program can do anything the
// agent can, the root is a convention for exec, not a confinement.
//
// The program's environment is PATH, HOME and LANG from the agent, plus
// CAIRN_ROOT, plus the step's "env" (which wins); nothing else of the
// agent's environment is passed on.
//
// Running a program is not idempotent in general, so Describe says
// idempotent=false and the journal treats an interrupted exec step as
// needing an operator's decision. The "creates" guard (skip when that path
// exists) and the "unless" guard (skip when that command exits 0) make
// repeated runs of a step safe.
package exec

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-ops/cairn/internal/inroot"
	"github.com/cairn-ops/cairn/plugins/sdk"
)

// Name is the plugin's name in manifests and the builtin registry.
const Name = "exec"

const version = "1.0.0"

// Plugin runs a program as a deployment step.
type Plugin struct{}

var _ sdk.Plugin = (*Plugin)(nil)

// New returns the exec plugin.
func New() sdk.Plugin { return &Plugin{} }

// Describe implements sdk.Plugin.
func (*Plugin) Describe(context.Context) (*sdk.Description, error) {
	return &sdk.Description{
		Name:       Name,
		Version:    version,
		Idempotent: false,
		Summary: "Run a program (argv list, never a shell) with env, working dir, timeout and accepted exit codes. " +
			"The program runs on the host, not confined to the root (CAIRN_ROOT names the root); dir and creates are paths inside the root. " +
			"Not idempotent in general: give creates or unless to make repeated runs safe.",
		Params: []*sdk.ParamSpec{
			{Name: "argv", Type: "list", Required: true, Description: "program and arguments, run on the host; argv[0] is looked up in the host's PATH"},
			{Name: "env", Type: "object", Description: "extra environment variables; the agent passes on only PATH, HOME and LANG"},
			{Name: "dir", Type: "string", Description: "working directory inside the root, e.g. /srv/app"},
			{Name: "timeout", Type: "string", Description: "kill the program after this duration, e.g. 5m"},
			{Name: "accept_exit_codes", Type: "list", Description: "exit codes that mean success (default [0])"},
			{Name: "creates", Type: "string", Description: "path inside the root; when it exists, Apply is skipped"},
			{Name: "unless", Type: "list", Description: "argv of a guard command; when it exits 0, Apply is skipped"},
			{Name: "rollback_argv", Type: "list", Description: "argv run by Rollback to undo the step"},
		},
	}, nil
}

// Validate implements sdk.Plugin.
func (*Plugin) Validate(_ context.Context, sc *sdk.StepContext) ([]*sdk.FieldError, error) {
	_, errs := load(sc)
	return errs, nil
}

// Plan implements sdk.Plugin. It runs nothing: it checks the "creates"
// guard (a path) to say whether Apply would run the program, and says
// that the "unless" guard, a command, decides at Apply time.
func (*Plugin) Plan(ctx context.Context, sc *sdk.StepContext) (*sdk.Plan, error) {
	c, err := mustLoad(sc)
	if err != nil {
		return nil, err
	}
	plan := &sdk.Plan{}
	if c.Creates != "" {
		plan.Changes = []*sdk.Change{{Kind: sdk.ChangeFile, Name: c.Creates, State: "present"}}
		exists, err := c.exists(c.Creates)
		if err != nil {
			return nil, err
		}
		if exists {
			plan.Actions = []string{"skip: " + c.Creates + " exists"}
			return plan, nil
		}
	}
	action := "would run: " + quote(c.Argv)
	if len(c.Unless) > 0 {
		action += " unless " + quote(c.Unless) + " exits 0 (a plan runs no command, the guard included)"
	}
	plan.Actions = []string{action}
	plan.WouldChange = true
	return plan, nil
}

// record is exec's rollback record.
type record struct {
	Ran bool `json:"ran"`
}

// Apply implements sdk.Plugin.
func (*Plugin) Apply(ctx context.Context, sc *sdk.StepContext, r sdk.Reporter) (*sdk.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("step %q: %w", sc.GetStep(), err)
	}
	c, err := mustLoad(sc)
	if err != nil {
		return nil, err
	}
	skip, err := c.skipReason(ctx, sc, r)
	if err != nil {
		return nil, err
	}
	if skip != "" {
		r.Log(sdk.LevelInfo, "skipped: "+skip)
		rec, _ := json.Marshal(record{Ran: false})
		return &sdk.Result{Changed: false, RollbackRecord: rec}, nil
	}
	if sc.GetDryRun() {
		r.Log(sdk.LevelInfo, "dry run: would run "+quote(c.Argv))
		return &sdk.Result{Changed: false}, nil
	}
	r.Log(sdk.LevelInfo, "running "+quote(c.Argv))
	res, err := c.run(ctx, sc, c.Argv, func(_, line string) {
		r.Log(sdk.LineLevel(line), line)
	})
	if err != nil {
		return nil, err
	}
	if !c.accept[res.exitCode] {
		return nil, fmt.Errorf("%w: %s exited with %d%s", ErrExitCode, c.Argv[0], res.exitCode, lastLines(res))
	}
	rec, _ := json.Marshal(record{Ran: true})
	return &sdk.Result{
		Changed: true,
		Outputs: map[string]string{
			"exit_code":   strconv.Itoa(res.exitCode),
			"stdout_tail": res.stdout,
			"stderr_tail": res.stderr,
		},
		RollbackRecord: rec,
		Changes:        declared(c),
	}, nil
}

// Verify implements sdk.Plugin: it runs argv and passes when the exit code
// is accepted, so exec can serve as an acceptance check.
func (*Plugin) Verify(ctx context.Context, sc *sdk.StepContext) (*sdk.Verification, error) {
	c, err := mustLoad(sc)
	if err != nil {
		return nil, err
	}
	res, err := c.run(ctx, sc, c.Argv, nil)
	if err != nil {
		return nil, err
	}
	evidence := fmt.Sprintf("%s exited %d in %s", quote(c.Argv), res.exitCode, res.elapsed.Round(time.Millisecond))
	if out := strings.TrimSpace(lastBytes(res.stdout+res.stderr, 512)); out != "" {
		evidence += "; output: " + out
	}
	return &sdk.Verification{Passed: c.accept[res.exitCode], Evidence: evidence}, nil
}

// Rollback implements sdk.Plugin: it runs rollback_argv, unless Apply
// skipped the program or no rollback_argv is given.
func (*Plugin) Rollback(ctx context.Context, sc *sdk.StepContext, rec []byte) (*sdk.RollbackResult, error) {
	c, err := mustLoad(sc)
	if err != nil {
		return nil, err
	}
	var rr record
	if len(rec) > 0 {
		if err := json.Unmarshal(rec, &rr); err != nil {
			return nil, fmt.Errorf("read rollback record: %w", err)
		}
		if !rr.Ran {
			return &sdk.RollbackResult{Message: "nothing to undo: Apply skipped the program"}, nil
		}
	}
	if len(c.RollbackArgv) == 0 {
		return &sdk.RollbackResult{Message: "nothing to undo: no rollback_argv given"}, nil
	}
	res, err := c.run(ctx, sc, c.RollbackArgv, nil)
	if err != nil {
		return nil, err
	}
	if res.exitCode != 0 {
		return nil, fmt.Errorf("%w: rollback %s exited with %d%s", ErrExitCode, c.RollbackArgv[0], res.exitCode, lastLines(res))
	}
	return &sdk.RollbackResult{Changed: true, Message: "ran " + quote(c.RollbackArgv)}, nil
}

func mustLoad(sc *sdk.StepContext) (*config, error) {
	c, errs := load(sc)
	if len(errs) > 0 {
		return nil, sdk.ParamsError(errs)
	}
	return c, nil
}

// skipReason evaluates the guards: a non-empty reason means Apply skips.
func (c *config) skipReason(ctx context.Context, sc *sdk.StepContext, r sdk.Reporter) (string, error) {
	if c.Creates != "" {
		exists, err := c.exists(c.Creates)
		if err != nil {
			return "", err
		}
		if exists {
			return c.Creates + " exists", nil
		}
	}
	if len(c.Unless) > 0 {
		res, err := c.run(ctx, sc, c.Unless, nil)
		if err != nil {
			return "", fmt.Errorf("guard unless: %w", err)
		}
		if r != nil {
			r.Log(sdk.LevelInfo, fmt.Sprintf("guard %s exited %d", quote(c.Unless), res.exitCode))
		}
		if res.exitCode == 0 {
			return "guard " + quote(c.Unless) + " exited 0", nil
		}
	}
	return "", nil
}

// run runs argv with the step's environment, working dir and timeouts.
func (c *config) run(ctx context.Context, sc *sdk.StepContext, argv []string, log logFunc) (*run, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	if deadline, ok := sdk.Deadline(sc); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	// The working directory is resolved inside the root (a symlink on the
	// way cannot lead out of it) and held open while the program starts.
	name := c.Dir
	if name == "" {
		name = "/"
	}
	d, dir, err := inroot.Dir(c.root, name)
	if err != nil {
		return nil, fmt.Errorf("%w: working directory %s: %w", ErrDir, name, err)
	}
	defer d.Close()
	return execute(ctx, argv, dir, environ(c.root, c.Env), log)
}

func declared(c *config) []*sdk.Change {
	if c.Creates == "" {
		return nil
	}
	return []*sdk.Change{{Kind: sdk.ChangeFile, Name: c.Creates, State: "present"}}
}

// quote renders argv for people, quoting arguments that need it.
func quote(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`*?;&|<>()[]{}") {
			parts[i] = strconv.Quote(a)
		} else {
			parts[i] = a
		}
	}
	return strings.Join(parts, " ")
}

// lastLines is the end of a failed run's output, for its error message.
func lastLines(r *run) string {
	out := strings.TrimSpace(lastBytes(r.stderr, 512))
	if out == "" {
		out = strings.TrimSpace(lastBytes(r.stdout, 512))
	}
	if out == "" {
		return ""
	}
	return "; last output: " + out
}

func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return clean(s[len(s)-n:])
}
