package systemd

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/plugins/sdk"
	"github.com/cairn-ops/cairn/plugins/sdk/sdktest"
)

// newRoot copies testdata/root into a temporary root.
func newRoot(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	if err := os.CopyFS(root, os.DirFS("testdata/root")); err != nil {
		t.Fatal(err)
	}
	return root
}

func stepContext(t *testing.T, root string, params map[string]any) *sdk.StepContext {
	t.Helper()
	st, err := sdk.ParamsOf(params)
	if err != nil {
		t.Fatal(err)
	}
	return &sdk.StepContext{RootDir: root, Params: st, Step: "unit"}
}

type nopReporter struct{}

func (nopReporter) Log(string, string)       {}
func (nopReporter) Progress(float64, string) {}

func snapshot(t *testing.T, root string) sdktest.Tree {
	t.Helper()
	tree, err := sdktest.Snapshot(root)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func link(t *testing.T, p string) string {
	t.Helper()
	target, err := os.Readlink(p)
	if err != nil {
		return ""
	}
	return target
}

const wants = "/etc/systemd/system/multi-user.target.wants/foo.service"

func TestUnitFileActions(t *testing.T) {
	tests := []struct {
		name      string
		setup     []string // actions applied first
		action    string
		unit      string
		wantState string
		wantLinks map[string]string // path in root → symlink target ("" = absent)
	}{
		{"enable", nil, "enable", "foo.service", "enabled", map[string]string{wants: "/lib/systemd/system/foo.service"}},
		{"enable without suffix", nil, "enable", "foo", "enabled", map[string]string{wants: "/lib/systemd/system/foo.service"}},
		{"disable", []string{"enable"}, "disable", "foo.service", "disabled", map[string]string{wants: ""}},
		{"mask", nil, "mask", "foo.service", "masked", map[string]string{"/etc/systemd/system/foo.service": "/dev/null"}},
		{"mask enabled", []string{"enable"}, "mask", "foo.service", "masked", map[string]string{"/etc/systemd/system/foo.service": "/dev/null"}},
		{"unmask", []string{"enable", "mask"}, "unmask", "foo.service", "enabled", map[string]string{"/etc/systemd/system/foo.service": "", wants: "/lib/systemd/system/foo.service"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := newRoot(t)
			p := New()
			for _, a := range tt.setup {
				if _, err := p.Apply(t.Context(), stepContext(t, root, map[string]any{"unit": tt.unit, "action": a}), nopReporter{}); err != nil {
					t.Fatalf("setup %s: %v", a, err)
				}
			}
			before := snapshot(t, root)
			sc := stepContext(t, root, map[string]any{"unit": tt.unit, "action": tt.action, "timeout": "30s"})
			plan, err := p.Plan(t.Context(), sc)
			if err != nil {
				t.Fatal(err)
			}
			if !plan.GetWouldChange() {
				t.Errorf("Plan: would_change=false: %q", plan.GetActions())
			}
			res, err := p.Apply(t.Context(), sc, nopReporter{})
			if err != nil {
				t.Fatal(err)
			}
			if !res.GetChanged() || res.GetOutputs()["state"] != tt.wantState {
				t.Errorf("Apply: changed=%v state=%q, want changed and %q", res.GetChanged(), res.GetOutputs()["state"], tt.wantState)
			}
			for p, want := range tt.wantLinks {
				if got := link(t, root+p); got != want {
					t.Errorf("%s → %q, want %q", p, got, want)
				}
			}
			if v, err := p.Verify(t.Context(), sc); err != nil || !v.GetPassed() {
				t.Errorf("Verify: %v, %v", v, err)
			}
			afterFirst := snapshot(t, root)
			again, err := p.Apply(t.Context(), sc, nopReporter{})
			if err != nil || again.GetChanged() {
				t.Errorf("second Apply: changed=%v, %v", again.GetChanged(), err)
			}
			if diff := cmp.Diff(afterFirst, snapshot(t, root)); diff != "" {
				t.Errorf("second Apply changed the root:\n%s", diff)
			}
			if _, err := p.Rollback(t.Context(), sc, res.GetRollbackRecord()); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(before, snapshot(t, root)); diff != "" {
				t.Errorf("Rollback (-before +after):\n%s", diff)
			}
		})
	}
}

func TestNoSystemd(t *testing.T) {
	for _, action := range []string{"start", "stop", "restart", "reload", "wait-active"} {
		t.Run(action, func(t *testing.T) {
			pl := New().(*Plugin)
			pl.bootedDir = filepath.Join(t.TempDir(), "no-such-dir")
			sc := stepContext(t, "/", map[string]any{"unit": "foo.service", "action": action})
			_, err := pl.Apply(t.Context(), sc, nopReporter{})
			if !errors.Is(err, ErrNoSystemd) {
				t.Fatalf("Apply: %v; want ErrNoSystemd", err)
			}
			want := "cannot " + action + " foo.service: no systemd is running on this host (systemd is not PID 1); enable/disable/mask work offline"
			if err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
			if _, err := pl.Plan(t.Context(), sc); !errors.Is(err, ErrNoSystemd) {
				t.Errorf("Plan: %v; want ErrNoSystemd", err)
			}
		})
	}
	// Under a sandbox root there is never a running systemd.
	_, err := New().Apply(t.Context(), stepContext(t, newRoot(t), map[string]any{"unit": "foo", "action": "start"}), nopReporter{})
	if !errors.Is(err, ErrNoSystemd) {
		t.Errorf("start under a root: %v; want ErrNoSystemd", err)
	}
}

func TestErrors(t *testing.T) {
	root := newRoot(t)
	p := New()
	_, err := p.Apply(t.Context(), stepContext(t, root, map[string]any{"unit": "nosuch.service", "action": "enable"}), nopReporter{})
	if !errors.Is(err, ErrUnitNotFound) {
		t.Errorf("enable nosuch: %v; want ErrUnitNotFound", err)
	}
	// Planning a unit an earlier step will install still declares it.
	plan, err := p.Plan(t.Context(), stepContext(t, root, map[string]any{"unit": "nosuch.service", "action": "enable"}))
	if err != nil || !plan.GetWouldChange() || len(plan.GetChanges()) != 1 || plan.GetChanges()[0].GetState() != "enabled" {
		t.Errorf("plan enable nosuch: %v, %v; want a declared enabled service", plan, err)
	}
	_, err = p.Apply(t.Context(), stepContext(t, root, map[string]any{"unit": "static.service", "action": "enable"}), nopReporter{})
	if err == nil || !strings.Contains(err.Error(), "static") {
		t.Errorf("enable static: %v; want an error saying it is static", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]any
		fields []string
	}{
		{"ok", map[string]any{"unit": "foo.service", "action": "enable", "timeout": "5s"}, nil},
		{"template instance", map[string]any{"unit": "getty@tty1.service", "action": "start"}, nil},
		{"missing", map[string]any{}, []string{"unit", "action"}},
		{"option-like unit", map[string]any{"unit": "--root=/", "action": "enable"}, []string{"unit"}},
		{"path unit", map[string]any{"unit": "../foo.service", "action": "enable"}, []string{"unit"}},
		{"shell unit", map[string]any{"unit": "foo; rm -rf /", "action": "enable"}, []string{"unit"}},
		{"bad action", map[string]any{"unit": "foo", "action": "kill"}, []string{"action"}},
		{"bad timeout", map[string]any{"unit": "foo", "action": "start", "timeout": "soon"}, []string{"timeout"}},
		{"unknown", map[string]any{"unit": "foo", "action": "start", "user": "x"}, []string{"user"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs, err := New().Validate(t.Context(), stepContext(t, "/", tt.params))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.GetField())
			}
			if diff := cmp.Diff(tt.fields, got); diff != "" {
				t.Errorf("fields (-want +got):\n%s\n%v", diff, errs)
			}
		})
	}
}

func conformance() sdktest.Cases {
	return sdktest.Cases{
		Context: func(t *testing.T) *sdk.StepContext {
			return stepContext(t, newRoot(t), map[string]any{"unit": "foo.service", "action": "enable"})
		},
		Invalid: []sdktest.Invalid{
			{Name: "bad action", Params: map[string]any{"unit": "foo", "action": "kill"}, Field: "action"},
			{Name: "bad unit", Params: map[string]any{"unit": "-x", "action": "enable"}, Field: "unit"},
		},
	}
}

func TestConformance(t *testing.T) {
	sdktest.Run(t, New(), conformance())
}

// TestConformanceProcess runs the same checks over the real plugin
// process boundary.
func TestConformanceProcess(t *testing.T) {
	sdktest.RunBinary(t, sdktest.Build(t, "./testdata/plugin"), conformance())
}
