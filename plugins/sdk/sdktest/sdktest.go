// Package sdktest is the conformance harness for Cairn step plugins. A
// plugin's own tests run it in-process with Run, and over the real process
// boundary with RunBinary:
//
//	func TestConformance(t *testing.T) {
//		cases := sdktest.Cases{Context: func(t *testing.T) *sdk.StepContext { … }}
//		sdktest.Run(t, myplugin.New(), cases)
//		sdktest.RunBinary(t, sdktest.Build(t, "example.com/myplugin/cmd/myplugin"), cases)
//	}
//
// The checks: Describe names the plugin, its version and well-formed
// parameters; Validate reports every required parameter missing from
// empty parameters, accepts the valid ones and rejects the invalid ones;
// Plan with dry_run changes nothing under the root; Apply then Verify
// passes; a second Apply of an idempotent plugin changes nothing; Rollback
// with Apply's record restores the root as it was before Apply; for an
// idempotent plugin, a re-run after a crash (Apply's result lost) still
// reports the change and its record undoes the first attempt, and
// Rollback without a record (the crash before the journal saw it) undoes
// the change from the write-ahead undo record (sdk.SaveUndo); and Apply
// with its deadline already passed fails promptly without touching the
// root. "Nothing changed under the root" compares snapshots of the whole
// tree: paths, modes, file sha256 and link targets.
package sdktest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

// Cases is what the harness needs to know about a plugin.
type Cases struct {
	// Context returns a StepContext with valid parameters and a fresh
	// root (typically under t.TempDir(), with whatever fixtures the
	// plugin needs). It is called once per check. Required.
	Context func(t *testing.T) *sdk.StepContext
	// Invalid lists parameter sets Validate must reject.
	Invalid []Invalid
	// Ignore lists slash-separated path.Match patterns, relative to the
	// root, for paths the comparisons of the root skip (with everything
	// under them): lock files, logs a package manager keeps.
	Ignore []string
	// NoVerify skips the Verify check after Apply, for plugins without
	// an acceptance check.
	NoVerify bool
	// NoRollback skips Rollback, for plugins that cannot undo Apply.
	NoRollback bool
	// Timeout bounds each call; zero means one minute.
	Timeout time.Duration
}

// Invalid is a parameter set Validate must reject.
type Invalid struct {
	Name string
	// Params replace the valid parameters of Cases.Context.
	Params map[string]any
	// Field, when set, must be named by one of the FieldErrors.
	Field string
}

// Run runs the conformance checks on p in this process, each as a
// subtest.
func Run(t *testing.T, p sdk.Plugin, c Cases) {
	t.Helper()
	h := harness{p: p, c: c, expired: func() (context.Context, context.CancelFunc) {
		// In-process the plugin must honour its context itself.
		return context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	}}
	h.run(t)
}

// RunBinary starts the plugin binary at path through go-plugin, as the
// agent does (gRPC, AutoMTLS, the binary's sha256 as SecureConfig), and
// runs the conformance checks on it, each as a subtest.
func RunBinary(t *testing.T, path string, c Cases) {
	t.Helper()
	client := Start(t, path)
	h := harness{p: client, c: c, expired: func() (context.Context, context.CancelFunc) {
		// Over the wire, only the step's deadline has passed: the plugin
		// side must refuse the call.
		return context.WithTimeout(t.Context(), time.Minute)
	}}
	h.run(t)
}

type harness struct {
	p       sdk.Plugin
	c       Cases
	expired func() (context.Context, context.CancelFunc)
}

func (h harness) run(t *testing.T) {
	if h.c.Context == nil {
		t.Fatal("sdktest: Cases.Context is required")
	}
	var desc *sdk.Description
	t.Run("describe", func(t *testing.T) {
		ctx := h.ctx(t)
		d, err := h.p.Describe(ctx)
		if err != nil {
			t.Fatalf("Describe: %v", err)
		}
		desc = d
		checkDescription(t, d)
	})
	if desc == nil {
		t.Fatal("Describe failed; later checks need it")
	}
	t.Run("validate_required", func(t *testing.T) { h.validateRequired(t, desc) })
	t.Run("validate_valid", h.validateValid)
	for _, inv := range h.c.Invalid {
		t.Run("validate_invalid/"+inv.Name, func(t *testing.T) { h.validateInvalid(t, inv) })
	}
	t.Run("plan_dry_run", h.planDryRun)
	t.Run("apply", func(t *testing.T) { h.apply(t, desc) })
	if desc.GetIdempotent() && !h.c.NoRollback {
		t.Run("rerun_after_crash", h.rerunAfterCrash)
		t.Run("rollback_after_crash", h.rollbackAfterCrash)
	}
	t.Run("apply_expired_deadline", h.applyExpired)
}

