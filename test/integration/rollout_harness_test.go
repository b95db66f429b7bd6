package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/cairn-ops/cairn/controller/report"
	"github.com/cairn-ops/cairn/controller/rollout/state"
	"github.com/cairn-ops/cairn/internal/compare"
	"github.com/cairn-ops/cairn/internal/diff"
	"github.com/cairn-ops/cairn/internal/manifest"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// This file is the harness of the rollout tests: a controller with the
// users a release needs, agents on fixture roots, approved releases built
// from the manifests in testdata/rollout, and the rollout's stored state
// as cairnctl prints it.

// rolloutTimeout bounds how long a test waits for a rollout to get
// somewhere: generous, since the binaries may be race-instrumented and
// several tests share a small machine.
const rolloutTimeout = 3 * time.Minute

const rolloutFixtures = "test/integration/testdata/rollout"

// The users of the rollout tests, each holding the one role its name
// says: a release is created by one, tested by another and approved by a
// third (separation of duties), and rolled out by an operator.
const (
	releaseManager = "release-manager"
	tester         = "tester"
	approver       = "approver"
	operator       = "operator"
)

// fleet is a controller, its users and its agents, all connected.
type fleet struct {
	c      *controller
	tokens map[string]string     // by user
	agents map[string]*agentProc // by hostname
	ids    map[string]string     // node ID by hostname
}

// newFleet starts a controller with the four users and n agents,
// itest-1 … itest-n, labelled env=itest and idx=N, each on its own root:
// the debian-a software fixture with the host-a hardware fixture, so that
// every collector has something to read.
func newFleet(t *testing.T, n int) *fleet {
	t.Helper()
	c := startController(t)
	f := &fleet{c: c, tokens: map[string]string{}, agents: map[string]*agentProc{}}
	for _, u := range []string{releaseManager, tester, approver, operator} {
		f.tokens[u] = c.createUser(t, u, u)
	}
	var agents []*agentProc
	var labels []string
	for i := 1; i <= n; i++ {
		host := fmt.Sprintf("itest-%d", i)
		a := newAgentOn(t, host, swFixture, hwFixtures+"/host-a.tar.gz")
		settleDpkg(t, a.root)
		f.agents[host] = a
		agents = append(agents, a)
		labels = append(labels, fmt.Sprintf("env=itest,idx=%d", i))
	}
	f.ids = c.enroll(t, agents, labels)
	return f
}

// settleDpkg marks the fixture's unpacked packages installed, as on a
// host where dpkg --configure --pending has run. Otherwise the first dpkg
// install on the root configures them too: a real change the release did
// not declare, which these tests do not want (except where they say so).
func settleDpkg(t *testing.T, root string) {
	t.Helper()
	path := filepath.Join(root, "var/lib/dpkg/status")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.ReplaceAll(string(b), "Status: install ok unpacked\n", "Status: install ok installed\n"))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// hostOf returns the hostname of a node ID.
func (f *fleet) hostOf(id string) string {
	for h, i := range f.ids {
		if i == id {
			return h
		}
	}
	return id
}

// as runs cairnctl as user.
func (f *fleet) as(t *testing.T, user string, args ...string) result {
	t.Helper()
	return f.c.ctlAs(t, f.tokens[user], args...)
}

// must runs cairnctl as user and requires exit 0.
func (f *fleet) must(t *testing.T, user string, args ...string) string {
	t.Helper()
	return f.c.mustCtlAs(t, f.tokens[user], args...)
}

