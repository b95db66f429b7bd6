package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-ops/cairn/controller/rollout/state"
	"github.com/cairn-ops/cairn/internal/atomicfile"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// Rollout settings the command line accepts; the controller checks them
// again and is authoritative.
var (
	rolloutStrategies = []string{"canary", "waves", "all-at-once"}
	onFailurePolicies = []string{"stop", "continue", "rollback"}
	onDriftPolicies   = []string{"block", "ignore"}
	reportFormats     = []string{formatText, formatJSON, formatMarkdown, formatHTML}
)

// planGrace is added to --timeout for rollout plan: the controller waits
// for the nodes' dry runs (30s by default) before it answers.
const planGrace = 30 * time.Second

func (a *app) newRolloutCommand() *cobra.Command {
	return group("rollout", "Plan, start, watch, steer and report rollouts of approved releases",
		`A rollout deploys an approved release to the nodes of a Service CI or a
label selector, in waves: by default a canary of one node, then 10%, 50%
and 100% of the nodes. Every node is audited before and after its
deployment, and the difference is compared with the release's declared
changes and the CMS. A wave that exceeds its failure budget halts the
rollout; it can then be rolled back.

'rollout plan' shows what a rollout would do without starting it: its
waves, each node's drift and dry run, and matching known errors.
'rollout start' creates it, and the controller drives it from then on,
also across its own restarts.`,
		`  cairnctl rollout plan webshop@2.4.0 --service shop
  cairnctl rollout start webshop@2.4.0 --service shop --gate after-wave:1 --watch
  cairnctl rollout status ro-6c3302e95c4e
  cairnctl rollout resume ro-6c3302e95c4e --note "canary looks good"
  cairnctl rollout report ro-6c3302e95c4e -o html --out rollout.html`,
		a.newRolloutPlanCommand(),
		a.newRolloutStartCommand(),
		a.newRolloutListCommand(),
		a.newRolloutStatusCommand(),
		a.newRolloutWatchCommand(),
		a.newRolloutActionCommand("pause"),
		a.newRolloutActionCommand("resume"),
		a.newRolloutActionCommand("abort"),
		a.newRolloutActionCommand("rollback"),
		a.newRolloutConfirmCommand(),
		a.newRolloutNodeCommand("retry"),
		a.newRolloutNodeCommand("resolve"),
		a.newRolloutReportCommand(),
	)
}

// specFlags are the flags that make a RolloutSpec (plan and start).
type specFlags struct {
	selector    []string
	service     string
	strategy    string
	waves       []string
	maxParallel string
	maxFailures string
	unreachable string
	lostAfter   string
	bake        string
	gates       []string
	window      string
	onFailure   string
	onDrift     string
	noDryRun    bool
}

// specUse is the synopsis of the spec flags.
const specUse = "NAME@VERSION (--selector k=v[,k=v] | --service S) [--strategy canary|waves|all-at-once] " +
	"[--waves 1,10%,50%,100%] [--max-parallel N|N%] [--max-failures N|N%] [--unreachable fail|skip|wait:DURATION] [--lost-after DURATION] " +
	"[--bake DURATION] [--gate after-wave:N ...] [--window 'Sat 22:00-Sun 04:00'] [--on-failure stop|continue|rollback] [--on-drift block|ignore]"

// specHelp describes the spec flags in a command's long help.
const specHelp = `The nodes are those of a Service CI (--service) or those whose labels
match --selector; give exactly one. Unset settings take the controller's
defaults: strategy canary (waves 1,10%,50%,100%, cumulative), max parallel
min(50, 10% of the nodes), max failures 0 per wave, unreachable nodes
fail, no bake time, no gates, any time, on failure stop, drift blocks.

  --unreachable fail|skip|wait:DURATION  what an unreachable node counts as:
                                         fail counts it against its wave's
                                         budget, skip does not, wait:D
                                         waits D for it first, then counts it
  --lost-after DURATION                  how long a node may stay
                                         disconnected in any phase of its
                                         deployment or rollback before it is
                                         unreachable (default: the
                                         controller's lost_after, 5m;
                                         wait:D uses D)
  --gate after-wave:N                    pause after wave N until 'rollout resume'
  --window 'Sat 22:00-Sun 04:00'         start nodes only inside this window
                                         (the controller's time zone)
  --on-failure stop|continue|rollback    what a wave over its budget does
  --on-drift block|ignore                what drift from a node's CMS baseline
                                         does: block fails the node before
                                         anything is deployed to it`

