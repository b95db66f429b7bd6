package rollout

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// The Markdown rendering of the report.

// repMDEscaper escapes text for Markdown, table cells included.
var repMDEscaper = strings.NewReplacer(
	`\`, `\\`, "|", `\|`, "`", "\\`", "*", `\*`, "_", `\_`, "#", `\#`,
	"[", `\[`, "]", `\]`, "<", "&lt;", ">", "&gt;", "&", "&amp;",
	"\r\n", " ", "\n", " ", "\r", " ",
)

func repMD(s string) string { return repMDEscaper.Replace(s) }

func repMDRow(b *bytes.Buffer, cells ...string) {
	b.WriteString("|")
	for _, c := range cells {
		b.WriteString(" " + c + " |")
	}
	b.WriteString("\n")
}

func repMDHeader(b *bytes.Buffer, cells ...string) {
	repMDRow(b, cells...)
	seps := make([]string, len(cells))
	for i := range seps {
		seps[i] = "---"
	}
	repMDRow(b, seps...)
}

// repRenderMarkdown writes r as Markdown: tables and lists.
func repRenderMarkdown(r *Report) ([]byte, error) {
	var b bytes.Buffer
	s := r.Summary
	fmt.Fprintf(&b, "# %s\n\n", repMD(r.Title))
	if r.GeneratedAt != "" {
		fmt.Fprintf(&b, "Generated %s.\n\n", repMD(r.GeneratedAt))
	}
	fmt.Fprintf(&b, "**%s: %s**\n", repMD(strings.ToUpper(s.State)), repMD(s.Outcome))

	b.WriteString("\n## Summary\n\n")
	repMDHeader(&b, "", "")
	for _, kv := range [][2]string{
		{"Release", s.Release}, {"Release digest", s.ReleaseDigest}, {"Rollout", s.RolloutID},
		{"State", repJoin(": ", s.State, s.Reason)}, {"Waiting for", s.WaitingFor},
		{"Created", repJoin(" by ", s.CreatedAt, s.CreatedBy)}, {"Finished", s.FinishedAt},
		{"Duration", s.Duration}, {"Approvers", strings.Join(s.Approvers, ", ")},
		{"Rollback", repJoin(" at ", repPrefixed("requested by ", s.RollbackRequestedBy), s.RollbackStartedAt)},
		{"Targets", s.Spec.Targets}, {"Strategy", s.Strategy}, {"Nodes", s.Outcome},
	} {
		if kv[1] != "" {
			repMDRow(&b, "**"+repMD(kv[0])+"**", repMD(kv[1]))
		}
	}
	c := s.Counts
	b.WriteString("\n")
	repMDHeader(&b, "Nodes", "Passed", "Failed", "Unreachable", "Skipped", "Rolled back", "Rollback failed", "Aborted", "Running", "Pending")
	repMDRow(&b, strconv.Itoa(c.Nodes), strconv.Itoa(c.Passed), strconv.Itoa(c.Failed), strconv.Itoa(c.Unreachable),
		strconv.Itoa(c.Skipped), strconv.Itoa(c.RolledBack), strconv.Itoa(c.RollbackFailed), strconv.Itoa(c.Aborted),
		strconv.Itoa(c.Running), strconv.Itoa(c.Pending))

	b.WriteString("\n## Waves\n\n")
	if len(r.Waves) == 0 {
		b.WriteString("No waves planned.\n")
	} else {
		repMDHeader(&b, "Wave", "State", "Nodes", "Started", "Finished", "Failures / budget", "Gate after")
		for _, w := range r.Waves {
			fail := fmt.Sprintf("%d / %d", w.Failures, w.MaxFailures)
			if w.OverBudget {
				fail += " **over budget**"
			}
			repMDRow(&b, strconv.Itoa(int(w.Index)), repMD(w.State), repMD(strings.Join(w.Nodes, ", ")), repMD(repOrDash(w.StartedAt)),
				repMD(repOrDash(w.FinishedAt)), fail, repYesNo(w.GateAfter))
		}
	}

	b.WriteString("\n## Nodes\n")
	if len(r.Nodes) == 0 {
		b.WriteString("\nNo nodes.\n")
	}
	for _, n := range r.Nodes {
		repMDNode(&b, n)
	}

	b.WriteString("\n## SLA compliance\n\n")
	repMDHeader(&b, "Target", "Goal", "Measured", "Status", "Breached by")
	for _, t := range r.SLA.Targets {
		status := repMD(t.Status)
		if t.Status == repSLABreached {
			status = "**BREACHED**"
		}
		repMDRow(&b, repMD(t.Name), repMD(repOrDash(t.Target)), repMD(t.Measured), status, repMD(strings.Join(t.BreachedBy, ", ")))
	}

	b.WriteString("\n## Known errors\n\n")
	if len(r.KnownErrors) == 0 {
		b.WriteString("The release records no known errors.\n")
	} else {
		repMDHeader(&b, "ID", "Status", "Summary", "Symptom", "Workaround", "Matched nodes")
		for _, k := range r.KnownErrors {
			repMDRow(&b, repMD(k.ID), repMD(k.Status), repMD(k.Summary), repMD(k.Symptom), repMD(k.Workaround), repMD(repOrNone(k.Nodes)))
		}
	}

	b.WriteString("\n## Audit trail\n\n")
	if len(r.AuditTrail) == 0 {
		b.WriteString("No audit-log entries.\n")
	} else {
		repMDHeader(&b, "#", "Time", "Actor", "Action", "Object", "Details")
		for _, e := range r.AuditTrail {
			repMDRow(&b, strconv.FormatUint(e.Sequence, 10), repMD(e.Time), repMD(e.Actor), repMD(e.Action), repMD(e.Object), repMD(e.Details))
		}
	}
	return b.Bytes(), nil
}

