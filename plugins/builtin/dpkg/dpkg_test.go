package dpkg

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/agent/inventory"
	"github.com/cairn-ops/cairn/plugins/sdk"
	"github.com/cairn-ops/cairn/plugins/sdk/sdktest"
)

func TestMain(m *testing.M) {
	sdktest.ServeIfPlugin(New)
	code := m.Run()
	if debs.dir != "" {
		_ = os.RemoveAll(debs.dir)
	}
	os.Exit(code)
}

// requireDpkg skips the test where dpkg is not installed.
func requireDpkg(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"dpkg", "dpkg-deb", "dpkg-query"} {
		if _, err := osexec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
}

// debs builds the test packages from testdata/pkg once per test binary.
var debs = struct {
	once  sync.Once
	dir   string
	err   error
	paths map[string]string
}{}

// buildDebs returns name → path of the .deb built from testdata/pkg/name.
// The trees are copied with fixed modes first (a checkout's umask must
// not matter to dpkg-deb) and built with --root-owner-group.
func buildDebs(t *testing.T) map[string]string {
	t.Helper()
	requireDpkg(t)
	debs.once.Do(func() {
		debs.dir, debs.err = os.MkdirTemp("", "cairn-dpkg-test-")
		if debs.err != nil {
			return
		}
		debs.paths = map[string]string{}
		entries, err := os.ReadDir("testdata/pkg")
		if err != nil {
			debs.err = err
			return
		}
		for _, e := range entries {
			src := filepath.Join(debs.dir, "src", e.Name())
			if err := copyTree(filepath.Join("testdata/pkg", e.Name()), src); err != nil {
				debs.err = err
				return
			}
			out := filepath.Join(debs.dir, e.Name()+".deb")
			cmd := osexec.Command("dpkg-deb", "--root-owner-group", "--build", src, out)
			if b, err := cmd.CombinedOutput(); err != nil {
				debs.err = errors.New("dpkg-deb --build " + e.Name() + ": " + err.Error() + ": " + string(b))
				return
			}
			debs.paths[e.Name()] = out
		}
	})
	if debs.err != nil {
		t.Fatalf("build test packages: %v", debs.err)
	}
	return debs.paths
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			return os.Chmod(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if info, err := d.Info(); err == nil && info.Mode()&0o111 != 0 {
			mode = 0o755
		}
		if err := os.WriteFile(target, data, mode); err != nil {
			return err
		}
		return os.Chmod(target, mode)
	})
}

