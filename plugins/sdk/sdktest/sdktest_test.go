package sdktest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/plugins/sdk"
	"github.com/cairn-ops/cairn/plugins/sdk/sdktest"
)

// fake is an in-memory step plugin that writes param "content" to
// ROOT/out.txt; each flaw breaks one thing the harness must notice.
type fake struct{ flaw string }

var _ sdk.Plugin = fake{}

func (f fake) Describe(context.Context) (*sdk.Description, error) {
	d := &sdk.Description{Name: "fake", Version: "1", Idempotent: true,
		Params: []*sdk.ParamSpec{{Name: "content", Type: "string", Required: true}}}
	if f.flaw == "no_name" {
		d.Name = ""
	}
	if f.flaw == "bad_param_type" {
		d.Params[0].Type = "text"
	}
	return d, nil
}

func (f fake) Validate(_ context.Context, sc *sdk.StepContext) ([]*sdk.FieldError, error) {
	var p struct {
		Content *string `json:"content"`
	}
	if errs := sdk.DecodeParams(sc, &p); errs != nil {
		return errs, nil
	}
	if p.Content == nil && f.flaw != "required_not_reported" {
		return []*sdk.FieldError{sdk.Errorf("content", "is required")}, nil
	}
	return nil, nil
}

func (f fake) content(sc *sdk.StepContext) string {
	s, _ := sdk.Params(sc)["content"].(string)
	return s
}

func (f fake) path(sc *sdk.StepContext) string { return filepath.Join(sc.GetRootDir(), "out.txt") }

func (f fake) Plan(_ context.Context, sc *sdk.StepContext) (*sdk.Plan, error) {
	if f.flaw == "plan_writes" {
		os.WriteFile(filepath.Join(sc.GetRootDir(), "planned"), nil, 0o644)
	}
	cur, err := os.ReadFile(f.path(sc))
	would := err != nil || string(cur) != f.content(sc)
	if f.flaw == "plan_lies" {
		would = false
	}
	p := &sdk.Plan{WouldChange: would, Changes: []*sdk.Change{{Kind: sdk.ChangeFile, Name: "/out.txt", State: "present"}}}
	if would {
		p.Actions = []string{"write /out.txt"}
	}
	return p, nil
}

