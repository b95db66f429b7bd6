package diff

import (
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/cairn-ops/cairn/internal/audit"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// Compare answers "what changed between two audits": how after differs
// from before. Tracked files are compared where both audits tracked them;
// a path only one of them tracked is listed in the files section's
// PathsNotCompared, never as added, removed or unchanged. Either audit
// may be nil; a nil audit has no collectors, so every section collected
// in the other audit is not comparable (and every other section
// skipped).
//
// Whether a change is what a release declared is internal/compare's
// question (compare.Classify), asked of this answer.
func Compare(before, after *inventoryv1.Audit) *Report {
	before, after, notCompared := commonFiles(before, after)
	r := &Report{
		Before:   info(before),
		After:    info(after),
		Sections: make([]Section, 0, len(audit.Sections)),
	}
	for _, s := range audit.Sections {
		if s.Volatile {
			continue
		}
		sec := compareSection(s, before, after)
		if s.Name == filesSection && sec.Comparable {
			sec.PathsNotCompared = notCompared
		}
		r.Sections = append(r.Sections, sec)
	}
	r.Counts = count(r.Sections)
	r.Summary = summarize(r.Sections)
	return r
}

func info(a *inventoryv1.Audit) AuditInfo {
	return AuditInfo{
		Hostname:    a.GetOs().GetHostname(),
		CollectedAt: a.GetHeader().GetCollectedAt(),
		ContentHash: a.GetHashes().GetContent(),
	}
}

// filesSection is the section of tracked files, the one whose two sides
// can track different paths.
const filesSection = "files"

// notCollected is the Reason of a skipped section.
const notCollected = "not collected in either audit"

func compareSection(s audit.Section, before, after *inventoryv1.Audit) Section {
	if audit.Status(before, s.Name) == nil && audit.Status(after, s.Name) == nil {
		return Section{Name: s.Name, Reason: notCollected, Skipped: true}
	}
	sec := Section{Name: s.Name, Comparable: true}
	okBefore, okAfter := audit.Comparable(before, s.Name), audit.Comparable(after, s.Name)
	if !okBefore || !okAfter {
		sec.Comparable = false
		var reasons []string
		if !okBefore {
			reasons = append(reasons, "before: "+statusReason(audit.Status(before, s.Name)))
		}
		if !okAfter {
			reasons = append(reasons, "after: "+statusReason(audit.Status(after, s.Name)))
		}
		sec.Reason = strings.Join(reasons, "; ")
		return sec
	}
	hb := before.GetHashes().GetSections()[s.Name]
	if hb != "" && hb == after.GetHashes().GetSections()[s.Name] {
		return sec
	}
	sec.Changes = diffSection(s.Get(before), s.Get(after))
	return sec
}

// statusReason says why a collector status does not make its section
// comparable.
func statusReason(st *inventoryv1.CollectorStatus) string {
	if st == nil {
		return "collector did not run"
	}
	var why string
	switch st.GetState() {
	case inventoryv1.CollectorStatus_STATE_ERROR:
		why = "collector error"
	case inventoryv1.CollectorStatus_STATE_TIMEOUT:
		why = "collector timed out"
	case inventoryv1.CollectorStatus_STATE_OK:
		why = "collector ok" // not reached: OK is comparable
	default:
		why = "collector state unknown"
	}
	if msg := st.GetMessage(); msg != "" {
		why += ": " + msg
	}
	return why
}

// diffSection compares two messages of one section. Either may be nil
// (the audit lacks the section although its collector succeeded): it then
// compares as the empty message.
func diffSection(before, after proto.Message) []Change {
	switch {
	case before == nil && after == nil:
		return nil
	case before == nil:
		before = after.ProtoReflect().Type().Zero().Interface()
	case after == nil:
		after = before.ProtoReflect().Type().Zero().Interface()
	}
	var w sectionWalker
	w.walk("", before.ProtoReflect(), after.ProtoReflect())
	var out []Change
	if len(w.fields) > 0 {
		out = append(out, Change{Op: OpChanged, Verb: OpChanged, Fields: w.fields})
	}
	return append(out, w.items...)
}

func count(sections []Section) Counts {
	var c Counts
	for _, s := range sections {
		if !s.Comparable && !s.Skipped {
			c.NotComparable++
		}
		c.PathsNotCompared += len(s.PathsNotCompared)
		for _, ch := range s.Changes {
			switch ch.Op {
			case OpAdded:
				c.Added++
			case OpRemoved:
				c.Removed++
			case OpChanged:
				c.Changed++
			case OpReplaced:
				c.Replaced++
			}
		}
	}
	return c
}
