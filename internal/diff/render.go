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

// display shows a value on a terminal line: as is when it is plain text,
// quoted when it is empty, has surrounding space or has characters that
// would not print (so a hostile package name cannot drive the terminal).
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

// fieldList renders field changes as "field: old → new, ...".
func fieldList(fields []FieldChange) string {
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = f.Field + ": " + display(f.Old) + " → " + display(f.New)
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

// WriteText writes r for a terminal: the summary, then each section that
// changed or could not be compared.
func WriteText(w io.Writer, r *Report) error {
	var b bytes.Buffer
	b.WriteString(r.Summary + "\n")
	for _, s := range r.Sections {
		if !s.Comparable {
			fmt.Fprintf(&b, "%s: not comparable (%s)\n", s.Name, s.Reason)
			continue
		}
		if len(s.Changes) == 0 {
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

// WriteMarkdown writes r as a Markdown document: a heading, the summary
// and a table per section that changed.
func WriteMarkdown(w io.Writer, r *Report) error {
	var b bytes.Buffer
	b.WriteString("# Audit diff")
	if host := r.After.Hostname; host != "" {
		b.WriteString(": " + md(host))
	}
	b.WriteString("\n\n")
	if r.Before.CollectedAt != "" || r.After.CollectedAt != "" {
		fmt.Fprintf(&b, "Before %s, after %s.\n\n", md(orUnknown(r.Before.CollectedAt)), md(orUnknown(r.After.CollectedAt)))
	}
	fmt.Fprintf(&b, "**%s**\n", md(r.Summary))
	for _, s := range r.Sections {
		if s.Comparable && len(s.Changes) == 0 {
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