func addSpecFlags(cmd *cobra.Command, plan bool) *specFlags {
	s := &specFlags{}
	fl := cmd.Flags()
	fl.StringArrayVar(&s.selector, "selector", nil, describePairs("deploy to the nodes with these labels"))
	fl.StringVar(&s.service, "service", "", "deploy to the nodes of this Service CI")
	fl.StringVar(&s.strategy, "strategy", "", "canary, waves or all-at-once (default canary)")
	fl.StringSliceVar(&s.waves, "waves", nil, "cumulative wave sizes, N or N%, comma-separated (default 1,10%,50%,100%)")
	fl.StringVar(&s.maxParallel, "max-parallel", "", "nodes deploying at once, N or N% (default min(50, 10%))")
	fl.StringVar(&s.maxFailures, "max-failures", "", "failed nodes a wave tolerates, N or N% (default 0)")
	fl.StringVar(&s.unreachable, "unreachable", "", "fail, skip or wait:DURATION (default fail)")
	fl.StringVar(&s.lostAfter, "lost-after", "", "disconnected this long in flight, a node is unreachable (default the controller's lost_after)")
	fl.StringVar(&s.bake, "bake", "", "time to wait between waves, e.g. 10m (default none)")
	fl.StringArrayVar(&s.gates, "gate", nil, "after-wave:N: pause after wave N until 'rollout resume' (repeatable)")
	fl.StringVar(&s.window, "window", "", "when nodes may start, e.g. 'Sat 22:00-Sun 04:00' (default any time)")
	fl.StringVar(&s.onFailure, "on-failure", "", "stop, continue or rollback (default stop)")
	fl.StringVar(&s.onDrift, "on-drift", "", "block or ignore: drift from the CMS baseline fails the node, or is only reported (default block)")
	if plan {
		fl.BoolVar(&s.noDryRun, "no-dry-run", false, "do not ask the nodes for their dry runs")
	}
	return s
}

// spec checks the flags (cheaply: the controller is authoritative) and
// returns the spec of a rollout of release ref.
func (s *specFlags) spec(ref string) (*controllerv1.RolloutSpec, error) {
	rel, err := parseReleaseRef(ref)
	if err != nil {
		return nil, err
	}
	sel, err := parsePairs("--selector", splitPairs(s.selector), false)
	if err != nil {
		return nil, err
	}
	switch {
	case s.service != "" && len(sel) > 0:
		return nil, usageErrorf("give --service S or --selector k=v,..., not both: the nodes to deploy to")
	case s.service == "" && len(sel) == 0:
		return nil, usageErrorf("give either --service S or --selector k=v,...: the nodes to deploy to")
	}
	if s.strategy != "" && !slices.Contains(rolloutStrategies, s.strategy) {
		return nil, usageErrorf("--strategy %q: use %s", s.strategy, orList(rolloutStrategies))
	}
	for _, w := range s.waves {
		if err := checkSize("--waves", w, 1); err != nil {
			return nil, err
		}
	}
	if s.maxParallel != "" {
		if err := checkSize("--max-parallel", s.maxParallel, 1); err != nil {
			return nil, err
		}
	}
	if s.maxFailures != "" {
		if err := checkSize("--max-failures", s.maxFailures, 0); err != nil {
			return nil, err
		}
	}
	if err := checkUnreachable(s.unreachable); err != nil {
		return nil, err
	}
	if s.lostAfter != "" {
		if d, err := time.ParseDuration(s.lostAfter); err != nil || d <= 0 {
			return nil, usageErrorf("--lost-after %q: give a duration such as 2m", s.lostAfter)
		}
	}
	if s.bake != "" {
		if d, err := time.ParseDuration(s.bake); err != nil || d < 0 {
			return nil, usageErrorf("--bake %q: give a duration such as 10m", s.bake)
		}
	}
	var gates []uint32
	for _, g := range s.gates {
		n, err := parseGate(g)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(gates, n) {
			gates = append(gates, n)
		}
	}
	slices.Sort(gates)
	if s.onFailure != "" && !slices.Contains(onFailurePolicies, s.onFailure) {
		return nil, usageErrorf("--on-failure %q: use %s", s.onFailure, orList(onFailurePolicies))
	}
	if s.onDrift != "" && !slices.Contains(onDriftPolicies, s.onDrift) {
		return nil, usageErrorf("--on-drift %q: use %s", s.onDrift, orList(onDriftPolicies))
	}
	return &controllerv1.RolloutSpec{
		Release:        rel,
		Selector:       sel,
		Service:        s.service,
		Strategy:       s.strategy,
		Waves:          s.waves,
		MaxParallel:    s.maxParallel,
		MaxFailures:    s.maxFailures,
		Unreachable:    s.unreachable,
		LostAfter:      s.lostAfter,
		Bake:           s.bake,
		GatesAfterWave: gates,
		Window:         strings.TrimSpace(s.window),
		OnFailure:      s.onFailure,
		OnDrift:        s.onDrift,
		SkipDryRun:     s.noDryRun,
	}, nil
}

