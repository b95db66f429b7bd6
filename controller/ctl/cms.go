package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cairn-ops/cairn/internal/audit"
	"github.com/cairn-ops/cairn/internal/diff"
	"github.com/cairn-ops/cairn/internal/readlimit"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

func (a *app) newCMSCommand() *cobra.Command {
	baseline := group("baseline", "Manage nodes' authorized baselines",
		`A node's baseline is the audit the CMS holds as its authorized state.
Accepting a new one makes a new version; 'cms history' lists them all.`,
		`  cairnctl cms baseline accept web1 --reason "CHG-1234 nginx upgrade"`,
		a.newBaselineAcceptCommand())
	return group("cms", "The CMS: authorized baselines, drift, export and import of CIs",
		`The CMS holds each node's authorized baseline (an accepted audit) and its
history, and the services that group nodes. Drift is the difference between
a node's latest audit and its baseline: changes nobody authorized.

Each baseline records the files its node tracks: what earlier baselines
tracked, plus what the accepted audit tracked, less what a release stops
tracking (expect.untrack). Every audit of the node collects them, so a file
an earlier release installed is still compared after later releases.`,
		`  cairnctl cms baseline accept web1 --reason "initial baseline"
  cairnctl cms show web1
  cairnctl cms drift --service shop -o html > drift.html
  cairnctl cms export -o json > cis.json`,
		baseline,
		a.newCMSHistoryCommand(),
		a.newCMSShowCommand(),
		a.newCMSDriftCommand(),
		a.newCMSExportCommand(),
		a.newCMSImportCommand(),
	)
}

func (a *app) newBaselineAcceptCommand() *cobra.Command {
	var auditID, reason string
	cmd := &cobra.Command{
		Use:   "accept NODE --reason TEXT",
		Short: "Make an audit a node's authorized baseline",
		Long: `Accept makes an audit of NODE (--audit ID, default the node's latest) its
authorized baseline, as a new version with who, when and --reason. The
reason is required: it is what an auditor reads later.`,
		Example: `  cairnctl cms baseline accept web1 --reason "initial baseline"
  cairnctl cms baseline accept web1 --audit 9f1c... --reason "CHG-1234 approved"`,
		Args: exactArgs("NODE"),
	}
	f := addFormat(cmd, formatTable, listFormats...)
	cmd.Flags().StringVar(&auditID, "audit", "", "the audit to accept (default the node's latest)")
	cmd.Flags().StringVar(&reason, "reason", "", "why this state is authorized (required)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := f.check(); err != nil {
			return err
		}
		if strings.TrimSpace(reason) == "" {
			return usageErrorf("--reason is required: say why this state is authorized, e.g. a change ticket")
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		names := a.nodeNames(ctx)
		b, err := controllerv1.NewCMSClient(cc).AcceptBaseline(ctx, &controllerv1.AcceptBaselineRequest{Node: args[0], AuditId: auditID, Reason: reason})
		if err != nil {
			return rpcErr("accept baseline of "+args[0], err)
		}
		if f.name == formatTable {
			_, err := fmt.Fprintf(a.out, "node %s baseline version %d: audit %s\n", names.name(b.GetNodeId()), b.GetVersion(), b.GetAuditId())
			return err
		}
		return printProto(a.out, f, b, nil)
	}
	return cmd
}

func (a *app) baselineHistory(ctx context.Context, node string) ([]*controllerv1.BaselineRecord, error) {
	cc, err := a.conn()
	if err != nil {
		return nil, err
	}
	ctx, cancel := a.callCtx(ctx)
	defer cancel()
	resp, err := controllerv1.NewCMSClient(cc).BaselineHistory(ctx, &controllerv1.BaselineHistoryRequest{Node: node})
	if err != nil {
		return nil, rpcErr("baseline history of "+node, err)
	}
	return resp.GetBaselines(), nil
}

func (a *app) newCMSHistoryCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "history NODE",
		Short: "List a node's baselines: who accepted which audit, when and why",
		Long: `History lists every baseline version of a node, oldest first, with how
many paths it tracks (-o yaml or json list them, and what it stopped
tracking).`,
		Example: `  cairnctl cms history web1
  cairnctl cms history web1 -o yaml`,
		Args: exactArgs("NODE"),
	}
	f := addFormat(cmd, formatTable, listFormats...)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := f.check(); err != nil {
			return err
		}
		bs, err := a.baselineHistory(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		resp := &controllerv1.BaselineHistoryResponse{Baselines: bs}
		return printProto(a.out, f, resp, func(t *table) {
			t.row("VERSION", "AUDIT ID", "ACCEPTED BY", "ACCEPTED", "APPROVED BY", "TRACKED", "REASON")
			for _, b := range bs {
				// A rollout's baseline names the release's approvers.
				t.row(fmt.Sprint(b.GetVersion()), b.GetAuditId(), b.GetAcceptedBy(), withAgo(a.now(), b.GetAcceptedAt()),
					orDash(strings.Join(b.GetApprovers(), ",")), fmt.Sprint(len(b.GetTracked())), b.GetReason())
			}
		})
	}
	return cmd
}

