package diff

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"strings"
)

// htmlPage is one self-contained page: no scripts, no external resources.
// html/template escapes every value taken from the report.
var htmlPage = template.Must(template.New("diff").Funcs(template.FuncMap{
	"symbol":    symbol,
	"fieldList": fieldList,
	"describe": func(ch Change) []string {
		subject, detail := describe(ch)
		return []string{subject, detail}
	},
	"single":            func(f FieldChange) []FieldChange { return []FieldChange{f} },
	"orUnknown":         orUnknown,
	"hosts":             hosts,
	"join":              strings.Join,
	"notComparedDetail": notComparedDetail,
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Audit diff{{with hosts .}}: {{.}}{{end}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1b1b1b; }
h1 { font-size: 1.4rem; }
h2 { font-size: 1.1rem; margin-top: 1.8rem; font-family: ui-monospace, monospace; }
p.summary { font-weight: 600; }
p.meta { color: #555; }
p.notcomparable { color: #8a5300; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.25rem 0.6rem; border-bottom: 1px solid #ddd; vertical-align: top; }
td.key, td.details { font-family: ui-monospace, monospace; word-break: break-all; }
tr.added td.op { color: #116329; }
tr.removed td.op { color: #a40e26; }
tr.changed td.op, tr.replaced td.op { color: #7d4e00; }
tr.notcompared td { color: #8a5300; }
</style>
</head>
<body>
<h1>Audit diff{{with hosts .}}: {{.}}{{end}}</h1>
<p class="meta">Before {{orUnknown .Before.CollectedAt}}, after {{orUnknown .After.CollectedAt}}.</p>
<p class="summary">{{.Summary}}</p>
{{- range .Sections}}
{{- if .Skipped}}
{{- else if not .Comparable}}
<h2>{{.Name}}</h2>
<p class="notcomparable">Not comparable: {{.Reason}}</p>
{{- else if or .Changes .PathsNotCompared}}
<h2>{{.Name}}</h2>
<table>
<thead><tr><th></th><th>Change</th><th>Kind</th><th>Key</th><th>Details</th></tr></thead>
<tbody>
{{- range .Changes}}
{{- if eq .Kind ""}}
{{- $ch := .}}
{{- range .Fields}}
<tr class="{{$ch.Op}}"><td class="op">{{symbol $ch.Op}}</td><td>{{$ch.Verb}}</td><td></td><td class="key"></td><td class="details">{{fieldList (single .)}}</td></tr>
{{- end}}
{{- else}}
{{- $d := describe .}}
<tr class="{{.Op}}"><td class="op">{{symbol .Op}}</td><td>{{.Verb}}</td><td>{{.Kind}}</td><td class="key">{{index $d 0}}</td><td class="details">{{index $d 1}}</td></tr>
{{- end}}
{{- end}}
{{- range .PathsNotCompared}}
<tr class="notcompared"><td class="op">?</td><td>not compared</td><td>path</td><td class="key">{{.Path}}</td><td class="details">{{notComparedDetail .}}</td></tr>
{{- end}}
</tbody>
</table>
{{- end}}
{{- end}}
{{- with .Skipped}}
<p class="meta">Not collected in either audit: {{join . ", "}}.</p>
{{- end}}
</body>
</html>
`))

// WriteHTML writes r as one self-contained HTML page.
func WriteHTML(w io.Writer, r *Report) error {
	var b bytes.Buffer
	if err := htmlPage.Execute(&b, r); err != nil {
		return fmt.Errorf("render diff html: %w", err)
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write diff html: %w", err)
	}
	return nil
}
