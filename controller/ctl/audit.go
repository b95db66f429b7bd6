package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/internal/audit"
	"github.com/cairn-ops/cairn/internal/bytesize"
	"github.com/cairn-ops/cairn/internal/diff"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// defaultPollInterval is how often audit run --wait asks for progress.
const defaultPollInterval = time.Second

func (a *app) newAuditCommand() *cobra.Command {
	return group("audit", "Run audits on nodes remotely, list, show and compare them",
		`An audit is a node's full hardware and software inventory, taken by its
agent and stored by the controller under its document hash (the audit ID).
Audits run on command: an offline node gets the command when it reconnects,
and runs it once.`,
		`  cairnctl audit run --node web1 --wait
  cairnctl audit list web1
  cairnctl audit diff 9f1c... 4be0... -o markdown > change.md`,
		a.newAuditRunCommand(),
		a.newAuditListCommand(),
		a.newAuditShowCommand(),
		a.newAuditDiffCommand(),
	)
}

func (a *app) newAuditRunCommand() *cobra.Command {
	var (
		node        string
		selector    []string
		collectors  []string
		track       []string
		wait        bool
		waitTimeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "run (--node NODE | --selector k=v,...)",
		Short: "Ask one node, or every node matching a selector, to audit itself",
		Long: `Run sends an audit command to one node (--node, an ID or hostname) or to
every node whose labels match --selector. Each command is persisted and has
an ID; a node that is offline runs it when it reconnects.

Every audit records the files its node's baseline tracks (the paths earlier
releases installed and accepted audits tracked; see 'cairnctl cms show'),
so that drift can compare them. --track adds paths for this audit only; they
become tracked when the audit is accepted as the node's baseline.

With --wait, run follows the commands until every one has succeeded or
failed (or --wait-timeout passes), printing a line as each changes state,
and exits 1 if any failed or did not finish.`,
		Example: `  cairnctl audit run --node web1 --wait
  cairnctl audit run --selector env=prod --wait --wait-timeout 5m

  # Only packages and services, and checksums of nginx's configuration
  cairnctl audit run --node web1 --collectors packages,services --track /etc/nginx`,
		Args: noArgs,
	}
	f := addFormat(cmd, formatTable, listFormats...)
	fl := cmd.Flags()
	fl.StringVar(&node, "node", "", "the node to audit (ID or hostname)")
	fl.StringArrayVar(&selector, "selector", nil, describePairs("audit every node with these labels"))
	fl.StringSliceVar(&collectors, "collectors", nil, "comma-separated collectors to run (default all)")
	fl.StringArrayVar(&track, "track", nil, "file, directory or glob on the node to record in the files section, besides the node's tracked paths (repeatable)")
	fl.BoolVar(&wait, "wait", false, "wait until every audit has succeeded or failed")
	fl.DurationVar(&waitTimeout, "wait-timeout", 2*time.Minute, "how long --wait waits")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := f.check(); err != nil {
			return err
		}
		sel, err := parsePairs("--selector", splitPairs(selector), false)
		if err != nil {
			return err
		}
		if (node == "") == (len(sel) == 0) {
			return usageErrorf("give either --node NODE or --selector k=v,...")
		}
		if waitTimeout <= 0 {
			return usageErrorf("--wait-timeout %s: give a positive duration", waitTimeout)
		}
		cc, err := a.conn()
		if err != nil {
			return err
		}
		client := controllerv1.NewAuditsClient(cc)
		names := a.nodeNames(cmd.Context())
		ctx, cancel := a.callCtx(cmd.Context())
		defer cancel()
		resp, err := client.RunAudit(ctx, &controllerv1.RunAuditRequest{
			Node:       node,
			Selector:   sel,
			Collectors: collectors,
			Track:      track,
		})
		if err != nil {
			return rpcErr("run audit", err)
		}
		if len(resp.GetCommands()) == 0 {
			return failedf("no node matches --selector %s: see 'cairnctl node list'", kvList(sel))
		}
		if wait {
			progress := a.out
			if f.name != formatTable {
				progress = a.errOut
			}
			werr := a.waitCommands(cmd.Context(), client, resp.GetCommands(), waitTimeout, progress, names)
			var ee *exitError
			if werr != nil && !errors.As(werr, &ee) {
				return werr
			}
			// Print where things stand, also when some failed.
			if err := printProto(a.out, f, resp, func(t *table) { commandTable(t, resp.GetCommands(), names) }); err != nil {
				return err
			}
			return werr
		}
		return printProto(a.out, f, resp, func(t *table) { commandTable(t, resp.GetCommands(), names) })
	}
	return cmd
}

