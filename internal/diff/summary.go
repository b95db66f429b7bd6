package diff

import (
	"slices"
	"strconv"
	"strings"
)

// verbRank orders the verbs within one kind's part of the summary; verbs
// not listed come after these, alphabetically, and "changed" comes last.
var verbRank = map[string]int{
	"upgraded":   0,
	"downgraded": 1,
	OpAdded:      2,
	OpRemoved:    3,
	OpReplaced:   4,
	OpChanged:    6,
}

func rank(verb string) int {
	if r, ok := verbRank[verb]; ok {
		return r
	}
	return 5
}

// maxSummaryFields is how many field names the summary lists for a
// section-level change before it says "and N more".
const maxSummaryFields = 3

// summarize writes the report's one-line summary: the changes grouped by
// kind in schema order, e.g. "3 packages upgraded, 1 added; 1 disk
// replaced", then the sections that changed on their own fields ("memory
// total_bytes, usable_bytes changed"), then the sections that could not be
// compared, then the tracked paths only one audit tracked ("1 tracked path
// not compared: /etc/x"). Without changes it never says only "no changes"
// when something was not compared. Skipped sections are not mentioned.
func summarize(sections []Section) string {
	type group struct {
		kind  string
		verbs map[string]int
	}
	var (
		groups        []*group
		byKind        = map[string]*group{}
		sectionLevel  []string
		notComparable []string
		notCompared   []PathNotCompared
		comparable    bool
	)
	for _, s := range sections {
		if s.Skipped {
			continue
		}
		if !s.Comparable {
			notComparable = append(notComparable, s.Name)
			continue
		}
		comparable = true
		notCompared = append(notCompared, s.PathsNotCompared...)
		for _, ch := range s.Changes {
			if ch.Kind == "" {
				sectionLevel = append(sectionLevel, sectionFields(s.Name, ch.Fields))
				continue
			}
			g := byKind[ch.Kind]
			if g == nil {
				g = &group{kind: ch.Kind, verbs: map[string]int{}}
				byKind[ch.Kind] = g
				groups = append(groups, g)
			}
			g.verbs[ch.Verb]++
		}
	}
	var parts []string
	for _, g := range groups {
		verbs := make([]string, 0, len(g.verbs))
		for v := range g.verbs {
			verbs = append(verbs, v)
		}
		slices.SortFunc(verbs, func(a, b string) int {
			if ra, rb := rank(a), rank(b); ra != rb {
				return ra - rb
			}
			return strings.Compare(a, b)
		})
		var b strings.Builder
		for i, v := range verbs {
			n := g.verbs[v]
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Itoa(n))
			if i == 0 {
				b.WriteString(" " + plural(g.kind, n))
			}
			b.WriteString(" " + v)
		}
		parts = append(parts, b.String())
	}
	parts = append(parts, sectionLevel...)
	nc := strings.Join(notComparable, ", ") + " not comparable"
	switch {
	case !comparable && len(notComparable) > 0:
		return "nothing to compare: " + nc
	case !comparable:
		return "nothing to compare"
	case len(parts) == 0 && len(notComparable) > 0:
		parts = append(parts, "no changes in the comparable sections")
	case len(parts) == 0 && len(notCompared) > 0:
		parts = append(parts, "no changes where both audits looked")
	case len(parts) == 0:
		parts = append(parts, "no changes")
	}
	if len(notComparable) > 0 {
		parts = append(parts, nc)
	}
	if len(notCompared) > 0 {
		parts = append(parts, pathsNotCompared(notCompared))
	}
	return strings.Join(parts, "; ")
}

// maxSummaryPaths is how many paths the summary names before it says
// "and N more".
const maxSummaryPaths = 3

// pathsNotCompared says which tracked paths were not compared: "1 tracked
// path not compared: /etc/x", "5 tracked paths not compared: /a, /b, /c
// and 2 more".
func pathsNotCompared(nc []PathNotCompared) string {
	names := make([]string, 0, min(len(nc), maxSummaryPaths))
	for _, p := range nc[:min(len(nc), maxSummaryPaths)] {
		names = append(names, display(p.Path))
	}
	s := strconv.Itoa(len(nc)) + " " + plural("tracked path", len(nc)) + " not compared: " + strings.Join(names, ", ")
	if n := len(nc) - maxSummaryPaths; n > 0 {
		s += " and " + strconv.Itoa(n) + " more"
	}
	return s
}

// sectionFields says which fields directly on a section changed: the
// section's short name (the last part of "hardware.memory") and up to
// maxSummaryFields field names, e.g. "memory total_bytes, usable_bytes
// changed" or "os hostname, id, version_id and 2 more changed".
func sectionFields(section string, fields []FieldChange) string {
	short := section[strings.LastIndexByte(section, '.')+1:]
	names := make([]string, 0, min(len(fields), maxSummaryFields))
	for _, f := range fields[:min(len(fields), maxSummaryFields)] {
		names = append(names, display(f.Field))
	}
	s := short + " " + strings.Join(names, ", ")
	if n := len(fields) - maxSummaryFields; n > 0 {
		s += " and " + strconv.Itoa(n) + " more"
	}
	return s + " changed"
}
