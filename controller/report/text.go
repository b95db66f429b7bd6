package report

import (
	"bytes"
	"cmp"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/cairn-ops/cairn/internal/compare"
)

// The text rendering of the report.

// textWidth is the width the text report fits in.
const textWidth = 100

// clean shows a value on a terminal line: control characters and
// newlines are quoted away, so stored data can neither drive the
// terminal nor break the layout.
func clean(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) && r != ' ' {
			q := strconv.Quote(s)
			return q[1 : len(q)-1]
		}
	}
	return s
}

// textWriter writes the text report, wrapping every line at textWidth.
type textWriter struct {
	b bytes.Buffer
}

// line writes text after indent, wrapped at textWidth with continuation
// lines indented by hang more.
func (w *textWriter) line(indent, hang, text string) {
	text = clean(text)
	width := textWidth - utf8.RuneCountInString(indent)
	first := true
	for {
		prefix := indent
		if !first {
			prefix = indent + hang
			width = textWidth - utf8.RuneCountInString(prefix)
		}
		if utf8.RuneCountInString(text) <= width {
			w.b.WriteString(strings.TrimRight(prefix+text, " ") + "\n")
			return
		}
		cut := breakAt(text, width)
		w.b.WriteString(strings.TrimRight(prefix+text[:cut], " ") + "\n")
		text = strings.TrimLeft(text[cut:], " ")
		first = false
	}
}

// breakAt is the byte offset to cut text at so the first part has at
// most width runes: the last space within width, else width runes.
func breakAt(text string, width int) int {
	lastSpace, runes := -1, 0
	for i, r := range text {
		if runes == width {
			if lastSpace > 0 {
				return lastSpace
			}
			return i
		}
		if r == ' ' {
			lastSpace = i
		}
		runes++
	}
	return len(text)
}

// field writes "label: value" with the value wrapped under itself.
func (w *textWriter) field(label, value string) {
	if value == "" {
		return
	}
	const labelWidth = 16
	pad := labelWidth - utf8.RuneCountInString(label)
	w.line("  ", strings.Repeat(" ", labelWidth), label+strings.Repeat(" ", max(pad, 1))+value)
}

func (w *textWriter) heading(s string) {
	w.b.WriteString("\n" + s + "\n" + strings.Repeat("-", utf8.RuneCountInString(s)) + "\n")
}

// table writes rows aligned in columns; each cell is cut to its column's
// limit (0: no limit) so the row fits the width.
func (w *textWriter) table(indent string, limits []int, rows [][]string) {
	var tb bytes.Buffer
	tw := tabwriter.NewWriter(&tb, 0, 0, 2, ' ', 0)
	for _, row := range rows {
		cells := make([]string, len(row))
		for i, c := range row {
			c = clean(c)
			if i < len(limits) && limits[i] > 0 {
				c = ellipsis(c, limits[i])
			}
			cells[i] = c
		}
		fmt.Fprintln(tw, indent+strings.Join(cells, "\t"))
	}
	tw.Flush()
	for _, l := range strings.SplitAfter(tb.String(), "\n") {
		if l == "" {
			continue
		}
		w.b.WriteString(strings.TrimRight(l, " \n") + "\n")
	}
}