// cmsView is what cms show prints as JSON.
type cmsView struct {
	Node          json.RawMessage `json:"node"`
	Baseline      json.RawMessage `json:"baseline"`
	LatestAuditID string          `json:"latest_audit_id"`
	Drift         string          `json:"drift,omitempty"`
}

func (a *app) newCMSShowCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show NODE",
		Short: "Summarize a node's CMS record: current baseline and latest audit",
		Long: `Show prints the node, its current baseline (version, who accepted it, when
and why, the paths it tracks, and one line per section of the baseline
audit), its latest audit and, when that differs from the baseline, the
drift summary, which names the tracked paths only one of them covered.`,
		Example: `  cairnctl cms show web1
  cairnctl cms show web1 -o json`,
		Args: exactArgs("NODE"),
	}
	f := addFormat(cmd, formatText, formatText, formatJSON)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := f.check(); err != nil {
			return err
		}
		ctx := cmd.Context()
		cc, err := a.conn()
		if err != nil {
			return err
		}
		callCtx, cancel := a.callCtx(ctx)
		n, err := controllerv1.NewNodesClient(cc).GetNode(callCtx, &controllerv1.GetNodeRequest{Node: args[0]})
		cancel()
		if err != nil {
			return rpcErr("show node "+args[0], err)
		}
		bs, err := a.baselineHistory(ctx, n.GetId())
		if err != nil {
			return err
		}
		var (
			current *controllerv1.BaselineRecord
			summary bytes.Buffer
			drift   string
		)
		if len(bs) > 0 {
			current = bs[len(bs)-1]
			_, base, err := a.getAudit(ctx, current.GetAuditId())
			if err != nil {
				return err
			}
			if err := audit.WriteText(&summary, base, audit.TextOptions{Summary: true}); err != nil {
				return err
			}
			if latest := n.GetLastAuditId(); latest != "" && latest != current.GetAuditId() {
				_, last, err := a.getAudit(ctx, latest)
				if err != nil {
					return err
				}
				drift = diff.Compare(base, last).Summary
			} else if latest != "" {
				drift = "none: the latest audit is the baseline"
			}
		}

		if f.name == formatJSON {
			v := cmsView{LatestAuditID: n.GetLastAuditId(), Drift: drift, Baseline: json.RawMessage("null")}
			if v.Node, err = protoJSON(n, false); err != nil {
				return err
			}
			if current != nil {
				if v.Baseline, err = protoJSON(current, false); err != nil {
					return err
				}
			}
			return writeIndented(a.out, v)
		}
		now := a.now()
		w := a.out
		fmt.Fprintf(w, "node %s (%s), %s, last seen %s\n", n.GetId(), orDash(n.GetHostname()), enumName(n.GetState()), ago(now, n.GetLastSeen()))
		if l := kvList(n.GetLabels()); l != "" {
			fmt.Fprintf(w, "labels %s\n", l)
		}
		if current == nil {
			fmt.Fprintf(w, "no baseline: accept one with 'cairnctl cms baseline accept %s --reason TEXT'\n", args[0])
		} else {
			fmt.Fprintf(w, "baseline version %d: audit %s\n", current.GetVersion(), current.GetAuditId())
			fmt.Fprintf(w, "  accepted by %s %s: %s\n", current.GetAcceptedBy(), withAgo(now, current.GetAcceptedAt()), current.GetReason())
			if tr := current.GetTracked(); len(tr) > 0 {
				fmt.Fprintf(w, "  tracks %s: %s\n", plural(len(tr), "path"), strings.Join(tr, ", "))
			}
			if un := current.GetUntracked(); len(un) > 0 {
				fmt.Fprintf(w, "  stopped tracking: %s\n", strings.Join(un, ", "))
			}
			for _, line := range strings.Split(strings.TrimRight(summary.String(), "\n"), "\n") {
				fmt.Fprintf(w, "  %s\n", line)
			}
		}
		if n.GetLastAuditId() == "" {
			fmt.Fprintf(w, "no audit yet: run 'cairnctl audit run --node %s --wait'\n", args[0])
			return nil
		}
		fmt.Fprintf(w, "latest audit %s, %s\n", n.GetLastAuditId(), withAgo(now, n.GetLastAuditAt()))
		if drift != "" {
			fmt.Fprintf(w, "drift: %s\n", drift)
		}
		return nil
	}
	return cmd
}

