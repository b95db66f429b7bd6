package archive

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// diskLink is a symlink a test puts under the destination before the
// archive is extracted: left by another tool, or by an older release.
type diskLink struct{ path, target string }

// TestSymlinksJudgedOnTheFinalTree: symlinks that pass one by one but
// combine, in the archive or with links already on disk, into a way out
// of the destination are refused, naming the member, and nothing is
// written; links that stay inside (the "current" pattern) are accepted.
func TestSymlinksJudgedOnTheFinalTree(t *testing.T) {
	deep := strings.Repeat("../", 3) + "etc/hostname" // on paper, p/.. cancels
	tests := []struct {
		name    string
		dirs    []string   // made under dest first
		disk    []diskLink // made under dest first
		members []member
		bad     string // member the refusal names; "" when accepted
		why     string // part of the refusal
	}{
		{
			name:    "link made through a later link",
			members: []member{folder("d1/d2/d3/"), link("d1/d2/d3/a", "p/../"+deep), link("d1/d2/d3/p", "../../..")},
			bad:     "d1/d2/d3/a", why: "leaves the destination",
		},
		{
			name:    "later link first",
			members: []member{folder("d1/d2/d3/"), link("d1/d2/d3/p", "../../.."), link("d1/d2/d3/a", "p/../"+deep)},
			bad:     "d1/d2/d3/a", why: "leaves the destination",
		},
		{
			name:    "dotdot after a path that is not there",
			members: []member{folder("d1/d2/d3/"), link("d1/d2/d3/a", "p/../"+deep)},
			bad:     "d1/d2/d3/a", why: "not a directory",
		},
		{
			name:    "dotdot after a file",
			members: []member{file("f", "x"), link("a", "f/../etc")},
			bad:     "a", why: "not a directory",
		},
		{
			name:    "second release places the link an older one pointed through",
			dirs:    []string{"d1/d2/d3"},
			disk:    []diskLink{{"d1/d2/d3/a", "p/../" + deep}},
			members: []member{link("d1/d2/d3/p", "../../..")},
			bad:     "d1/d2/d3/p", why: `"d1/d2/d3/a"`,
		},
		{
			name:    "a link on disk pointed through a directory that did not exist",
			disk:    []diskLink{{"a", "q/" + strings.Repeat("../", 12) + "etc"}},
			members: []member{folder("q/")},
			bad:     "q/", why: `"a"`,
		},
		{
			name:    "replacing a link on disk that another one goes through",
			dirs:    []string{"x/y/z"},
			disk:    []diskLink{{"x/y/p", "z"}, {"x/y/a", "p/../../../etc"}},
			members: []member{link("x/y/p", ".")},
			bad:     "x/y/p", why: `"x/y/a"`,
		},
		{
			name:    "replacing the current link",
			dirs:    []string{"v1/bin"},
			disk:    []diskLink{{"current", "v1"}, {"bin", "current/bin"}},
			members: []member{folder("v2/bin/"), file("v2/bin/run", "run"), link("current", "v2")},
		},
		{
			name:    "links up and down inside",
			members: []member{folder("lib/"), folder("etc/"), link("lib/up", "../etc"), link("lib/loop", "up/../lib/loop2"), link("lib/loop2", "../lib")},
		},
	}
	for _, tt := range tests {
		for _, format := range []string{"tar", "zip"} {
			t.Run(tt.name+"/"+format, func(t *testing.T) {
				s := newSandbox(t)
				dest := s.root + "/srv/app"
				for _, d := range append([]string{"."}, tt.dirs...) {
					if err := os.MkdirAll(filepath.Join(dest, d), 0o755); err != nil {
						t.Fatal(err)
					}
				}
				for _, l := range tt.disk {
					if err := os.Symlink(l.target, filepath.Join(dest, l.path)); err != nil {
						t.Fatal(err)
					}
				}
				data := tarOf(t, tt.members...)
				if format == "zip" {
					data = zipOf(t, tt.members...)
				}
				sc := s.context(t, writeArchive(t, "app."+format, data), nil)
				before := snapshot(t, s.base)
				_, err := New().Apply(t.Context(), sc, nopReporter{})
				if tt.bad == "" {
					if err != nil {
						t.Fatalf("Apply: %v", err)
					}
					return
				}
				if !errors.Is(err, ErrUnsafeEntry) || !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.bad)) || !strings.Contains(err.Error(), tt.why) {
					t.Errorf("Apply: %v; want ErrUnsafeEntry naming %q and saying %q", err, tt.bad, tt.why)
				}
				if diff := cmp.Diff(before, snapshot(t, s.base)); diff != "" {
					t.Errorf("the sandbox changed (-before +after):\n%s", diff)
				}
			})
		}
	}
}
