package compare

import (
	"strconv"
	"strings"
	"unicode"

	"github.com/cairn-ops/cairn/internal/bytesize"
	"github.com/cairn-ops/cairn/internal/diff"
)

// detailFields names, per kind, the fields that describe an added or
// removed item in a few words; other kinds show their first fields.
var detailFields = map[string][]string{
	"package":       {"version"},
	"disk":          {"model", "serial", "size_bytes"},
	"memory_module": {"size_bytes", "part_number", "serial"},
	"nic":           {"mac", "driver"},
	"pci_device":    {"vendor_name", "product_name", "driver"},
	"graphics_card": {"vendor", "product"},
	"processor":     {"model"},
	"service":       {"unit_file_state", "active_state"},
	"file":          {"type", "mode", "sha256"},
	"kernel_module": {"state"},
}

// maxDetailFields bounds the fields shown for a kind detailFields does
// not know.
const maxDetailFields = 3

// Describe says an observed change of section in words: "package curl
// added (7.88.1)", "package webshop upgraded 2.3.1 → 2.4.0", "disk sda
// replaced: serial S2 → S3", "memory module DIMM_B1 added (8 GiB)",
// "hardware.memory changed: total_bytes 16 GiB → 24 GiB".
func Describe(section string, ch diff.Change) string {
	if ch.Kind == "" {
		return section + " changed: " + fieldWords(ch.Fields)
	}
	subject := strings.ReplaceAll(ch.Kind, "_", " ") + " " + display(identity(ch))
	switch ch.Op {
	case diff.OpAdded, diff.OpRemoved:
		s := subject + " " + ch.Verb
		if d := itemWords(ch.Kind, ch.Item); d != "" {
			s += " (" + d + ")"
		}
		return s
	case diff.OpReplaced:
		s := subject + " replaced"
		if len(ch.Fields) > 0 {
			s += ": " + fieldWords(ch.Fields)
		}
		return s
	}
	if ch.Kind == "package" && len(ch.Fields) == 1 && ch.Fields[0].Field == "version" {
		f := ch.Fields[0]
		return subject + " " + ch.Verb + " " + value(f.Field, f.Old) + " → " + value(f.Field, f.New)
	}
	return subject + " " + ch.Verb + ": " + fieldWords(ch.Fields)
}

// identity names the item of a change the way people do: a package by
// its name, a memory module by its slot, a disk or NIC by its name, a
// replacement by the place it happened; anything else by its key.
func identity(ch diff.Change) string {
	if ch.Op == diff.OpReplaced && ch.Match != "" {
		return ch.Match
	}
	switch ch.Kind {
	case "package":
		return packageName(ch)
	case "memory_module":
		if s := ch.Item.Get("slot"); s != "" {
			return s
		}
	case "disk", "nic":
		if s := ch.Item.Get("name"); s != "" {
			return s
		}
	}
	return ch.Key
}

// itemWords lists an added or removed item's describing fields.
func itemWords(kind string, item diff.Attrs) string {
	var parts []string
	if names, ok := detailFields[kind]; ok {
		for _, f := range names {
			if v := item.Get(f); v != "" {
				v = value(f, v)
				if f == "sha256" {
					v = "sha256 " + v
				}
				parts = append(parts, v)
			}
		}
		return strings.Join(parts, " ")
	}
	for _, at := range item[:min(len(item), maxDetailFields)] {
		parts = append(parts, at.Field+"="+value(at.Field, at.Value))
	}
	return strings.Join(parts, " ")
}

// fieldWords lists field changes as "field old → new, ...".
func fieldWords(fields []diff.FieldChange) string {
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = display(f.Field) + " " + value(f.Field, f.Old) + " → " + value(f.Field, f.New)
	}
	return strings.Join(parts, ", ")
}

// value shows a field's value: "(none)" when empty, a byte count of a
// "_bytes" field in IEC units, a digest shortened, otherwise as is (quoted
// when it would not print plainly).
func value(field, v string) string {
	if v == "" {
		return "(none)"
	}
	if strings.HasSuffix(field, "_bytes") {
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			return bytesize.Format(n)
		}
	}
	if strings.HasSuffix(field, "sha256") {
		return short(v)
	}
	return display(v)
}

// display quotes v when it is empty, has surrounding space or characters
// that would not print, so a hostile name cannot break a report's layout.
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