// checkSize checks a node count given as N (at least min) or N% (min to
// 100).
func checkSize(flag, v string, min int) error {
	num, pct := strings.CutSuffix(strings.TrimSpace(v), "%")
	n, err := strconv.Atoi(num)
	switch {
	case err != nil:
		return usageErrorf("%s %q: give a number of nodes N or a percentage N%%", flag, v)
	case n < min:
		return usageErrorf("%s %q: at least %d", flag, v, min)
	case pct && n > 100:
		return usageErrorf("%s %q: a percentage is at most 100%%", flag, v)
	}
	return nil
}

// checkUnreachable checks fail, skip or wait:DURATION.
func checkUnreachable(v string) error {
	switch v {
	case "", "fail", "skip":
		return nil
	}
	if d, ok := strings.CutPrefix(v, "wait:"); ok {
		if dur, err := time.ParseDuration(d); err == nil && dur > 0 {
			return nil
		}
	}
	return usageErrorf("--unreachable %q: use fail, skip or wait:DURATION (e.g. wait:5m)", v)
}

// parseGate parses after-wave:N.
func parseGate(v string) (uint32, error) {
	num, ok := strings.CutPrefix(strings.TrimSpace(v), "after-wave:")
	n, err := strconv.ParseUint(num, 10, 32)
	if !ok || err != nil || n == 0 {
		return 0, usageErrorf("--gate %q: use after-wave:N with N the wave (1 is the first)", v)
	}
	return uint32(n), nil
}

// rolloutArg is the one ID argument of a rollout command.
var rolloutArg = exactArgs("ID")

func (a *app) newRolloutPlanCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plan " + specUse + " [--no-dry-run]",
		Short: "Show what a rollout would do, without starting it",
		Long: `Plan asks the controller to plan a rollout without creating it: the
waves with their nodes in order, the settings with the defaults filled
in, and for every node whether its agent is connected, its drift from
its CMS baseline, the known errors whose signature matches it, and its
dry run (what the release's steps would do there). Warnings say what
would stop the rollout or a node.

` + specHelp + `

The dry runs take up to the controller's plan timeout; --no-dry-run
skips them. -o json or yaml prints the whole plan.`,
		Example: `  cairnctl rollout plan webshop@2.4.0 --service shop
  cairnctl rollout plan webshop@2.4.0 --selector env=prod,role=web --waves 1,50%,100% --max-failures 10%
  cairnctl rollout plan webshop@2.4.0 --service shop --strategy all-at-once --no-dry-run -o json`,
		Args: exactArgs("NAME@VERSION"),
	}
	f := addFormat(cmd, formatTable, listFormats...)
	sf := addSpecFlags(cmd, true)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := f.check(); err != nil {
			return err
		}
		spec, err := sf.spec(args[0])
		if err != nil {
			return err
		}
		cc, err := a.conn()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), a.cfg.Timeout+planGrace)
		defer cancel()
		plan, err := controllerv1.NewRolloutsClient(cc).PlanRollout(ctx, spec)
		if err != nil {
			return rpcErr("plan rollout of "+args[0], err)
		}
		if f.name != formatTable {
			return printProto(a.out, f, plan, nil)
		}
		_, err = io.WriteString(a.out, planText(plan))
		return err
	}
	return cmd
}

