package release

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cairn-ops/cairn/internal/manifest"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// Render formats.
const (
	FormatMarkdown = "markdown"
	FormatHTML     = "html"
	FormatJSON     = "json"
)

// document is what both the notes and the dossier render from: a title
// and sections of items (one line each) or free text.
type document struct {
	Title    string
	Sections []section
}

type section struct {
	Heading string
	Items   []string
	// Text is Markdown-ish free text (the manifest's notes), shown as is.
	Text string
}

// Notes renders the release notes of rec: components with digests,
// declared changes, known errors with workarounds, and the notes.
// format is markdown (the default), html or json (the record itself).
// It returns the content and its media type.
func Notes(rec *controllerv1.ReleaseRecord, format string) ([]byte, string, error) {
	if format == FormatJSON {
		return renderJSON(rec)
	}
	m, err := manifest.Parse(rec.GetManifestYaml(), refString(rec)+".yaml")
	if err != nil {
		return nil, "", fmt.Errorf("parse stored manifest of %s: %w", refString(rec), err)
	}
	doc := document{Title: "Release notes: " + refString(rec)}
	head := []string{"State: " + StateName(rec.GetState())}
	if m.Description != "" {
		head = append(head, "Description: "+m.Description)
	}
	if rec.GetService() != "" {
		head = append(head, "Service: "+rec.GetService())
	}
	if rec.GetDigest() != "" {
		head = append(head, "Release digest: "+rec.GetDigest())
	}
	doc.Sections = append(doc.Sections,
		section{Heading: "Release", Items: head},
		section{Heading: "Components", Items: components(rec)},
		section{Heading: "Declared changes", Items: declared(expectOf(rec, m))},
		section{Heading: "Known errors", Items: knownErrors(m.KnownErrors)},
	)
	if m.Notes != "" {
		doc.Sections = append(doc.Sections, section{Heading: "Notes", Text: m.Notes})
	}
	return render(doc, format)
}

// Dossier renders the evidence file of rec: manifest, digests,
// signature, who did what and when (the record and log, the audit-log
// entries whose object is the release), test evidence, approvals and
// deployments.
func Dossier(rec *controllerv1.ReleaseRecord, log []*controllerv1.AuditLogEntry, format string) ([]byte, string, error) {
	if format == FormatJSON {
		return renderJSON(rec)
	}
	doc := document{Title: "Release dossier: " + refString(rec)}
	ident := []string{
		"State: " + StateName(rec.GetState()),
		"Created by " + orNone(rec.GetCreatedBy()) + " at " + orNone(rec.GetCreatedAt()),
	}
	if rec.GetSealedBy() != "" {
		ident = append(ident, "Sealed by "+rec.GetSealedBy()+" at "+rec.GetSealedAt())
	}
	ident = append(ident,
		"Release digest (sha256): "+orNone(rec.GetDigest()),
		fmt.Sprintf("Signature (ed25519): %x", rec.GetSignature()),
		fmt.Sprintf("Approvals: %d of %d required", Approvals(rec), max(rec.GetApprovalsRequired(), 1)),
	)
	var tests []string
	for _, t := range rec.GetTests() {
		line := fmt.Sprintf("%s: %s by %s", t.GetRecordedAt(), t.GetResult(), t.GetTester())
		if t.GetNote() != "" {
			line += " — " + t.GetNote()
		}
		if len(t.GetEvidence()) > 0 {
			line += "; evidence " + strings.Join(t.GetEvidence(), ", ")
		}
		tests = append(tests, line)
	}
	var decisions []string
	for _, d := range rec.GetDecisions() {
		line := fmt.Sprintf("%s: %s by %s, bound to digest %s", d.GetAt(), d.GetDecision(), d.GetBy(), d.GetReleaseDigest())
		if d.GetNote() != "" {
			line += " — " + d.GetNote()
		}
		decisions = append(decisions, line)
	}
	var history []string
	object := Object(rec.GetName(), rec.GetVersion())
	for _, e := range log {
		if e.GetObject() != object {
			continue
		}
		history = append(history, fmt.Sprintf("#%d %s %s %s (entry hash %s)", e.GetSequence(), e.GetTime(), e.GetActor(), e.GetAction(), e.GetHash()))
	}
	doc.Sections = append(doc.Sections,
		section{Heading: "Release", Items: ident},
		section{Heading: "Components", Items: components(rec)},
		section{Heading: "Tests", Items: tests},
		section{Heading: "Decisions", Items: decisions},
		section{Heading: "Audit log", Items: history},
		section{Heading: "Deployments", Items: []string{"none yet: the release has not been deployed"}},
		section{Heading: "Manifest (canonical)", Text: string(rec.GetManifestCanonical())},
	)
	return render(doc, format)
}

