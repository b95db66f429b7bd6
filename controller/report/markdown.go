package report

import (
	"bytes"
	"cmp"
	"fmt"
	"strconv"
	"strings"
)

// The Markdown rendering of the report.

// mdEscaper escapes text for Markdown, table cells included.
var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "|", `\|`, "`", "\\`", "*", `\*`, "_", `\_`, "#", `\#`,
	"[", `\[`, "]", `\]`, "<", "&lt;", ">", "&gt;", "&", "&amp;",
	"\r\n", " ", "\n", " ", "\r", " ",
)

func md(s string) string { return mdEscaper.Replace(s) }

func mdRow(b *bytes.Buffer, cells ...string) {
	b.WriteString("|")
	for _, c := range cells {
		b.WriteString(" " + c + " |")
	}
	b.WriteString("\n")
}

func mdHeader(b *bytes.Buffer, cells ...string) {
	mdRow(b, cells...)
	seps := make([]string, len(cells))
	for i := range seps {
		seps[i] = "---"
	}
	mdRow(b, seps...)
}

// renderMarkdown writes r as Markdown: tables and lists.
func renderMarkdown(r *Report) ([]byte, error) {
	var b bytes.Buffer
	s := r.Summary
	fmt.Fprintf(&b, "# %s\n\n", md(r.Title))
	if r.GeneratedAt != "" {
		fmt.Fprintf(&b, "Generated %s by the controller.\n\n", md(r.GeneratedAt))
	}
	fmt.Fprintf(&b, "Report digest: %s\n\n", r.Digest)
	fmt.Fprintf(&b, "**%s: %s**\n", md(strings.ToUpper(s.State)), md(s.Outcome))

	b.WriteString("\n## Summary\n\n")
	mdHeader(&b, "", "")
	for _, kv := range [][2]string{
		{"Release", s.Release}, {"Release digest", s.ReleaseDigest}, {"Rollout", s.RolloutID},
		{"State", joinNonEmpty(": ", s.State, s.Reason)}, {"Waiting for", s.WaitingFor},
		{"Created", joinNonEmpty(" by ", s.CreatedAt, s.CreatedBy)}, {"Finished", s.FinishedAt},
		{"Duration", s.Duration}, {"Tested by", strings.Join(s.Testers, ", ")}, {"Approvers", strings.Join(s.Approvers, ", ")},
		{"Rollback", joinNonEmpty(" at ", prefixed("requested by ", s.RollbackRequestedBy), s.RollbackStartedAt)},
		{"Targets", s.Spec.Targets}, {"Strategy", s.Strategy}, {"Nodes", s.Outcome},
	} {
		if kv[1] != "" {
			mdRow(&b, "**"+md(kv[0])+"**", md(kv[1]))
		}
	}
	c := s.Counts
	b.WriteString("\n")
	mdHeader(&b, "Nodes", "Passed", "Failed", "Unreachable", "Skipped", "Rolled back", "Rollback failed", "Aborted", "Running", "Pending")
	mdRow(&b, strconv.Itoa(c.Nodes), strconv.Itoa(c.Passed), strconv.Itoa(c.Failed), strconv.Itoa(c.Unreachable),
		strconv.Itoa(c.Skipped), strconv.Itoa(c.RolledBack), strconv.Itoa(c.RollbackFailed), strconv.Itoa(c.Aborted),
		strconv.Itoa(c.Running), strconv.Itoa(c.Pending))

	b.WriteString("\n## Waves\n\n")
	if len(r.Waves) == 0 {
		b.WriteString("No waves planned.\n")
	} else {
		mdHeader(&b, "Wave", "State", "Nodes", "Started", "Finished", "Failures / budget", "Gate after")
		for _, w := range r.Waves {
			fail := fmt.Sprintf("%d / %d", w.Failures, w.MaxFailures)
			if w.OverBudget {
				fail += " **over budget**"
			}
			mdRow(&b, strconv.Itoa(int(w.Index)), md(w.State), md(strings.Join(w.Nodes, ", ")), md(orDash(w.StartedAt)),
				md(orDash(w.FinishedAt)), fail, yesNo(w.GateAfter))
		}
	}

	b.WriteString("\n## Nodes\n")
	if len(r.Nodes) == 0 {
		b.WriteString("\nNo nodes.\n")
	}
	for _, n := range r.Nodes {
		mdNode(&b, n)
	}

	b.WriteString("\n## SLA compliance\n\n")
	mdHeader(&b, "Target", "Goal", "Measured", "Status", "Breached by")
	for _, t := range r.SLA.Targets {
		status := md(t.Status)
		if t.Status == slaBreached {
			status = "**BREACHED**"
		}
		mdRow(&b, md(t.Name), md(orDash(t.Target)), md(t.Measured), status, md(strings.Join(t.BreachedBy, ", ")))
	}

	b.WriteString("\n## Known errors\n\n")
	if len(r.KnownErrors) == 0 {
		b.WriteString("The release records no known errors.\n")
	} else {
		mdHeader(&b, "ID", "Status", "Summary", "Symptom", "Workaround", "Matched nodes")
		for _, k := range r.KnownErrors {
			mdRow(&b, md(k.ID), md(k.Status), md(k.Summary), md(k.Symptom), md(k.Workaround), md(orNone(k.Nodes)))
		}
	}

	b.WriteString("\n## Audit trail\n\n")
	if len(r.AuditTrail) == 0 {
		b.WriteString("No audit-log entries.\n")
	} else {
		mdHeader(&b, "#", "Time", "Actor", "Action", "Object", "Details")
		for _, e := range r.AuditTrail {
			mdRow(&b, strconv.FormatUint(e.Sequence, 10), md(e.Time), md(e.Actor), md(e.Action), md(e.Object), md(e.Details))
		}
	}
	return b.Bytes(), nil
}