func (a *app) newRolloutStartCommand() *cobra.Command {
	var watch bool
	cmd := &cobra.Command{
		Use:   "start " + specUse + " [--watch]",
		Short: "Start a rollout of an approved release",
		Long: `Start creates a rollout of an approved release (its approvals bound to
the release's digest) and the controller drives it from then on. It
prints the rollout's ID and the commands to follow and steer it.

` + specHelp + `

With --watch, start follows the rollout as 'rollout watch' does and exits
0 when it completes, 1 when it halts, is aborted or is rolled back.`,
		Example: `  cairnctl rollout start webshop@2.4.0 --service shop
  cairnctl rollout start webshop@2.4.0 --service shop --gate after-wave:1 --bake 10m --on-failure rollback --watch`,
		Args: exactArgs("NAME@VERSION"),
	}
	f := addFormat(cmd, formatTable, listFormats...)
	sf := addSpecFlags(cmd, false)
	cmd.Flags().BoolVar(&watch, "watch", false, "follow the rollout until it ends; exit 1 unless it completes")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := f.check(); err != nil {
			return err
		}
		spec, err := sf.spec(args[0])
		if err != nil {
			return err
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		rec, err := controllerv1.NewRolloutsClient(cc).StartRollout(ctx, spec)
		if err != nil {
			return rpcErr("start rollout of "+args[0], err)
		}
		progress := a.out
		if f.name != formatTable {
			progress = a.errOut
			if !watch {
				return printProto(a.out, f, rec, nil)
			}
		} else {
			fmt.Fprint(a.out, startedText(rec))
		}
		if !watch {
			return nil
		}
		last, werr := a.follow(cmd.Context(), rec.GetId(), progress)
		if f.name != formatTable && last != nil {
			if err := printProto(a.out, f, last, nil); err != nil {
				return err
			}
		}
		return werr
	}
	return cmd
}

// startedText says what was started and how to follow it.
func startedText(rec *controllerv1.RolloutRecord) string {
	id := rec.GetId()
	var b strings.Builder
	fmt.Fprintf(&b, "rollout %s started: %s to %s in %s (%s)\n", id, refString(rec.GetRelease()),
		plural(int(rec.GetCounts().GetNodes()), "node"), plural(len(rec.GetWaves()), "wave"), state.Name(rec.GetState()))
	b.WriteString("\nfollow and steer it with:\n")
	for _, c := range []string{"watch " + id, "status " + id, "pause " + id, "rollback " + id, "report " + id} {
		fmt.Fprintf(&b, "  cairnctl rollout %s\n", c)
	}
	return b.String()
}