// commandTable lists commands, one per row.
func commandTable(t *table, cmds []*controllerv1.CommandRecord, names nodeNamer) {
	t.row("COMMAND ID", "NODE", "NODE ID", "STATE", "AUDIT ID", "ERROR")
	for _, c := range cmds {
		t.row(c.GetId(), names.name(c.GetNodeId()), c.GetNodeId(), enumName(c.GetState()), c.GetAuditId(), c.GetError())
	}
}

func done(c *controllerv1.CommandRecord) bool {
	s := c.GetState()
	return s == controllerv1.CommandRecord_STATE_SUCCEEDED || s == controllerv1.CommandRecord_STATE_FAILED
}

// waitCommands polls the commands until all are done or timeout passes,
// updating cmds in place and writing a line to progress at each change
// of state. It returns an exit-1 error when any failed or did not finish.
func (a *app) waitCommands(ctx context.Context, client controllerv1.AuditsClient, cmds []*controllerv1.CommandRecord, timeout time.Duration, progress io.Writer, names nodeNamer) error {
	waitCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	interval := a.pollInterval
	if interval <= 0 {
		interval = defaultPollInterval
	}
	timedOut := func() error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var waiting []string
		for _, c := range cmds {
			if !done(c) {
				waiting = append(waiting, names.name(c.GetNodeId()))
			}
		}
		return failedf("gave up after %s waiting for %d of %d audits (%s): an offline node runs it when it reconnects; see 'cairnctl node list' and 'cairnctl audit list NODE'",
			timeout, len(waiting), len(cmds), strings.Join(waiting, ", "))
	}
	for {
		pending := 0
		for i, c := range cmds {
			if done(c) {
				continue
			}
			callCtx, callCancel := a.callCtx(waitCtx)
			got, err := client.GetCommand(callCtx, &controllerv1.GetCommandRequest{Id: c.GetId()})
			callCancel()
			if err != nil {
				// The call's context ends with the wait's, and its timer
				// can fire a moment before the wait's own: either way the
				// wait is over.
				if d, ok := waitCtx.Deadline(); waitCtx.Err() != nil || (status.Code(err) == codes.DeadlineExceeded && ok && !time.Now().Before(d)) {
					return timedOut()
				}
				return rpcErr("follow command "+c.GetId(), err)
			}
			if got.GetState() != c.GetState() {
				cmds[i] = got
				fmt.Fprintln(progress, progressLine(got, cmds, names))
			}
			if !done(got) {
				pending++
			}
		}
		if pending == 0 {
			break
		}
		select {
		case <-waitCtx.Done():
			return timedOut()
		case <-time.After(interval):
		}
	}
	var failed []string
	for _, c := range cmds {
		if c.GetState() == controllerv1.CommandRecord_STATE_FAILED {
			failed = append(failed, names.name(c.GetNodeId())+": "+c.GetError())
		}
	}
	if len(failed) > 0 {
		return failedf("audit failed on %d of %d nodes (%s)", len(failed), len(cmds), strings.Join(failed, "; "))
	}
	return nil
}

// progressLine says what happened to command c, and how many of cmds are
// done: "web1: succeeded, audit 9f1c... (1/3 done)".
func progressLine(c *controllerv1.CommandRecord, cmds []*controllerv1.CommandRecord, names nodeNamer) string {
	n := 0
	for _, x := range cmds {
		if done(x) {
			n++
		}
	}
	line := names.name(c.GetNodeId()) + ": " + enumName(c.GetState())
	switch c.GetState() {
	case controllerv1.CommandRecord_STATE_SUCCEEDED:
		line += ", audit " + c.GetAuditId()
	case controllerv1.CommandRecord_STATE_FAILED:
		line += ": " + c.GetError()
	}
	return fmt.Sprintf("%s (%d/%d done)", line, n, len(cmds))
}

func (a *app) newAuditListCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list NODE",
		Short: "List a node's stored audits",
		Long:  `List prints the audits stored for a node (an ID or hostname), oldest first, with their IDs for 'audit show' and 'audit diff'.`,
		Example: `  cairnctl audit list web1
  # The two newest audit IDs
  cairnctl audit list web1 -o json | jq -r '.audits[-2:][].id'`,
		Args: exactArgs("NODE"),
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
		resp, err := controllerv1.NewAuditsClient(cc).ListAudits(ctx, &controllerv1.ListAuditsRequest{Node: args[0]})
		if err != nil {
			return rpcErr("list audits of "+args[0], err)
		}
		return printProto(a.out, f, resp, func(t *table) { auditTable(t, a.now(), resp.GetAudits()) })
	}
	return cmd
}

