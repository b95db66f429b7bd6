package integration

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeBlock returns the first ```sh block under the README heading
// title, as a script.
func readmeBlock(t *testing.T, title string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b strings.Builder
	section, inBlock := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			if inBlock {
				t.Fatalf("README: the block under %q is not closed", title)
			}
			section = line == "## "+title
		case section && !inBlock && line == "```sh":
			inBlock = true
		case inBlock && line == "```":
			return b.String()
		case inBlock:
			b.WriteString(line + "\n")
		}
	}
	t.Fatalf("README has no ```sh block under %q", title)
	return ""
}

// TestReadmeQuickstart runs README.md's "A controller and two agents"
// block as a reader would paste it (with the binaries under test instead
// of `make build`): a controller, two enrolled agents, audits,
// baselines, drift, the audit log.
func TestReadmeQuickstart(t *testing.T) {
	script := readmeBlock(t, "A controller and two agents")
	first, rest, _ := strings.Cut(script, "\n")
	if !strings.HasPrefix(first, "make build") {
		t.Fatalf("the README block starts with %q, want make build", first)
	}
	script = "set -e\nexport PATH=" + binDir + ":$PATH\n" + rest

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = repoRoot()
	cmd.Env = cleanEnv(t.TempDir())
	// Its own process group, so that the controller and agents it starts
	// in the background go with it, whatever happens.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	t.Cleanup(func() {
		if cmd.Process != nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README block failed: %v\n%s", err, out)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`\(web2\):\n\s+1 package added\n`),
		regexp.MustCompile(`\(web1\):\n\s+no changes\n`),
		regexp.MustCompile(`audit log intact`),
	} {
		if !want.Match(out) {
			t.Errorf("the README block's output does not match %s:\n%s", want, out)
		}
	}
}