func (a *app) newRolloutListCommand() *cobra.Command {
	var release string
	cmd := &cobra.Command{
		Use:   "list [--release NAME[@VERSION]]",
		Short: "List rollouts, newest first",
		Long: `List prints every rollout, or those of one release (NAME) or release
version (NAME@VERSION), newest first, with its state and progress: nodes
passed of all, failed, and unreachable (counted apart).`,
		Example: `  cairnctl rollout list
  cairnctl rollout list --release webshop
  cairnctl rollout list --release webshop@2.4.0 -o json`,
		Args: noArgs,
	}
	f := addFormat(cmd, formatTable, listFormats...)
	cmd.Flags().StringVar(&release, "release", "", "only rollouts of this release, NAME or NAME@VERSION")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := f.check(); err != nil {
			return err
		}
		if strings.Contains(release, "@") {
			if _, err := parseReleaseRef(release); err != nil {
				return err
			}
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		resp, err := controllerv1.NewRolloutsClient(cc).ListRollouts(ctx, &controllerv1.ListRolloutsRequest{Release: release})
		if err != nil {
			return rpcErr("list rollouts", err)
		}
		return printProto(a.out, f, resp, func(t *table) {
			t.row("ID", "RELEASE", "STATE", "PROGRESS", "FAILED", "UNREACHABLE", "CREATED", "BY")
			for _, r := range resp.GetRollouts() {
				c := r.GetCounts()
				t.row(r.GetId(), refString(r.GetRelease()), state.Name(r.GetState()),
					fmt.Sprintf("%d/%d", c.GetPassed(), c.GetNodes()), strconv.Itoa(int(c.GetFailed())),
					strconv.Itoa(int(c.GetUnreachable())), ago(a.now(), r.GetCreatedAt()), r.GetCreatedBy())
			}
		})
	}
	return cmd
}

func (a *app) newRolloutStatusCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status ID",
		Short: "Show a rollout: state, waves with progress, every node",
		Long: `Status prints a rollout as it stands: its state and why (paused,
halted, what it waits for), each wave with a progress bar, each node with
its state, duration and error or the manual step it waits at, and the
counts (unreachable nodes apart). -o json or yaml prints the record.`,
		Example: `  cairnctl rollout status ro-6c3302e95c4e
  cairnctl rollout status ro-6c3302e95c4e -o json | jq '.nodes[] | select(.state=="NODE_STATE_FAILED")'`,
		Args: rolloutArg,
	}
	f := addFormat(cmd, formatTable, listFormats...)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := f.check(); err != nil {
			return err
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		rec, err := controllerv1.NewRolloutsClient(cc).GetRollout(ctx, &controllerv1.RolloutRef{Id: args[0]})
		if err != nil {
			return rpcErr("rollout "+args[0], err)
		}
		if f.name != formatTable {
			return printProto(a.out, f, rec, nil)
		}
		_, err = io.WriteString(a.out, statusText(rec, a.now()))
		return err
	}
	return cmd
}

func (a *app) newRolloutWatchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "watch ID",
		Short: "Follow a rollout live until it ends",
		Long: `Watch follows a rollout as the controller drives it. On a terminal it
redraws the status view (waves with progress bars, every node) at each
change; otherwise it prints one line per change, e.g.

  12:00:03 web1 wave 1 deploying
  12:00:41 wave 1 done
  12:01:10 rollout halted: wave 2 exceeded its failure budget

Watch exits 0 when the rollout completes and 1 when it halts, is aborted
or is rolled back. Stopping watch (Ctrl-C) does not stop the rollout.`,
		Example: `  cairnctl rollout watch ro-6c3302e95c4e
  cairnctl rollout watch ro-6c3302e95c4e | tee rollout.log`,
		Args: rolloutArg,
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		_, err := a.follow(cmd.Context(), args[0], a.out)
		return err
	}
	return cmd
}

