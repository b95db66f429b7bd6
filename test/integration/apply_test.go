package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var exampleManifest = filepath.Join("examples", "sandbox-release", "release.yaml")

// applyReport is the part of `apply -o json` the tests read.
type applyReport struct {
	DeploymentID string `json:"deployment_id"`
	State        string `json:"state"`
	Steps        []struct {
		List, Name, Outcome string
	} `json:"steps"`
}

func outcomesOf(t *testing.T, stdout string) (applyReport, map[string]string) {
	t.Helper()
	var rep applyReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("apply -o json: %v\n%s", err, stdout)
	}
	out := map[string]string{}
	for _, s := range rep.Steps {
		out[s.List+"/"+s.Name] = s.Outcome
	}
	return rep, out
}

// TestApplyExample runs examples/sandbox-release against an empty
// sandbox root: --check changes nothing, apply installs the .deb and
// places the files, and a second apply skips every step.
func TestApplyExample(t *testing.T) {
	root, data := t.TempDir(), t.TempDir()
	manifest := filepath.Join(repoRoot(), exampleManifest)

	// The httpcheck is optional in the example; serve the site when the
	// port is free so it passes too.
	served := false
	if ln, err := net.Listen("tcp", "127.0.0.1:8080"); err == nil {
		srv := &http.Server{Handler: http.FileServer(http.Dir(filepath.Join(root, "srv", "webshop")))}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		served = true
	} else {
		t.Logf("127.0.0.1:8080 is taken (%v); the example's httpcheck will fail, as it may", err)
	}

	r := agent(t, "apply", "-f", manifest, "--root", root, "--check")
	if r.code != 0 || !strings.Contains(r.stdout, "check passed") || !strings.Contains(r.stdout, "declares: package webshop-assets present 1.0.0") {
		t.Fatalf("apply --check: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Fatalf("apply --check changed the root: %v", entries)
	}

	r = agent(t, "apply", "-f", manifest, "--root", root, "--data-dir", data, "-o", "json")
	if r.code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	rep, got := outcomesOf(t, r.stdout)
	want := map[string]string{
		"steps/install-assets": "changed", "steps/config": "changed", "steps/site": "changed", "steps/precompress": "changed",
		"verify/compressed-page": "passed", "verify/config-listens": "passed", "verify/homepage": "failed (ignored)",
	}
	if served {
		want["verify/homepage"] = "passed"
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("first apply: %s = %q, want %q", k, got[k], v)
		}
	}
	for _, f := range []string{"etc/webshop/config.ini", "srv/webshop/index.html", "srv/webshop/style.css", "srv/webshop/index.html.gz", "usr/share/webshop/VERSION"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("after apply: %v", err)
		}
	}
	out, err := exec.Command("dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W", "-f", "${Package} ${Version} ${db:Status-Status}", "webshop-assets").CombinedOutput()
	if err != nil || string(out) != "webshop-assets 1.0.0 installed" {
		t.Errorf("dpkg-query: %q, %v", out, err)
	}

	r = agent(t, "apply", "-f", manifest, "--root", root, "--data-dir", data, "-o", "json")
	if r.code != 0 {
		t.Fatalf("second apply: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	rep2, got := outcomesOf(t, r.stdout)
	if rep2.DeploymentID != rep.DeploymentID {
		t.Errorf("second apply is deployment %s, first was %s", rep2.DeploymentID, rep.DeploymentID)
	}
	for _, s := range []string{"install-assets", "config", "site", "precompress"} {
		if got["steps/"+s] != "skipped" {
			t.Errorf("second apply: steps/%s = %q, want skipped", s, got["steps/"+s])
		}
	}

	r = agent(t, "journal", "list", "--data-dir", data)
	if r.code != 0 || !strings.Contains(r.stdout, "webshop@1.0.0") || !strings.Contains(r.stdout, "succeeded") {
		t.Errorf("journal list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

var testPrograms struct {
	once sync.Once
	dir  string
	err  error
}

// testProgram builds test/integration/testdata/NAME once and returns its
// path.
func testProgram(t *testing.T, name string) string {
	t.Helper()
	testPrograms.once.Do(func() {
		testPrograms.dir = filepath.Join(binDir, "testdata")
		cmd := exec.Command("go", "build", "-o", testPrograms.dir+"/", "./test/integration/testdata/slowstep", "./test/integration/testdata/slowplugin")
		cmd.Dir = repoRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			testPrograms.err = err
			t.Logf("go build: %s", out)
		}
	})
	if testPrograms.err != nil {
		t.Fatalf("build test programs: %v", testPrograms.err)
	}
	return filepath.Join(testPrograms.dir, name)
}

// startApply starts `cairn-agent apply` in the background.
func startApply(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "cairn-agent"), append([]string{"apply"}, args...)...)
	cmd.Env = cleanEnv(t.TempDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

// waitLines waits until the marker file has n lines.
func waitLines(t *testing.T, marker string, n int, out *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if lines(marker) >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("marker %s never reached %d lines; agent output:\n%s", marker, n, out)
}

func lines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\n")
}

// descendants returns the pids of pid's descendants, from /proc.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces.
		rest := string(stat[bytes.LastIndexByte(stat, ')')+1:])
		fields := strings.Fields(rest)
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		children[ppid] = append(children[ppid], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// crash kills the agent with SIGKILL, as a power cut or the OOM killer
// would. Its plugin processes die with it (TestApplyKilledLeavesNoPluginProcess proves
// that); any still there are killed when the test ends, so a regression
// there cannot leave processes behind on the machine.
func crash(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	orphans := descendants(cmd.Process.Pid)
	t.Cleanup(func() {
		for _, p := range orphans {
			syscall.Kill(p, syscall.SIGKILL)
		}
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
}

func writeManifest(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "release.yaml")
	if err := os.WriteFile(path, []byte("apiVersion: cairn/v1\nkind: Release\nname: crash\nversion: 1.0.0\n"+body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestApplyKillNonIdempotent kills the agent while a non-idempotent exec
// step runs: on restart the step is interrupted, apply refuses to go on
// and says how to resolve it, and the program ran exactly once.
func TestApplyKillNonIdempotent(t *testing.T) {
	root, data := t.TempDir(), t.TempDir()
	marker := filepath.Join(t.TempDir(), "marker")
	m := writeManifest(t, `steps:
  - {name: before, plugin: file, params: {path: /etc/before, content: "1\n"}}
  - name: slow
    plugin: exec
    params: {argv: [`+strconv.Quote(testProgram(t, "slowstep"))+`, `+strconv.Quote(marker)+`, "60"]}
  - {name: after, plugin: file, params: {path: /etc/after, content: "2\n"}}
`)
	cmd, out := startApply(t, "-f", m, "--root", root, "--data-dir", data)
	waitLines(t, marker, 1, out)
	crash(t, cmd)

	r := agent(t, "apply", "-f", m, "--root", root, "--data-dir", data)
	if r.code != 1 || !strings.Contains(r.stderr, "steps/slow") || !strings.Contains(r.stderr, "was interrupted") || !strings.Contains(r.stderr, "cairn-agent journal resolve") {
		t.Fatalf("apply after the crash: exit %d, want 1 with the resolve hint\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = agent(t, "journal", "list", "--data-dir", data, "-o", "json")
	var list struct {
		Deployments []struct{ ID, State string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Deployments) != 1 {
		t.Fatalf("journal list: %v\n%s%s", err, r.stdout, r.stderr)
	}
	id := list.Deployments[0].ID
	if list.Deployments[0].State != "interrupted" {
		t.Errorf("deployment state = %s, want interrupted", list.Deployments[0].State)
	}
	r = agent(t, "journal", "show", id[:12], "--data-dir", data)
	if !regexpMatch(`steps/slow\s+exec\s+interrupted\s+1\s+false`, r.stdout) {
		t.Errorf("journal show:\n%s%s", r.stdout, r.stderr)
	}
	if n := lines(marker); n != 1 {
		t.Fatalf("the slow step ran %d times, want exactly 1", n)
	}

	// The operator checked: it ran. The next apply goes on after it.
	r = agent(t, "journal", "resolve", id[:12], "slow", "--as", "succeeded", "--note", "marker written; checked by hand", "--data-dir", data)
	if r.code != 0 {
		t.Fatalf("journal resolve: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = agent(t, "apply", "-f", m, "--root", root, "--data-dir", data, "-o", "json")
	if r.code != 0 {
		t.Fatalf("apply after resolve: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	_, got := outcomesOf(t, r.stdout)
	if got["steps/before"] != "skipped" || got["steps/slow"] != "skipped" || got["steps/after"] != "changed" {
		t.Errorf("apply after resolve: %v", got)
	}
	if n := lines(marker); n != 1 {
		t.Errorf("after resolve, the slow step ran %d times, want exactly 1", n)
	}
}

// TestApplyKillIdempotent kills the agent while an idempotent step of an
// external plugin (from a catalog) runs: on restart it runs again.
func TestApplyKillIdempotent(t *testing.T) {
	root, data, cat := t.TempDir(), t.TempDir(), slowCatalog(t)
	marker := filepath.Join(t.TempDir(), "marker")
	m := writeManifest(t, "steps:\n  - {name: slow, plugin: slow, params: {marker: "+strconv.Quote(marker)+", sleep: 60s}}\n")

	cmd, out := startApply(t, "-f", m, "--root", root, "--data-dir", data, "--plugins", cat)
	waitLines(t, marker, 1, out)
	crash(t, cmd)

	r := agent(t, "apply", "-f", m, "--root", root, "--data-dir", data, "--plugins", cat, "-o", "json")
	if r.code != 0 {
		t.Fatalf("apply after the crash: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	_, got := outcomesOf(t, r.stdout)
	if got["steps/slow"] != "changed" {
		t.Errorf("apply after the crash: %v", got)
	}
	if n := lines(marker); n != 2 {
		t.Errorf("the idempotent step ran %d times, want 2 (the cut-off attempt and the re-run)", n)
	}
	r = agent(t, "journal", "list", "--data-dir", data, "-o", "json")
	var list struct{ Deployments []struct{ ID string } }
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Deployments) != 1 {
		t.Fatalf("journal list: %v\n%s", err, r.stdout)
	}
	r = agent(t, "journal", "show", list.Deployments[0].ID, "--data-dir", data)
	if !regexpMatch(`steps/slow\s+slow\s+succeeded\s+2\s+true`, r.stdout) {
		t.Errorf("journal show:\n%s%s", r.stdout, r.stderr)
	}
}

// slowCatalog returns a plugin catalog directory holding the slowplugin
// test program as the external plugin "slow".
func slowCatalog(t *testing.T) string {
	t.Helper()
	cat := t.TempDir()
	bin, err := os.ReadFile(testProgram(t, "slowplugin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cat, "cairn-plugin-slow"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(bin)
	catalog := "plugins:\n  - name: slow\n    file: cairn-plugin-slow\n    sha256: " + hex.EncodeToString(sum[:]) + "\n"
	if err := os.WriteFile(filepath.Join(cat, "catalog.yaml"), []byte(catalog), 0o644); err != nil {
		t.Fatal(err)
	}
	return cat
}

func regexpMatch(pattern, s string) bool {
	return regexp.MustCompile(pattern).MatchString(s)
}
