// Package compare is the three-way comparison at the heart of a rollout:
// a node's audit before the deployment, its audit after, and the changes
// the release declared (internal/manifest.Expect). Every declared
// expectation is expected (it holds afterwards) or missing (it does not);
// every observed change no expectation or allow pattern covers is
// unexpected. Hardware is included.
package compare

import (
	"github.com/cairn-ops/cairn/internal/diff"
	"github.com/cairn-ops/cairn/internal/manifest"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// Classes of an Item.
const (
	Expected   = "expected"
	Missing    = "missing"
	Unexpected = "unexpected"
	// Allowed is an observed change an allow pattern covers.
	Allowed = "allowed"
)

// Item is one classified expectation or observed change.
type Item struct {
	Class string `json:"class"`
	// Section is the audit section: packages, files, services, memory,
	// block, ...
	Section string `json:"section"`
	// Key is the item's key in the section (package name, path, unit).
	Key string `json:"key,omitempty"`
	// What says it in words: "package webshop upgraded 2.3.1 → 2.4.0",
	// "file /etc/webshop.conf: absent, expected present".
	What string `json:"what"`
	// Expectation is the declared expectation the item is about, in
	// words ("package webshop present >= 2.4.0"); empty for unexpected.
	Expectation string `json:"expectation,omitempty"`
	// DeclaredBy is the expectation's DeclaredBy (the step whose plugin
	// declared it), when it has one.
	DeclaredBy string `json:"declared_by,omitempty"`
	// Change is the observed change, when there is one.
	Change *diff.Change `json:"change,omitempty"`
}

// Result is the comparison of one node.
type Result struct {
	// Summary is one line: "3 expected, 1 missing, 2 unexpected".
	Summary    string `json:"summary"`
	Expected   []Item `json:"expected,omitempty"`
	Missing    []Item `json:"missing,omitempty"`
	Unexpected []Item `json:"unexpected,omitempty"`
	Allowed    []Item `json:"allowed,omitempty"`
	// NotComparable lists sections whose collector failed in either
	// audit, with the reason; a node with any is not proven.
	NotComparable []string `json:"not_comparable,omitempty"`
	// Diff is the full before/after diff the items were drawn from.
	Diff *diff.Report `json:"diff"`
}

// OK reports whether nothing is missing, unexpected or not comparable.
func (r *Result) OK() bool {
	return len(r.Missing) == 0 && len(r.Unexpected) == 0 && len(r.NotComparable) == 0
}

// Classify compares before and after against exp. components maps a
// release component's name to its sha256, for file expectations that
// name an artifact.
func Classify(before, after *inventoryv1.Audit, exp manifest.Expect, components map[string]string) *Result {
	panic("compare.Classify: not implemented yet")
}