// follow watches rollout id until it ends, drawing it on w (redrawn on a
// terminal, one line per change otherwise). It returns the last record
// and nil when the rollout completed, an exit-1 error when it did not.
// The stream is not bounded by --timeout: a rollout takes as long as it
// takes.
func (a *app) follow(ctx context.Context, id string, w io.Writer) (*controllerv1.RolloutRecord, error) {
	cc, err := a.conn()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // also ends the stream when the rollout halts
	stream, err := controllerv1.NewRolloutsClient(cc).WatchRollout(ctx, &controllerv1.RolloutRef{Id: id})
	if err != nil {
		return nil, rpcErr("watch rollout "+id, err)
	}
	tty := isTerminal(w)
	var last *controllerv1.RolloutRecord
	for {
		rec, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return last, rpcErr("watch rollout "+id, err)
		}
		if tty {
			// The redraw is cairnctl's own; the view holds input and goes
			// through w's escaping.
			fmt.Fprint(raw(w), "\x1b[H\x1b[2J")
			fmt.Fprint(w, statusText(rec, a.now())+"\n(watching; Ctrl-C stops watching, not the rollout)\n")
		} else {
			now := a.now()
			for _, l := range changeLines(last, rec, now) {
				fmt.Fprintf(w, "%s %s\n", watchStamp(l.at, now), l.text)
			}
		}
		last = rec
		if rolloutEnded(rec) {
			break
		}
	}
	if last == nil {
		return nil, failedf("watch rollout %s: the controller sent nothing", id)
	}
	return last, rolloutOutcome(last)
}

// rolloutEnded reports whether a watcher has seen the end of a rollout:
// it is over or halted (an operator decides what next) and nothing of it
// is in flight — unless a rollback of the halted rollout was asked for
// (on_failure=rollback, or an operator), which is still to come.
func rolloutEnded(rec *controllerv1.RolloutRecord) bool {
	if rec.GetState() == state.RolloutHalted && (rec.GetSpec().GetOnFailure() == "rollback" || rec.GetRollbackRequestedBy() != "") {
		return false
	}
	return state.Stopped(rec)
}

// rolloutOutcome is nil for a rollout that did what was asked (completed
// with every node passed or resolved, or rolled back as asked) and an
// exit-1 error saying how it ended otherwise.
func rolloutOutcome(rec *controllerv1.RolloutRecord) error {
	if state.Succeeded(rec) && rec.GetState() == state.RolloutCompleted {
		return nil
	}
	name := state.Name(rec.GetState())
	if !rolloutEnded(rec) {
		return failedf("rollout %s is %s, not finished: the watch ended early; see 'cairnctl rollout status %s'", rec.GetId(), name, rec.GetId())
	}
	msg := "rollout " + rec.GetId() + " " + strings.ReplaceAll(name, "_", " ")
	if r := rec.GetReason(); r != "" {
		msg += ": " + r
	}
	switch rec.GetState() {
	case state.RolloutHalted:
		msg += fmt.Sprintf("; 'cairnctl rollout retry %s --node NODE' re-runs a failed node, 'cairnctl rollout rollback %s' rolls back the changed nodes", rec.GetId(), rec.GetId())
	case state.RolloutCompleted:
		msg += "; " + countsLine(rec.GetCounts())
	}
	return failedf("%s", msg)
}

// newRolloutActionCommand is rollout pause, resume, abort or rollback.
func (a *app) newRolloutActionCommand(verb string) *cobra.Command {
	var note string
	cmd := &cobra.Command{
		Use:  verb + " ID [--note TEXT]",
		Args: rolloutArg,
	}
	switch verb {
	case "pause":
		cmd.Short = "Pause a rollout or its rollback: nothing new starts until it is resumed"
		cmd.Long = `Pause stops a running rollout from starting nodes, or a rollback from
starting node rollbacks; what is in flight finishes. 'rollout resume'
continues it.`
	case "resume":
		cmd.Short = "Resume a paused rollout or rollback, a gate, or a halted rollout"
		cmd.Long = `Resume continues a paused rollout or rollback, or one waiting at a gate
after a wave (--gate after-wave:N): the operator's go-ahead for the next
wave. A halted rollout resumes once its failed wave is within its budget
again: retry its failed nodes ('rollout retry') or resolve them after
repairing them by hand ('rollout resolve').`
	case "abort":
		cmd.Short = "Abort a rollout or its rollback: nothing starts again; changed nodes stay changed"
		cmd.Long = `Abort ends a rollout: no new node starts; deployments in flight finish and
are recorded. Nodes it already changed keep the release; 'rollout
rollback' reverts them instead. Aborting a rollback cancels the node
rollbacks in flight (a node that does not answer no longer holds it up);
'rollout rollback' starts the rollback again for the nodes not proven.`
	case "rollback":
		cmd.Short = "Roll back every node a rollout changed, in reverse wave order"
		cmd.Long = `Rollback stops the rollout and runs the release's rollback on every node
it changed, in reverse wave order, audits each node again and checks that
its state equals its pre-deployment audit (differences are reported).
After a rollback that failed or was aborted, it rolls back again the nodes
not proven yet. 'rollout watch' follows it.`
	}
	cmd.Example = "  cairnctl rollout " + verb + ` ro-6c3302e95c4e --note "CHG-1042"`
	cmd.Flags().StringVar(&note, "note", "", "why, recorded in the audit log")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		c := controllerv1.NewRolloutsClient(cc)
		req := &controllerv1.RolloutAction{Id: args[0], Note: note}
		var rec *controllerv1.RolloutRecord
		switch verb {
		case "pause":
			rec, err = c.PauseRollout(ctx, req)
		case "resume":
			rec, err = c.ResumeRollout(ctx, req)
		case "abort":
			rec, err = c.AbortRollout(ctx, req)
		case "rollback":
			rec, err = c.RollbackRollout(ctx, req)
		}
		if err != nil {
			return rpcErr(verb+" rollout "+args[0], err)
		}
		_, err = fmt.Fprintf(a.out, "rollout %s: %s accepted; state %s\n", rec.GetId(), verb, stateWithReason(rec))
		return err
	}
	return cmd
}