func (f fake) Apply(ctx context.Context, sc *sdk.StepContext, r sdk.Reporter) (*sdk.Result, error) {
	if err := ctx.Err(); err != nil && f.flaw != "ignores_deadline" {
		return nil, fmt.Errorf("apply: %w", err)
	}
	var record []byte
	prior, err := sdk.LoadUndo(sc, &record)
	if err != nil || f.flaw == "forgets_earlier_attempt" {
		prior = false
	}
	prev, err := os.ReadFile(f.path(sc))
	if !prior {
		record = []byte("absent")
		if err == nil {
			record = append([]byte("content:"), prev...)
		}
	}
	if err == nil && string(prev) == f.content(sc) && f.flaw != "not_idempotent" {
		return &sdk.Result{Changed: prior, RollbackRecord: record}, nil
	}
	r.Log(sdk.LevelInfo, "writing")
	if f.flaw == "bad_progress" {
		r.Progress(2, "too far")
	}
	if !prior && f.flaw != "no_write_ahead" {
		if err := sdk.SaveUndo(sc, record); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(f.path(sc), []byte(f.content(sc)), 0o644); err != nil {
		return nil, err
	}
	return &sdk.Result{Changed: true, RollbackRecord: record}, nil
}

func (f fake) Verify(_ context.Context, sc *sdk.StepContext) (*sdk.Verification, error) {
	cur, err := os.ReadFile(f.path(sc))
	passed := err == nil && string(cur) == f.content(sc) && f.flaw != "verify_fails"
	return &sdk.Verification{Passed: passed, Evidence: fmt.Sprintf("out.txt = %q", cur)}, nil
}

func (f fake) Rollback(_ context.Context, sc *sdk.StepContext, record []byte) (*sdk.RollbackResult, error) {
	if f.flaw == "rollback_does_nothing" {
		return &sdk.RollbackResult{}, nil
	}
	if len(record) == 0 {
		if found, err := sdk.LoadUndo(sc, &record); err != nil || !found {
			return &sdk.RollbackResult{Message: "nothing to undo"}, err
		}
	}
	defer sdk.ClearUndo(sc)
	if bytes.Equal(record, []byte("absent")) {
		err := os.Remove(f.path(sc))
		if errors.Is(err, os.ErrNotExist) {
			err = nil
		}
		return &sdk.RollbackResult{Changed: true}, err
	}
	prev, ok := bytes.CutPrefix(record, []byte("content:"))
	if !ok {
		return nil, fmt.Errorf("bad record %q", record)
	}
	return &sdk.RollbackResult{Changed: true}, os.WriteFile(f.path(sc), prev, 0o644)
}

func fakeCases() sdktest.Cases {
	return sdktest.Cases{
		Context: func(t *testing.T) *sdk.StepContext {
			ps, err := sdk.ParamsOf(map[string]any{"content": "hello"})
			if err != nil {
				t.Fatal(err)
			}
			return &sdk.StepContext{RootDir: t.TempDir(), Params: ps}
		},
		Invalid: []sdktest.Invalid{{Name: "unknown", Params: map[string]any{"content": "x", "colour": "red"}, Field: "colour"}},
	}
}

func TestRunPassesAConformingPlugin(t *testing.T) {
	sdktest.Run(t, fake{}, fakeCases())
}

// TestRunCatchesFlaws runs the harness on each flawed fake in a child
// test process and checks that it fails, saying why.
func TestRunCatchesFlaws(t *testing.T) {
	if flaw := os.Getenv("SDKTEST_FLAW"); flaw != "" {
		return // this is the child process: only TestFlawedChild works here
	}
	tests := []struct {
		flaw string
		want string
	}{
		{"no_name", "Describe: empty name"},
		{"bad_param_type", `parameter "content" has type "text"`},
		{"required_not_reported", "must report each required parameter"},
		{"plan_writes", "Plan (dry run) changed the root"},
		{"plan_lies", "Apply changed something after Plan said it would not"},
		{"verify_fails", "Verify after Apply failed"},
		{"not_idempotent", "second Apply of an idempotent plugin reported changed=true"},
		{"rollback_does_nothing", "Rollback did not restore the root"},
		{"ignores_deadline", "Apply with its deadline passed succeeded"},
		{"bad_progress", "Apply reported progress 2, want 0..1"},
		{"no_write_ahead", "left no undo record in the state directory"},
		{"forgets_earlier_attempt", "Apply re-run after a crash reported changed=false"},
	}
	for _, tt := range tests {
		t.Run(tt.flaw, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestFlawedChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), "SDKTEST_FLAW="+tt.flaw)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("the harness passed a plugin with flaw %s (err %v):\n%s", tt.flaw, err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("the harness failed, but without %q:\n%s", tt.want, out)
			}
		})
	}
}

// TestFlawedChild is the child of TestRunCatchesFlaws.
func TestFlawedChild(t *testing.T) {
	flaw := os.Getenv("SDKTEST_FLAW")
	if flaw == "" {
		return // not a test of its own: TestRunCatchesFlaws runs it in a child process
	}
	sdktest.Run(t, fake{flaw: flaw}, fakeCases())
}

func TestSnapshot(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "a/b"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "var/lock"), 0o755))
	must(os.WriteFile(filepath.Join(root, "a/b/f"), []byte("x"), 0o600))
	must(os.WriteFile(filepath.Join(root, "var/lock/l"), nil, 0o600))
	must(os.Symlink("../b/f", filepath.Join(root, "a/link")))
	got, err := sdktest.Snapshot(root, "var/lock")
	if err != nil {
		t.Fatal(err)
	}
	want := sdktest.Tree{
		"a":      {Mode: "drwxr-xr-x"},
		"a/b":    {Mode: "drwxr-xr-x"},
		"a/b/f":  {Mode: "-rw-------", SHA256: "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"},
		"a/link": {Mode: "Lrwxrwxrwx", Link: "../b/f"},
		"var":    {Mode: "drwxr-xr-x"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	empty, err := sdktest.Snapshot(filepath.Join(root, "missing"))
	if err != nil || len(empty) != 0 {
		t.Errorf("Snapshot of a missing root = %v, %v; want empty", empty, err)
	}
}