// writeIndented writes v as indented JSON.
func writeIndented(w io.Writer, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// nodeReport is one node of a drift report, with its diff decoded.
type nodeReport struct {
	drift  *controllerv1.NodeDrift
	report *diff.Report // nil without a baseline
}

// name is "ID (hostname)".
func (n nodeReport) name() string {
	if h := n.drift.GetHostname(); h != "" {
		return n.drift.GetNodeId() + " (" + h + ")"
	}
	return n.drift.GetNodeId()
}

func (a *app) newCMSDriftCommand() *cobra.Command {
	var (
		selector []string
		service  string
	)
	cmd := &cobra.Command{
		Use:   "drift [--selector k=v,... | --service NAME]",
		Short: "List unauthorized changes: each node's latest audit against its baseline",
		Long: `Drift compares each node's latest audit with its authorized baseline and
prints the changes, hardware and software, per node and in total. Nodes
are all nodes, those matching --selector, or those of a service. A node
without a baseline says so. A tracked path only one of the two audits
covered (one the baseline did not track, say) is listed as not compared,
never as unchanged; audit the node again ('cairnctl audit run') to cover
the node's tracked paths, or accept a newer baseline.

-o text prints each node's diff; json the per-node reports; markdown and
html one document with a section per node and the totals. Exit status 0
when the report was printed, whether or not there is drift.`,
		Example: `  cairnctl cms drift
  cairnctl cms drift --selector env=prod
  cairnctl cms drift --service shop -o html > drift.html
  cairnctl cms drift -o json | jq '.nodes[] | select(.changes > 0) | .node_id'`,
		Args: noArgs,
	}
	f := addFormat(cmd, formatText, diffFormats...)
	cmd.Flags().StringArrayVar(&selector, "selector", nil, describePairs("only nodes with these labels"))
	cmd.Flags().StringVar(&service, "service", "", "only the nodes of this service")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := f.check(); err != nil {
			return err
		}
		sel, err := parsePairs("--selector", splitPairs(selector), false)
		if err != nil {
			return err
		}
		if service != "" && len(sel) > 0 {
			return usageErrorf("give --selector or --service, not both")
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		resp, err := controllerv1.NewCMSClient(cc).Drift(ctx, &controllerv1.DriftRequest{Selector: sel, Service: service})
		if err != nil {
			return rpcErr("drift", err)
		}
		nodes, err := decodeDrift(resp)
		if err != nil {
			return err
		}
		switch f.name {
		case formatJSON:
			return writeDriftJSON(a.out, resp, nodes)
		case formatMarkdown:
			return writeDriftMarkdown(a.out, resp, nodes)
		case formatHTML:
			return writeDriftHTML(a.out, resp, nodes)
		default:
			return writeDriftText(a.out, resp, nodes)
		}
	}
	return cmd
}

// decodeDrift decodes each node's report.
func decodeDrift(resp *controllerv1.DriftResponse) ([]nodeReport, error) {
	out := make([]nodeReport, 0, len(resp.GetNodes()))
	for _, n := range resp.GetNodes() {
		nr := nodeReport{drift: n}
		if n.GetHasBaseline() && len(n.GetReportJson()) > 0 {
			nr.report = new(diff.Report)
			if err := json.Unmarshal(n.GetReportJson(), nr.report); err != nil {
				return nil, failedf("drift of node %s: the controller sent a report that does not decode: %v", n.GetNodeId(), err)
			}
		}
		out = append(out, nr)
	}
	return out, nil
}

// totals is the one-line summary of a drift report.
func totals(resp *controllerv1.DriftResponse) string {
	s := fmt.Sprintf("%d node(s): %d drifted, %d without baseline, %d change(s) in total",
		len(resp.GetNodes()), resp.GetNodesDrifted(), resp.GetNodesWithoutBaseline(), resp.GetTotalChanges())
	if n := resp.GetTotalPathsNotCompared(); n > 0 {
		s += fmt.Sprintf(", %d tracked path(s) not compared", n)
	}
	return s
}

func writeDriftText(w io.Writer, resp *controllerv1.DriftResponse, nodes []nodeReport) error {
	var b bytes.Buffer
	for _, n := range nodes {
		if n.report == nil {
			fmt.Fprintf(&b, "node %s: no baseline\n", n.name())
			continue
		}
		fmt.Fprintf(&b, "node %s:\n", n.name())
		var d bytes.Buffer
		if err := diff.WriteText(&d, n.report); err != nil {
			return err
		}
		for _, line := range strings.Split(strings.TrimRight(d.String(), "\n"), "\n") {
			fmt.Fprintf(&b, "  %s\n", line)
		}
	}
	b.WriteString(totals(resp) + "\n")
	_, err := w.Write(b.Bytes())
	return err
}

// driftJSON is cms drift's JSON: the response with each report decoded.
type driftJSON struct {
	Nodes                 []nodeJSON `json:"nodes"`
	NodesDrifted          uint32     `json:"nodes_drifted"`
	NodesWithoutBaseline  uint32     `json:"nodes_without_baseline"`
	TotalChanges          uint32     `json:"total_changes"`
	TotalPathsNotCompared uint32     `json:"total_paths_not_compared"`
}

type nodeJSON struct {
	NodeID          string `json:"node_id"`
	Hostname        string `json:"hostname,omitempty"`
	HasBaseline     bool   `json:"has_baseline"`
	BaselineAuditID string `json:"baseline_audit_id,omitempty"`
	LatestAuditID   string `json:"latest_audit_id,omitempty"`
	Summary         string `json:"summary,omitempty"`
	Changes         uint32 `json:"changes"`
	// PathsNotCompared counts the tracked paths only one audit covered.
	PathsNotCompared uint32       `json:"paths_not_compared"`
	Report           *diff.Report `json:"report,omitempty"`
}

func writeDriftJSON(w io.Writer, resp *controllerv1.DriftResponse, nodes []nodeReport) error {
	out := driftJSON{
		Nodes:                 make([]nodeJSON, 0, len(nodes)),
		NodesDrifted:          resp.GetNodesDrifted(),
		NodesWithoutBaseline:  resp.GetNodesWithoutBaseline(),
		TotalChanges:          resp.GetTotalChanges(),
		TotalPathsNotCompared: resp.GetTotalPathsNotCompared(),
	}
	for _, n := range nodes {
		d := n.drift
		out.Nodes = append(out.Nodes, nodeJSON{
			NodeID:           d.GetNodeId(),
			Hostname:         d.GetHostname(),
			HasBaseline:      d.GetHasBaseline(),
			BaselineAuditID:  d.GetBaselineAuditId(),
			LatestAuditID:    d.GetLatestAuditId(),
			Summary:          d.GetSummary(),
			Changes:          d.GetChanges(),
			PathsNotCompared: d.GetPathsNotCompared(),
			Report:           n.report,
		})
	}
	return writeIndented(w, out)
}

// mdEscaper escapes text for a Markdown heading.
var mdEscaper = strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "`", "\\`", "[", `\[`, "]", `\]`, "<", "&lt;", ">", "&gt;", "#", `\#`)

