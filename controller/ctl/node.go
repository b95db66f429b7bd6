package ctl

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

func (a *app) newNodeCommand() *cobra.Command {
	return group("node", "List, inspect, label and revoke enrolled nodes",
		`Nodes are the servers running cairn-agent. Each has an ID (from its
certificate), a hostname, labels (from its enrollment token, editable here),
an agent version and a connection state: connected, disconnected, lost
(disconnected longer than the controller's lost-after interval) or revoked.
Commands that take NODE accept a node ID or a hostname.`,
		`  cairnctl node list --selector env=prod
  cairnctl node show web1
  cairnctl node label web1 role=web tier=
  cairnctl node revoke web1 --reason "decommissioned"`,
		a.newNodeListCommand(),
		a.newNodeShowCommand(),
		a.newNodeLabelCommand(),
		a.newNodeRevokeCommand(),
	)
}

func (a *app) newNodeListCommand() *cobra.Command {
	var selector []string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List nodes, optionally those matching a label selector",
		Long: `List prints every enrolled node with its state, when it was last seen,
when it was last audited and its labels. --selector keeps the nodes whose
labels match every k=v given.`,
		Example: `  cairnctl node list
  cairnctl node list --selector env=prod,role=web
  cairnctl node list -o json | jq -r '.nodes[] | select(.state == "STATE_LOST") | .hostname'`,
		Args: noArgs,
	}
	f := addFormat(cmd, formatTable, listFormats...)
	cmd.Flags().StringArrayVar(&selector, "selector", nil, describePairs("labels the nodes must have"))
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := f.check(); err != nil {
			return err
		}
		sel, err := parsePairs("--selector", splitPairs(selector), false)
		if err != nil {
			return err
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		resp, err := controllerv1.NewNodesClient(cc).ListNodes(ctx, &controllerv1.ListNodesRequest{Selector: sel})
		if err != nil {
			return rpcErr("list nodes", err)
		}
		return printProto(a.out, f, resp, func(t *table) { nodeTable(t, a.now(), resp.GetNodes()) })
	}
	return cmd
}

// nodeTable lists nodes, one per row.
func nodeTable(t *table, now time.Time, nodes []*controllerv1.NodeRecord) {
	t.row("NODE ID", "HOSTNAME", "STATE", "LAST SEEN", "LAST AUDIT", "AGENT", "LABELS")
	for _, n := range nodes {
		lastAudit := ""
		if n.GetLastAuditId() != "" {
			lastAudit = ago(now, n.GetLastAuditAt())
		}
		t.row(n.GetId(), n.GetHostname(), enumName(n.GetState()), ago(now, n.GetLastSeen()), lastAudit, n.GetAgentVersion(), kvList(n.GetLabels()))
	}
}

// writeNode prints one node as "field: value" lines.
func writeNode(w io.Writer, now time.Time, n *controllerv1.NodeRecord) error {
	t := newTable(w)
	t.row("Node:", n.GetId())
	t.row("Hostname:", n.GetHostname())
	t.row("State:", enumName(n.GetState()))
	t.row("Last seen:", withAgo(now, n.GetLastSeen()))
	t.row("Labels:", kvList(n.GetLabels()))
	t.row("Agent version:", n.GetAgentVersion())
	t.row("Enrolled:", withAgo(now, n.GetEnrolledAt()))
	t.row("Last audit:", n.GetLastAuditId())
	t.row("Last audit at:", withAgo(now, n.GetLastAuditAt()))
	t.row("Certificate:", n.GetCertSerial())
	t.row("Certificate expires:", withAgo(now, n.GetCertNotAfter()))
	return t.flush()
}

// withAgo renders "2025-01-01T00:00:00Z (3h ago)", or "" for no time.
func withAgo(now time.Time, ts string) string {
	if ts == "" {
		return ""
	}
	return fmt.Sprintf("%s (%s)", ts, ago(now, ts))
}