// stepContext returns Cases.Context's StepContext with a state directory
// of its own when it has none.
func (h harness) stepContext(t *testing.T) *sdk.StepContext {
	sc := h.c.Context(t)
	if sc.GetStateDir() == "" {
		sc.StateDir = t.TempDir()
	}
	return sc
}

// rerunAfterCrash is an agent killed after Apply changed the root and
// before the journal recorded its result: the re-run of the step (same
// state directory) must still say it changed something and return a
// record that undoes the first attempt's change too.
func (h harness) rerunAfterCrash(t *testing.T) {
	sc := h.stepContext(t)
	before := h.snapshot(t, sc)
	first, err := h.p.Apply(h.ctx(t), proto.CloneOf(sc), &Recorder{})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if !first.GetChanged() {
		t.Skip("Apply changed nothing on this fixture: no crash window to check")
	}
	if !sdk.HasUndo(sc.GetStateDir()) {
		t.Fatal("Apply changed the root but left no undo record in the state directory: save it with sdk.SaveUndo before changing anything")
	}
	// The agent died here; the journal never saw first's record.
	again, err := h.p.Apply(h.ctx(t), proto.CloneOf(sc), &Recorder{})
	if err != nil {
		t.Fatalf("Apply re-run after a crash: %v", err)
	}
	if !again.GetChanged() {
		t.Error("Apply re-run after a crash reported changed=false: the host would not undo the first attempt's change")
	}
	if _, err := h.p.Rollback(h.ctx(t), proto.CloneOf(sc), again.GetRollbackRecord()); err != nil {
		t.Fatalf("Rollback with the re-run's record: %v", err)
	}
	if diff := cmp.Diff(before, h.snapshot(t, sc)); diff != "" {
		t.Errorf("Rollback with the re-run's record did not restore the root as it was before the first attempt (-before +after):\n%s", diff)
	}
}

// rollbackAfterCrash is an agent killed after Apply changed the root and
// before the journal recorded its result, then rolled back: Rollback gets
// no record and must undo the change from the state directory.
func (h harness) rollbackAfterCrash(t *testing.T) {
	sc := h.stepContext(t)
	before := h.snapshot(t, sc)
	res, err := h.p.Apply(h.ctx(t), proto.CloneOf(sc), &Recorder{})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if !res.GetChanged() {
		t.Skip("Apply changed nothing on this fixture: no crash window to check")
	}
	if _, err := h.p.Rollback(h.ctx(t), proto.CloneOf(sc), nil); err != nil {
		t.Fatalf("Rollback without a record: %v", err)
	}
	if diff := cmp.Diff(before, h.snapshot(t, sc)); diff != "" {
		t.Errorf("Rollback without a record did not restore the root from the undo record in the state directory (-before +after):\n%s", diff)
	}
	if sdk.HasUndo(sc.GetStateDir()) {
		t.Error("the undo record is still in the state directory after a successful Rollback: clear it with sdk.ClearUndo")
	}
}

func (h harness) ctx(t *testing.T) context.Context {
	timeout := h.c.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	return ctx
}

var paramTypes = []string{"string", "number", "bool", "list", "object"}

func checkDescription(t *testing.T, d *sdk.Description) {
	t.Helper()
	if d.GetName() == "" {
		t.Error("Describe: empty name")
	}
	if d.GetVersion() == "" {
		t.Error("Describe: empty version")
	}
	seen := map[string]bool{}
	for _, p := range d.GetParams() {
		if p.GetName() == "" {
			t.Errorf("Describe: a parameter without a name: %v", p)
			continue
		}
		if seen[p.GetName()] {
			t.Errorf("Describe: parameter %q listed twice", p.GetName())
		}
		seen[p.GetName()] = true
		if !slices.Contains(paramTypes, p.GetType()) {
			t.Errorf("Describe: parameter %q has type %q, want one of %s", p.GetName(), p.GetType(), strings.Join(paramTypes, ", "))
		}
	}
}