func repYesNo(v bool) string {
	if v {
		return "yes"
	}
	return "no"
}

func repOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

// repMDNode writes one node's section of the Markdown report.
func repMDNode(b *bytes.Buffer, n ReportNode) {
	fmt.Fprintf(b, "\n### %s\n\n", repMD(repNodeHeadline(n)))
	if n.Error != "" {
		fmt.Fprintf(b, "- **Error:** %s\n", repMD(n.Error))
	}
	if n.InterruptedStep != "" {
		fmt.Fprintf(b, "- **Interrupted:** step %s was cut off (its agent restarted); retry, resolve or roll back the node\n", repMD(n.InterruptedStep))
	}
	if n.Retries > 0 {
		fmt.Fprintf(b, "- Retried %d %s by an operator (see the audit trail)\n", n.Retries, repPlural(int(n.Retries), "time", "times"))
	}
	if n.StartedAt != "" || n.FinishedAt != "" {
		fmt.Fprintf(b, "- Started %s, finished %s\n", repMD(repOrDash(n.StartedAt)), repMD(repOrDash(n.FinishedAt)))
	}
	fmt.Fprintf(b, "- Drift before deploying: %s\n", repMD(repDriftWords(n.Drift)))
	for _, k := range n.KnownErrors {
		fmt.Fprintf(b, "- Known error: %s\n", repMD(k))
	}
	if n.WaitingStep != "" {
		fmt.Fprintf(b, "- Waiting for confirmation of step %s: %s\n", repMD(n.WaitingStep), repMD(n.WaitingInstructions))
	}
	for _, c := range n.Confirmations {
		fmt.Fprintf(b, "- %s\n", repMD(repConfirmation(c)))
	}
	for _, p := range n.Problems {
		fmt.Fprintf(b, "- **Problem:** %s\n", repMD(p))
	}
	if n.Deployment != nil {
		repMDRun(b, "Deployment", n.Deployment)
	}
	if c := n.Comparison; c != nil {
		fmt.Fprintf(b, "\n**Before/after: %s**", repMD(c.Summary))
		if c.Diff != nil {
			fmt.Fprintf(b, " (diff: %s)", repMD(c.Diff.Summary))
		}
		b.WriteString("\n\n")
		items := repClassified(c)
		if len(items) > 0 || len(c.NotComparable) > 0 {
			repMDHeader(b, "Class", "Section", "What was found", "Declared expectation")
			for _, it := range items {
				repMDRow(b, "**"+repClassLabel(it.Class)+"**", repMD(it.Section), repMD(it.What), repMD(it.Expectation+repDeclaredBy(it)))
			}
			for _, nc := range c.NotComparable {
				repMDRow(b, "**NOT COMPARABLE**", "", repMD(nc), "")
			}
		}
	}
	if rb := n.Rollback; rb != nil {
		if rb.Run != nil {
			repMDRun(b, "Rollback", rb.Run)
		}
		verdict := repMD(rb.Verdict)
		if rb.Proven {
			verdict = "**PROVEN:** " + verdict
		}
		fmt.Fprintf(b, "\nRollback proof: %s\n", verdict)
		for _, d := range rb.Differences {
			fmt.Fprintf(b, "- %s\n", repMD(d))
		}
		for _, nc := range rb.NotComparable {
			fmt.Fprintf(b, "- not comparable: %s\n", repMD(nc))
		}
	}
	if r := n.Resolution; r != nil {
		fmt.Fprintf(b, "\n**Resolved by hand** by %s at %s: %s\n\n", repMD(r.By), repMD(repOrDash(r.At)), repMD(r.Note))
		fmt.Fprintf(b, "Audit after the resolution: %s, %s\n", repMD(repOr(r.AuditID, "being taken")), repMD(r.Verdict))
		for _, d := range r.Differences {
			fmt.Fprintf(b, "- %s\n", repMD(d))
		}
		for _, nc := range r.NotComparable {
			fmt.Fprintf(b, "- not comparable: %s\n", repMD(nc))
		}
	}
}

func repMDRun(b *bytes.Buffer, label string, run *ReportRun) {
	fmt.Fprintf(b, "\n**%s**\n\n", repMD(repRunHeadline(label, run)))
	if len(run.Steps) == 0 {
		return
	}
	repMDHeader(b, "List", "Step", "Plugin", "Outcome", "Duration", "Changes", "Error")
	for _, st := range run.Steps {
		repMDRow(b, repMD(st.List), repMD(st.Name), repMD(st.Plugin), repMD(st.Outcome), repMD(repOrDash(st.Duration)),
			repMD(strings.Join(st.Changes, "; ")), repMD(st.Error))
	}
}
