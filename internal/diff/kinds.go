package diff

import (
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cairn-ops/cairn/internal/pkgversion"
)

// This file holds what the diff knows about particular kinds of item. None
// of it is needed to find changes; it only names them better.

// replaceBy names, per kind, the field that says where an item sits. A
// removed and an added item with the same value there were replaced: a new
// disk in the same device slot, a new DIMM in the same memory slot, a new
// card behind the same interface name.
var replaceBy = map[string]protoreflect.Name{
	"disk":          "name",
	"memory_module": "slot",
	"nic":           "name",
}

// briefFields names, per kind, the fields that describe an added or
// removed item in one short line. Other kinds show all their fields.
var briefFields = map[string][]string{
	"package":       {"name", "version", "architecture"},
	"disk":          {"name", "model", "serial", "size_bytes"},
	"memory_module": {"slot", "size_bytes", "part_number"},
	"nic":           {"name", "mac", "driver"},
	"pci_device":    {"vendor_name", "product_name", "driver"},
	"service":       {"unit_file_state", "active_state"},
}

// replaceField returns the field of md that pairs replacements of kind,
// nil when the kind has none.
func replaceField(kind string, md protoreflect.MessageDescriptor) protoreflect.FieldDescriptor {
	name, ok := replaceBy[kind]
	if !ok {
		return nil
	}
	fd := md.Fields().ByName(name)
	if fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsList() {
		return nil
	}
	return fd
}

// changeVerb names the change from item a to item b of kind.
func changeVerb(kind string, a, b protoreflect.Message) string {
	switch kind {
	case "package":
		return packageVerb(a, b)
	case "service":
		return serviceVerb(a, b)
	}
	return OpChanged
}

// stringField returns m's string field name, "" when m has no such field.
func stringField(m protoreflect.Message, name protoreflect.Name) string {
	fd := m.Descriptor().Fields().ByName(name)
	if fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsList() {
		return ""
	}
	return m.Get(fd).String()
}

// packageVerb is "upgraded" or "downgraded" when the version changed, in
// dpkg's order. rpm's and apk's orderings agree with it on ordinary
// versions (numeric runs compared as numbers, "~" before release), which
// a plain string comparison does not.
func packageVerb(a, b protoreflect.Message) string {
	va, vb := stringField(a, "version"), stringField(b, "version")
	if va == vb {
		return OpChanged
	}
	switch c := pkgversion.Compare(va, vb); {
	case c < 0:
		return "upgraded"
	case c > 0:
		return "downgraded"
	}
	return OpChanged
}

// serviceVerb is the new unit file state when it changed ("enabled",
// "disabled", "masked", ...), else what the active state change means.
func serviceVerb(a, b protoreflect.Message) string {
	if sa, sb := stringField(a, "unit_file_state"), stringField(b, "unit_file_state"); sa != sb {
		if sb == "" {
			return OpChanged
		}
		return sb
	}
	if sa, sb := stringField(a, "active_state"), stringField(b, "active_state"); sa != sb {
		switch sb {
		case "active":
			return "started"
		case "inactive":
			return "stopped"
		case "failed":
			return "failed"
		}
	}
	return OpChanged
}

// brief describes an added or removed item in one short line: the values
// of its kind's brief fields, or every field as name=value. Sizes are in
// IEC units.
func brief(kind string, item Attrs) string {
	var parts []string
	for _, f := range briefFields[kind] {
		if v := item.Get(f); v != "" {
			parts = append(parts, display(humanValue(f, v)))
		}
	}
	if len(parts) == 0 {
		for _, at := range item {
			parts = append(parts, at.Field+"="+display(humanValue(at.Field, at.Value)))
		}
	}
	return strings.Join(parts, " ")
}

// plural is the plural of a kind for the summary, in words: "memory
// modules", "pci devices", "processes".
func plural(kind string, n int) string {
	words := strings.ReplaceAll(kind, "_", " ")
	if n == 1 {
		return words
	}
	switch {
	case strings.HasSuffix(words, "s"), strings.HasSuffix(words, "x"),
		strings.HasSuffix(words, "ch"), strings.HasSuffix(words, "sh"):
		return words + "es"
	case strings.HasSuffix(words, "y") && len(words) > 1 && !strings.ContainsRune("aeiou", rune(words[len(words)-2])):
		return words[:len(words)-1] + "ies"
	}
	return words + "s"
}