func (a *app) newRolloutConfirmCommand() *cobra.Command {
	var node, step, note string
	cmd := &cobra.Command{
		Use:   "confirm ID --node NODE --step STEP --note TEXT",
		Short: "Confirm a manual step a node waits at",
		Long: `Confirm records that an operator did what a manual step asks (its
instructions show in 'rollout status'), and lets the node go on. The note
says what was done; it is kept with the rollout and in the audit log.`,
		Example: `  cairnctl rollout confirm ro-6c3302e95c4e --node web1 --step drain-lb --note "web1 drained in the LB console"`,
		Args:    rolloutArg,
	}
	cmd.Flags().StringVar(&node, "node", "", "the node (ID or hostname) waiting at the step (required)")
	cmd.Flags().StringVar(&step, "step", "", "the manual step's ID (required)")
	cmd.Flags().StringVar(&note, "note", "", "what was done (required)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		switch {
		case node == "":
			return usageErrorf("--node NODE is required: the node waiting at the step")
		case step == "":
			return usageErrorf("--step STEP is required: the manual step to confirm")
		case strings.TrimSpace(note) == "":
			return usageErrorf("--note TEXT is required: say what was done")
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		rec, err := controllerv1.NewRolloutsClient(cc).ConfirmStep(ctx, &controllerv1.ConfirmStepRequest{Id: args[0], Node: node, Step: step, Note: note})
		if err != nil {
			return rpcErr("confirm step "+step+" on "+node, err)
		}
		_, err = fmt.Fprintf(a.out, "rollout %s: step %s on %s confirmed; state %s\n", rec.GetId(), step, node, stateWithReason(rec))
		return err
	}
	return cmd
}