func (h harness) validateRequired(t *testing.T, d *sdk.Description) {
	sc := h.c.Context(t)
	sc.Params = nil
	errs, err := h.p.Validate(h.ctx(t), sc)
	if err != nil {
		t.Fatalf("Validate(no parameters): %v", err)
	}
	var want, got []string
	for _, p := range d.GetParams() {
		if p.GetRequired() {
			want = append(want, p.GetName())
		}
	}
	for _, fe := range errs {
		if slices.Contains(want, fe.GetField()) && !slices.Contains(got, fe.GetField()) {
			got = append(got, fe.GetField())
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Validate(no parameters) must report each required parameter (-want +got):\n%s\nerrors: %v", diff, errs)
	}
}

func (h harness) validateValid(t *testing.T) {
	errs, err := h.p.Validate(h.ctx(t), h.c.Context(t))
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if len(errs) > 0 {
		t.Errorf("Validate rejected the valid parameters: %v", errs)
	}
}

func (h harness) validateInvalid(t *testing.T, inv Invalid) {
	sc := h.c.Context(t)
	params, err := sdk.ParamsOf(inv.Params)
	if err != nil {
		t.Fatalf("parameters of case %s: %v", inv.Name, err)
	}
	sc.Params = params
	errs, err := h.p.Validate(h.ctx(t), sc)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if len(errs) == 0 {
		t.Fatalf("Validate accepted invalid parameters %v", inv.Params)
	}
	if inv.Field != "" && !slices.ContainsFunc(errs, func(fe *sdk.FieldError) bool { return fe.GetField() == inv.Field }) {
		t.Errorf("Validate did not name field %q: %v", inv.Field, errs)
	}
	for _, fe := range errs {
		if fe.GetMessage() == "" {
			t.Errorf("FieldError for %q without a message", fe.GetField())
		}
	}
}

func (h harness) planDryRun(t *testing.T) {
	sc := h.c.Context(t)
	sc.DryRun = true
	before := h.snapshot(t, sc)
	plan, err := h.p.Plan(h.ctx(t), sc)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	checkChanges(t, "Plan", plan.GetChanges())
	if plan.GetWouldChange() && len(plan.GetActions()) == 0 {
		t.Error("Plan says it would change something but lists no actions")
	}
	if diff := cmp.Diff(before, h.snapshot(t, sc)); diff != "" {
		t.Errorf("Plan (dry run) changed the root (-before +after):\n%s", diff)
	}
}

func (h harness) apply(t *testing.T, d *sdk.Description) {
	sc := h.stepContext(t)
	before := h.snapshot(t, sc)
	plan, err := h.p.Plan(h.ctx(t), proto.CloneOf(sc))
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}

	rep := &Recorder{}
	res, err := h.p.Apply(h.ctx(t), proto.CloneOf(sc), rep)
	if err != nil {
		t.Fatalf("Apply: %v\nlog:\n%s", err, rep)
	}
	rep.check(t)
	// The host's journal holds the result now, and the host clears the
	// write-ahead record.
	if err := sdk.ClearUndo(sc); err != nil {
		t.Fatal(err)
	}
	checkChanges(t, "Apply", res.GetChanges())
	if res.GetChanged() && !plan.GetWouldChange() {
		t.Errorf("Apply changed something after Plan said it would not (plan actions %q)", plan.GetActions())
	}

	if !h.c.NoVerify {
		v, err := h.p.Verify(h.ctx(t), proto.CloneOf(sc))
		if err != nil {
			t.Fatalf("Verify after Apply: %v", err)
		}
		if !v.GetPassed() {
			t.Errorf("Verify after Apply failed: %s", v.GetEvidence())
		}
		if v.GetEvidence() == "" {
			t.Error("Verify gave no evidence")
		}
	}

	if d.GetIdempotent() {
		afterFirst := h.snapshot(t, sc)
		again, err := h.p.Apply(h.ctx(t), proto.CloneOf(sc), &Recorder{})
		if err != nil {
			t.Fatalf("second Apply: %v", err)
		}
		if again.GetChanged() {
			t.Error("second Apply of an idempotent plugin reported changed=true")
		}
		if diff := cmp.Diff(afterFirst, h.snapshot(t, sc)); diff != "" {
			t.Errorf("second Apply of an idempotent plugin changed the root (-first +second):\n%s", diff)
		}
		plan, err := h.p.Plan(h.ctx(t), proto.CloneOf(sc))
		if err != nil {
			t.Fatalf("Plan after Apply: %v", err)
		}
		if plan.GetWouldChange() {
			t.Errorf("Plan after Apply of an idempotent plugin still would change: %q", plan.GetActions())
		}
	}

	if h.c.NoRollback {
		return
	}
	if _, err := h.p.Rollback(h.ctx(t), proto.CloneOf(sc), res.GetRollbackRecord()); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	if diff := cmp.Diff(before, h.snapshot(t, sc)); diff != "" {
		t.Errorf("Rollback did not restore the root as it was before Apply (-before +after):\n%s", diff)
	}
}

