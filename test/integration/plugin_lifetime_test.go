package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// gone reports whether pid has exited (or is a zombie nobody reaped yet).
func gone(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	rest := stat[bytes.LastIndexByte(stat, ')')+1:]
	f := strings.Fields(string(rest))
	return len(f) == 0 || f[0] == "Z" || f[0] == "X"
}

// waitAllGone polls /proc until every pid has exited: the kernel sends
// the parent-death signal asynchronously.
func waitAllGone(t *testing.T, what string, pids []int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var alive []int
		for _, p := range pids {
			if !gone(p) {
				alive = append(alive, p)
			}
		}
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, p := range alive {
				cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cmdline")
				t.Errorf("%s: process %d (%s) still runs", what, p, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
			}
			t.FailNow()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestApplyKilledLeavesNoPluginProcess: SIGKILL the agent while an exec
// step's program runs; the plugin process and the program die with it.
func TestApplyKilledLeavesNoPluginProcess(t *testing.T) {
	root, data := t.TempDir(), t.TempDir()
	marker := filepath.Join(t.TempDir(), "marker")
	m := writeManifest(t, `steps:
  - name: slow
    plugin: exec
    params: {argv: [`+strconv.Quote(testProgram(t, "slowstep"))+`, `+strconv.Quote(marker)+`, "300"]}
`)
	cmd, out := startApply(t, "-f", m, "--root", root, "--data-dir", data)
	waitLines(t, marker, 1, out)
	b, _ := os.ReadFile(marker)
	match := regexp.MustCompile(`ran pid (\d+)`).FindSubmatch(b)
	if match == nil {
		t.Fatalf("marker %q names no pid", b)
	}
	program, _ := strconv.Atoi(string(match[1]))
	family := descendants(cmd.Process.Pid)
	if len(family) < 2 || !slices.Contains(family, program) {
		t.Fatalf("the agent's descendants %v are not the plugin and the program %d", family, program)
	}
	crash(t, cmd)
	waitAllGone(t, "after the agent was killed", family)
}

// TestApplyReapsAPluginThatOutlivedItsAgent: a plugin that cleared its
// parent-death signal survives its agent's SIGKILL; the next agent on the
// same data dir kills it when it starts, before it runs anything.
func TestApplyReapsAPluginThatOutlivedItsAgent(t *testing.T) {
	root, data, cat := t.TempDir(), t.TempDir(), slowCatalog(t)
	marker := filepath.Join(t.TempDir(), "marker")
	m := writeManifest(t, "steps:\n  - {name: slow, plugin: slow, params: {marker: "+strconv.Quote(marker)+", sleep: 300s}}\n")

	cmd := exec.Command(filepath.Join(binDir, "cairn-agent"), "apply", "-f", m, "--root", root, "--data-dir", data, "--plugins", cat)
	cmd.Env = append(cleanEnv(t.TempDir()), "SLOWPLUGIN_OUTLIVE_AGENT=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitLines(t, marker, 1, &out)
	family := descendants(cmd.Process.Pid)
	if len(family) != 1 {
		t.Fatalf("the agent runs %v, want one plugin process", family)
	}
	plugin := family[0]
	crash(t, cmd)
	if gone(plugin) {
		t.Fatalf("the plugin %d died with its agent; this test needs one that outlives it", plugin)
	}

	r := agent(t, "apply", "-f", m, "--root", root, "--data-dir", data, "--plugins", cat)
	if r.code != 0 {
		t.Fatalf("apply after the crash: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	want := regexp.MustCompile(`warning: killed a plugin process an earlier agent left running, with its process group and descendants: plugin=slow pid=` + strconv.Itoa(plugin) + ` `)
	if !want.MatchString(r.stderr) {
		t.Errorf("the new agent does not say it killed plugin %d:\n%s", plugin, r.stderr)
	}
	waitAllGone(t, "after the next agent started", family)
	if entries, err := os.ReadDir(filepath.Join(data, "procs")); err != nil || len(entries) != 0 {
		t.Errorf("plugin process records left: %v, %v", entries, err)
	}
}