// newRolloutNodeCommand is rollout retry or resolve: an operator's way
// out for one node that failed, went away, was cut off or did not roll
// back.
func (a *app) newRolloutNodeCommand(verb string) *cobra.Command {
	var node, note string
	cmd := &cobra.Command{
		Use:  verb + " ID --node NODE [--note TEXT]",
		Args: rolloutArg,
	}
	switch verb {
	case "retry":
		cmd.Short = "Run a failed node's deployment, or its failed rollback, again"
		cmd.Long = `Retry runs the deployment of a node that failed, was unreachable or
skipped, or was interrupted (its agent restarted mid-step), again from
its pre-audit, with new commands: each step's plugin decides whether
there is work left. For a node whose rollback failed, it runs the
rollback again. The node must be connected. A completed rollout runs
again until the node is done; a halted one stays halted until 'rollout
resume'. The retry is in the audit log and the report.`
		cmd.Example = `  cairnctl rollout retry ro-6c3302e95c4e --node web2 --note "disk cleaned up"`
	case "resolve":
		cmd.Short = "Record that a node was repaired by hand, with an audit as proof"
		cmd.Long = `Resolve records that someone repaired a node by hand (a failed, unreachable,
interrupted deployment, or a failed rollback). The node is
audited, and the audit's difference from its pre-deployment audit is kept
with the node and shown in the report. A resolved node does not count
against its wave's budget; a rollback that failed only on resolved nodes
ends rolled back. The note says what was done (required).`
		cmd.Example = `  cairnctl rollout resolve ro-6c3302e95c4e --node web2 --note "removed the half-installed package by hand, INC-2231"`
	}
	cmd.Flags().StringVar(&node, "node", "", "the node (ID or hostname) (required)")
	noteHelp := "why, recorded in the audit log"
	if verb == "resolve" {
		noteHelp = "what was repaired, and how (required)"
	}
	cmd.Flags().StringVar(&note, "note", "", noteHelp)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		switch {
		case node == "":
			return usageErrorf("--node NODE is required: the node to %s", verb)
		case verb == "resolve" && strings.TrimSpace(note) == "":
			return usageErrorf("--note TEXT is required: say what was repaired, and how")
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		c := controllerv1.NewRolloutsClient(cc)
		req := &controllerv1.RolloutNodeAction{Id: args[0], Node: node, Note: note}
		var rec *controllerv1.RolloutRecord
		if verb == "retry" {
			rec, err = c.RetryRolloutNode(ctx, req)
		} else {
			rec, err = c.ResolveRolloutNode(ctx, req)
		}
		if err != nil {
			return rpcErr(verb+" node "+node+" of rollout "+args[0], err)
		}
		what := "retrying"
		if verb == "resolve" {
			what = "resolving (auditing)"
		}
		for _, n := range rec.GetNodes() {
			if n.GetNodeId() == node || n.GetHostname() == node {
				what += "; node " + n.Name() + " is " + state.Name(n.GetState())
			}
		}
		_, err = fmt.Fprintf(a.out, "rollout %s: %s; state %s\n", rec.GetId(), what, stateWithReason(rec))
		return err
	}
	return cmd
}

func (a *app) newRolloutReportCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "report ID [-o text|json|markdown|html] [--out FILE]",
		Short: "Render a rollout's management report",
		Long: `Report renders the report on a rollout for the people who manage and
audit the release: summary, waves, each node's outcome and duration, its
before/after diff classified against the release's expected changes,
drift, known errors, unreachable nodes, and SLA compliance. The HTML
report is one self-contained file that opens offline and prints.

--out writes the file atomically (a reader never sees half of it).

Every report carries a digest of its content, which the controller records
as issued: 'cairnctl report verify FILE' checks a report file later.`,
		Example: `  cairnctl rollout report ro-6c3302e95c4e
  cairnctl rollout report ro-6c3302e95c4e -o markdown > rollout.md
  cairnctl rollout report ro-6c3302e95c4e -o html --out rollout.html`,
		Args: rolloutArg,
	}
	f := addFormat(cmd, formatText, reportFormats...)
	cmd.Flags().StringVar(&out, "out", "", "write to FILE instead of standard output")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := f.check(); err != nil {
			return err
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		resp, err := controllerv1.NewRolloutsClient(cc).RolloutReport(ctx, &controllerv1.RolloutReportRequest{Id: args[0], Format: f.name})
		if err != nil {
			return rpcErr("report of rollout "+args[0], err)
		}
		if out == "" {
			_, err = a.out.Write(resp.GetContent())
			return err
		}
		if err := atomicfile.Write(out, fileContent(f.name, resp.GetContent()), 0o644); err != nil {
			return failedf("rollout report: %w", err)
		}
		_, err = fmt.Fprintf(a.out, "wrote %s (%d bytes, digest %s)\n", out, len(resp.GetContent()), orDash(resp.GetDigest()))
		return err
	}
	return cmd
}
