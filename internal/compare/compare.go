// Package compare is the three-way comparison at the heart of a rollout:
// a node's audit before the deployment, its audit after, and the changes
// the release declared (internal/manifest.Expect). Every declared
// expectation is expected (it holds afterwards) or missing (it does not);
// every observed change no expectation or allow pattern covers is
// unexpected. Hardware is included.
//
// # Expectations
//
// Each expectation is checked against the after audit alone: a package
// present (at a version constraint, for every installed architecture) or
// absent, under any package manager; a file present with a sha256, or
// with the digest of a release component; a unit's unit-file state
// (enabled, disabled, masked) or run state (active, inactive); a
// hardware fact. An expectation that holds is expected whether or not
// the deployment changed anything ("already present"); one that does not
// is missing, and says what was found instead. An expectation on a
// section the after audit could not collect is missing.
//
// Hardware facts read the after audit: memory.total_bytes is the
// physical memory; cpu.count the logical CPUs (threads, else cores, else
// sockets); disk.count the disks; disk.model, nic.model and gpu.model
// match when a disk's vendor and model, a NIC's PCI vendor and product
// name (or its driver), or a graphics card's vendor and product contain
// the value, ignoring case.
//
// # Observed changes
//
// Every change of diff.Compare(before, after) is attached to the
// expectations it concerns: a package's changes (by name) to the
// package's expectation, a path's to its file expectation (with the
// directories above it that were created for it or only grew), a unit's to
// its service expectations, and the changes of a hardware section to the
// facts about that section (NIC and GPU facts also take the PCI device
// behind the NIC or card). A change no expectation concerns is allowed
// when an Allow pattern (path.Match) matches "section/key": the key with
// its leading slash dropped, so "files/var/cache/webshop/*" matches the
// file /var/cache/webshop/index; packages also as "packages/MANAGER/NAME"
// and "packages/NAME" ("packages/dpkg/libfoo*", "packages/libfoo*"); an
// added or removed item also by its name or slot; a replaced item also by
// its old key and its place ("hardware.block/sda"); a change of fields
// directly on a section by "section/field" for every field changed
// ("os/kernel_release"). Anything else is unexpected.
//
// Sections whose collector failed in either audit are not comparable:
// their changes are unknown, and a result with any is not OK.
package compare

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/cairn-ops/cairn/internal/audit"
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
	// Section is the audit section: packages, files, services,
	// hardware.memory, hardware.block, ...
	Section string `json:"section"`
	// Key is the item's key in the section (package name, path, unit,
	// hardware fact, or an observed change's key).
	Key string `json:"key,omitempty"`
	// What says it in words: "package webshop upgraded 2.3.1 → 2.4.0",
	// "file /etc/webshop.conf absent".
	What string `json:"what"`
	// Expectation is the declared expectation the item is about, in
	// words ("package webshop present >= 2.4.0"); empty for unexpected.
	Expectation string `json:"expectation,omitempty"`
	// DeclaredBy is the expectation's DeclaredBy (the step whose plugin
	// declared it), when it has one.
	DeclaredBy string `json:"declared_by,omitempty"`
	// Change is the observed change, when there is one.
	Change *diff.Change `json:"change,omitempty"`
	// MoreChanges are further observed changes the same expectation
	// covers (a hardware fact can cover several), in diff order.
	MoreChanges []diff.Change `json:"more_changes,omitempty"`
}

// Result is the comparison of one node.
type Result struct {
	// Summary is one line: "3 expected, 1 missing, 2 unexpected", then
	// ", 1 allowed" and ", 1 not comparable" when there are any.
	Summary    string `json:"summary"`
	Expected   []Item `json:"expected,omitempty"`
	Missing    []Item `json:"missing,omitempty"`
	Unexpected []Item `json:"unexpected,omitempty"`
	Allowed    []Item `json:"allowed,omitempty"`
	// NotComparable lists sections whose collector failed in either
	// audit, with the reason ("services: after: collector error: ...");
	// a node with any is not proven.
	NotComparable []string `json:"not_comparable,omitempty"`
	// Diff is the full before/after diff the items were drawn from.
	Diff *diff.Report `json:"diff"`
}

