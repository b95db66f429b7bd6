package integration

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/cairn-ops/cairn/internal/testutil"
)

// binDir holds the binaries built once for the whole test run:
// cairn-agent, cairn-controller and cairnctl.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "cairn-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	args := []string{"build", "-o", dir + "/"}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args,
		"./agent/cmd/cairn-agent",
		"./controller/cmd/cairn-controller",
		"./controller/cmd/cairnctl",
	)
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot()
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build binaries:", err)
		return 1
	}
	return m.Run()
}

// repoRoot is the module root, two levels above this package.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// result is what a process did.
type result struct {
	stdout, stderr string
	code           int
}

// agent runs the built cairn-agent with args.
func agent(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), filepath.Join(binDir, "cairn-agent"), args...)
	cmd.Env = cleanEnv(t.TempDir())
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run cairn-agent %v: %v", args, err)
	}
	return result{out.String(), errOut.String(), code}
}

// composeRoot copies the given fixture trees, in order, into one new root
// directory (later trees overwrite earlier ones), so hardware and software
// fixtures combine into one host without duplicating files in testdata. A
// tree ending in .tar.gz is an archive of one (the hardware fixtures are
// archives, since their names contain ':'), unpacked first.
func composeRoot(t *testing.T, trees ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, tree := range trees {
		src := filepath.Join(repoRoot(), tree)
		if strings.HasSuffix(tree, ".tar.gz") {
			dir := t.TempDir()
			if err := testutil.Unpack(src, dir); err != nil {
				t.Fatalf("compose root from %s: %v", tree, err)
			}
			src = dir
		}
		err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, path)
			dst := filepath.Join(root, rel)
			info, err := d.Info()
			if err != nil {
				return err
			}
			// A later tree's entry replaces whatever an earlier tree put
			// there, unless both are directories (which merge).
			if prev, err := os.Lstat(dst); err == nil && !(prev.IsDir() && d.IsDir()) {
				if err := os.RemoveAll(dst); err != nil {
					return err
				}
			}
			switch {
			case d.IsDir():
				return os.MkdirAll(dst, 0o755)
			case d.Type()&fs.ModeSymlink != 0:
				target, err := os.Readlink(path)
				if err != nil {
					return err
				}
				return os.Symlink(target, dst)
			default:
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				return os.WriteFile(dst, b, info.Mode().Perm())
			}
		})
		if err != nil {
			t.Fatalf("compose root from %s: %v", tree, err)
		}
	}
	return root
}
