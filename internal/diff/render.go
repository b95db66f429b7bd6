package diff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
)

// symbol marks a change's operation in the text and Markdown forms.
func symbol(op string) string {
	switch op {
	case OpAdded:
		return "+"
	case OpRemoved:
		return "-"
	case OpReplaced:
		return "±"
	}
	return "~"
}

// symbolNotCompared marks a tracked path only one audit tracked.
const symbolNotCompared = "?"

// notComparedDetail says why a path was not compared: "tracked only in
// the before audit (2 files there)".
func notComparedDetail(p PathNotCompared) string {
	s := "tracked only in the " + p.TrackedBy + " audit"
	if p.Files > 0 {
		s += " (" + strconv.Itoa(p.Files) + " " + plural("file", p.Files) + " there)"
	}
	return s
}

// display shows a value on a terminal line: as is when it is plain text,
// quoted when it is empty, has surrounding space or has characters that
// would not print, newlines included (so a hostile package name can
// neither drive the terminal nor break the layout).
func display(v string) string {
	if v == "" || strings.TrimSpace(v) != v {
		return strconv.Quote(v)
	}
	for _, r := range v {
		if !unicode.IsPrint(r) && r != ' ' {
			return strconv.Quote(v)
		}
	}
	return v
}

// fieldList renders field changes as "field: old → new, ...", sizes in
// IEC units ("total_bytes: 16 GiB → 24 GiB").
func fieldList(fields []FieldChange) string {
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = display(f.Field) + ": " + display(humanValue(f.Field, f.Old)) + " → " + display(humanValue(f.Field, f.New))
	}
	return strings.Join(parts, ", ")
}

// describe renders one change after its symbol: what changed and how.
func describe(ch Change) (subject, detail string) {
	switch ch.Op {
	case OpAdded, OpRemoved:
		if b := brief(ch.Kind, ch.Item); b != "" {
			detail = "(" + b + ")"
		}
		return display(ch.Key), detail
	case OpReplaced:
		detail = "replaced"
		if len(ch.Fields) > 0 {
			detail += ": " + fieldList(ch.Fields)
		} else {
			detail += ": " + display(ch.OldKey) + " → " + display(ch.Key)
		}
		return display(ch.Match), detail
	}
	return display(ch.Key), fieldList(ch.Fields)
}

// compared says which audits a report compares, for a terminal line:
// "before: web1 2025-01-01T00:00:00Z  after: web1 2025-02-01T00:00:00Z",
// leaving out what is unknown; "" when nothing is known.
func compared(r *Report) string {
	var sides []string
	for _, side := range []struct {
		label string
		info  AuditInfo
	}{{"before:", r.Before}, {"after:", r.After}} {
		parts := []string{side.label}
		for _, v := range []string{side.info.Hostname, side.info.CollectedAt} {
			if v != "" {
				parts = append(parts, display(v))
			}
		}
		if len(parts) > 1 {
			sides = append(sides, strings.Join(parts, " "))
		}
	}
	return strings.Join(sides, "  ")
}

// hosts names the host (or hosts) of a report for a title: "web1", or
// "web1 → web2" when the audits are of different hosts; "" when unknown.
func hosts(r *Report) string {
	b, a := r.Before.Hostname, r.After.Hostname
	switch {
	case b == "" || b == a:
		return a
	case a == "":
		return b
	}
	return b + " → " + a
}

