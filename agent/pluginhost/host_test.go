package pluginhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/internal/digest"
	"github.com/cairn-ops/cairn/plugins/builtin"
	"github.com/cairn-ops/cairn/plugins/catalog"
	"github.com/cairn-ops/cairn/plugins/sdk"
)

// Binaries built once in TestMain.
var (
	agentBin string // cairn-agent, for built-ins
	catDir   string // a catalog of motd, crasher, hanger and garbage
)

func TestMain(m *testing.M) {
	if root := os.Getenv(hostHelperEnv); root != "" {
		os.Exit(hostHelper(root))
	}
	os.Exit(runMain(m))
}

// hostHelperEnv makes the test binary a host process of its own (see
// hostHelper): TestPluginsDieWithTheHost kills it.
const hostHelperEnv = "CAIRN_PLUGINHOST_TEST_HOST"

// hostHelper starts the hanger plugin with the agent and catalog the
// parent test built, writes its pid to ROOT/plugin.pid, and calls its
// Apply, which never returns.
func hostHelper(root string) int {
	agentBin, catDir = os.Getenv("CAIRN_TEST_AGENT"), os.Getenv("CAIRN_TEST_CATALOG")
	cat, err := catalog.Load(catDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	h := New(Config{Self: agentBin, Builtins: builtin.Names(), Catalog: cat, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	inst, err := h.Start(context.Background(), "hanger")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.WriteFile(filepath.Join(root, "plugin.pid"), []byte(strconv.Itoa(inst.Pid())), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_, err = inst.Plugin.Apply(context.Background(), &sdk.StepContext{RootDir: root}, &reporter{})
	fmt.Fprintln(os.Stderr, err)
	return 1
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "pluginhost-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	agentBin = filepath.Join(dir, "cairn-agent")
	catDir = filepath.Join(dir, "catalog")
	builds := []struct{ out, pkg string }{
		{agentBin, "github.com/cairn-ops/cairn/agent/cmd/cairn-agent"},
		{filepath.Join(catDir, "cairn-plugin-motd"), "github.com/cairn-ops/cairn/plugins/examples/cairn-plugin-motd"},
		{filepath.Join(catDir, "crasher"), "./testdata/crasher"},
		{filepath.Join(catDir, "hanger"), "./testdata/hanger"},
		{filepath.Join(catDir, "garbage"), "./testdata/garbage"},
	}
	var doc strings.Builder
	doc.WriteString("plugins:\n")
	for _, b := range builds {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n", b.pkg, err)
			return 1
		}
		if filepath.Dir(b.out) != catDir {
			continue
		}
		sum, err := digest.File(b.out)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		name := strings.TrimPrefix(filepath.Base(b.out), "cairn-plugin-")
		fmt.Fprintf(&doc, "  - name: %s\n    file: %s\n    sha256: %s\n", name, filepath.Base(b.out), sum)
	}
	if err := os.WriteFile(filepath.Join(catDir, catalog.FileName), []byte(doc.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// syncBuffer is a bytes.Buffer safe for the host's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newHost returns a host over the test catalog and the built agent, and
// the buffer its logger writes JSON lines to.
func newHost(t *testing.T) (*Host, *syncBuffer) {
	t.Helper()
	cat, err := catalog.Load(catDir)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	h := New(Config{
		Self:     agentBin,
		Builtins: builtin.Names(),
		Catalog:  cat,
		Logger:   slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	t.Cleanup(h.Close)
	return h, logs
}

func start(t *testing.T, h *Host, name string) *Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	inst, err := h.Start(ctx, name)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(inst.Close)
	return inst
}

// waitGone waits until every pid has exited (or is a zombie nobody reaps).
func waitGone(t *testing.T, within time.Duration, pids ...int) {
	t.Helper()
	end := time.Now().Add(within)
	for _, pid := range pids {
		for !processGone(pid) {
			if time.Now().After(end) {
				t.Fatalf("process %d still alive %v later", pid, within)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestStartBuiltinReexecsAgent(t *testing.T) {
	h, _ := newHost(t)
	for _, name := range builtin.Names() {
		t.Run(name, func(t *testing.T) {
			inst := start(t, h, name)
			d, err := inst.Plugin.Describe(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if d.GetName() != name {
				t.Errorf("Describe name %q, want %q", d.GetName(), name)
			}
			cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", inst.Pid()))
			if err != nil {
				t.Fatal(err)
			}
			want := []string{agentBin, "plugin", "serve", name}
			if diff := cmp.Diff(want, strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")); diff != "" {
				t.Errorf("plugin process argv (-want +got):\n%s", diff)
			}
			pid := inst.Pid()
			inst.Close()
			waitGone(t, 2*time.Second, pid)
		})
	}
}

func TestBuiltinAgentBinaryReplaced(t *testing.T) {
	self := filepath.Join(t.TempDir(), "cairn-agent")
	copyFile(t, agentBin, self)
	h := New(Config{Self: self, Builtins: []string{"exec"}})
	t.Cleanup(h.Close)
	inst := start(t, h, "exec") // the checksum of self is taken now
	inst.Close()                // a running binary cannot be written to

	appendByte(t, self)
	_, err := h.Start(t.Context(), "exec")
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("start after replacing the agent binary: %v, want ErrChecksum", err)
	}
	if !strings.Contains(err.Error(), "sha256 of "+self+" is ") || !strings.Contains(err.Error(), "the running agent's is ") {
		t.Errorf("error %q does not name the file and both sums", err)
	}
}

// TestBuiltinFromTheRunningExecutable starts a built-in the way the agent
// does on Linux (SelfRunning): no checksum, no AutoMTLS, its socket in the
// host's private directory, which Close removes.
func TestBuiltinFromTheRunningExecutable(t *testing.T) {
	h := New(Config{Self: agentBin, SelfRunning: true, Builtins: []string{"exec"}})
	inst := start(t, h, "exec")
	d, err := inst.Plugin.Describe(t.Context())
	if err != nil || d.GetName() != "exec" {
		t.Fatalf("Describe = %v, %v; want exec", d, err)
	}
	fi, err := os.Stat(h.sockets)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("socket directory mode %v, want 0700", fi.Mode().Perm())
	}
	socks, _ := filepath.Glob(filepath.Join(h.sockets, "plugin*"))
	if len(socks) != 1 {
		t.Errorf("sockets in %s: %v, want the plugin's one", h.sockets, socks)
	}
	h.Close()
	if _, err := os.Stat(h.sockets); !os.IsNotExist(err) {
		t.Errorf("after Close, %s: %v, want it removed", h.sockets, err)
	}
}

func TestCatalogPluginApplies(t *testing.T) {
	h, _ := newHost(t)
	inst := start(t, h, "motd")
	root := t.TempDir()
	params, err := sdk.ParamsOf(map[string]any{"message": "hello from the host test"})
	if err != nil {
		t.Fatal(err)
	}
	sc := &sdk.StepContext{RootDir: root, Params: params, Step: "motd", IdempotencyKey: "k1"}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if fe, err := inst.Plugin.Validate(ctx, sc); err != nil || len(fe) != 0 {
		t.Fatalf("Validate: %v %v", fe, err)
	}
	rep := &reporter{}
	res, err := inst.Plugin.Apply(ctx, sc, rep)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if !res.GetChanged() {
		t.Errorf("Apply changed = false, want true")
	}
	got, err := os.ReadFile(filepath.Join(root, "etc/motd"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("hello from the host test\n", string(got)); diff != "" {
		t.Errorf("motd (-want +got):\n%s", diff)
	}
}

func TestTamperedBinaryRefused(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "motd")
	copyFile(t, filepath.Join(catDir, "cairn-plugin-motd"), bin)
	want, err := digest.File(bin)
	if err != nil {
		t.Fatal(err)
	}
	writeCatalog(t, dir, fmt.Sprintf("plugins:\n  - name: motd\n    file: motd\n    sha256: %s\n", want))
	appendByte(t, bin)
	got, err := digest.File(bin)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := New(Config{Catalog: cat})
	t.Cleanup(h.Close)

	_, err = h.Start(t.Context(), "motd")
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("Start: %v, want ErrChecksum", err)
	}
	wantMsg := fmt.Sprintf("plugin motd: sha256 of %s is %s, catalog says %s", bin, got, want)
	if !strings.HasPrefix(err.Error(), wantMsg) {
		t.Errorf("error\n%s\nwant it to start with\n%s", err, wantMsg)
	}
	e, _ := cat.Lookup("motd")
	if err := e.Verify(); !errors.Is(err, ErrChecksum) {
		t.Errorf("Entry.Verify: %v, want ErrChecksum", err)
	}
}

func TestUnknownPlugin(t *testing.T) {
	h, _ := newHost(t)
	_, err := h.Start(t.Context(), "no-such-plugin")
	if !errors.Is(err, ErrUnknownPlugin) {
		t.Fatalf("Start: %v, want ErrUnknownPlugin", err)
	}
	if !strings.Contains(err.Error(), `"no-such-plugin"`) {
		t.Errorf("error %q does not name the plugin", err)
	}
}

func TestCrashFailsTheCallOnly(t *testing.T) {
	h, logs := newHost(t)
	inst := start(t, h, "crasher")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := inst.Plugin.Apply(ctx, &sdk.StepContext{RootDir: t.TempDir()}, &reporter{})
	if !errors.Is(err, ErrPluginCrashed) {
		t.Fatalf("Apply: %v, want ErrPluginCrashed", err)
	}
	t.Log(err)
	for _, want := range []string{"plugin crasher: Apply: ", "exit status 3", "crasher giving up"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	// The plugin's stderr (hclog JSON) was relayed with plugin=crasher.
	if !strings.Contains(logs.String(), `"msg":"crasher giving up"`) || !strings.Contains(logs.String(), `"plugin":"crasher"`) {
		t.Errorf("crasher's log line not relayed; log:\n%s", logs)
	}
	// The dead instance keeps saying so.
	if _, err := inst.Plugin.Describe(ctx); !errors.Is(err, ErrPluginCrashed) {
		t.Errorf("Describe after crash: %v, want ErrPluginCrashed", err)
	}
	// The host carries on.
	other := start(t, h, "motd")
	if _, err := other.Plugin.Describe(ctx); err != nil {
		t.Errorf("Describe on another plugin after a crash: %v", err)
	}
}

func TestCallOutlivingContextKillsProcessGroup(t *testing.T) {
	tests := []struct {
		name    string
		ctx     func(context.Context) (context.Context, context.CancelFunc)
		wantErr error
		wantMsg string
	}{
		{
			name: "deadline",
			ctx: func(parent context.Context) (context.Context, context.CancelFunc) {
				return context.WithTimeout(parent, time.Second)
			},
			wantErr: context.DeadlineExceeded,
			wantMsg: "plugin hanger: Apply did not finish before its deadline; killed its process group: context deadline exceeded",
		},
		{
			name: "cancel",
			ctx: func(parent context.Context) (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(parent)
				time.AfterFunc(time.Second, cancel)
				return ctx, cancel
			},
			wantErr: context.Canceled,
			wantMsg: "plugin hanger: Apply cancelled; killed its process group: context canceled",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := newHost(t)
			inst := start(t, h, "hanger")
			root := t.TempDir()
			ctx, cancel := tt.ctx(t.Context())
			defer cancel()
			began := time.Now()
			_, err := inst.Plugin.Apply(ctx, &sdk.StepContext{RootDir: root}, &reporter{})
			took := time.Since(began)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Apply: %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantMsg, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if took > 2*time.Second {
				t.Errorf("Apply returned after %v, want within the deadline + 1s", took)
			}
			b, err := os.ReadFile(filepath.Join(root, "child.pid"))
			if err != nil {
				t.Fatalf("the hanger did not start its child: %v", err)
			}
			pids := []int{inst.Pid()}
			for _, f := range strings.Fields(string(b)) {
				pid, err := strconv.Atoi(f)
				if err != nil {
					t.Fatal(err)
				}
				pids = append(pids, pid)
			}
			if len(pids) != 3 {
				t.Fatalf("child.pid = %q, want two pids", b)
			}
			waitGone(t, time.Second, pids...)
			if _, err := inst.Plugin.Describe(t.Context()); !errors.Is(err, ErrClosed) {
				t.Errorf("Describe after the kill: %v, want ErrClosed", err)
			}
		})
	}
}

// TestPluginsDieWithTheHost: when the agent is killed (SIGKILL, the OOM
// killer) while a plugin works, the plugin dies too. A plugin that lived
// on would go on changing the root, unseen by the journal, while the
// restarted agent re-runs or rolls back the same step: an archive
// Rollback finishing after the agent died removes the backups the
// journal's record still points to.
func TestPluginsDieWithTheHost(t *testing.T) {
	root := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), hostHelperEnv+"="+root, "CAIRN_TEST_AGENT="+agentBin, "CAIRN_TEST_CATALOG="+catDir)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var plugin, children []int
	for end := time.Now().Add(30 * time.Second); len(children) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the host never started the hanger's Apply:\n%s", out.String())
		}
		b, err := os.ReadFile(filepath.Join(root, "child.pid"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(f)
			children = append(children, pid)
		}
		b, _ = os.ReadFile(filepath.Join(root, "plugin.pid"))
		pid, _ := strconv.Atoi(string(b))
		plugin = append(plugin, pid)
	}
	t.Cleanup(func() {
		for _, p := range append(plugin, children...) {
			syscall.Kill(p, syscall.SIGKILL)
		}
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	waitGone(t, 10*time.Second, plugin...)
}

func TestGarbageOnStdout(t *testing.T) {
	h, _ := newHost(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	began := time.Now()
	_, err := h.Start(ctx, "garbage")
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("Start: %v, want ErrProtocol", err)
	}
	t.Log(err)
	for _, want := range []string{"plugin garbage did not speak the plugin protocol", "hello from a program that is not a plugin"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("Start took %v to give up", took)
	}
}

func TestHostClose(t *testing.T) {
	h, _ := newHost(t)
	a, b := start(t, h, "motd"), start(t, h, "exec")
	h.Close()
	waitGone(t, 2*time.Second, a.Pid(), b.Pid())
	if _, err := h.Start(t.Context(), "motd"); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v, want ErrClosed", err)
	}
	if _, err := a.Plugin.Describe(t.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("Describe after Close: %v, want ErrClosed", err)
	}
}

type reporter struct {
	mu   sync.Mutex
	logs []string
}

func (r *reporter) Log(level, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, level+": "+msg)
}

func (r *reporter) Progress(float64, string) {}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

func appendByte(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{0}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func writeCatalog(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, catalog.FileName), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBuiltinNotInAgent(t *testing.T) {
	// A name the host believes built in but the agent binary does not
	// serve: "cairn-agent plugin serve" refuses it and exits.
	h := New(Config{Self: agentBin, Builtins: []string{"nope"}})
	t.Cleanup(h.Close)
	_, err := h.Start(t.Context(), "nope")
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("Start: %v, want ErrProtocol", err)
	}
	t.Log(err)
	if !strings.Contains(err.Error(), `exited without the handshake; stderr: cairn-agent: unknown built-in plugin "nope"`) {
		t.Errorf("error %q does not carry the agent's refusal", err)
	}
}