func (a *app) newNodeShowCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show NODE",
		Short: "Show one node",
		Long:  `Show prints everything the controller knows about one node: state, labels, agent version, enrollment, last audit and its certificate.`,
		Example: `  cairnctl node show web1
  cairnctl node show 3f2a9c1e-... -o yaml`,
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
		n, err := controllerv1.NewNodesClient(cc).GetNode(ctx, &controllerv1.GetNodeRequest{Node: args[0]})
		if err != nil {
			return rpcErr("show node "+args[0], err)
		}
		if f.name == formatTable {
			return writeNode(a.out, a.now(), n)
		}
		return printProto(a.out, f, n, nil)
	}
	return cmd
}

func (a *app) newNodeLabelCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "label NODE k=v [k=v ...]",
		Short: "Set or remove a node's labels",
		Long: `Label sets labels on a node; "k=" (an empty value) removes label k.
Labels not named are kept. Selectors (node list, audit run, cms drift,
services) match on labels.`,
		Example: `  cairnctl node label web1 role=web env=prod
  # Remove the label "maintenance"
  cairnctl node label web1 maintenance=`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageErrorf("%s needs NODE and at least one k=v (got %d arguments): see '%s --help'", cmd.CommandPath(), len(args), cmd.CommandPath())
			}
			return nil
		},
	}
	f := addFormat(cmd, formatTable, listFormats...)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := f.check(); err != nil {
			return err
		}
		set, err := parsePairs("label", args[1:], true)
		if err != nil {
			return err
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		n, err := controllerv1.NewNodesClient(cc).LabelNode(ctx, &controllerv1.LabelNodeRequest{Node: args[0], Set: set})
		if err != nil {
			return rpcErr("label node "+args[0], err)
		}
		if f.name == formatTable {
			_, err := fmt.Fprintf(a.out, "node %s (%s) labels: %s\n", n.GetId(), n.GetHostname(), orDash(kvList(n.GetLabels())))
			return err
		}
		return printProto(a.out, f, n, nil)
	}
	return cmd
}

func (a *app) newNodeRevokeCommand() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "revoke NODE",
		Short: "Revoke a node: its certificate is refused from now on",
		Long: `Revoke marks a node revoked. Its open session is closed and its next
connection is refused; to bring the server back, enroll it again with a new
token (a new node ID). The node's audits and baselines are kept.`,
		Example: `  cairnctl node revoke web1 --reason "decommissioned"`,
		Args:    exactArgs("NODE"),
	}
	f := addFormat(cmd, formatTable, listFormats...)
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := f.check(); err != nil {
			return err
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		n, err := controllerv1.NewNodesClient(cc).RevokeNode(ctx, &controllerv1.RevokeNodeRequest{Node: args[0], Reason: reason})
		if err != nil {
			return rpcErr("revoke node "+args[0], err)
		}
		if f.name == formatTable {
			_, err := fmt.Fprintf(a.out, "node %s (%s) revoked\n", n.GetId(), n.GetHostname())
			return err
		}
		return printProto(a.out, f, n, nil)
	}
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// nodeNamer names nodes for people: the hostname where it names one node,
// "hostname (ID)" where several nodes share it, the ID of a node it does
// not know.
type nodeNamer map[string]string

// nodeNames lists the nodes once to name them. Naming is for reading:
// when the list cannot be had (a role without it, a controller that does
// not answer) nodes are named by their IDs.
func (a *app) nodeNames(ctx context.Context) nodeNamer {
	cc, err := a.conn()
	if err != nil {
		return nil
	}
	ctx, cancel := a.callCtx(ctx)
	defer cancel()
	resp, err := controllerv1.NewNodesClient(cc).ListNodes(ctx, &controllerv1.ListNodesRequest{})
	if err != nil {
		return nil
	}
	count := map[string]int{}
	for _, n := range resp.GetNodes() {
		count[n.GetHostname()]++
	}
	names := nodeNamer{}
	for _, n := range resp.GetNodes() {
		switch h := n.GetHostname(); {
		case h == "":
		case count[h] == 1:
			names[n.GetId()] = h
		default:
			names[n.GetId()] = h + " (" + n.GetId() + ")"
		}
	}
	return names
}

// name is the node's name for people.
func (n nodeNamer) name(id string) string {
	if h, ok := n[id]; ok {
		return h
	}
	return id
}