func components(rec *controllerv1.ReleaseRecord) []string {
	var out []string
	for _, c := range rec.GetComponents() {
		out = append(out, fmt.Sprintf("%s (%s): sha256 %s, %d bytes", c.GetName(), c.GetKind(), c.GetDigest(), c.GetSizeBytes()))
	}
	return out
}

func declared(e manifest.Expect) []string {
	var out []string
	for _, p := range e.Packages {
		line := "package " + p.Name + " " + p.State
		if p.Version != "" {
			line += " " + p.Version
		}
		out = append(out, line)
	}
	for _, f := range e.Files {
		line := "file " + f.Path
		if f.SHA256 != "" {
			line += " sha256 " + f.SHA256
		}
		out = append(out, line)
	}
	for _, s := range e.Services {
		out = append(out, "service "+s.Name+" "+s.State)
	}
	for _, h := range e.Hardware {
		out = append(out, fmt.Sprintf("hardware %+v", h))
	}
	for _, a := range e.Allow {
		out = append(out, "allow "+a)
	}
	return out
}

func knownErrors(kes []manifest.KnownError) []string {
	var out []string
	for _, k := range kes {
		line := fmt.Sprintf("%s [%s]: %s", k.ID, k.Status, k.Summary)
		if k.Symptom != "" {
			line += "; symptom: " + k.Symptom
		}
		if k.Workaround != "" {
			line += "; workaround: " + k.Workaround
		}
		out = append(out, line)
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func renderJSON(rec *controllerv1.ReleaseRecord) ([]byte, string, error) {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(rec)
	if err != nil {
		return nil, "", fmt.Errorf("encode %s: %w", refString(rec), err)
	}
	return append(b, '\n'), "application/json", nil
}

func render(doc document, format string) ([]byte, string, error) {
	switch format {
	case "", FormatMarkdown:
		return markdown(doc), "text/markdown; charset=utf-8", nil
	case FormatHTML:
		var buf bytes.Buffer
		if err := page.Execute(&buf, doc); err != nil {
			return nil, "", fmt.Errorf("render html: %w", err)
		}
		return buf.Bytes(), "text/html; charset=utf-8", nil
	}
	return nil, "", fmt.Errorf("%w: format %q: want markdown, html or json", ErrInvalid, format)
}

func markdown(doc document) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n", doc.Title)
	for _, s := range doc.Sections {
		fmt.Fprintf(&b, "\n## %s\n\n", s.Heading)
		switch {
		case s.Text != "":
			if strings.HasPrefix(s.Heading, "Manifest") {
				fmt.Fprintf(&b, "```json\n%s\n```\n", strings.TrimRight(s.Text, "\n"))
			} else {
				fmt.Fprintf(&b, "%s\n", strings.TrimRight(s.Text, "\n"))
			}
		case len(s.Items) == 0:
			b.WriteString("None.\n")
		default:
			for _, it := range s.Items {
				fmt.Fprintf(&b, "- %s\n", it)
			}
		}
	}
	return []byte(b.String())
}

// page is one self-contained HTML page: no external styles or scripts.
var page = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body { font-family: sans-serif; max-width: 60rem; margin: 2rem auto; line-height: 1.4; }
code, pre { font-family: monospace; word-break: break-all; }
pre { background: #f4f4f4; padding: 1rem; white-space: pre-wrap; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
{{range .Sections}}<h2>{{.Heading}}</h2>
{{if .Text}}<pre>{{.Text}}</pre>
{{else if .Items}}<ul>
{{range .Items}}<li>{{.}}</li>
{{end}}</ul>
{{else}}<p>None.</p>
{{end}}{{end}}</body>
</html>
`))

// expectOf is the release's expected changes: the manifest's expect merged
// with what its steps declare, as stored at create, else the manifest's.
func expectOf(rec *controllerv1.ReleaseRecord, m *manifest.Manifest) manifest.Expect {
	if b := rec.GetExpectJson(); len(b) > 0 {
		var e manifest.Expect
		if err := json.Unmarshal(b, &e); err == nil {
			return e
		}
	}
	return m.Expect
}
