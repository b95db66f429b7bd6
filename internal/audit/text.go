package audit

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cairn-ops/cairn/internal/bytesize"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// TextOptions tunes WriteText.
type TextOptions struct {
	// Summary prints one line per section (counts) instead of every item.
	Summary bool
}

// WriteText writes a for people: a header, the collector statuses, then
// every section with one line per item. The layout is generic over the
// schema, so a field added to the .proto shows up without code here.
func WriteText(w io.Writer, a *inventoryv1.Audit, opts TextOptions) error {
	bw := bufio.NewWriter(w)
	h := a.GetHeader()
	os := a.GetOs()
	fmt.Fprintf(bw, "audit of %s", h.GetRoot())
	if os.GetHostname() != "" {
		fmt.Fprintf(bw, " (host %s)", os.GetHostname())
	}
	if os.GetPrettyName() != "" {
		fmt.Fprintf(bw, ", %s", os.GetPrettyName())
	}
	fmt.Fprintf(bw, "\ncollected %s by cairn-agent %s in %d ms\n", h.GetCollectedAt(), h.GetAgentVersion(), h.GetDurationMs())
	fmt.Fprintf(bw, "content sha256 %s\n", a.GetHashes().GetContent())

	failed := 0
	for _, c := range a.GetCollectors() {
		if c.GetState() != inventoryv1.CollectorStatus_STATE_OK {
			failed++
		}
	}
	fmt.Fprintf(bw, "collectors: %d ok, %d failed\n", len(a.GetCollectors())-failed, failed)
	for _, c := range a.GetCollectors() {
		if opts.Summary && c.GetState() == inventoryv1.CollectorStatus_STATE_OK && len(c.GetWarnings()) == 0 {
			continue
		}
		line := fmt.Sprintf("  %-15s %-8s %9s  %s", c.GetName(), StateName(c.GetState()),
			(time.Duration(c.GetDurationUs()) * time.Microsecond).String(), oneLine(c.GetMessage()))
		fmt.Fprintln(bw, strings.TrimRight(line, " "))
		for _, warn := range c.GetWarnings() {
			fmt.Fprintf(bw, "  %-15s warning: %s\n", "", oneLine(warn))
		}
	}

	for _, s := range Sections {
		m := s.Get(a)
		if m == nil {
			continue
		}
		if opts.Summary {
			fmt.Fprintln(bw, strings.TrimRight(fmt.Sprintf("[%s] %s", s.Name, summarize(m.ProtoReflect())), " "))
			continue
		}
		fmt.Fprintf(bw, "\n[%s]", s.Name)
		bw.WriteString("\n")
		writeMessage(bw, m.ProtoReflect(), "  ")
	}
	return bw.Flush()
}

// StateName is the short lowercase name of a collector state: ok, error, timeout.
func StateName(s inventoryv1.CollectorStatus_State) string {
	name := strings.TrimPrefix(s.String(), "STATE_")
	return strings.ToLower(name)
}

// summarize describes a section in one line: its scalar fields and the
// length of each list.
func summarize(m protoreflect.Message) string {
	var parts []string
	if line := scalars(m); line != "" {
		parts = append(parts, line)
	}
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.IsList() && fd.Message() != nil {
			parts = append(parts, fmt.Sprintf("%d %s", m.Get(fd).List().Len(), fd.Name()))
		}
	}
	return strings.Join(parts, "  ")
}

// writeMessage prints m's scalars on one line, then each list of items
// with one line per item, nested lists indented further.
func writeMessage(w *bufio.Writer, m protoreflect.Message, indent string) {
	if line := scalars(m); line != "" {
		fmt.Fprintf(w, "%s%s\n", indent, line)
	}
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		switch {
		case fd.IsList() && fd.Message() != nil:
			list := m.Get(fd).List()
			fmt.Fprintf(w, "%s%s (%d)\n", indent, fd.Name(), list.Len())
			for j := 0; j < list.Len(); j++ {
				writeItem(w, list.Get(j).Message(), indent+"  ")
			}
		case fd.Message() != nil && !fd.IsMap() && m.Has(fd):
			fmt.Fprintf(w, "%s%s\n", indent, fd.Name())
			writeMessage(w, m.Get(fd).Message(), indent+"  ")
		}
	}
}

func writeItem(w *bufio.Writer, item protoreflect.Message, indent string) {
	key := ""
	if fd := item.Descriptor().Fields().ByName("key"); fd != nil {
		key = item.Get(fd).String()
	}
	fmt.Fprintln(w, strings.TrimRight(indent+key+"  "+scalars(item), " "))
	fields := item.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.IsList() && fd.Message() != nil {
			list := item.Get(fd).List()
			for j := 0; j < list.Len(); j++ {
				writeItem(w, list.Get(j).Message(), indent+"    ")
			}
		}
	}
}

// scalars renders the set scalar fields of m as field=value, leaving out
// the key and fields that only repeat it.
func scalars(m protoreflect.Message) string {
	var parts []string
	fields := m.Descriptor().Fields()
	var key *protoreflect.Value
	if fd := fields.ByName("key"); fd != nil && m.Has(fd) {
		v := m.Get(fd)
		key = &v
	}
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.Name() == "key" || fd.Message() != nil || !m.Has(fd) {
			continue
		}
		if key != nil && !fd.IsList() && fd.Kind() == protoreflect.StringKind && m.Get(fd).String() == key.String() {
			continue // the key already says it (a package's name, a disk's path)
		}
		parts = append(parts, string(fd.Name())+"="+FormatValue(fd, m.Get(fd)))
	}
	return strings.Join(parts, " ")
}

// FormatValue renders a scalar or scalar-list field value for text
// output, quoting strings that contain spaces or are empty.
func FormatValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	if fd.IsList() {
		list := v.List()
		items := make([]string, list.Len())
		for i := range items {
			items[i] = formatScalar(fd, list.Get(i))
		}
		return "[" + strings.Join(items, ",") + "]"
	}
	return formatScalar(fd, v)
}

// oneLine keeps a message on one line of text output.
func oneLine(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ")
}

func formatScalar(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	switch fd.Kind() {
	case protoreflect.StringKind:
		s := v.String()
		if s == "" || strings.ContainsAny(s, " \t\n\"=") {
			return strconv.Quote(s)
		}
		return s
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return strconv.Itoa(int(v.Enum()))
	case protoreflect.DoubleKind, protoreflect.FloatKind:
		return strconv.FormatFloat(v.Float(), 'f', -1, 64)
	case protoreflect.Uint64Kind, protoreflect.Uint32Kind:
		if strings.HasSuffix(string(fd.Name()), "_bytes") {
			return strings.ReplaceAll(bytesize.Format(v.Uint()), " ", "")
		}
		return v.String()
	default:
		return v.String()
	}
}