// OK reports whether nothing is missing, unexpected or not comparable.
func (r *Result) OK() bool {
	return len(r.Missing) == 0 && len(r.Unexpected) == 0 && len(r.NotComparable) == 0
}

// Counts returns how many items are expected, missing and unexpected.
func (r *Result) Counts() (expected, missing, unexpected int) {
	return len(r.Expected), len(r.Missing), len(r.Unexpected)
}

// observed is one change of the diff and whether an expectation covers
// it.
type observed struct {
	section string
	change  diff.Change
	covered bool
}

// expectation is one declared expectation, checked against the after
// audit: item is its Expected or Missing item as if nothing had changed
// ("already present"), concerns says whether an observed change is about
// it. An expected item with changes says held instead, or, when describe
// is set and there is one change, what the change was ("package webshop
// upgraded 2.3.1 → 2.4.0").
type expectation struct {
	item     Item
	concerns func(section string, ch diff.Change) bool
	held     string
	describe bool
}

// Classify answers "is this change what the release declared": it
// classifies what changed from before to after (diff.Compare) against
// exp. components maps a release component's name to its sha256, for
// file expectations that name an artifact. Either audit may be nil.
func Classify(before, after *inventoryv1.Audit, exp manifest.Expect, components map[string]string) *Result {
	rep := diff.Compare(before, after)
	res := &Result{Diff: rep}

	var obs []*observed
	for _, s := range rep.Sections {
		if !s.Comparable {
			if !s.Skipped {
				res.NotComparable = append(res.NotComparable, s.Name+": "+s.Reason)
			}
			continue
		}
		for _, ch := range s.Changes {
			obs = append(obs, &observed{section: s.Name, change: ch})
		}
	}

	c := checker{before: before, after: after, components: components}
	var exps []expectation
	for _, p := range exp.Packages {
		exps = append(exps, c.pkg(p))
	}
	for _, f := range exp.Files {
		exps = append(exps, c.file(f))
	}
	for _, s := range exp.Services {
		exps = append(exps, c.service(s))
	}
	for _, h := range exp.Hardware {
		exps = append(exps, c.hardware(h))
	}

	for _, e := range exps {
		it := e.item
		for _, o := range obs {
			if !e.concerns(o.section, o.change) {
				continue
			}
			o.covered = true
			if it.Change == nil {
				ch := o.change
				it.Change = &ch
			} else {
				it.MoreChanges = append(it.MoreChanges, o.change)
			}
		}
		if it.Class == Expected && it.Change != nil {
			switch {
			case e.describe && len(it.MoreChanges) == 0:
				it.What = Describe(it.Section, *it.Change)
			case e.held != "":
				it.What = e.held
			}
		}
		if it.Class == Expected {
			res.Expected = append(res.Expected, it)
		} else {
			res.Missing = append(res.Missing, it)
		}
	}
	sortItems(res.Expected)
	sortItems(res.Missing)

	for _, o := range obs {
		if o.covered {
			continue
		}
		ch := o.change
		it := Item{Section: o.section, Key: ch.Key, What: Describe(o.section, ch), Change: &ch}
		if allowed(exp.Allow, o.section, ch) {
			it.Class = Allowed
			res.Allowed = append(res.Allowed, it)
		} else {
			it.Class = Unexpected
			res.Unexpected = append(res.Unexpected, it)
		}
	}
	res.Summary = summary(res)
	return res
}

// sortItems orders items by section (in schema order), then key; items
// with the same key keep the order of their expectations.
func sortItems(items []Item) {
	slices.SortStableFunc(items, func(a, b Item) int {
		return cmp.Or(cmp.Compare(sectionIndex(a.Section), sectionIndex(b.Section)), strings.Compare(a.Key, b.Key))
	})
}

func sectionIndex(name string) int {
	for i, s := range audit.Sections {
		if s.Name == name {
			return i
		}
	}
	return len(audit.Sections)
}

func summary(r *Result) string {
	s := fmt.Sprintf("%d expected, %d missing, %d unexpected", len(r.Expected), len(r.Missing), len(r.Unexpected))
	if n := len(r.Allowed); n > 0 {
		s += fmt.Sprintf(", %d allowed", n)
	}
	if n := len(r.NotComparable); n > 0 {
		s += fmt.Sprintf(", %d not comparable", n)
	}
	return s
}