// ellipsis cuts s to n runes, ending in "…" when cut.
func ellipsis(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// nodeList names nodes for a table cell: all of them, or the first ones
// and how many more.
func nodeList(names []string, limit int) string {
	s := strings.Join(names, ", ")
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	for k := len(names) - 1; k > 0; k-- {
		s = strings.Join(names[:k], ", ") + fmt.Sprintf(" +%d more", len(names)-k)
		if utf8.RuneCountInString(s) <= limit {
			return s
		}
	}
	return fmt.Sprintf("%d nodes", len(names))
}

// failuresCell is a wave's failures over its budget: "3/1 OVER" when
// it went over.
func failuresCell(w Wave) string {
	s := fmt.Sprintf("%d/%d", w.Failures, w.MaxFailures)
	if w.OverBudget {
		s += " OVER"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// classLabel is the text label of a comparison class, shown in every
// format next to (or instead of) its colour.
func classLabel(class string) string {
	switch class {
	case compare.Expected:
		return "EXPECTED"
	case compare.Missing:
		return "MISSING"
	case compare.Unexpected:
		return "UNEXPECTED"
	case compare.Allowed:
		return "ALLOWED"
	}
	return strings.ToUpper(class)
}

// classified lists a comparison's items in the order reports show them:
// unexpected and missing first, then expected and allowed.
func classified(c *compare.Result) []compare.Item {
	var out []compare.Item
	for _, l := range [][]compare.Item{c.Unexpected, c.Missing, c.Expected, c.Allowed} {
		out = append(out, l...)
	}
	return out
}

// renderText writes r for a terminal or a mail, within textWidth
// columns.
func renderText(r *Report) ([]byte, error) {
	w := &textWriter{}
	s := r.Summary
	w.line("", "  ", r.Title)
	w.b.WriteString(strings.Repeat("=", min(utf8.RuneCountInString(r.Title), textWidth)) + "\n")
	if r.GeneratedAt != "" {
		w.line("", "  ", "Generated "+r.GeneratedAt+" by the controller")
	}
	w.b.WriteString("Report digest: " + r.Digest + "\n")

	w.heading("Summary")
	w.field("Release", s.Release)
	w.field("Release digest", s.ReleaseDigest)
	w.field("Rollout", s.RolloutID)
	w.field("State", joinNonEmpty(": ", strings.ToUpper(s.State), s.Reason))
	w.field("Waiting for", s.WaitingFor)
	w.field("Created", joinNonEmpty(" by ", s.CreatedAt, s.CreatedBy))
	w.field("Finished", s.FinishedAt)
	w.field("Duration", s.Duration)
	w.field("Tested by", strings.Join(s.Testers, ", "))
	w.field("Approvers", strings.Join(s.Approvers, ", "))
	if s.RollbackRequestedBy != "" {
		w.field("Rollback", joinNonEmpty(" at ", "requested by "+s.RollbackRequestedBy, s.RollbackStartedAt))
	}
	w.field("Targets", s.Spec.Targets)
	w.field("Strategy", s.Strategy)
	w.field("Nodes", s.Outcome)
	if r.SLA.Breached {
		w.field("SLA", "BREACHED (see SLA compliance)")
	}

	w.heading("Waves")
	if len(r.Waves) == 0 {
		w.line("  ", "", "No waves planned.")
	} else {
		rows := [][]string{{"WAVE", "STATE", "NODES", "STARTED", "FINISHED", "FAILED/BUDGET"}}
		for _, wv := range r.Waves {
			rows = append(rows, []string{strconv.Itoa(int(wv.Index)), wv.State, nodeList(wv.Nodes, 12),
				orDash(wv.StartedAt), orDash(wv.FinishedAt), failuresCell(wv)})
		}
		// 2 + 4 + 9 + 12 + 25 + 25 + 13 and the gaps: 100 columns, with
		// room for times in a zone named by its offset ("+0530").
		w.table("  ", []int{4, 9, 12, 25, 25, 13}, rows)
	}

	w.heading("Nodes")
	if len(r.Nodes) == 0 {
		w.line("  ", "", "No nodes.")
	}
	for i, n := range r.Nodes {
		if i > 0 {
			w.b.WriteString("\n")
		}
		textNode(w, n)
	}

	w.heading("SLA compliance")
	for _, t := range r.SLA.Targets {
		status := strings.ToUpper(t.Status)
		text := t.Name + ": " + status
		if t.Target != "" {
			text += "; target " + t.Target
		}
		text += "; measured " + t.Measured
		if len(t.BreachedBy) > 0 {
			text += "; breached by " + strings.Join(t.BreachedBy, ", ")
		}
		w.line("  ", "    ", text)
	}

	w.heading("Known errors")
	if len(r.KnownErrors) == 0 {
		w.line("  ", "", "The release records no known errors.")
	}
	for _, k := range r.KnownErrors {
		w.line("  ", "    ", joinNonEmpty(" ", k.ID, "["+k.Status+"]", k.Summary))
		if k.Symptom != "" {
			w.line("    ", "  ", "Symptom: "+k.Symptom)
		}
		if k.Workaround != "" {
			w.line("    ", "  ", "Workaround: "+k.Workaround)
		}
		matched := "none"
		if len(k.Nodes) > 0 {
			matched = strings.Join(k.Nodes, ", ")
		}
		w.line("    ", "  ", "Matched nodes: "+matched)
	}

	w.heading("Audit trail")
	if len(r.AuditTrail) == 0 {
		w.line("  ", "", "No audit-log entries.")
	}
	for _, e := range r.AuditTrail {
		w.line("  ", "    ", joinNonEmpty("  ", e.Time, e.Actor, e.Action, e.Object, e.Details))
	}
	return w.b.Bytes(), nil
}

// joinNonEmpty joins the non-empty parts with sep.
func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}

// driftWords is what the pre-check found, in words.
func driftWords(d Drift) string {
	switch {
	case !d.Checked:
		return "not checked yet (no pre-audit)"
	case !d.HasBaseline:
		return "not checked: the node has no CMS baseline"
	case d.Changes == 0 && d.PathsNotCompared > 0:
		return "none where both audits looked, but not all compared: " + d.Summary
	case d.Changes == 0:
		return "none (matches its CMS baseline)"
	}
	return fmt.Sprintf("%d %s: %s", d.Changes, plural(int(d.Changes), "change", "changes"), d.Summary)
}

// nodeHeadline is a node's title line: "web2 (n-02) · wave 2 ·
// FAILED · 6m5s".
func nodeHeadline(n Node) string {
	name := n.name()
	if n.Hostname != "" && n.NodeID != "" && n.Hostname != n.NodeID {
		name += " (" + n.NodeID + ")"
	}
	parts := []string{name, fmt.Sprintf("wave %d", n.Wave), strings.ToUpper(n.State)}
	if n.Duration != "" {
		parts = append(parts, n.Duration)
	}
	if n.SLABreached {
		parts = append(parts, "SLA breached")
	}
	return strings.Join(parts, " · ")
}

// textNode writes one node's section of the text report.
func textNode(w *textWriter, n Node) {
	w.line("", "  ", "Node "+nodeHeadline(n))
	if n.Error != "" {
		w.line("  ", "  ", "Error: "+n.Error)
	}
	if n.InterruptedStep != "" {
		w.line("  ", "  ", "Interrupted: step "+n.InterruptedStep+" was cut off (its agent restarted); retry, resolve or roll back the node")
	}
	if n.Retries > 0 {
		w.line("  ", "  ", fmt.Sprintf("Retried %d %s by an operator (see the audit trail)", n.Retries, plural(int(n.Retries), "time", "times")))
	}
	if n.StartedAt != "" || n.FinishedAt != "" {
		w.line("  ", "  ", joinNonEmpty(", ", prefixed("started ", n.StartedAt), prefixed("finished ", n.FinishedAt)))
	}
	w.line("  ", "  ", "Drift before deploying: "+driftWords(n.Drift))
	for _, k := range n.KnownErrors {
		w.line("  ", "  ", "Known error: "+k)
	}
	if n.WaitingStep != "" {
		w.line("  ", "  ", "Waiting for confirmation of step "+n.WaitingStep+": "+n.WaitingInstructions)
	}
	for _, c := range n.Confirmations {
		w.line("  ", "  ", confirmationLine(c))
	}
	if n.Deployment != nil {
		textRun(w, "Deployment", n.Deployment)
	}
	if c := n.Comparison; c != nil {
		w.line("  ", "  ", "Before/after: "+c.Summary)
		if c.Diff != nil {
			w.line("    ", "  ", "Diff: "+c.Diff.Summary)
		}
		for _, it := range classified(c) {
			w.line("    ", "  ", "["+classLabel(it.Class)+"] "+it.What)
			if it.Class == compare.Missing && it.Expectation != "" {
				w.line("      ", "  ", "expected: "+it.Expectation+declaredBy(it))
			}
		}
		for _, nc := range c.NotComparable {
			w.line("    ", "  ", "[NOT COMPARABLE] "+nc)
		}
	}
	if rb := n.Rollback; rb != nil {
		if rb.Run != nil {
			textRun(w, "Rollback", rb.Run)
		}
		proof := "Rollback proof: "
		if rb.Proven {
			proof += "PROVEN, "
		}
		w.line("  ", "  ", proof+rb.Verdict)
		for _, d := range rb.Differences {
			w.line("    ", "  ", "- "+d)
		}
		for _, nc := range rb.NotComparable {
			w.line("    ", "  ", "[NOT COMPARABLE] "+nc)
		}
	}
	if r := n.Resolution; r != nil {
		w.line("  ", "  ", "Resolved by hand: "+joinNonEmpty(", ", "by "+r.By, prefixed("at ", r.At))+": "+strconv.Quote(r.Note))
		w.line("    ", "  ", "Audit after the resolution: "+joinNonEmpty(", ", cmp.Or(r.AuditID, "being taken"), r.Verdict))
		for _, d := range r.Differences {
			w.line("    ", "  ", "- "+d)
		}
		for _, nc := range r.NotComparable {
			w.line("    ", "  ", "[NOT COMPARABLE] "+nc)
		}
	}
	for _, p := range n.Problems {
		w.line("  ", "  ", "Problem: "+p)
	}
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

func declaredBy(it compare.Item) string {
	if it.DeclaredBy == "" {
		return ""
	}
	return " (declared by " + it.DeclaredBy + ")"
}

func confirmationLine(c Confirmation) string {
	s := "Confirmed step " + c.Step + " by " + c.By
	if c.At != "" {
		s += " at " + c.At
	}
	if c.Note != "" {
		s += ": " + strconv.Quote(c.Note)
	}
	return s
}

// attemptsNote is " (after N attempts)" for a step tried more than once.
func attemptsNote(n int) string {
	if n > 1 {
		return fmt.Sprintf(" (after %d attempts)", n)
	}
	return ""
}

func runHeadline(label string, run *Run) string {
	return label + ": " + joinNonEmpty(", ", cmp.Or(run.State, "state unknown"), run.Duration, run.Error)
}

func textRun(w *textWriter, label string, run *Run) {
	w.line("  ", "  ", runHeadline(label, run))
	if len(run.Steps) == 0 {
		return
	}
	rows := make([][]string, 0, len(run.Steps))
	for _, st := range run.Steps {
		rows = append(rows, []string{st.List, st.Name, st.Plugin, st.Outcome, orDash(st.Duration)})
	}
	w.table("    ", []int{8, 24, 12, 16, 10}, rows)
	for _, st := range run.Steps {
		if st.Error != "" {
			w.line("    ", "  ", st.Name+" error"+attemptsNote(st.Attempts)+": "+st.Error)
		}
		if len(st.Changes) > 0 {
			// The changes the step's plugin declared: made, or (unchanged)
			// already in place.
			verb := " changed: "
			if st.Outcome != "changed" {
				verb = " declares: "
			}
			w.line("    ", "  ", st.Name+verb+strings.Join(st.Changes, "; "))
		}
	}
}
