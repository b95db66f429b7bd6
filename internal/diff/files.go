package diff

import (
	"path"
	"slices"

	"google.golang.org/protobuf/proto"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// commonFiles returns copies of before and after whose files sections
// hold only the paths both audits tracked, under the same patterns. Two
// audits taken with different --track lists (a baseline audited without
// the paths a rollout tracks, say) then differ only where both looked:
// a path one audit did not track is not a change. Audits tracking the
// same patterns are returned as they are.
func commonFiles(before, after *inventoryv1.Audit) (*inventoryv1.Audit, *inventoryv1.Audit) {
	bf, af := before.GetFiles(), after.GetFiles()
	if bf == nil || af == nil || slices.Equal(bf.GetPatterns(), af.GetPatterns()) {
		return before, after
	}
	keep := func(a *inventoryv1.Audit, other []string) *inventoryv1.Audit {
		a = proto.CloneOf(a)
		var files []*inventoryv1.File
		for _, f := range a.GetFiles().GetFiles() {
			if tracked(other, f.GetPath()) {
				files = append(files, f)
			}
		}
		a.Files.Files = files
		a.Files.Patterns = nil
		return a
	}
	return keep(before, af.GetPatterns()), keep(after, bf.GetPatterns())
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
