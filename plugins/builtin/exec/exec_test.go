package exec

import (
	"bytes"
	"context"
	"errors"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/plugins/sdk"
	"github.com/cairn-ops/cairn/plugins/sdk/sdktest"
)

// recorder is a fake sdk.Reporter that keeps what it is told.
type recorder struct {
	mu   sync.Mutex
	logs []string
}

func (r *recorder) Log(level, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, level+": "+msg)
}

func (r *recorder) Progress(float64, string) {}

func stepContext(t *testing.T, root string, params map[string]any) *sdk.StepContext {
	t.Helper()
	s, err := sdk.ParamsOf(params)
	if err != nil {
		t.Fatal(err)
	}
	return &sdk.StepContext{RootDir: root, Params: s, Step: "test"}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]any
		want   []*sdk.FieldError
	}{
		{"ok", map[string]any{"argv": []any{"true"}, "timeout": "5s", "dir": "/srv", "accept_exit_codes": []any{0, 3}}, nil},
		{"no argv", map[string]any{}, []*sdk.FieldError{{Field: "argv", Message: "required: the program and its arguments, as a list"}}},
		{"argv not a list", map[string]any{"argv": "rm -rf /"}, []*sdk.FieldError{{Field: "argv", Message: "must be a list, not string"}}},
		{"empty program", map[string]any{"argv": []any{""}}, []*sdk.FieldError{{Field: "argv[0]", Message: "the program name is empty"}}},
		{"unknown param", map[string]any{"argv": []any{"true"}, "shell": true}, []*sdk.FieldError{{Field: "shell", Message: "unknown parameter"}}},
		{"bad timeout", map[string]any{"argv": []any{"true"}, "timeout": "soon"}, []*sdk.FieldError{{Field: "timeout", Message: `want a positive duration like 30s or 5m, got "soon"`}}},
		{"relative dir", map[string]any{"argv": []any{"true"}, "dir": "srv"}, []*sdk.FieldError{{Field: "dir", Message: "must be an absolute path inside the root, like /srv/app"}}},
		{"dotdot creates", map[string]any{"argv": []any{"true"}, "creates": "/../etc/passwd"}, []*sdk.FieldError{{Field: "creates", Message: "must not contain .."}}},
		{"exit code range", map[string]any{"argv": []any{"true"}, "accept_exit_codes": []any{256}}, []*sdk.FieldError{{Field: "accept_exit_codes", Message: "exit code 256 is outside 0..255"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New().Validate(t.Context(), stepContext(t, t.TempDir(), tt.params))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("field errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApply(t *testing.T) {
	t.Setenv("CAIRN_TEST_SECRET", "leaked")
	tests := []struct {
		name        string
		setup       func(t *testing.T, root string)
		params      map[string]any
		wantChanged bool
		wantOutputs map[string]string
		wantErr     error
		wantLog     string
	}{
		{
			name:        "runs and streams output",
			params:      map[string]any{"argv": []any{"sh", "-c", "echo hello; echo oops >&2"}},
			wantChanged: true,
			wantOutputs: map[string]string{"exit_code": "0", "stdout_tail": "hello\n", "stderr_tail": "oops\n"},
			wantLog:     "info: oops",
		},
		{
			name:        "accepted non-zero exit",
			params:      map[string]any{"argv": []any{"sh", "-c", "exit 3"}, "accept_exit_codes": []any{0, 3}},
			wantChanged: true,
			wantOutputs: map[string]string{"exit_code": "3", "stdout_tail": "", "stderr_tail": ""},
		},
		{
			name:    "refused exit code",
			params:  map[string]any{"argv": []any{"sh", "-c", "echo broken >&2; exit 2"}},
			wantErr: ErrExitCode,
		},
		{
			name:    "program not found",
			params:  map[string]any{"argv": []any{"no-such-program-cairn"}},
			wantErr: ErrNotFound,
		},
		{
			name:    "invalid params",
			params:  map[string]any{"argv": []any{}},
			wantErr: ErrInvalidParams,
		},
		{
			name: "creates exists",
			setup: func(t *testing.T, root string) {
				mustWrite(t, filepath.Join(root, "srv", "done"), "")
			},
			params:  map[string]any{"argv": []any{"false"}, "creates": "/srv/done"},
			wantLog: "info: skipped: /srv/done exists",
		},
		{
			name:        "creates missing",
			params:      map[string]any{"argv": []any{"sh", "-c", `mkdir -p "$CAIRN_ROOT/srv" && touch "$CAIRN_ROOT/srv/done"`}, "creates": "/srv/done"},
			wantChanged: true,
			wantOutputs: map[string]string{"exit_code": "0", "stdout_tail": "", "stderr_tail": ""},
		},
		{
			name:    "unless guard passes",
			params:  map[string]any{"argv": []any{"false"}, "unless": []any{"true"}},
			wantLog: "info: skipped: guard true exited 0",
		},
		{
			name:        "unless guard fails",
			params:      map[string]any{"argv": []any{"true"}, "unless": []any{"false"}},
			wantChanged: true,
			wantOutputs: map[string]string{"exit_code": "0", "stdout_tail": "", "stderr_tail": ""},
			wantLog:     "info: guard false exited 1",
		},
		{
			name: "dir is under the root",
			setup: func(t *testing.T, root string) {
				os.MkdirAll(filepath.Join(root, "srv", "app"), 0o755)
			},
			params:      map[string]any{"argv": []any{"sh", "-c", `test "$(pwd)" = "$CAIRN_ROOT/srv/app" && echo here`}, "dir": "/srv/app"},
			wantChanged: true,
			wantOutputs: map[string]string{"exit_code": "0", "stdout_tail": "here\n", "stderr_tail": ""},
		},
		{
			name:        "environment is not inherited",
			params:      map[string]any{"argv": []any{"sh", "-c", `echo "[$CAIRN_TEST_SECRET][$GIVEN]"`}, "env": map[string]any{"GIVEN": "yes"}},
			wantChanged: true,
			wantOutputs: map[string]string{"exit_code": "0", "stdout_tail": "[][yes]\n", "stderr_tail": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if tt.setup != nil {
				tt.setup(t, root)
			}
			rec := &recorder{}
			res, err := New().Apply(t.Context(), stepContext(t, root, tt.params), rec)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Apply error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if res.GetChanged() != tt.wantChanged {
				t.Errorf("changed = %v, want %v", res.GetChanged(), tt.wantChanged)
			}
			if diff := cmp.Diff(tt.wantOutputs, res.GetOutputs()); diff != "" {
				t.Errorf("outputs (-want +got):\n%s", diff)
			}
			if tt.wantLog != "" && !contains(rec.logs, tt.wantLog) {
				t.Errorf("log lines %q lack %q", rec.logs, tt.wantLog)
			}
		})
	}
}

// TestApplyOutputLevels: a program's ordinary output on stderr is logged
// as info; only a line that says it is a warning or an error is a warning.
func TestApplyOutputLevels(t *testing.T) {
	rec := &recorder{}
	script := `echo hello; echo "Created symlink /etc/x.wants/a.service → /lib/a.service." >&2; echo "warning: unit changed on disk" >&2`
	if _, err := New().Apply(t.Context(), stepContext(t, t.TempDir(), map[string]any{"argv": []any{"sh", "-c", script}}), rec); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"info: hello", "info: Created symlink /etc/x.wants/a.service → /lib/a.service.", "warn: warning: unit changed on disk"} {
		if !contains(rec.logs, want) {
			t.Errorf("log lines %q lack %q", rec.logs, want)
		}
	}
}

func TestApplyErrorNamesOutput(t *testing.T) {
	sc := stepContext(t, t.TempDir(), map[string]any{"argv": []any{"sh", "-c", "echo disk full >&2; exit 4"}})
	_, err := New().Apply(t.Context(), sc, &recorder{})
	if err == nil || !strings.Contains(err.Error(), "exited with 4; last output: disk full") {
		t.Fatalf("error = %v, want the exit code and the last output", err)
	}
}

func TestApplyTailIsBounded(t *testing.T) {
	// 20 000 lines (about 200 KB) is far more than the tail keeps.
	sc := stepContext(t, t.TempDir(), map[string]any{"argv": []any{"sh", "-c", "i=0; while [ $i -lt 20000 ]; do echo line $i; i=$((i+1)); done"}})
	res, err := New().Apply(t.Context(), sc, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	tail := res.GetOutputs()["stdout_tail"]
	if len(tail) > tailSize || !strings.HasSuffix(tail, "line 19999\n") {
		t.Errorf("stdout_tail has %d bytes ending %q; want at most %d ending with the last line", len(tail), lastBytes(tail, 20), tailSize)
	}
}

func TestApplyTimeoutKillsProcessGroup(t *testing.T) {
	root := t.TempDir()
	pidFile := filepath.Join(root, "child.pid")
	sc := stepContext(t, root, map[string]any{
		"argv":    []any{"sh", "-c", `sleep 30 & echo $! > "$CAIRN_ROOT/child.pid"; wait`},
		"timeout": "300ms",
	})
	start := time.Now()
	_, err := New().Apply(t.Context(), sc, &recorder{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want a deadline error", err)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("Apply took %s after a 300ms timeout", took)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	// The background sleep must be gone (or a zombie waiting for init).
	deadline := time.Now().Add(2 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d of the killed program still runs: %s", pid, stat)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestApplysProgramDiesWithThePlugin: when the plugin process is killed (with
// the agent, which takes its plugins with it), the program it runs dies
// too, rather than running on unsupervised while the restarted agent
// decides what to do with its step.
func TestApplysProgramDiesWithThePlugin(t *testing.T) {
	root := t.TempDir()
	cmd := osexec.Command(sdktest.Self(t), "-test.run=^$")
	cmd.Env = append(os.Environ(), applyHelperEnv+"="+root)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	for end := time.Now().Add(30 * time.Second); pid == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the program never started:\n%s", out.String())
		}
		b, _ := os.ReadFile(filepath.Join(root, "program.pid"))
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("program %d still runs 10s after its plugin was killed: %s", pid, stat)
		}
	}
}

func TestApplyCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(200*time.Millisecond, cancel)
	sc := stepContext(t, t.TempDir(), map[string]any{"argv": []any{"sleep", "30"}})
	_, err := New().Apply(ctx, sc, &recorder{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
}

func TestPlan(t *testing.T) {
	root := t.TempDir()
	mustWrite(t, filepath.Join(root, "srv", "done"), "")
	tests := []struct {
		name   string
		params map[string]any
		want   *sdk.Plan
	}{
		{
			name:   "would run",
			params: map[string]any{"argv": []any{"sh", "-c", "echo a b"}},
			want:   &sdk.Plan{Actions: []string{`would run: sh -c "echo a b"`}, WouldChange: true},
		},
		{
			name:   "creates exists",
			params: map[string]any{"argv": []any{"make"}, "creates": "/srv/done"},
			want: &sdk.Plan{
				Actions: []string{"skip: /srv/done exists"},
				Changes: []*sdk.Change{{Kind: sdk.ChangeFile, Name: "/srv/done", State: "present"}},
			},
		},
		{
			// A plan runs no command: the guard would leave a file.
			name:   "unless is not run",
			params: map[string]any{"argv": []any{"make"}, "unless": []any{"sh", "-c", `touch "$CAIRN_ROOT/guard-ran"`}},
			want: &sdk.Plan{Actions: []string{`would run: make unless sh -c "touch \"$CAIRN_ROOT/guard-ran\"" exits 0 (a plan runs no command, the guard included)`},
				WouldChange: true},
		},
	}
	defer func() {
		if _, err := os.Stat(filepath.Join(root, "guard-ran")); err == nil {
			t.Error("Plan ran the unless guard")
		}
	}()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New().Plan(t.Context(), stepContext(t, root, tt.params))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	tests := []struct {
		name       string
		params     map[string]any
		wantPassed bool
		wantIn     string
	}{
		{"passes", map[string]any{"argv": []any{"sh", "-c", "echo healthy"}}, true, "exited 0 in"},
		{"fails", map[string]any{"argv": []any{"sh", "-c", "echo sick; exit 1"}}, false, "output: sick"},
		{"accepted code", map[string]any{"argv": []any{"sh", "-c", "exit 7"}, "accept_exit_codes": []any{7}}, true, "exited 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New().Verify(t.Context(), stepContext(t, t.TempDir(), tt.params))
			if err != nil {
				t.Fatal(err)
			}
			if got.GetPassed() != tt.wantPassed || !strings.Contains(got.GetEvidence(), tt.wantIn) {
				t.Errorf("Verify = %v %q, want %v and evidence containing %q", got.GetPassed(), got.GetEvidence(), tt.wantPassed, tt.wantIn)
			}
		})
	}
}

func TestRollback(t *testing.T) {
	undo := []any{"sh", "-c", `touch "$CAIRN_ROOT/undone"`}
	tests := []struct {
		name        string
		params      map[string]any
		record      string
		wantChanged bool
		wantUndone  bool
	}{
		{"runs rollback_argv", map[string]any{"argv": []any{"true"}, "rollback_argv": undo}, `{"ran":true}`, true, true},
		{"no record runs rollback_argv", map[string]any{"argv": []any{"true"}, "rollback_argv": undo}, ``, true, true},
		{"skipped apply", map[string]any{"argv": []any{"true"}, "rollback_argv": undo}, `{"ran":false}`, false, false},
		{"no rollback_argv", map[string]any{"argv": []any{"true"}}, `{"ran":true}`, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			got, err := New().Rollback(t.Context(), stepContext(t, root, tt.params), []byte(tt.record))
			if err != nil {
				t.Fatal(err)
			}
			_, statErr := os.Stat(filepath.Join(root, "undone"))
			if got.GetChanged() != tt.wantChanged || (statErr == nil) != tt.wantUndone {
				t.Errorf("Rollback changed=%v (%q), undone=%v; want %v, %v", got.GetChanged(), got.GetMessage(), statErr == nil, tt.wantChanged, tt.wantUndone)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	d, err := New().Describe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if d.GetName() != "exec" || d.GetIdempotent() || d.GetNeedsConfirmation() {
		t.Errorf("Describe = %v", d)
	}
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func contains(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

func conformanceCases() sdktest.Cases {
	return sdktest.Cases{
		Context: func(t *testing.T) *sdk.StepContext {
			return stepContext(t, t.TempDir(), map[string]any{
				"argv":          []any{"sh", "-c", `echo deployed > "$CAIRN_ROOT/marker"`},
				"rollback_argv": []any{"sh", "-c", `rm "$CAIRN_ROOT/marker"`},
				"creates":       "/marker",
				"timeout":       "10s",
			})
		},
		Invalid: []sdktest.Invalid{
			{Name: "no_argv", Params: map[string]any{"argv": []any{}}, Field: "argv"},
			{Name: "shell_string", Params: map[string]any{"argv": "echo hi"}, Field: "argv"},
			{Name: "bad_timeout", Params: map[string]any{"argv": []any{"true"}, "timeout": "-1s"}, Field: "timeout"},
		},
	}
}

func TestConformance(t *testing.T) {
	sdktest.Run(t, New(), conformanceCases())
}

func TestConformanceOverProcessBoundary(t *testing.T) {
	sdktest.RunBinary(t, sdktest.Self(t), conformanceCases())
}

// TestDirStaysInTheRoot: a working directory reached through a symlink in
// the root resolves inside the root, as in a chroot, never to the host
// directory the link names; a link to a directory that exists only
// outside the root is refused.
func TestDirStaysInTheRoot(t *testing.T) {
	base := t.TempDir()
	root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
	for _, d := range []string{filepath.Join(root, "run", "app"), filepath.Join(root, "srv"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/run", filepath.Join(root, "var-run")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "srv", "app")); err != nil {
		t.Fatal(err)
	}
	pwd := []any{"sh", "-c", "pwd -P"}
	res, err := New().Apply(t.Context(), stepContext(t, root, map[string]any{"argv": pwd, "dir": "/var-run/app"}), &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := filepath.EvalSymlinks(filepath.Join(root, "run", "app"))
	if got := strings.TrimSpace(res.GetOutputs()["stdout_tail"]); got != want {
		t.Errorf("the program ran in %s, want %s (the absolute link resolved inside the root)", got, want)
	}
	_, err = New().Apply(t.Context(), stepContext(t, root, map[string]any{"argv": pwd, "dir": "/srv/app"}), &recorder{})
	if !errors.Is(err, ErrDir) {
		t.Errorf("dir through a link to %s: err = %v, want ErrDir", outside, err)
	}
}