func yesNo(v bool) string {
	if v {
		return "yes"
	}
	return "no"
}

func orNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

// mdNode writes one node's section of the Markdown report.
func mdNode(b *bytes.Buffer, n Node) {
	fmt.Fprintf(b, "\n### %s\n\n", md(nodeHeadline(n)))
	if n.Error != "" {
		fmt.Fprintf(b, "- **Error:** %s\n", md(n.Error))
	}
	if n.InterruptedStep != "" {
		fmt.Fprintf(b, "- **Interrupted:** step %s was cut off (its agent restarted); retry, resolve or roll back the node\n", md(n.InterruptedStep))
	}
	if n.Retries > 0 {
		fmt.Fprintf(b, "- Retried %d %s by an operator (see the audit trail)\n", n.Retries, plural(int(n.Retries), "time", "times"))
	}
	if n.StartedAt != "" || n.FinishedAt != "" {
		fmt.Fprintf(b, "- Started %s, finished %s\n", md(orDash(n.StartedAt)), md(orDash(n.FinishedAt)))
	}
	fmt.Fprintf(b, "- Drift before deploying: %s\n", md(driftWords(n.Drift)))
	for _, k := range n.KnownErrors {
		fmt.Fprintf(b, "- Known error: %s\n", md(k))
	}
	if n.WaitingStep != "" {
		fmt.Fprintf(b, "- Waiting for confirmation of step %s: %s\n", md(n.WaitingStep), md(n.WaitingInstructions))
	}
	for _, c := range n.Confirmations {
		fmt.Fprintf(b, "- %s\n", md(confirmationLine(c)))
	}
	for _, p := range n.Problems {
		fmt.Fprintf(b, "- **Problem:** %s\n", md(p))
	}
	if n.Deployment != nil {
		mdRun(b, "Deployment", n.Deployment)
	}
	if c := n.Comparison; c != nil {
		fmt.Fprintf(b, "\n**Before/after: %s**", md(c.Summary))
		if c.Diff != nil {
			fmt.Fprintf(b, " (diff: %s)", md(c.Diff.Summary))
		}
		b.WriteString("\n\n")
		items := classified(c)
		if len(items) > 0 || len(c.NotComparable) > 0 {
			mdHeader(b, "Class", "Section", "What was found", "Declared expectation")
			for _, it := range items {
				mdRow(b, "**"+classLabel(it.Class)+"**", md(it.Section), md(it.What), md(it.Expectation+declaredBy(it)))
			}
			for _, nc := range c.NotComparable {
				mdRow(b, "**NOT COMPARABLE**", "", md(nc), "")
			}
		}
	}
	if rb := n.Rollback; rb != nil {
		if rb.Run != nil {
			mdRun(b, "Rollback", rb.Run)
		}
		verdict := md(rb.Verdict)
		if rb.Proven {
			verdict = "**PROVEN:** " + verdict
		}
		fmt.Fprintf(b, "\nRollback proof: %s\n", verdict)
		for _, d := range rb.Differences {
			fmt.Fprintf(b, "- %s\n", md(d))
		}
		for _, nc := range rb.NotComparable {
			fmt.Fprintf(b, "- not comparable: %s\n", md(nc))
		}
	}
	if r := n.Resolution; r != nil {
		fmt.Fprintf(b, "\n**Resolved by hand** by %s at %s: %s\n\n", md(r.By), md(orDash(r.At)), md(r.Note))
		fmt.Fprintf(b, "Audit after the resolution: %s, %s\n", md(cmp.Or(r.AuditID, "being taken")), md(r.Verdict))
		for _, d := range r.Differences {
			fmt.Fprintf(b, "- %s\n", md(d))
		}
		for _, nc := range r.NotComparable {
			fmt.Fprintf(b, "- not comparable: %s\n", md(nc))
		}
	}
}

func mdRun(b *bytes.Buffer, label string, run *Run) {
	fmt.Fprintf(b, "\n**%s**\n\n", md(runHeadline(label, run)))
	if len(run.Steps) == 0 {
		return
	}
	mdHeader(b, "List", "Step", "Plugin", "Outcome", "Duration", "Changes", "Error")
	for _, st := range run.Steps {
		mdRow(b, md(st.List), md(st.Name), md(st.Plugin), md(st.Outcome), md(orDash(st.Duration)),
			md(strings.Join(st.Changes, "; ")), md(st.Error))
	}
}