func writeDriftMarkdown(w io.Writer, resp *controllerv1.DriftResponse, nodes []nodeReport) error {
	var b bytes.Buffer
	b.WriteString("# CMS drift\n\n")
	fmt.Fprintf(&b, "**%s**\n", mdEscaper.Replace(totals(resp)))
	for _, n := range nodes {
		fmt.Fprintf(&b, "\n## Node %s\n\n", mdEscaper.Replace(n.name()))
		if n.report == nil {
			b.WriteString("No baseline.\n")
			continue
		}
		var d bytes.Buffer
		if err := diff.WriteMarkdown(&d, n.report); err != nil {
			return err
		}
		// Each node's diff sits two heading levels below the document's.
		for _, line := range strings.SplitAfter(d.String(), "\n") {
			if strings.HasPrefix(line, "#") {
				line = "##" + line
			}
			b.WriteString(line)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// htmlParts renders r with diff.WriteHTML and returns the page's style
// and the contents of its body, headings moved two levels down so they
// nest under a node's section.
func htmlParts(r *diff.Report) (style, body string, err error) {
	var page bytes.Buffer
	if err := diff.WriteHTML(&page, r); err != nil {
		return "", "", err
	}
	s := page.String()
	style = between(s, "<style>", "</style>")
	body = between(s, "<body>", "</body>")
	body = strings.NewReplacer("<h2", "<h4", "</h2>", "</h4>", "<h1", "<h3", "</h1>", "</h3>").Replace(body)
	return style, body, nil
}

// between returns the text of s between the first start and the next end.
func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i+len(start):]
	if j := strings.Index(s, end); j >= 0 {
		s = s[:j]
	}
	return s
}

func writeDriftHTML(w io.Writer, resp *controllerv1.DriftResponse, nodes []nodeReport) error {
	style, _, err := htmlParts(&diff.Report{})
	if err != nil {
		return err
	}
	var b bytes.Buffer
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
	b.WriteString("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>CMS drift</title>\n")
	b.WriteString("<style>" + style + "h3 { font-size: 1.05rem; } h4 { font-size: 1rem; font-family: ui-monospace, monospace; }\nsection.node { border-top: 2px solid #444; margin-top: 2rem; }\n</style>\n</head>\n<body>\n")
	fmt.Fprintf(&b, "<h1>CMS drift</h1>\n<p class=\"summary\">%s</p>\n", html.EscapeString(totals(resp)))
	for _, n := range nodes {
		fmt.Fprintf(&b, "<section class=\"node\">\n<h2>Node %s</h2>\n", html.EscapeString(n.name()))
		if n.report == nil {
			b.WriteString("<p class=\"notcomparable\">No baseline.</p>\n")
		} else {
			_, body, err := htmlParts(n.report)
			if err != nil {
				return err
			}
			b.WriteString(strings.TrimSpace(body) + "\n")
		}
		b.WriteString("</section>\n")
	}
	b.WriteString("</body>\n</html>\n")
	_, err = w.Write(b.Bytes())
	return err
}

func (a *app) newCMSExportCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export CI data: nodes, services and baselines",
		Long: `Export prints the CMS's configuration items, nodes with their labels,
services and baseline records, as one JSON document (the .proto field
names) for other tools, or for 'cms import' on another controller.`,
		Example: `  cairnctl cms export -o json > cis.json
  cairnctl cms export | jq '.services[].name'`,
		Args: noArgs,
	}
	f := addFormat(cmd, formatJSON, formatJSON, formatYAML)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := f.check(); err != nil {
			return err
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		resp, err := controllerv1.NewCMSClient(cc).Export(ctx, &controllerv1.ExportRequest{})
		if err != nil {
			return rpcErr("export", err)
		}
		return printProto(a.out, f, resp, nil)
	}
	return cmd
}