// newRoot returns a sandbox root with an empty dpkg database.
func newRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	admin := filepath.Join(root, "var/lib/dpkg")
	for _, d := range []string{"info", "updates"} {
		if err := os.MkdirAll(filepath.Join(admin, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"status", "available"} {
		if err := os.WriteFile(filepath.Join(admin, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// env is a sandbox root, a cache directory and the test packages.
type env struct {
	root, cache string
	debs        map[string]string
}

func newEnv(t *testing.T) env {
	t.Helper()
	return env{root: newRoot(t), cache: t.TempDir(), debs: buildDebs(t)}
}

// install returns a StepContext installing the test package deb.
func (e env) install(t *testing.T, deb string) *sdk.StepContext {
	t.Helper()
	return e.step(t, map[string]any{"action": "install", "artifact": "pkg"}, map[string]string{"pkg": e.debs[deb]})
}

func (e env) step(t *testing.T, params map[string]any, artifacts map[string]string) *sdk.StepContext {
	t.Helper()
	ps, err := sdk.ParamsOf(params)
	if err != nil {
		t.Fatal(err)
	}
	return &sdk.StepContext{
		RootDir:        e.root,
		Params:         ps,
		Artifacts:      artifacts,
		CacheDir:       e.cache,
		Step:           t.Name(),
		IdempotencyKey: t.Name(),
		DeadlineUnixMs: time.Now().Add(time.Minute).UnixMilli(),
	}
}

// status is what dpkg-query says of pkg in the root.
func (e env) status(t *testing.T, pkg string) string {
	t.Helper()
	out, err := osexec.Command("dpkg-query", "--admindir="+filepath.Join(e.root, "var/lib/dpkg"),
		"-W", "-f=${Status} ${Version}", pkg).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "no packages found") {
			return "unknown"
		}
		t.Fatalf("dpkg-query %s: %v: %s", pkg, err, out)
	}
	return string(out)
}

// file returns the content of a file under the root, "" when absent.
func (e env) file(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(e.root, p))
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// audited returns the dpkg packages in the audit's packages section, as
// name → version.
func (e env) audited(t *testing.T) map[string]string {
	t.Helper()
	a, err := inventory.Collect(t.Context(), inventory.Options{Root: e.root, Collectors: []string{"packages"}})
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	got := map[string]string{}
	for _, p := range a.GetPackages().GetPackages() {
		if p.GetManager() == "dpkg" {
			got[p.GetName()] = p.GetVersion()
		}
	}
	return got
}

func apply(t *testing.T, sc *sdk.StepContext) (*sdk.Result, *sdktest.Recorder) {
	t.Helper()
	rep := &sdktest.Recorder{}
	res, err := New().Apply(t.Context(), sc, rep)
	if err != nil {
		t.Fatalf("Apply: %v\nlog:\n%s", err, rep)
	}
	return res, rep
}

func doRollback(t *testing.T, sc *sdk.StepContext, res *sdk.Result) *sdk.RollbackResult {
	t.Helper()
	rb, err := New().Rollback(t.Context(), sc, res.GetRollbackRecord())
	if err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	return rb
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]any
		want   []string // fields named
	}{
		{"install", map[string]any{"action": "install", "artifact": "app"}, nil},
		{"install with package", map[string]any{"action": "install", "artifact": "app", "package": "cairn-hello"}, nil},
		{"remove", map[string]any{"action": "remove", "package": "cairn-hello"}, nil},
		{"purge arch-qualified", map[string]any{"action": "purge", "package": "libfoo1:amd64"}, nil},
		{"empty", map[string]any{}, []string{"action"}},
		{"unknown action", map[string]any{"action": "upgrade", "package": "x1"}, []string{"action"}},
		{"install without artifact", map[string]any{"action": "install"}, []string{"artifact"}},
		{"remove without package", map[string]any{"action": "remove"}, []string{"package"}},
		{"remove with artifact", map[string]any{"action": "remove", "package": "cairn-hello", "artifact": "app"}, []string{"artifact"}},
		{"option as package", map[string]any{"action": "purge", "package": "--force-all"}, []string{"package"}},
		{"unknown parameter", map[string]any{"action": "remove", "package": "cairn-hello", "version": "1.0"}, []string{"version"}},
		{"wrong type", map[string]any{"action": "remove", "package": 3}, []string{"package"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := sdk.ParamsOf(tt.params)
			if err != nil {
				t.Fatal(err)
			}
			errs, err := New().Validate(t.Context(), &sdk.StepContext{Params: ps})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, fe := range errs {
				if fe.GetMessage() == "" {
					t.Errorf("field %s: empty message", fe.GetField())
				}
				got = append(got, fe.GetField())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("fields (-want +got):\n%s\nerrors: %v", diff, errs)
			}
		})
	}
}

// TestInstallUpgradeRollback walks one package through install, a
// repeated install, an upgrade, and rollbacks with and without the
// previous version's .deb in the cache, checking dpkg's database, the
// files under the root and the agent's audit at each point.
func TestInstallUpgradeRollback(t *testing.T) {
	e := newEnv(t)
	v1 := e.install(t, "cairn-hello-1.0")
	v2 := e.install(t, "cairn-hello-2.0")

	plan, err := New().Plan(t.Context(), v1)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	wantPlan := &sdk.Plan{
		Actions:     []string{"would install cairn-hello 1.0 (currently not installed)"},
		Changes:     []*sdk.Change{{Kind: "package", Name: "cairn-hello", State: "present", Version: "1.0"}},
		WouldChange: true,
	}
	if diff := cmp.Diff(wantPlan, plan, protocmp.Transform()); diff != "" {
		t.Errorf("Plan (-want +got):\n%s", diff)
	}

	// Install 1.0.
	res1, _ := apply(t, v1)
	if !res1.GetChanged() {
		t.Error("install 1.0: changed=false")
	}
	if diff := cmp.Diff([]*sdk.Change{{Kind: "package", Name: "cairn-hello", State: "present", Version: "1.0"}}, res1.GetChanges(), protocmp.Transform()); diff != "" {
		t.Errorf("install 1.0: changes (-want +got):\n%s", diff)
	}
	if got := e.status(t, "cairn-hello"); got != "install ok installed 1.0" {
		t.Errorf("after install 1.0 dpkg-query says %q", got)
	}
	if got := e.file(t, "usr/share/cairn-hello/VERSION"); got != "1.0\n" {
		t.Errorf("after install 1.0 VERSION = %q", got)
	}
	if diff := cmp.Diff(map[string]string{"cairn-hello": "1.0"}, e.audited(t)); diff != "" {
		t.Errorf("audit after install 1.0 (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(e.cache, "cairn-hello_1.0_all.deb")); err != nil {
		t.Errorf("install 1.0 did not cache the .deb: %v", err)
	}
	v, err := New().Verify(t.Context(), v1)
	if err != nil || !v.GetPassed() {
		t.Errorf("Verify after install 1.0: %v, %v", v, err)
	}

	// Installing 1.0 again changes nothing.
	again, _ := apply(t, v1)
	if again.GetChanged() {
		t.Error("second install 1.0: changed=true")
	}
	if got := doRollback(t, v1, again); got.GetChanged() {
		t.Errorf("rollback of an unchanged install changed something: %v", got)
	}

	// Upgrade to 2.0 (its postinst runs chrootless).
	res2, _ := apply(t, v2)
	if !res2.GetChanged() || res2.GetOutputs()["previous_version"] != "1.0" {
		t.Errorf("upgrade to 2.0: changed=%v outputs=%v", res2.GetChanged(), res2.GetOutputs())
	}
	if got := e.status(t, "cairn-hello"); got != "install ok installed 2.0" {
		t.Errorf("after upgrade dpkg-query says %q", got)
	}
	if diff := cmp.Diff(map[string]string{"cairn-hello": "2.0"}, e.audited(t)); diff != "" {
		t.Errorf("audit after upgrade (-want +got):\n%s", diff)
	}
	if v, err := New().Verify(t.Context(), v1); err != nil || v.GetPassed() {
		t.Errorf("Verify of 1.0 after upgrade to 2.0 passed: %v, %v", v, err)
	}

	// Rolling the upgrade back reinstalls 1.0 from the cache.
	rb := doRollback(t, v2, res2)
	if !rb.GetChanged() || !strings.Contains(rb.GetMessage(), "reinstalled cairn-hello 1.0") {
		t.Errorf("rollback of the upgrade: %v", rb)
	}
	if got := e.status(t, "cairn-hello"); got != "install ok installed 1.0" {
		t.Errorf("after rollback dpkg-query says %q", got)
	}
	if got := e.file(t, "usr/share/cairn-hello/VERSION"); got != "1.0\n" {
		t.Errorf("after rollback VERSION = %q", got)
	}
	if diff := cmp.Diff(map[string]string{"cairn-hello": "1.0"}, e.audited(t)); diff != "" {
		t.Errorf("audit after rollback (-want +got):\n%s", diff)
	}

	// Rolling back the first install (nothing was installed before)
	// removes the package.
	rb = doRollback(t, v1, res1)
	if !rb.GetChanged() {
		t.Errorf("rollback of install 1.0: %v", rb)
	}
	if got := e.status(t, "cairn-hello"); got != "unknown" && !strings.Contains(got, "not-installed") {
		t.Errorf("after rollback of install 1.0 dpkg-query says %q", got)
	}
	if got := e.file(t, "usr/share/cairn-hello/VERSION"); got != "" {
		t.Errorf("after rollback of install 1.0 VERSION still there: %q", got)
	}
	if diff := cmp.Diff(map[string]string{}, e.audited(t)); diff != "" {
		t.Errorf("audit after removal (-want +got):\n%s", diff)
	}
}

// TestRollbackUpgradeWithoutCache removes the package when the previous
// version's .deb is not in the cache.
func TestRollbackUpgradeWithoutCache(t *testing.T) {
	e := newEnv(t)
	apply(t, e.install(t, "cairn-hello-1.0"))
	v2 := e.install(t, "cairn-hello-2.0")
	v2.CacheDir = t.TempDir() // 1.0 is not in this cache
	res, rep := apply(t, v2)
	v2.CacheDir = ""
	rb := doRollback(t, v2, res)
	if !rb.GetChanged() || !strings.Contains(rb.GetMessage(), "removed cairn-hello 2.0") {
		t.Errorf("rollback: %v\napply log:\n%s", rb, rep)
	}
	if got := e.status(t, "cairn-hello"); got != "unknown" && !strings.Contains(got, "not-installed") {
		t.Errorf("after rollback dpkg-query says %q", got)
	}
}

func TestRemoveAndPurge(t *testing.T) {
	for _, action := range []string{"remove", "purge"} {
		t.Run(action, func(t *testing.T) {
			e := newEnv(t)
			apply(t, e.install(t, "cairn-hello-1.0"))
			sc := e.step(t, map[string]any{"action": action, "package": "cairn-hello"}, nil)

			plan, err := New().Plan(t.Context(), sc)
			if err != nil {
				t.Fatal(err)
			}
			wantPlan := &sdk.Plan{
				Actions:     []string{"would " + action + " cairn-hello (currently 1.0)"},
				Changes:     []*sdk.Change{{Kind: "package", Name: "cairn-hello", State: "absent"}},
				WouldChange: true,
			}
			if diff := cmp.Diff(wantPlan, plan, protocmp.Transform()); diff != "" {
				t.Errorf("Plan (-want +got):\n%s", diff)
			}

			res, _ := apply(t, sc)
			if !res.GetChanged() {
				t.Error("changed=false")
			}
			var rec record
			if err := json.Unmarshal(res.GetRollbackRecord(), &rec); err != nil {
				t.Fatal(err)
			}
			if rec.Version != "1.0" {
				t.Errorf("rollback record %+v: want the removed version 1.0", rec)
			}
			if got := e.file(t, "usr/share/cairn-hello/VERSION"); got != "" {
				t.Errorf("VERSION still there: %q", got)
			}
			if diff := cmp.Diff(map[string]string{}, e.audited(t)); diff != "" {
				t.Errorf("audit after %s (-want +got):\n%s", action, diff)
			}
			if v, err := New().Verify(t.Context(), sc); err != nil || !v.GetPassed() {
				t.Errorf("Verify: %v, %v", v, err)
			}
			if again, _ := apply(t, sc); again.GetChanged() {
				t.Error("second " + action + ": changed=true")
			}

			// Rollback reinstalls 1.0 from the cache.
			rb := doRollback(t, sc, res)
			if !rb.GetChanged() {
				t.Errorf("rollback: %v", rb)
			}
			if got := e.status(t, "cairn-hello"); got != "install ok installed 1.0" {
				t.Errorf("after rollback dpkg-query says %q", got)
			}

			// Without the .deb in the cache, rollback cannot reinstall.
			res, _ = apply(t, sc)
			sc.CacheDir = t.TempDir()
			_, err = New().Rollback(t.Context(), sc, res.GetRollbackRecord())
			if !errors.Is(err, ErrNotCached) {
				t.Errorf("rollback without cache: %v, want ErrNotCached", err)
			}
		})
	}
}

// TestRecoverInterrupted leaves an installed package half-configured, as
// an interrupted dpkg run does; the next operation runs
// `dpkg --configure -a` first.
func TestRecoverInterrupted(t *testing.T) {
	e := newEnv(t)
	apply(t, e.install(t, "cairn-hello-1.0"))
	status := filepath.Join(e.root, "var/lib/dpkg/status")
	data, err := os.ReadFile(status)
	if err != nil {
		t.Fatal(err)
	}
	half := strings.Replace(string(data), "Status: install ok installed", "Status: install ok half-configured", 1)
	if half == string(data) {
		t.Fatalf("status file has no installed entry:\n%s", data)
	}
	if err := os.WriteFile(status, []byte(half), 0o644); err != nil {
		t.Fatal(err)
	}

	plan, err := New().Plan(t.Context(), e.install(t, "cairn-hello-1.0"))
	if err != nil {
		t.Fatal(err)
	}
	if !plan.GetWouldChange() || !strings.Contains(strings.Join(plan.GetActions(), "\n"), "dpkg --configure -a") {
		t.Errorf("Plan does not mention the recovery: %v", plan)
	}

	res, rep := apply(t, e.install(t, "cairn-hello-1.0"))
	if res.GetOutputs()["recovered"] != "true" {
		t.Errorf("outputs %v: want recovered=true", res.GetOutputs())
	}
	if !strings.Contains(rep.String(), "running dpkg --configure -a") {
		t.Errorf("recovery not logged:\n%s", rep)
	}
	if res.GetChanged() {
		t.Error("after recovery 1.0 was installed: want changed=false for installing 1.0")
	}
	if got := e.status(t, "cairn-hello"); got != "install ok installed 1.0" {
		t.Errorf("after recovery dpkg-query says %q", got)
	}
}

// TestLockWaits shows Apply waiting for the package lock another
// operation holds, and giving up at the step's deadline.
func TestLockWaits(t *testing.T) {
	e := newEnv(t)
	lockPath := filepath.Join(e.root, "var/lib/dpkg/cairn.lock")
	unlock, err := acquireLock(t.Context(), lockPath, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Gives up at the deadline.
	short := e.install(t, "cairn-hello-1.0")
	short.DeadlineUnixMs = time.Now().Add(300 * time.Millisecond).UnixMilli()
	_, err = New().Apply(t.Context(), short, &sdktest.Recorder{})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "package lock") {
		t.Errorf("Apply while locked past its deadline: %v; want DeadlineExceeded naming the lock", err)
	}

	// Waits, then runs once the lock is free.
	rep := &sdktest.Recorder{}
	done := make(chan error, 1)
	go func() {
		_, err := New().Apply(t.Context(), e.install(t, "cairn-hello-1.0"), rep)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Apply finished while the lock was held: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	if got := e.status(t, "cairn-hello"); got != "unknown" {
		t.Errorf("installed while the lock was held: %q", got)
	}
	unlock()
	if err := <-done; err != nil {
		t.Fatalf("Apply after the lock was released: %v", err)
	}
	if !strings.Contains(rep.String(), "waiting for the package lock") {
		t.Errorf("waiting not logged:\n%s", rep)
	}
	if got := e.status(t, "cairn-hello"); got != "install ok installed 1.0" {
		t.Errorf("dpkg-query says %q", got)
	}
}

// TestConcurrentApplies runs two installs into one root at once: the
// lock serializes them, so neither meets dpkg's own lock.
func TestConcurrentApplies(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	logs := make([]*sdktest.Recorder, 2)
	for i, deb := range []string{"cairn-hello-1.0", "cairn-other-1.0"} {
		logs[i] = &sdktest.Recorder{}
		sc := e.install(t, deb)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = New().Apply(t.Context(), sc, logs[i])
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Apply %d: %v\nlog:\n%s", i, err, logs[i])
		}
	}
	if diff := cmp.Diff(map[string]string{"cairn-hello": "1.0", "cairn-other": "1.0"}, e.audited(t)); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
}

func TestBadDeb(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.deb")
	if err := os.WriteFile(garbage, []byte("not an ar archive\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(e.debs["cairn-hello-1.0"])
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.deb")
	if err := os.WriteFile(truncated, good[:len(good)-100], 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, want string
	}{
		{"garbage", garbage, "is not a Debian format archive"},
		{"truncated", truncated, "dpkg-deb --contents"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := e.step(t, map[string]any{"action": "install", "artifact": "pkg"}, map[string]string{"pkg": tt.path})
			_, err := New().Apply(t.Context(), sc, &sdktest.Recorder{})
			if !errors.Is(err, ErrBadDeb) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Apply: %v; want ErrBadDeb mentioning %q", err, tt.want)
			}
			if got := e.status(t, "cairn-hello"); got != "unknown" {
				t.Errorf("dpkg-query says %q", got)
			}
		})
	}
	t.Run("wrong package", func(t *testing.T) {
		sc := e.step(t, map[string]any{"action": "install", "artifact": "pkg", "package": "cairn-other"},
			map[string]string{"pkg": e.debs["cairn-hello-1.0"]})
		if _, err := New().Plan(t.Context(), sc); !errors.Is(err, ErrPackageMismatch) {
			t.Errorf("Plan: %v; want ErrPackageMismatch", err)
		}
	})
	t.Run("missing artifact", func(t *testing.T) {
		sc := e.step(t, map[string]any{"action": "install", "artifact": "pkg"}, nil)
		if _, err := New().Plan(t.Context(), sc); !errors.Is(err, ErrNoArtifact) {
			t.Errorf("Plan: %v; want ErrNoArtifact", err)
		}
	})
}

// TestFreshRoot installs into a root without a dpkg database: the first
// install creates an empty one.
func TestFreshRoot(t *testing.T) {
	e := newEnv(t)
	e.root = t.TempDir()
	plan, err := New().Plan(t.Context(), e.install(t, "cairn-hello-1.0"))
	if err != nil || !plan.GetWouldChange() {
		t.Fatalf("Plan: %v, %v", plan, err)
	}
	if _, err := os.Stat(filepath.Join(e.root, "var")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Plan created files under the root: %v", err)
	}
	_, rep := apply(t, e.install(t, "cairn-hello-1.0"))
	if !strings.Contains(rep.String(), "created an empty dpkg database") {
		t.Errorf("not logged:\n%s", rep)
	}
	if got := e.status(t, "cairn-hello"); got != "install ok installed 1.0" {
		t.Errorf("dpkg-query says %q", got)
	}
}

// dpkgIgnore are the paths dpkg rewrites in its database without any
// package changing: lock files, backups, trigger state.
var dpkgIgnore = []string{
	"var/lib/dpkg/lock*",
	"var/lib/dpkg/cairn.lock",
	"var/lib/dpkg/*-old",
	"var/lib/dpkg/triggers",
	"var/lib/dpkg/info/format",
}

func conformanceCases(t *testing.T) sdktest.Cases {
	debs := buildDebs(t)
	return sdktest.Cases{
		Context: func(t *testing.T) *sdk.StepContext {
			e := env{root: newRoot(t), cache: t.TempDir(), debs: debs}
			return e.install(t, "cairn-hello-2.0")
		},
		Invalid: []sdktest.Invalid{
			{Name: "bad action", Params: map[string]any{"action": "upgrade"}, Field: "action"},
			{Name: "install without artifact", Params: map[string]any{"action": "install"}, Field: "artifact"},
			{Name: "remove without package", Params: map[string]any{"action": "remove"}, Field: "package"},
			{Name: "unknown parameter", Params: map[string]any{"action": "remove", "package": "x1", "force": true}, Field: "force"},
		},
		Ignore: dpkgIgnore,
	}
}

func TestConformance(t *testing.T) {
	sdktest.Run(t, New(), conformanceCases(t))
}

// TestConformanceProcess runs the same checks over go-plugin: this test
// binary, started as a plugin, serves it.
func TestConformanceProcess(t *testing.T) {
	sdktest.RunBinary(t, sdktest.Self(t), conformanceCases(t))
}

// TestConformanceUpgradeAndRemove runs the harness, crash checks
// included, on an upgrade (1.0 installed, its .deb cached) and on a
// removal: rolling back either reinstalls 1.0 from the cache.
func TestConformanceUpgradeAndRemove(t *testing.T) {
	debs := buildDebs(t)
	for name, params := range map[string]map[string]any{
		"upgrade": {"action": "install", "artifact": "pkg"},
		"remove":  {"action": "remove", "package": "cairn-hello"},
	} {
		t.Run(name, func(t *testing.T) {
			sdktest.Run(t, New(), sdktest.Cases{
				Context: func(t *testing.T) *sdk.StepContext {
					e := env{root: newRoot(t), cache: t.TempDir(), debs: debs}
					if _, err := New().Apply(t.Context(), e.install(t, "cairn-hello-1.0"), nil); err != nil {
						t.Fatal(err)
					}
					return e.step(t, params, map[string]string{"pkg": debs["cairn-hello-2.0"]})
				},
				Ignore: dpkgIgnore,
			})
		})
	}
}