func (h harness) applyExpired(t *testing.T) {
	sc := h.c.Context(t)
	sc.DeadlineUnixMs = time.Now().Add(-time.Second).UnixMilli()
	before := h.snapshot(t, sc)
	ctx, cancel := h.expired()
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := h.p.Apply(ctx, sc, &Recorder{})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Apply with its deadline passed succeeded; want an error")
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Apply with its deadline passed: %v; want an error wrapping context.DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Apply with its deadline passed still running after 10s")
	}
	if diff := cmp.Diff(before, h.snapshot(t, sc)); diff != "" {
		t.Errorf("Apply with its deadline passed changed the root (-before +after):\n%s", diff)
	}
}

func (h harness) snapshot(t *testing.T, sc *sdk.StepContext) Tree {
	t.Helper()
	tree, err := Snapshot(sc.GetRootDir(), h.c.Ignore...)
	if err != nil {
		t.Fatalf("snapshot root: %v", err)
	}
	return tree
}

var changeKinds = []string{sdk.ChangePackage, sdk.ChangeFile, sdk.ChangeService}

func checkChanges(t *testing.T, method string, changes []*sdk.Change) {
	t.Helper()
	for _, c := range changes {
		if !slices.Contains(changeKinds, c.GetKind()) {
			t.Errorf("%s declared a change of kind %q, want one of %s", method, c.GetKind(), strings.Join(changeKinds, ", "))
		}
		if c.GetName() == "" {
			t.Errorf("%s declared a change without a name: %v", method, c)
		}
	}
}

// Recorder is a sdk.Reporter that keeps what it is told; safe for
// concurrent use.
type Recorder struct {
	mu      sync.Mutex
	Logs    []LogLine
	Updates []ProgressEvent
}

// LogLine is one Reporter.Log call.
type LogLine struct{ Level, Message string }

// ProgressEvent is one Reporter.Progress call.
type ProgressEvent struct {
	Fraction float64
	Message  string
}

var _ sdk.Reporter = (*Recorder)(nil)

// Log implements sdk.Reporter.
func (r *Recorder) Log(level, message string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Logs = append(r.Logs, LogLine{level, message})
}

// Progress implements sdk.Reporter.
func (r *Recorder) Progress(fraction float64, message string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Updates = append(r.Updates, ProgressEvent{fraction, message})
}

// String returns the log lines, one per line.
func (r *Recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, l := range r.Logs {
		fmt.Fprintf(&b, "%s: %s\n", l.Level, l.Message)
	}
	return b.String()
}

func (r *Recorder) check(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	levels := []string{sdk.LevelInfo, sdk.LevelWarn, sdk.LevelError}
	for _, l := range r.Logs {
		if !slices.Contains(levels, l.Level) {
			t.Errorf("Apply logged at level %q, want one of %s", l.Level, strings.Join(levels, ", "))
		}
	}
	for _, p := range r.Updates {
		if p.Fraction < 0 || p.Fraction > 1 {
			t.Errorf("Apply reported progress %v, want 0..1", p.Fraction)
		}
	}
}