// maxImportBytes bounds the document cms import reads. The nodes and
// services in it go to the controller in one request, which the
// controller takes up to 4 MiB (protobuf, smaller than the JSON).
const maxImportBytes = 16 << 20

func (a *app) newCMSImportCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Import node labels and services from an export",
		Long: `Import reads a JSON document in the form 'cms export -o json' writes (FILE,
or - for standard input) and applies its node labels and services. Nodes
must already exist (they enroll themselves); baselines are not imported,
they stay the controller's own.`,
		Example: `  cairnctl cms export -o json > cis.json
  # ... edit labels and services ...
  cairnctl cms import cis.json`,
		Args: exactArgs("FILE"),
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		file := args[0]
		var (
			data []byte
			err  error
		)
		if file == "-" {
			data, err = readlimit.Read(a.in, "import document on standard input", maxImportBytes)
		} else {
			data, err = readlimit.Stream(file, "import document", maxImportBytes)
		}
		if err != nil {
			return usageErrorf("import: %v", err)
		}
		var doc controllerv1.ExportResponse
		if err := protojson.Unmarshal(data, &doc); err != nil {
			return usageErrorf("import %s: %v: give the JSON written by 'cairnctl cms export -o json'", file, err)
		}
		if len(doc.GetNodes()) == 0 && len(doc.GetServices()) == 0 {
			return usageErrorf("import %s: no nodes or services in it", file)
		}
		if n := len(doc.GetBaselines()); n > 0 {
			a.warn(fmt.Sprintf("%d baseline(s) in %s not imported: baselines stay the controller's own", n, file))
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		resp, err := controllerv1.NewCMSClient(cc).Import(ctx, &controllerv1.ImportRequest{Nodes: doc.GetNodes(), Services: doc.GetServices()})
		if err != nil {
			return rpcErr("import "+file, err)
		}
		fmt.Fprintf(a.out, "imported %s: %d node(s) updated, %d service(s) created\n", file, resp.GetNodesUpdated(), resp.GetServicesCreated())
		for _, s := range resp.GetSkipped() {
			fmt.Fprintf(a.out, "skipped: %s\n", s)
		}
		return nil
	}
	return cmd
}