// WriteText writes r for a terminal: the summary (always the first line,
// for scripts), the audits compared, then each section that changed or
// could not be compared, and last the sections collected in neither audit.
func WriteText(w io.Writer, r *Report) error {
	var b bytes.Buffer
	b.WriteString(r.Summary + "\n")
	if c := compared(r); c != "" {
		b.WriteString(c + "\n")
	}
	for _, s := range r.Sections {
		if s.Skipped {
			continue
		}
		if !s.Comparable {
			fmt.Fprintf(&b, "%s: not comparable (%s)\n", s.Name, display(s.Reason))
			continue
		}
		if len(s.Changes) == 0 && len(s.PathsNotCompared) == 0 {
			continue
		}
		b.WriteString(s.Name + "\n")
		for _, ch := range s.Changes {
			if ch.Kind == "" {
				for _, f := range ch.Fields {
					fmt.Fprintf(&b, "  %s %s\n", symbol(ch.Op), fieldList([]FieldChange{f}))
				}
				continue
			}
			subject, detail := describe(ch)
			if detail == "" {
				fmt.Fprintf(&b, "  %s %s\n", symbol(ch.Op), subject)
			} else if ch.Op == OpReplaced {
				fmt.Fprintf(&b, "  %s %s %s\n", symbol(ch.Op), subject, detail)
			} else {
				fmt.Fprintf(&b, "  %s %s  %s\n", symbol(ch.Op), subject, detail)
			}
		}
		for _, p := range s.PathsNotCompared {
			fmt.Fprintf(&b, "  %s %s  not compared: %s\n", symbolNotCompared, display(p.Path), notComparedDetail(p))
		}
	}
	if skipped := r.Skipped(); len(skipped) > 0 {
		b.WriteString("not collected: " + strings.Join(skipped, ", ") + "\n")
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write diff text: %w", err)
	}
	return nil
}

// WriteJSON writes r as indented JSON. The encoding is deterministic: the
// same report always gives the same bytes.
func WriteJSON(w io.Writer, r *Report) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encode diff json: %w", err)
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write diff json: %w", err)
	}
	return nil
}

// mdEscaper escapes text for a Markdown table cell.
var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "|", `\|`, "`", "\\`", "*", `\*`, "_", `\_`,
	"[", `\[`, "]", `\]`, "<", "&lt;", ">", "&gt;", "&", "&amp;",
	"\r\n", " ", "\n", " ", "\r", " ",
)

func md(s string) string { return mdEscaper.Replace(s) }

// WriteMarkdown writes r as a Markdown document: a heading naming the
// host (or both hosts), the collection times, the summary, a table per
// section that changed and a note of the sections collected in neither
// audit.
func WriteMarkdown(w io.Writer, r *Report) error {
	var b bytes.Buffer
	b.WriteString("# Audit diff")
	if h := hosts(r); h != "" {
		b.WriteString(": " + md(h))
	}
	b.WriteString("\n\n")
	if r.Before.CollectedAt != "" || r.After.CollectedAt != "" {
		fmt.Fprintf(&b, "Before %s, after %s.\n\n", md(orUnknown(r.Before.CollectedAt)), md(orUnknown(r.After.CollectedAt)))
	}
	fmt.Fprintf(&b, "**%s**\n", md(r.Summary))
	for _, s := range r.Sections {
		if s.Skipped || (s.Comparable && len(s.Changes) == 0 && len(s.PathsNotCompared) == 0) {
			continue
		}
		fmt.Fprintf(&b, "\n## %s\n\n", md(s.Name))
		if !s.Comparable {
			fmt.Fprintf(&b, "Not comparable: %s\n", md(s.Reason))
			continue
		}
		b.WriteString("| | Change | Kind | Key | Details |\n|---|---|---|---|---|\n")
		for _, ch := range s.Changes {
			if ch.Kind == "" {
				for _, f := range ch.Fields {
					fmt.Fprintf(&b, "| %s | %s | | | %s |\n", md(symbol(ch.Op)), md(ch.Verb), md(fieldList([]FieldChange{f})))
				}
				continue
			}
			subject, detail := describe(ch)
			key := ch.Key
			if ch.Op == OpReplaced {
				key = subject
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", md(symbol(ch.Op)), md(ch.Verb), md(ch.Kind), md(key), md(detail))
		}
		for _, p := range s.PathsNotCompared {
			fmt.Fprintf(&b, "| %s | not compared | path | %s | %s |\n", md(symbolNotCompared), md(p.Path), md(notComparedDetail(p)))
		}
	}
	if skipped := r.Skipped(); len(skipped) > 0 {
		fmt.Fprintf(&b, "\nNot collected in either audit: %s.\n", md(strings.Join(skipped, ", ")))
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write diff markdown: %w", err)
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}
