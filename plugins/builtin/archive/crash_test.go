package archive

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/plugins/sdk"
	"github.com/cairn-ops/cairn/plugins/sdk/sdktest"
)

// crashChild is what TestCrashChild does in the subprocess.
type crashChild struct {
	Root, Archive, State, Cache string
	Stage                       string // the testHook stage to die at
	At                          int    // its occurrence
}

const crashEnv = "CAIRN_ARCHIVE_CRASH_CHILD"

func crashContext(t *testing.T, c crashChild) *sdk.StepContext {
	params, err := sdk.ParamsOf(map[string]any{"artifact": "app", "dest": "/srv/app"})
	if err != nil {
		t.Fatal(err)
	}
	return &sdk.StepContext{RootDir: c.Root, Params: params, Artifacts: map[string]string{"app": c.Archive},
		IdempotencyKey: "rel-1/step-1", CacheDir: c.Cache, StateDir: c.State, Step: "unpack"}
}

// TestCrashChild is the agent killed mid-extraction: it runs only as
// TestCrashMidExtraction's subprocess, and SIGKILLs itself at the given
// point of Apply.
func TestCrashChild(t *testing.T) {
	env := os.Getenv(crashEnv)
	if env == "" {
		return // not the subprocess
	}
	var c crashChild
	if err := json.Unmarshal([]byte(env), &c); err != nil {
		t.Fatal(err)
	}
	n := 0
	testHook = func(stage string) {
		if stage == c.Stage {
			if n++; n == c.At {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}
	}
	_, err := New().Apply(t.Context(), crashContext(t, c), nopReporter{})
	t.Fatalf("Apply returned (%v) instead of dying at %s #%d", err, c.Stage, c.At)
}

// TestCrashMidExtraction: an agent SIGKILLed anywhere in Apply, then the
// step re-run and later rolled back (with the re-run's record, or with
// none), or rolled back straight away, leaves the root exactly as it was
// before the first attempt, without temporary files, and the state
// directory without the undo record or backups.
func TestCrashMidExtraction(t *testing.T) {
	var ms []member
	for i := range 120 {
		ms = append(ms, file(fmt.Sprintf("d%d/f%03d", i%4, i), strings.Repeat(fmt.Sprint(i), 300)))
	}
	ms = append(ms, link("current", "d0"), folder("empty/"))
	archive := writeArchive(t, "app.tar", tarOf(t, ms...))
	stages := []struct {
		stage string
		at    int
	}{
		{"saved", 1},    // undo record saved, nothing changed yet
		{"tmp", 1},      // first temporary file written
		{"tmp", 61},     // half way, a temporary file beside the replaced files
		{"placed", 5},   // a few members in place
		{"placed", 121}, // the last member
		{"done", 1},     // everything in place, the result not yet returned
	}
	finishes := []string{"rerun+rollback", "rerun+journal+rollback", "rerun+rollback without record", "rollback without record"}
	for _, st := range stages {
		for _, finish := range finishes {
			t.Run(fmt.Sprintf("%s#%d/%s", st.stage, st.at, finish), func(t *testing.T) {
				base := t.TempDir()
				c := crashChild{Root: filepath.Join(base, "root"), Archive: archive, State: filepath.Join(base, "state"), Cache: filepath.Join(base, "cache"),
					Stage: st.stage, At: st.at}
				// Files the archive replaces, a link it replaces, a file it leaves.
				for p, body := range map[string]string{"srv/app/d1/f001": "old 1", "srv/app/d2/f062": "old 62", "srv/app/keep": "mine"} {
					os.MkdirAll(filepath.Dir(filepath.Join(c.Root, p)), 0o755)
					if err := os.WriteFile(filepath.Join(c.Root, p), []byte(body), 0o640); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.Symlink("d2", filepath.Join(c.Root, "srv/app/current")); err != nil {
					t.Fatal(err)
				}
				before := snapshot(t, c.Root)
				env, _ := json.Marshal(c)
				cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
				cmd.Env = append(os.Environ(), crashEnv+"="+string(env))
				out, err := cmd.CombinedOutput()
				var exit *exec.ExitError
				if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
					t.Fatalf("the child was not killed: %v\n%s", err, out)
				}
				sc := crashContext(t, c)
				var record []byte
				if strings.HasPrefix(finish, "rerun") {
					res, err := New().Apply(t.Context(), sc, nopReporter{})
					if err != nil {
						t.Fatalf("re-run: %v", err)
					}
					if !res.GetChanged() {
						t.Error("re-run: changed=false")
					}
					if tmp := tempFiles(t, c.Root); len(tmp) > 0 {
						t.Errorf("temporary files after the re-run: %q", tmp)
					}
					if v, err := New().Verify(t.Context(), sc); err != nil || !v.GetPassed() {
						t.Errorf("Verify after the re-run: %v, %v", v, err)
					}
					record = res.GetRollbackRecord()
					if strings.Contains(finish, "journal") {
						sdk.ClearUndo(sc) // the host journaled the result
					}
					if strings.Contains(finish, "without record") {
						record = nil
					}
				}
				if _, err := New().Rollback(t.Context(), sc, record); err != nil {
					t.Fatalf("Rollback: %v", err)
				}
				if diff := cmp.Diff(before, snapshot(t, c.Root)); diff != "" {
					t.Errorf("the root after the rollback (-before +after):\n%s", diff)
				}
				if tmp := tempFiles(t, c.Root); len(tmp) > 0 {
					t.Errorf("temporary files after the rollback: %q", tmp)
				}
				if sdk.HasUndo(c.State) {
					t.Error("the undo record is still there after the rollback")
				}
				left, _ := filepath.Glob(filepath.Join(c.State, "*", "*"))
				if len(left) > 0 {
					t.Errorf("left in the state directory: %q", left)
				}
			})
		}
	}
}

// tempFiles lists files under root named like the plugin's temporary
// files.
func tempFiles(t *testing.T, root string) []string {
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".cairn-archive-") {
			out = append(out, strings.TrimPrefix(p, root))
		}
		return nil
	})
	return out
}

