package archive

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRollbackRetried: a Rollback that finished but whose result the
// agent did not live to journal is run again with the same record; it
// must succeed and leave the root as the first one did, though the first
// removed the backups of the replaced files.
func TestRollbackRetried(t *testing.T) {
	s := newSandbox(t)
	for name, body := range map[string]string{"index.html": "old index\n", "conf/app.ini": "old = 1\n"} {
		if err := os.MkdirAll(s.root+"/srv/app/conf", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(s.root+"/srv/app/"+name, []byte(body), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("conf", s.root+"/srv/app/current"); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, s.root)
	data := tarOf(t, file("index.html", "new index\n"), folder("conf/"), file("conf/app.ini", "new = 2\n"),
		folder("v2/"), file("v2/run", "run\n"), link("current", "v2"))
	sc := s.context(t, writeArchive(t, "a.tar", data), nil)
	sc.StateDir = t.TempDir()
	res, err := New().Apply(t.Context(), sc, nopReporter{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := New().Rollback(t.Context(), sc, res.GetRollbackRecord()); err != nil {
			t.Fatalf("Rollback %d: %v", i+1, err)
		}
		if diff := cmp.Diff(before, snapshot(t, s.root)); diff != "" {
			t.Errorf("after Rollback %d (-before +after):\n%s", i+1, diff)
		}
	}
}
