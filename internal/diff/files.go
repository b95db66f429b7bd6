package diff

import (
	"cmp"
	"path"
	"slices"

	"google.golang.org/protobuf/proto"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// Sides of a comparison, as PathNotCompared.TrackedBy names them.
const (
	SideBefore = "before"
	SideAfter  = "after"
)

// PathNotCompared is a tracked path (or pattern) that only one of the two
// audits tracked: what is there was not compared, so it is neither a
// change nor unchanged.
type PathNotCompared struct {
	// Path is the path or pattern as the audit that tracked it gave it.
	Path string `json:"path"`
	// TrackedBy is SideBefore or SideAfter: the one audit that tracked it.
	TrackedBy string `json:"tracked_by"`
	// Files is how many of the entries that audit recorded under Path the
	// other audit did not track (0: nothing was there, or the other audit
	// happened to track each of them).
	Files int `json:"files"`
}

// commonFiles returns copies of before and after whose files sections
// hold only the paths both audits tracked, and the tracked paths only one
// of them covered. Two audits taken with different --track lists (a
// baseline taken before a release added a path, an audit run with an
// extra --track) are compared where both looked; a path only one tracked
// is reported as not compared. Audits tracking the same patterns, or
// where either has no files section, are returned as they are.
func commonFiles(before, after *inventoryv1.Audit) (*inventoryv1.Audit, *inventoryv1.Audit, []PathNotCompared) {
	bf, af := before.GetFiles(), after.GetFiles()
	if bf == nil || af == nil || slices.Equal(bf.GetPatterns(), af.GetPatterns()) {
		return before, after, nil
	}
	b, ncBefore := keepTracked(before, af.GetPatterns(), SideBefore)
	a, ncAfter := keepTracked(after, bf.GetPatterns(), SideAfter)
	nc := append(ncBefore, ncAfter...)
	slices.SortFunc(nc, func(x, y PathNotCompared) int {
		return cmp.Or(cmp.Compare(x.Path, y.Path), cmp.Compare(x.TrackedBy, y.TrackedBy))
	})
	return b, a, nc
}

// keepTracked returns a copy of a whose files are those the other audit's
// patterns also track, and a's patterns the other audit did not cover:
// a pattern that is not tracked by the other (itself or a directory
// above it), or one under which a recorded entry was left out.
func keepTracked(a *inventoryv1.Audit, other []string, side string) (*inventoryv1.Audit, []PathNotCompared) {
	patterns := a.GetFiles().GetPatterns()
	left := make(map[string]int, len(patterns))
	var files []*inventoryv1.File
	for _, f := range a.GetFiles().GetFiles() {
		if tracked(other, f.GetPath()) {
			files = append(files, f)
			continue
		}
		left[trackedBy(patterns, f.GetPath())]++
	}
	var nc []PathNotCompared
	seen := map[string]bool{}
	for _, p := range patterns {
		if seen[p] {
			continue
		}
		seen[p] = true
		n := left[p]
		delete(left, p)
		if n > 0 || !(slices.Contains(other, p) || tracked(other, p)) {
			nc = append(nc, PathNotCompared{Path: p, TrackedBy: side, Files: n})
		}
	}
	for p, n := range left { // entries no pattern of a tracks: recorded as themselves
		nc = append(nc, PathNotCompared{Path: p, TrackedBy: side, Files: n})
	}
	a = proto.CloneOf(a)
	a.Files.Files = files
	a.Files.Patterns = nil
	return a, nc
}

// trackedBy returns the first of patterns that tracks p, or p itself when
// none does.
func trackedBy(patterns []string, p string) string {
	for _, pat := range patterns {
		if tracked([]string{pat}, p) {
			return pat
		}
	}
	return p
}

// tracked reports whether the files collector, given patterns, records
// p: p or one of its parent directories matches a pattern (a tracked
// directory is recorded with everything beneath it).
func tracked(patterns []string, p string) bool {
	for dir := p; ; dir = path.Dir(dir) {
		for _, pat := range patterns {
			if ok, _ := path.Match(pat, dir); ok {
				return true
			}
		}
		if dir == "/" || dir == "." || dir == "" {
			return false
		}
	}
}
