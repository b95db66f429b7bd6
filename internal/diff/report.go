package diff

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Change operations.
const (
	OpAdded    = "added"
	OpRemoved  = "removed"
	OpChanged  = "changed"
	OpReplaced = "replaced"
)

// Report is the difference between two audits. Its fields are exported and
// tagged so that the JSON encoding is the report's wire form.
type Report struct {
	// Summary is one line, e.g. "3 packages upgraded, 1 added; 1 disk
	// replaced", or "no changes".
	Summary string `json:"summary"`
	// Before and After identify the two audits.
	Before AuditInfo `json:"before"`
	After  AuditInfo `json:"after"`
	Counts Counts    `json:"counts"`
	// Sections lists every non-volatile section of the schema, in schema
	// order, whether it changed or not, including the skipped ones.
	Sections []Section `json:"sections"`
}

// AuditInfo identifies one side of a comparison.
type AuditInfo struct {
	Hostname    string `json:"hostname,omitempty"`
	CollectedAt string `json:"collected_at,omitempty"`
	ContentHash string `json:"content_hash,omitempty"`
}

// Counts totals the changes of a report by operation. A section-level
// change (fields directly on a section) counts as one change.
type Counts struct {
	Added         int `json:"added"`
	Removed       int `json:"removed"`
	Changed       int `json:"changed"`
	Replaced      int `json:"replaced"`
	NotComparable int `json:"not_comparable"`
	// PathsNotCompared counts the tracked paths only one audit tracked.
	PathsNotCompared int `json:"paths_not_compared,omitempty"`
}

// Section is the comparison of one section, e.g. "packages".
type Section struct {
	Name string `json:"name"`
	// Comparable is false when the section's collector did not succeed in
	// one or both audits; Reason then says which and why, and Changes is
	// empty.
	Comparable bool   `json:"comparable"`
	Reason     string `json:"reason,omitempty"`
	// Skipped is true (and Comparable false) when the section's collector
	// ran in neither audit, e.g. both were taken with `--collectors
	// packages`: the section is not part of the comparison, and is
	// neither a change nor "not comparable".
	Skipped bool `json:"skipped,omitempty"`
	// Changes are sorted by kind (in schema order), then key. A change
	// with an empty Kind is about fields directly on the section and comes
	// first.
	Changes []Change `json:"changes,omitempty"`
	// PathsNotCompared (files only) are the tracked paths only one of the
	// audits tracked, sorted by path: neither changed nor unchanged.
	PathsNotCompared []PathNotCompared `json:"paths_not_compared,omitempty"`
}

// Change is one item added, removed, changed or replaced, or (with an
// empty Kind and Key) a change of fields directly on the section.
type Change struct {
	// Op is one of OpAdded, OpRemoved, OpChanged, OpReplaced.
	Op string `json:"op"`
	// Verb says what happened in words used by the summary: the Op, or a
	// more specific word such as "upgraded", "downgraded", "enabled".
	Verb string `json:"verb"`
	// Kind is the item's message name in snake_case, e.g. "package".
	Kind string `json:"kind,omitempty"`
	// Key is the item's key (for a replacement, the new item's key).
	Key string `json:"key,omitempty"`
	// OldKey is the replaced item's key.
	OldKey string `json:"old_key,omitempty"`
	// Match is the value that paired a replacement, e.g. the disk's
	// device name.
	Match string `json:"match,omitempty"`
	// Fields lists the differing fields of a changed or replaced item.
	Fields []FieldChange `json:"fields,omitempty"`
	// Item holds the non-empty scalar fields of an added, removed or
	// replaced (the new) item, in schema order.
	Item Attrs `json:"item,omitempty"`
}

// FieldChange is one differing field. Field is a path relative to the item
// (or section): "version", "partitions[sda1].size_bytes". For a nested
// keyed item that exists on one side only, the other side is empty and the
// present side is the item's attributes, rendered "{name=sda2 ...}".
type FieldChange struct {
	Field string `json:"field"`
	Old   string `json:"old"`
	New   string `json:"new"`
}

// Attr is one field of an item, formatted as a string.
type Attr struct {
	Field string
	Value string
}

// Attrs are an item's fields in schema order. They encode to JSON as an
// object whose keys keep that order.
type Attrs []Attr

// Get returns the value of field, "" when absent.
func (a Attrs) Get(field string) string {
	for _, at := range a {
		if at.Field == field {
			return at.Value
		}
	}
	return ""
}

// MarshalJSON encodes a as a JSON object in field order.
func (a Attrs) MarshalJSON() ([]byte, error) {
	if a == nil {
		return []byte("null"), nil
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, at := range a {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := writeJSONString(&b, at.Field); err != nil {
			return nil, err
		}
		b.WriteByte(':')
		if err := writeJSONString(&b, at.Value); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeJSONString(b *bytes.Buffer, s string) error {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("encode %q: %w", s, err)
	}
	b.Truncate(b.Len() - 1) // Encode appends a newline
	return nil
}

// UnmarshalJSON decodes a JSON object of strings, keeping its key order.
func (a *Attrs) UnmarshalJSON(data []byte) error {
	if string(bytes.TrimSpace(data)) == "null" {
		*a = nil
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fmt.Errorf("decode item attributes: want a JSON object")
	}
	out := Attrs{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("decode item attributes: %w", err)
		}
		field, _ := tok.(string)
		var value string
		if err := dec.Decode(&value); err != nil {
			return fmt.Errorf("decode item attribute %q: %w", field, err)
		}
		out = append(out, Attr{Field: field, Value: value})
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("decode item attributes: %w", err)
	}
	*a = out
	return nil
}

// HasChanges reports whether any comparable section changed. Sections that
// are not comparable do not count; see NotComparable.
func (r *Report) HasChanges() bool {
	for _, s := range r.Sections {
		if len(s.Changes) > 0 {
			return true
		}
	}
	return false
}

// NotComparable returns the names of the sections that could not be
// compared, in schema order. Skipped sections are not among them.
func (r *Report) NotComparable() []string {
	var names []string
	for _, s := range r.Sections {
		if !s.Comparable && !s.Skipped {
			names = append(names, s.Name)
		}
	}
	return names
}

// PathsNotCompared returns the tracked paths only one of the audits
// tracked, in section order, then by path. They are not changes; like a
// section that is not comparable, they mean the comparison is not
// complete.
func (r *Report) PathsNotCompared() []PathNotCompared {
	var out []PathNotCompared
	for _, s := range r.Sections {
		out = append(out, s.PathsNotCompared...)
	}
	return out
}

// Complete reports whether everything either audit recorded was compared:
// no section is not comparable and no tracked path was tracked by only
// one audit. Skipped sections (collected in neither) do not count.
func (r *Report) Complete() bool {
	return len(r.NotComparable()) == 0 && len(r.PathsNotCompared()) == 0
}

// Skipped returns the names of the sections collected in neither audit, in
// schema order.
func (r *Report) Skipped() []string {
	var names []string
	for _, s := range r.Sections {
		if s.Skipped {
			names = append(names, s.Name)
		}
	}
	return names
}

// SameHost reports whether the two audits are of the same host: true when
// their hostnames are equal or either is unknown. Callers warn when it is
// false; the comparison itself does not depend on it.
func (r *Report) SameHost() bool {
	b, a := r.Before.Hostname, r.After.Hostname
	return b == "" || a == "" || b == a
}
