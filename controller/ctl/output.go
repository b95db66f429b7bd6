package ctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-ops/cairn/internal/jsonyaml"
	"github.com/cairn-ops/cairn/internal/termsafe"
)

// Output formats.
const (
	formatTable    = "table"
	formatJSON     = "json"
	formatYAML     = "yaml"
	formatText     = "text"
	formatMarkdown = "markdown"
	formatHTML     = "html"
)

// listFormats are the formats of every listing.
var listFormats = []string{formatTable, formatJSON, formatYAML}

// format is a command's -o/--output flag and the values it accepts.
type format struct {
	name    string
	allowed []string
}

// addFormat adds -o/--output to cmd with a default and the allowed values.
func addFormat(cmd *cobra.Command, def string, allowed ...string) *format {
	f := &format{name: def, allowed: allowed}
	cmd.Flags().StringVarP(&f.name, "output", "o", def, "output format: "+orList(allowed))
	return f
}

// check refuses a format the command does not print. "md" is accepted
// for markdown.
func (f *format) check() error {
	if f.name == "md" && slices.Contains(f.allowed, formatMarkdown) {
		f.name = formatMarkdown
	}
	if !slices.Contains(f.allowed, f.name) {
		return usageErrorf("unknown output format %q: use %s", f.name, orList(f.allowed))
	}
	return nil
}

// orList renders "a, b or c".
func orList(xs []string) string {
	if len(xs) <= 1 {
		return strings.Join(xs, "")
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " or " + xs[len(xs)-1]
}

// protoJSON encodes m as indented JSON with the .proto field names. The
// indentation is redone with encoding/json because protojson varies its
// whitespace on purpose; this output is stable.
func protoJSON(m proto.Message, indent bool) ([]byte, error) {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", m.ProtoReflect().Descriptor().Name(), err)
	}
	var out bytes.Buffer
	if indent {
		err = json.Indent(&out, b, "", "  ")
	} else {
		err = json.Compact(&out, b)
	}
	if err != nil {
		return nil, fmt.Errorf("indent json: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// writeJSON writes m as indented JSON.
func writeJSON(w io.Writer, m proto.Message) error {
	b, err := protoJSON(m, true)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// writeYAML writes m as YAML with the same names and order as its JSON.
func writeYAML(w io.Writer, m proto.Message) error {
	b, err := protoJSON(m, false)
	if err != nil {
		return err
	}
	return jsonyaml.Write(w, b)
}

// printProto writes m as JSON or YAML, or calls table for the table format.
func printProto(w io.Writer, f *format, m proto.Message, table func(*table)) error {
	switch f.name {
	case formatJSON:
		return writeJSON(w, m)
	case formatYAML:
		return writeYAML(w, m)
	default:
		t := newTable(w)
		table(t)
		return t.flush()
	}
}

// table is a listing with aligned columns. Empty cells print as "-".
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer) *table {
	return &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
}

// row adds a row. A cell's tabs and newlines become spaces and what else
// a terminal would act on is escaped (internal/termsafe) before the
// columns are measured, so escaped cells still line up.
func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			c = "-"
		}
		cells[i] = termsafe.String(strings.NewReplacer("\t", " ", "\n", " ", "\r\n", " ").Replace(c))
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error {
	if err := t.tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// fileContent is what a report written to a file with --out holds: text
// and Markdown are for people, who read them in a terminal too, so they
// are escaped as standard output is; JSON and HTML are left as they are
// (JSON escapes control characters itself, HTML opens in a browser).
func fileContent(format string, content []byte) []byte {
	if format == formatText || format == formatMarkdown {
		return []byte(termsafe.String(string(content)))
	}
	return content
}

// kvList renders a map as "k=v,k2=v2", sorted by key.
func kvList(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

// ago renders an RFC 3339 time relative to now: "12s ago", "5m ago",
// "3h ago", "4d ago", or "in 2m" for a time ahead. An empty time is
// "never"; one that does not parse is shown as it is.
func ago(now time.Time, ts string) string {
	if ts == "" {
		return "never"
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return ts
	}
	d := now.Sub(t)
	if d < 0 {
		return "in " + short(-d)
	}
	return short(d) + " ago"
}

// short renders a duration in its largest whole unit: 12s, 5m, 3h, 4d.
func short(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	default:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
}

// enumName renders a proto enum value name like STATE_CONNECTED as
// "connected".
func enumName(s fmt.Stringer) string {
	name := s.String()
	if i := strings.Index(name, "_"); i >= 0 {
		name = name[i+1:]
	}
	return strings.ToLower(name)
}