// TestCrashLeavesDirectoryModes: directories are made 0700 and given
// their mode once the members under them are in place; an attempt killed
// in between leaves them 0700, and the re-run, finding them there, must
// still give them their mode.
func TestCrashLeavesDirectoryModes(t *testing.T) {
	archive := writeArchive(t, "app.tar", tarOf(t, member{name: "pub/", typ: tar.TypeDir, mode: 0o755}, file("pub/index.html", "hi"),
		member{name: "tmp/", typ: tar.TypeDir, mode: 0o1777}))
	for _, finish := range []string{"rerun", "rerun nothing left"} {
		t.Run(finish, func(t *testing.T) {
			base := t.TempDir()
			c := crashChild{Root: filepath.Join(base, "root"), Archive: archive, State: filepath.Join(base, "state"), Stage: "placed", At: 1}
			os.MkdirAll(c.Root, 0o755)
			env, _ := json.Marshal(c)
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashEnv+"="+string(env))
			if out, err := cmd.CombinedOutput(); err == nil {
				t.Fatalf("the child was not killed:\n%s", out)
			}
			sc := crashContext(t, c)
			if finish == "rerun nothing left" {
				// Everything is in place but the modes.
				os.Mkdir(filepath.Join(c.Root, "srv/app/tmp"), 0o700)
			}
			if _, err := New().Apply(t.Context(), sc, nopReporter{}); err != nil {
				t.Fatal(err)
			}
			want := sdktest.Tree{
				"pub":            {Mode: "drwxr-xr-x"},
				"pub/index.html": {Mode: "-rw-r--r--", SHA256: sha("hi")},
				"tmp":            {Mode: "dtrwxrwxrwx"},
			}
			if diff := cmp.Diff(want, snapshot(t, filepath.Join(c.Root, "srv/app"))); diff != "" {
				t.Errorf("after the re-run (-want +got):\n%s", diff)
			}
		})
	}
}