// auditTable lists audit records, one per row.
func auditTable(t *table, now time.Time, audits []*controllerv1.AuditRecord) {
	t.row("AUDIT ID", "HOSTNAME", "COLLECTED", "SIZE", "FAILED COLLECTORS")
	for _, r := range audits {
		t.row(r.GetId(), r.GetHostname(), withAgo(now, r.GetCollectedAt()), bytesize.Format(uint64(max(r.GetSizeBytes(), 0))), strings.Join(r.GetFailedCollectors(), ","))
	}
}

// getAudit fetches an audit and checks its hashes, so an edited stored
// document is never shown or compared as if it were genuine.
func (a *app) getAudit(ctx context.Context, id string) (*controllerv1.AuditRecord, *inventoryv1.Audit, error) {
	cc, err := a.conn()
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := a.callCtx(ctx)
	defer cancel()
	resp, err := controllerv1.NewAuditsClient(cc).GetAudit(ctx, &controllerv1.GetAuditRequest{Id: id})
	if err != nil {
		return nil, nil, rpcErr("get audit "+id, err)
	}
	if resp.GetAudit() == nil {
		return nil, nil, failedf("get audit %s: the controller returned no document", id)
	}
	if err := audit.Verify(resp.GetAudit()); err != nil {
		return nil, nil, failedf("audit %s does not verify: %v: the stored document was altered; take a new audit", id, err)
	}
	return resp.GetRecord(), resp.GetAudit(), nil
}

func (a *app) newAuditShowCommand() *cobra.Command {
	var summary bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a stored audit",
		Long: `Show fetches an audit by ID, checks its hashes, and prints it for people
(-o text, the default; --summary for one line per section) or as the
canonical JSON document (-o json), which 'cairn-agent diff' also reads.`,
		Example: `  cairnctl audit show 9f1c... --summary
  cairnctl audit show 9f1c... -o json > web1.json`,
		Args: exactArgs("ID"),
	}
	f := addFormat(cmd, formatText, formatText, formatJSON, formatYAML)
	cmd.Flags().BoolVar(&summary, "summary", false, "one line per section (with -o text)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := f.check(); err != nil {
			return err
		}
		if summary && f.name != formatText {
			return usageErrorf("--summary works with -o text only")
		}
		_, doc, err := a.getAudit(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		switch f.name {
		case formatJSON:
			return audit.WriteJSON(a.out, doc)
		case formatYAML:
			return audit.WriteYAML(a.out, doc)
		default:
			return audit.WriteText(a.out, doc, audit.TextOptions{Summary: summary})
		}
	}
	return cmd
}

// diffFormats are the formats a diff report prints in.
var diffFormats = []string{formatText, formatJSON, formatMarkdown, formatHTML}

// diffWriter returns the internal/diff writer for a format.
func diffWriter(name string) func(io.Writer, *diff.Report) error {
	switch name {
	case formatJSON:
		return diff.WriteJSON
	case formatMarkdown:
		return diff.WriteMarkdown
	case formatHTML:
		return diff.WriteHTML
	default:
		return diff.WriteText
	}
}

func (a *app) newAuditDiffCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "diff ID_A ID_B",
		Short: "Compare two stored audits",
		Long: `Diff fetches two audits, checks their hashes and prints the typed changes
from ID_A to ID_B (added, removed, changed with field: old → new), grouped
by section. Volatile facts are ignored; a section whose collector failed in
either audit is reported as not comparable. Exit status 0 when the diff was
printed, whether or not there are changes.`,
		Example: `  cairnctl audit diff 9f1c... 4be0...
  cairnctl audit diff 9f1c... 4be0... -o html > change.html
  cairnctl audit diff 9f1c... 4be0... -o json | jq .counts`,
		Args: exactArgs("ID_A", "ID_B"),
	}
	f := addFormat(cmd, formatText, diffFormats...)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := f.check(); err != nil {
			return err
		}
		_, before, err := a.getAudit(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		_, after, err := a.getAudit(cmd.Context(), args[1])
		if err != nil {
			return err
		}
		r := diff.Compare(before, after)
		if !r.SameHost() {
			a.warn(fmt.Sprintf("the audits are of different hosts (%s, %s)", r.Before.Hostname, r.After.Hostname))
		}
		return diffWriter(f.name)(a.out, r)
	}
	return cmd
}