// touch creates a file (and its directories) in host's root.
func (f *fleet) touch(t *testing.T, host, path string) {
	t.Helper()
	p := filepath.Join(f.agents[host].root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// acceptBaselines audits every node and accepts the audits as the
// nodes' first CMS baselines.
func (f *fleet) acceptBaselines(t *testing.T) {
	t.Helper()
	f.c.mustCtl(t, "audit", "run", "--wait", "--wait-timeout", "90s", "--selector", "env=itest")
	for _, id := range f.ids {
		f.c.mustCtl(t, "cms", "baseline", "accept", id, "--reason", "before the rollout tests")
	}
}

var itestDeb struct {
	once sync.Once
	dir  string
	err  error
}

// itestVersions are the versions of the test package artifactsDir builds.
var itestVersions = []string{"1.0.0", "1.0.1", "1.0.2"}

// artifactsDir builds the test package, cairn-itest-app_VERSION_all.deb
// for each of itestVersions, from testdata/rollout/pkg once per test run
// and returns the directory that holds them.
func artifactsDir(t *testing.T) string {
	t.Helper()
	itestDeb.once.Do(func() {
		itestDeb.dir = filepath.Join(binDir, "rollout-artifacts")
		if err := os.MkdirAll(itestDeb.dir, 0o755); err != nil {
			itestDeb.err = err
			return
		}
		for _, v := range itestVersions {
			src := composeRoot(t, rolloutFixtures+"/pkg/cairn-itest-app") // a copy with plain permissions
			control := filepath.Join(src, "DEBIAN/control")
			data, err := os.ReadFile(control)
			if err == nil {
				err = os.WriteFile(control, []byte(strings.Replace(string(data), "Version: 1.0.0", "Version: "+v, 1)), 0o644)
			}
			if err == nil {
				err = os.WriteFile(filepath.Join(src, "usr/share/cairn-itest-app/VERSION"), []byte(v+"\n"), 0o644)
			}
			if err != nil {
				itestDeb.err = err
				return
			}
			cmd := exec.Command("dpkg-deb", "--root-owner-group", "-Zgzip", "--build", src,
				filepath.Join(itestDeb.dir, "cairn-itest-app_"+v+"_all.deb"))
			if out, err := cmd.CombinedOutput(); err != nil {
				itestDeb.err = fmt.Errorf("dpkg-deb (Debian: apt-get install dpkg): %v\n%s", err, out)
				return
			}
		}
	})
	if itestDeb.err != nil {
		t.Fatalf("build the test package: %v", itestDeb.err)
	}
	return itestDeb.dir
}

// release renders testdata/rollout/NAME with vars, and takes the release
// from create to approved with three different users. It returns the
// release as NAME@VERSION.
func (f *fleet) release(t *testing.T, name string, vars map[string]string) string {
	t.Helper()
	tmpl, err := template.New(name).Option("missingkey=error").ParseFiles(filepath.Join(repoRoot(), rolloutFixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := tmpl.Execute(out, vars); err != nil {
		t.Fatalf("render %s: %v", name, err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Load(path)
	if err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	ref := m.Name + "@" + m.Version
	f.must(t, releaseManager, "release", "create", "-f", path, "--artifacts", artifactsDir(t))
	f.must(t, releaseManager, "release", "seal", ref)
	f.must(t, tester, "release", "test", "record", ref, "--result", "pass", "--note", "integration tests green")
	f.must(t, approver, "release", "approve", ref, "--note", "CHG-ITEST")
	return ref
}

// releaseRecord returns the stored release.
func (f *fleet) releaseRecord(t *testing.T, ref string) *controllerv1.ReleaseRecord {
	t.Helper()
	rec := &controllerv1.ReleaseRecord{}
	f.c.ctlProtoAs(t, f.tokens[operator], rec, "release", "show", ref)
	return rec
}

// plan runs rollout plan for the env=itest nodes.
func (f *fleet) plan(t *testing.T, ref string, flags ...string) *controllerv1.RolloutPlan {
	t.Helper()
	p := &controllerv1.RolloutPlan{}
	f.c.ctlProtoAs(t, f.tokens[operator], p, append([]string{"rollout", "plan", ref, "--selector", "env=itest"}, flags...)...)
	return p
}

var rolloutIDRE = regexp.MustCompile(`\bro-[0-9a-f]{12}\b`)

// start starts a rollout of ref to the env=itest nodes as the operator
// and returns its ID.
func (f *fleet) start(t *testing.T, ref string, flags ...string) string {
	t.Helper()
	out := f.must(t, operator, append([]string{"rollout", "start", ref, "--selector", "env=itest"}, flags...)...)
	id := rolloutIDRE.FindString(out)
	if id == "" {
		t.Fatalf("rollout start printed no rollout ID (ro-…):\n%s", out)
	}
	return id
}

// status returns the rollout with its nodes, as rollout status -o json
// prints it.
func (f *fleet) status(t *testing.T, id string) *controllerv1.RolloutRecord {
	t.Helper()
	rec := &controllerv1.RolloutRecord{}
	f.c.ctlProtoAs(t, f.tokens[operator], rec, "rollout", "status", id)
	return rec
}

// waitRollout polls the rollout's status until its state is one of want
// and returns it. It fails the test at once when the rollout ends in
// another state.
func (f *fleet) waitRollout(t *testing.T, id string, want ...state.Rollout) *controllerv1.RolloutRecord {
	t.Helper()
	names := make([]string, len(want))
	for i, s := range want {
		names[i] = state.Name(s)
	}
	return f.waitFor(t, id, "state "+strings.Join(names, " or "), func(rec *controllerv1.RolloutRecord) bool {
		return slices.Contains(want, rec.GetState())
	})
}

// waitNode polls the rollout's status until the node (hostname) is in
// state and returns the rollout.
func (f *fleet) waitNode(t *testing.T, id, host string, want state.Node) *controllerv1.RolloutRecord {
	t.Helper()
	return f.waitFor(t, id, "node "+host+" "+state.Name(want), func(rec *controllerv1.RolloutRecord) bool {
		return f.node(t, rec, host).GetState() == want
	})
}

// waitFor polls the rollout's status until cond holds.
func (f *fleet) waitFor(t *testing.T, id, what string, cond func(*controllerv1.RolloutRecord) bool) *controllerv1.RolloutRecord {
	t.Helper()
	deadline := time.Now().Add(rolloutTimeout)
	for {
		rec := f.status(t, id)
		switch {
		case cond(rec):
			return rec
		case state.Settled(rec):
			t.Fatalf("rollout %s ended, waiting for %s:\n%s", id, what, f.describe(rec))
		case time.Now().After(deadline):
			t.Fatalf("timed out after %v waiting for %s:\n%s", rolloutTimeout, what, f.describe(rec))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// describe is the rollout in a few lines, for failure messages.
func (f *fleet) describe(rec *controllerv1.RolloutRecord) string {
	var b strings.Builder
	fmt.Fprintf(&b, "rollout %s: state %s; reason %q; waiting for %q\n", rec.GetId(), state.Name(rec.GetState()), rec.GetReason(), rec.GetWaitingFor())
	for _, w := range rec.GetWaves() {
		fmt.Fprintf(&b, "  wave %d: %s (started %s, finished %s)\n", w.GetIndex(), state.Name(w.GetState()), w.GetStartedAt(), w.GetFinishedAt())
	}
	nodes := slices.Clone(rec.GetNodes())
	sort.Slice(nodes, func(i, j int) bool { return f.hostOf(nodes[i].GetNodeId()) < f.hostOf(nodes[j].GetNodeId()) })
	for _, n := range nodes {
		fmt.Fprintf(&b, "  node %s (wave %d): %s; error %q\n", f.hostOf(n.GetNodeId()), n.GetWave(), state.Name(n.GetState()), n.GetError())
	}
	return b.String()
}

// node returns the node of rec with the hostname, failing the test when
// there is none.
func (f *fleet) node(t *testing.T, rec *controllerv1.RolloutRecord, host string) *controllerv1.RolloutNode {
	t.Helper()
	for _, n := range rec.GetNodes() {
		if n.GetNodeId() == f.ids[host] {
			return n
		}
	}
	t.Fatalf("rollout %s has no node %s (%s)", rec.GetId(), host, f.ids[host])
	return nil
}

// comparison decodes the node's three-way comparison.
func comparison(t *testing.T, n *controllerv1.RolloutNode) *compare.Result {
	t.Helper()
	if len(n.GetComparisonJson()) == 0 {
		t.Fatalf("node %s has no comparison (state %s)", n.GetNodeId(), n.GetState())
	}
	var r compare.Result
	if err := json.Unmarshal(n.GetComparisonJson(), &r); err != nil {
		t.Fatalf("node %s: decode comparison_json: %v", n.GetNodeId(), err)
	}
	return &r
}

// rollbackDiff decodes the node's rollback proof: the diff from its
// pre-audit to its audit after the rollback.
func rollbackDiff(t *testing.T, n *controllerv1.RolloutNode) *diff.Report {
	t.Helper()
	if len(n.GetRollbackDiffJson()) == 0 {
		t.Fatalf("node %s has no rollback diff (state %s)", n.GetNodeId(), n.GetState())
	}
	var r diff.Report
	if err := json.Unmarshal(n.GetRollbackDiffJson(), &r); err != nil {
		t.Fatalf("node %s: decode rollback_diff_json: %v", n.GetNodeId(), err)
	}
	return &r
}

// items lists a comparison's items of one class as "section key".
func items(list []compare.Item) []string {
	var out []string
	for _, it := range list {
		out = append(out, it.Section+" "+it.Key)
	}
	return out
}

// containsItem reports whether an item's section is section and its key
// contains key.
func containsItem(list []compare.Item, section, key string) bool {
	for _, it := range list {
		if it.Section == section && strings.Contains(it.Key, key) {
			return true
		}
	}
	return false
}

// report renders the rollout's report as the operator.
func (f *fleet) report(t *testing.T, id, format string) string {
	t.Helper()
	return f.must(t, operator, "rollout", "report", id, "-o", format)
}

// reportJSON renders the rollout's report as JSON and decodes it.
func (f *fleet) reportJSON(t *testing.T, id string) *report.Report {
	t.Helper()
	out := f.report(t, id, "json")
	var r report.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("rollout report %s -o json: %v\n%.2000s", id, err, out)
	}
	return &r
}

// reportNode returns the report's node with the hostname.
func reportNode(t *testing.T, r *report.Report, host string) *report.Node {
	t.Helper()
	for i := range r.Nodes {
		if r.Nodes[i].Hostname == host {
			return &r.Nodes[i]
		}
	}
	t.Fatalf("the report of rollout %s has no node %s", r.Summary.RolloutID, host)
	return nil
}

// dpkgState is a package's version and status in a root's dpkg database
// ("1.0.0 installed"), or "" when the database does not know it.
func dpkgState(t *testing.T, root, pkg string) string {
	t.Helper()
	out, err := exec.Command("dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"),
		"-W", "-f", "${Version} ${db:Status-Status}", pkg).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 1 {
			return ""
		}
		t.Fatalf("dpkg-query %s in %s: %v", pkg, root, err)
	}
	return strings.TrimSpace(string(out))
}

// baselines returns the node's CMS baseline history.
func (f *fleet) baselines(t *testing.T, host string) []*controllerv1.BaselineRecord {
	t.Helper()
	var h controllerv1.BaselineHistoryResponse
	f.c.ctlProtoAs(t, f.tokens[operator], &h, "cms", "history", f.ids[host])
	return h.GetBaselines()
}

// parseTime reads an RFC 3339 timestamp of a record.
func parseTime(t *testing.T, what, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("%s: %q is not an RFC 3339 time: %v", what, s, err)
	}
	return at
}
