package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-ops/cairn/controller/rollout/state"
	"github.com/cairn-ops/cairn/internal/diff"
)

// driftReport is what cairnctl cms drift -o json prints, as this test
// reads it.
type driftReport struct {
	Nodes []struct {
		NodeID           string       `json:"node_id"`
		Summary          string       `json:"summary"`
		Changes          int          `json:"changes"`
		PathsNotCompared int          `json:"paths_not_compared"`
		Report           *diff.Report `json:"report"`
	} `json:"nodes"`
	TotalPathsNotCompared int `json:"total_paths_not_compared"`
}

// TestDriftOnAFileAnEarlierReleaseInstalled: release A installs a.conf,
// release B installs b.conf and its post-audit becomes the node's
// baseline. After a controller restart, a.conf changed by hand is drift:
// the baseline still tracks what A installed and every audit collects
// it. A path only the latest audit tracked is reported as not compared,
// with its name. A release that stops tracking a.conf takes it out of
// the baseline and of every later audit.
func TestDriftOnAFileAnEarlierReleaseInstalled(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 1)
	const host = "itest-1"
	root := f.agents[host].root
	const aConf, bConf, cConf, extra = "/etc/cairn-itest/a.conf", "/etc/cairn-itest/b.conf", "/etc/cairn-itest/c.conf", "/etc/cairn-itest/extra.conf"
	rollOut := func(t *testing.T, name, path, untrack string) string {
		t.Helper()
		ref := f.release(t, "tracked.yaml", map[string]string{"Name": name, "Path": path, "Content": name + " = 1", "Untrack": untrack})
		id := f.start(t, ref)
		rec := f.waitRollout(t, id, state.RolloutCompleted)
		if n := f.node(t, rec, host); n.GetState() != state.NodePassed {
			t.Fatalf("rollout of %s: node %s: %s", ref, state.Name(n.GetState()), n.GetError())
		}
		return id
	}
	write := func(t *testing.T, path, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, path), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tracked := func(t *testing.T) ([]string, []string) {
		t.Helper()
		bs := f.baselines(t, host)
		if len(bs) == 0 {
			t.Fatal("no baseline")
		}
		return bs[len(bs)-1].GetTracked(), bs[len(bs)-1].GetUntracked()
	}
	drift := func(t *testing.T) (string, driftReport) {
		t.Helper()
		var d driftReport
		if err := json.Unmarshal([]byte(f.must(t, operator, "cms", "drift", "-o", "json")), &d); err != nil {
			t.Fatal(err)
		}
		if len(d.Nodes) != 1 || d.Nodes[0].Report == nil {
			t.Fatalf("cms drift: %+v, want one node with a report", d)
		}
		return f.must(t, operator, "cms", "drift"), d
	}

	rollOut(t, "a", aConf, "")
	rollOut(t, "b", bConf, "")
	if got, _ := tracked(t); !slices.Equal(got, []string{aConf, bConf}) {
		t.Fatalf("baseline after release B tracks %q, want %s and %s", got, aConf, bConf)
	}

	// The tracked set is the store's: a restarted controller keeps it.
	f.c.stop(t)
	f.c.start(t)

	write(t, aConf, "a = changed by hand\n")
	f.must(t, operator, "audit", "run", "--node", host, "--wait", "--wait-timeout", "90s")
	text, d := drift(t)
	n := d.Nodes[0]
	if n.Changes != 1 || n.Summary != "1 file changed" || strings.Contains(text, "no changes") {
		t.Errorf("cms drift after %s changed by hand: %d changes, %q; want 1, \"1 file changed\":\n%s", aConf, n.Changes, n.Summary, text)
	}
	if !strings.Contains(text, "~ "+aConf+"  ") {
		t.Errorf("cms drift does not show the change to %s:\n%s", aConf, text)
	}

	// A path the baseline did not track is not compared, and named.
	write(t, extra, "extra = 1\n")
	f.must(t, operator, "audit", "run", "--node", host, "--track", extra, "--wait", "--wait-timeout", "90s")
	text, d = drift(t)
	n = d.Nodes[0]
	want := []diff.PathNotCompared{{Path: extra, TrackedBy: diff.SideAfter, Files: 1}}
	if got := n.Report.PathsNotCompared(); !slices.Equal(got, want) || n.PathsNotCompared != 1 || d.TotalPathsNotCompared != 1 {
		t.Errorf("cms drift -o json: paths not compared %+v (node %d, total %d), want %+v", got, n.PathsNotCompared, d.TotalPathsNotCompared, want)
	}
	for _, says := range []string{
		"1 file changed; 1 tracked path not compared: " + extra,
		"? " + extra + "  not compared: tracked only in the after audit (1 file there)",
		"1 tracked path(s) not compared",
	} {
		if !strings.Contains(text, says) {
			t.Errorf("cms drift does not say %q:\n%s", says, text)
		}
	}
	if show := f.must(t, operator, "cms", "show", host); !strings.Contains(show, "drift: 1 file changed; 1 tracked path not compared: "+extra) {
		t.Errorf("cms show does not name the path not compared:\n%s", show)
	}

	// The operator accepts the node as it is: the audit's extra path
	// becomes tracked too.
	f.must(t, operator, "cms", "baseline", "accept", host, "--reason", "CHG-ITEST a.conf edited on purpose")
	if got, _ := tracked(t); !slices.Equal(got, []string{aConf, bConf, extra}) {
		t.Errorf("accepted baseline tracks %q, want %s, %s and %s", got, aConf, bConf, extra)
	}

	// Release C stops tracking a.conf.
	id := rollOut(t, "c", cConf, aConf)
	got, untracked := tracked(t)
	if !slices.Equal(got, []string{bConf, cConf, extra}) || !slices.Equal(untracked, []string{aConf}) {
		t.Errorf("baseline after release C tracks %q, untracked %q; want %s, %s, %s and %s untracked", got, untracked, bConf, cConf, extra, aConf)
	}
	c := comparison(t, f.node(t, f.status(t, id), host))
	if got, want := c.Diff.PathsNotCompared(), []diff.PathNotCompared{{Path: aConf, TrackedBy: diff.SideBefore, Files: 1}}; !slices.Equal(got, want) {
		t.Errorf("release C's comparison: paths not compared %+v, want %+v", got, want)
	}
	write(t, aConf, "a = untracked now\n")
	f.must(t, operator, "audit", "run", "--node", host, "--wait", "--wait-timeout", "90s")
	text, d = drift(t)
	if n := d.Nodes[0]; n.Summary != "no changes" || n.PathsNotCompared != 0 || strings.Contains(text, aConf) {
		t.Errorf("cms drift after release C stopped tracking %s: %q, %d paths not compared:\n%s", aConf, n.Summary, n.PathsNotCompared, text)
	}
}
