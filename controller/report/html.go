package report

import (
	"bytes"
	"fmt"
	"html/template"
	"strings"

	"github.com/cairn-ops/cairn/controller/rollout/state"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// The HTML rendering of the report: one self-contained file.

// outcomeClass is the CSS class that colours a rollout, wave or node
// state (by name) or an SLA status; the state is always written out as
// text too.
func outcomeClass(name string) string {
	if c, ok := classes[name]; ok {
		return c
	}
	return "neutral"
}

// classes are the classes of the names outcomeClass colours.
var classes = func() map[string]string {
	m := map[string]string{slaMet: "ok", slaBreached: "bad"}
	for c, names := range map[string][]string{
		"ok":   {state.Name(state.NodePassed), state.Name(state.WaveDone), state.Name(state.RolloutCompleted), state.Name(state.NodeResolved)},
		"bad":  {state.Name(state.NodeFailed), state.Name(state.NodeRollbackFailed), state.Name(state.RolloutHalted), state.Name(state.NodeInterrupted), state.Name(state.WaveFailed)},
		"warn": {state.Name(state.NodeUnreachable), state.Name(state.NodeSkipped), state.Name(state.NodeWaitingConfirmation), state.Name(state.RolloutPaused), state.Name(state.RolloutRollbackPaused), state.Name(state.NodeAborted), state.Name(state.WaveCancelled)},
		"info": {state.Name(state.NodeRolledBack), state.Name(state.NodeRollingBack), state.Name(state.NodeResolving)},
	} {
		for _, n := range names {
			m[n] = c
		}
	}
	return m
}()

// htmlPage is one self-contained page: inline styles, no scripts, no
// external fonts, images or links. html/template escapes every value.
// Digests, IDs and signatures are long words shown in .mono: they, and
// any table cell, wrap anywhere rather than run off the page or the
// paper.
var htmlPage = func() *template.Template {
	t := template.Must(template.New("report").Funcs(htmlFuncs).Parse(htmlPageTemplate))
	template.Must(t.New("run").Parse(htmlRunTemplate))
	template.Must(t.New("differences").Parse(htmlDifferencesTemplate))
	return t
}()

var htmlFuncs = template.FuncMap{
	"upper":      strings.ToUpper,
	"join":       strings.Join,
	"cls":        outcomeClass,
	"label":      classLabel,
	"classified": classified,
	"drift":      driftWords,
	"headline":   nodeHeadline,
	"confirm":    confirmationLine,
	"declaredBy": declaredBy,
	"orDash":     orDash,
	"orNone":     orNone,
	"name":       func(n Node) string { return n.name() },
	"joinNE":     joinNonEmpty,
	"prefixed":   prefixed,
	"stepClass":  stepClass,
	"runArgs":    func(label string, run *Run) runArgs { return runArgs{Label: label, Run: run} },
	"differences": func(class string, differences, notComparable []string) differencesArgs {
		return differencesArgs{Class: class, Differences: differences, NotComparable: notComparable}
	},
}

const htmlPageTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="cairn-report-digest" content="{{.Digest}}">
<title>{{.Title}}</title>
<style>
:root { --ok: #116329; --bad: #a40e26; --missing: #8f3f00; --warn: #8a5300; --info: #0b4f8a; --neutral: #444; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 75rem;
  padding: 0 1rem; color: #1b1b1b; line-height: 1.4; }
h1 { font-size: 1.5rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 2px solid #ccc; padding-bottom: 0.2rem; }
h3 { font-size: 1.05rem; margin: 0 0 0.5rem 0; }
h4 { font-size: 0.95rem; margin: 0.8rem 0 0.3rem 0; }
.meta { color: #555; }
p.meta { margin-top: 0; }
table { border-collapse: collapse; width: 100%; margin: 0.3rem 0 0.8rem 0; }
th, td { text-align: left; padding: 0.25rem 0.5rem; border-bottom: 1px solid #ddd; vertical-align: top; overflow-wrap: anywhere; }
th { background: #f3f3f3; }
table.kv th { width: 12rem; background: none; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; overflow-wrap: anywhere; word-break: break-all; }
.label { display: inline-block; font-weight: 700; font-size: 0.8rem; padding: 0.05rem 0.4rem; border-radius: 0.25rem;
  border: 1px solid currentColor; white-space: nowrap; }
.ok { color: var(--ok); } .bad { color: var(--bad); } .warn { color: var(--warn); }
.info { color: var(--info); } .neutral { color: var(--neutral); }
.label.expected { color: var(--ok); } .label.missing { color: var(--missing); }
.label.unexpected { color: var(--bad); } .label.allowed { color: var(--info); }
tr.expected td:first-child { border-left: 4px solid var(--ok); }
tr.missing td:first-child { border-left: 4px dashed var(--missing); }
tr.unexpected td:first-child { border-left: 4px solid var(--bad); }
tr.allowed td:first-child { border-left: 4px solid var(--info); }
tr.notcomparable td:first-child { border-left: 4px solid var(--warn); }
section.node { border: 1px solid #ccc; border-radius: 0.4rem; padding: 0.8rem 1rem; margin: 1rem 0;
  break-inside: avoid; page-break-inside: avoid; }
ul.facts { margin: 0.3rem 0; padding-left: 1.2rem; }
.headline { font-size: 1.1rem; font-weight: 600; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  h2 { break-after: avoid; page-break-after: avoid; }
  section.node, table.kv, tr { break-inside: avoid; page-break-inside: avoid; }
  .label { border-width: 1.5px; }
  th { background: none; }
  code, .mono { font-size: 8.5pt; }
}
</style>
</head>
<body>
<header>
<h1>{{.Title}}</h1>
<p class="meta">Rollout <span class="mono">{{.Summary.RolloutID}}</span>{{with .GeneratedAt}} · generated {{.}} by the controller{{end}}</p>
<p class="meta">Report digest <span class="mono">{{.Digest}}</span></p>
<p class="headline"><span class="label {{cls .Summary.State}}">{{upper .Summary.State}}</span> {{.Summary.Outcome}}{{if .SLA.Breached}} · <span class="label bad">SLA BREACHED</span>{{end}}</p>
</header>

<h2>Summary</h2>
{{- with .Summary}}
<table class="kv">
<tr><th>Release</th><td>{{.Release}}</td></tr>
{{- with .ReleaseDigest}}
<tr><th>Release digest</th><td class="mono">{{.}}</td></tr>
{{- end}}
<tr><th>Rollout</th><td class="mono">{{.RolloutID}}</td></tr>
<tr><th>State</th><td><span class="label {{cls .State}}">{{upper .State}}</span>{{with .Reason}} {{.}}{{end}}</td></tr>
{{- with .WaitingFor}}
<tr><th>Waiting for</th><td>{{.}}</td></tr>
{{- end}}
<tr><th>Created</th><td>{{orDash .CreatedAt}}{{with .CreatedBy}} by {{.}}{{end}}</td></tr>
<tr><th>Finished</th><td>{{orDash .FinishedAt}}</td></tr>
<tr><th>Duration</th><td>{{orDash .Duration}}</td></tr>
<tr><th>Tested by</th><td>{{orNone .Testers}}</td></tr>
<tr><th>Approvers</th><td>{{orNone .Approvers}}</td></tr>
{{- if .RollbackRequestedBy}}
<tr><th>Rollback</th><td>requested by {{.RollbackRequestedBy}}{{with .RollbackStartedAt}} at {{.}}{{end}}</td></tr>
{{- end}}
<tr><th>Targets</th><td>{{.Spec.Targets}}</td></tr>
<tr><th>Strategy</th><td>{{.Strategy}}</td></tr>
</table>
<table>
<thead><tr><th>Nodes</th><th>Passed</th><th>Failed</th><th>Unreachable</th><th>Skipped</th><th>Rolled back</th><th>Rollback failed</th><th>Aborted</th><th>Running</th><th>Pending</th></tr></thead>
<tbody><tr><td>{{.Counts.Nodes}}</td><td class="ok">{{.Counts.Passed}}</td><td class="bad">{{.Counts.Failed}}</td><td class="warn">{{.Counts.Unreachable}}</td><td>{{.Counts.Skipped}}</td><td class="info">{{.Counts.RolledBack}}</td><td class="bad">{{.Counts.RollbackFailed}}</td><td>{{.Counts.Aborted}}</td><td>{{.Counts.Running}}</td><td>{{.Counts.Pending}}</td></tr></tbody>
</table>
{{- end}}

<h2>Waves</h2>
{{- if .Waves}}
<table>
<thead><tr><th>Wave</th><th>State</th><th>Nodes</th><th>Started</th><th>Finished</th><th>Failures / budget</th><th>Gate after</th></tr></thead>
<tbody>
{{- range .Waves}}
<tr><td>{{.Index}}</td><td><span class="label {{cls .State}}">{{upper .State}}</span></td><td>{{join .Nodes ", "}}</td><td>{{orDash .StartedAt}}</td><td>{{orDash .FinishedAt}}</td><td>{{.Failures}} / {{.MaxFailures}}{{if .OverBudget}} <span class="label bad">OVER BUDGET</span>{{end}}</td><td>{{if .GateAfter}}yes{{else}}no{{end}}</td></tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p>No waves planned.</p>
{{- end}}

<h2>Nodes</h2>
{{- range .Nodes}}
<section class="node">
<h3>{{name .}}{{if and .Hostname (ne .Hostname .NodeID)}} <span class="mono meta">{{.NodeID}}</span>{{end}} <span class="label {{cls .State}}">{{upper .State}}</span>{{if .SLABreached}} <span class="label bad">SLA BREACHED</span>{{end}}</h3>
<ul class="facts">
<li>Wave {{.Wave}}{{with .Duration}} · duration {{.}}{{end}}{{with .StartedAt}} · started {{.}}{{end}}{{with .FinishedAt}} · finished {{.}}{{end}}</li>
{{- with .Error}}
<li><strong>Error:</strong> {{.}}</li>
{{- end}}
{{- if .InterruptedStep}}
<li><span class="label bad">INTERRUPTED</span> step {{.InterruptedStep}} was cut off (its agent restarted); retry, resolve or roll back the node</li>
{{- end}}
{{- if .Retries}}
<li>Retried {{.Retries}} time(s) by an operator (see the audit trail)</li>
{{- end}}
<li>Drift before deploying: {{drift .Drift}}</li>
{{- range .KnownErrors}}
<li>Known error: {{.}}</li>
{{- end}}
{{- if .WaitingStep}}
<li>Waiting for confirmation of step {{.WaitingStep}}: {{.WaitingInstructions}}</li>
{{- end}}
{{- range .Confirmations}}
<li>{{confirm .}}</li>
{{- end}}
{{- range .Problems}}
<li><span class="label warn">PROBLEM</span> {{.}}</li>
{{- end}}
</ul>
{{- with .Deployment}}{{template "run" (runArgs "Deployment" .)}}{{end}}
{{- with .Comparison}}
<h4>Before/after: {{.Summary}}</h4>
{{- with .Diff}}
<p class="meta">Diff: {{.Summary}}</p>
{{- end}}
{{- $items := classified .}}
{{- if or $items .NotComparable}}
<table>
<thead><tr><th>Class</th><th>Section</th><th>What was found</th><th>Declared expectation</th></tr></thead>
<tbody>
{{- range $items}}
<tr class="{{.Class}}"><td><span class="label {{.Class}}">{{label .Class}}</span></td><td class="mono">{{.Section}}</td><td>{{.What}}</td><td>{{.Expectation}}{{declaredBy .}}</td></tr>
{{- end}}
{{- range .NotComparable}}
<tr class="notcomparable"><td><span class="label warn">NOT COMPARABLE</span></td><td></td><td>{{.}}</td><td></td></tr>
{{- end}}
</tbody>
</table>
{{- end}}
{{- end}}
{{- with .Rollback}}
{{- with .Run}}{{template "run" (runArgs "Rollback" .)}}{{end}}
<h4>Rollback proof: {{if .Proven}}<span class="label ok">PROVEN</span> {{else}}<span class="label bad">NOT PROVEN</span> {{end}}{{.Verdict}}</h4>
{{- template "differences" (differences "bad" .Differences .NotComparable)}}
{{- end}}
{{- with .Resolution}}
<h4>Resolved by hand: by {{.By}}{{with .At}} at {{.}}{{end}}: {{.Note}}</h4>
<p class="meta">Audit after the resolution: {{if .AuditID}}{{.AuditID}}{{else}}being taken{{end}}, {{.Verdict}}</p>
{{- template "differences" (differences "warn" .Differences .NotComparable)}}
{{- end}}
</section>
{{- else}}
<p>No nodes.</p>
{{- end}}

<h2>SLA compliance</h2>
<table>
<thead><tr><th>Target</th><th>Goal</th><th>Measured</th><th>Status</th><th>Breached by</th></tr></thead>
<tbody>
{{- range .SLA.Targets}}
<tr><td>{{.Name}}</td><td>{{orDash .Target}}</td><td>{{.Measured}}</td><td><span class="label {{cls .Status}}">{{upper .Status}}</span></td><td>{{join .BreachedBy ", "}}</td></tr>
{{- end}}
</tbody>
</table>

<h2>Known errors</h2>
{{- if .KnownErrors}}
<table>
<thead><tr><th>ID</th><th>Status</th><th>Summary</th><th>Symptom</th><th>Workaround</th><th>Matched nodes</th></tr></thead>
<tbody>
{{- range .KnownErrors}}
<tr><td class="mono">{{.ID}}</td><td>{{.Status}}</td><td>{{.Summary}}</td><td>{{.Symptom}}</td><td>{{.Workaround}}</td><td>{{orNone .Nodes}}</td></tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p>The release records no known errors.</p>
{{- end}}

<h2>Audit trail</h2>
{{- if .AuditTrail}}
<table>
<thead><tr><th>#</th><th>Time</th><th>Actor</th><th>Action</th><th>Object</th><th>Details</th></tr></thead>
<tbody>
{{- range .AuditTrail}}
<tr><td>{{.Sequence}}</td><td>{{.Time}}</td><td>{{.Actor}}</td><td>{{.Action}}</td><td class="mono">{{.Object}}</td><td>{{.Details}}</td></tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p>No audit-log entries.</p>
{{- end}}
</body>
</html>
`

// htmlRunTemplate renders a deployment or rollback run: its state and steps.
const htmlRunTemplate = `
<h4>{{.Label}}: {{.Run.State}}{{with .Run.Duration}}, {{.}}{{end}}</h4>
{{- with .Run.Error}}
<p><strong>Error:</strong> {{.}}</p>
{{- end}}
{{- if .Run.Steps}}
<table>
<thead><tr><th>List</th><th>Step</th><th>Plugin</th><th>Outcome</th><th>Duration</th><th>Changes</th><th>Error</th></tr></thead>
<tbody>
{{- range .Run.Steps}}
<tr><td>{{.List}}</td><td>{{.Name}}</td><td>{{.Plugin}}</td><td><span class="label {{stepClass .Outcome}}">{{upper .Outcome}}</span></td><td>{{orDash .Duration}}</td><td>{{join .Changes "; "}}</td><td>{{.Error}}</td></tr>
{{- end}}
</tbody>
</table>
{{- end}}`

// htmlDifferencesTemplate lists what differs from a node's pre-audit
// after its rollback or its resolution, and what could not be compared.
const htmlDifferencesTemplate = `
{{- if or .Differences .NotComparable}}
<ul class="facts">
{{- range .Differences}}
<li><span class="label {{$.Class}}">DIFFERS</span> {{.}}</li>
{{- end}}
{{- range .NotComparable}}
<li><span class="label warn">NOT COMPARABLE</span> {{.}}</li>
{{- end}}
</ul>
{{- end}}`

// differencesArgs passes a node's differences from its pre-audit, and the
// class of their label, to the "differences" template.
type differencesArgs struct {
	Class                      string
	Differences, NotComparable []string
}

// runArgs passes a run and its label to the "run" template.
type runArgs struct {
	Label string
	Run   *Run
}

// stepClass colours a step outcome (agentv1's Outcome words).
func stepClass(outcome string) string {
	switch outcome {
	case agentv1.OutcomeFailed, agentv1.OutcomeFailedIgnored:
		return "bad"
	case agentv1.OutcomeChanged, agentv1.OutcomePassed, agentv1.OutcomeUnchanged, agentv1.OutcomeSkipped:
		return "ok"
	case agentv1.OutcomeRolledBack:
		return "info"
	}
	return "neutral"
}

// renderHTML writes r as one self-contained HTML page.
func renderHTML(r *Report) ([]byte, error) {
	var b bytes.Buffer
	if err := htmlPage.Execute(&b, r); err != nil {
		return nil, fmt.Errorf("execute html template: %w", err)
	}
	return b.Bytes(), nil
}
