package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// This file is the harness of the controller tests: a controller, agents
// and cairnctl run as real processes of the binaries TestMain built,
// talking over loopback.

// startTimeout bounds how long a process may take to become ready (the
// binaries may be race-instrumented and the machine small).
const startTimeout = 30 * time.Second

// syncBuffer is a bytes.Buffer safe for a process writing while the test
// reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is a long-running process: the controller's serve or an agent's run.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  syncBuffer // stdout and stderr together
	done chan struct{}
	code int // valid once done is closed; -1 when killed by a signal
}

// startProc starts bin with args and env. The process is killed when the
// test ends, and its output is logged if the test failed.
func startProc(t *testing.T, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(binDir, bin), args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		err := p.cmd.Wait()
		p.code = 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			p.code = ee.ExitCode()
		} else if err != nil {
			p.code = -1
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if strings.Contains(p.out.String(), "WARNING: DATA RACE") {
			t.Errorf("the race detector reported a data race in %s", name)
		}
		if t.Failed() {
			t.Logf("output of %s (%s %s):\n%s", name, bin, strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to d for the process to end and returns its exit code.
func (p *proc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(d):
		t.Fatalf("%s did not exit within %v", p.name, d)
		return 0
	}
}

// stop sends sig and waits for the process to end, returning its exit code.
func (p *proc) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	if !p.exited() {
		if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Fatalf("signal %s: %v", p.name, err)
		}
	}
	return p.wait(t, startTimeout)
}

// waitFor polls cond until it holds or d passes, then fails the test
// with what it was waiting for.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll(d, cond) {
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

// poll calls cond every 100 ms until it holds (true) or d passes (false).
func poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freeAddr returns a loopback address with a port nobody listened on a
// moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// cleanEnv is this process's environment without any CAIRN_* variable, so
// that nothing the developer exported leaks into the processes under
// test, and with a private config directory for cairnctl. Race-enabled
// binaries would otherwise sleep a second at every successful exit (the
// race runtime's atexit_sleep_ms), which adds up over many cairnctl runs.
func cleanEnv(configHome string) []string {
	var env []string
	gorace := "atexit_sleep_ms=0"
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, "CAIRN_"), strings.HasPrefix(kv, "XDG_CONFIG_HOME="):
			continue
		case strings.HasPrefix(kv, "GORACE="):
			gorace = strings.TrimPrefix(kv, "GORACE=") + " " + gorace
			continue
		}
		env = append(env, kv)
	}
	return append(env, "XDG_CONFIG_HOME="+configHome, "GORACE="+gorace)
}

// controller is a cairn-controller data dir and, while running, its serve
// process. Its methods take the calling (sub)test, which they fail; the
// processes live until the test that made the controller ends.
type controller struct {
	owner   *testing.T
	dataDir string
	addr    string
	// metricsAddr serves /metrics.
	metricsAddr string
	token       string // the admin token printed by init
	env         []string
	serve       *proc
	serves      int
}

var adminTokenRE = regexp.MustCompile(`cairn_u_[a-z0-9]+`)

// startController inits a controller in a new data dir and serves it on a
// free loopback port.
func startController(t *testing.T) *controller {
	t.Helper()
	c := &controller{
		owner:       t,
		dataDir:     filepath.Join(t.TempDir(), "controller"),
		addr:        freeAddr(t),
		metricsAddr: freeAddr(t),
		env:         cleanEnv(t.TempDir()),
	}
	r := c.run(t, "cairn-controller", "init", "--data-dir", c.dataDir)
	if r.code != 0 {
		t.Fatalf("cairn-controller init: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	c.token = adminTokenRE.FindString(r.stdout)
	if c.token == "" {
		t.Fatalf("cairn-controller init printed no admin token:\n%s", r.stdout)
	}
	c.start(t)
	return c
}

// start runs serve on c's address and data dir and waits until cairnctl
// can talk to it.
func (c *controller) start(t *testing.T) {
	t.Helper()
	c.serves++
	c.serve = startProc(c.owner, fmt.Sprintf("controller (serve #%d)", c.serves), c.env,
		"cairn-controller", "serve", "--data-dir", c.dataDir, "--listen", c.addr, "--metrics-listen", c.metricsAddr)
	waitFor(t, startTimeout, "the controller to answer cairnctl whoami", func() bool {
		if c.serve.exited() {
			t.Fatalf("cairn-controller serve exited with %d before it was ready", c.serve.code)
		}
		return c.ctl(t, "whoami").code == 0
	})
}

// stop ends serve with SIGTERM and requires a clean exit.
func (c *controller) stop(t *testing.T) {
	t.Helper()
	if code := c.serve.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("cairn-controller serve exited with %d after SIGTERM, want 0", code)
	}
}

// caPath is the controller's CA certificate, which agents and cairnctl pin.
func (c *controller) caPath() string { return filepath.Join(c.dataDir, "ca.pem") }

// run runs a binary to completion with c's environment plus extra.
func (c *controller) run(t *testing.T, bin string, args ...string) result {
	t.Helper()
	return c.runEnv(t, nil, bin, args...)
}

func (c *controller) runEnv(t *testing.T, extra []string, bin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, bin), args...)
	cmd.Env = append(append([]string(nil), c.env...), extra...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s %s: did not finish within %v\n%s", bin, strings.Join(args, " "), startTimeout, errOut.String())
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run %s %v: %v", bin, args, err)
	}
	return result{out.String(), errOut.String(), code}
}

// ctl runs cairnctl as the admin.
func (c *controller) ctl(t *testing.T, args ...string) result {
	t.Helper()
	return c.ctlAs(t, c.token, args...)
}

// ctlAs runs cairnctl with token (none when empty).
func (c *controller) ctlAs(t *testing.T, token string, args ...string) result {
	t.Helper()
	return c.runEnv(t, []string{
		"CAIRN_CONTROLLER=" + c.addr,
		"CAIRN_CA=" + c.caPath(),
		"CAIRN_TOKEN=" + token,
	}, "cairnctl", args...)
}

// mustCtl runs cairnctl as the admin and requires exit 0.
func (c *controller) mustCtl(t *testing.T, args ...string) string {
	t.Helper()
	r := c.ctl(t, args...)
	if r.code != 0 {
		t.Fatalf("cairnctl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// ctlJSON runs cairnctl as the admin with -o json, requires exit 0 and
// decodes the output into v.
func (c *controller) ctlJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out := c.mustCtl(t, append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("cairnctl %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// hostRoot composes a fixture root for an agent, with its own hostname.
func hostRoot(t *testing.T, hostname string, trees ...string) string {
	t.Helper()
	root := composeRoot(t, trees...)
	for _, f := range []string{"etc/hostname", "proc/sys/kernel/hostname"} {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(hostname+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// agentProc is one agent: its data dir, root, and (while running)
// process, which lives until the test that made the agent ends.
type agentProc struct {
	owner   *testing.T
	name    string
	dataDir string
	root    string
	p       *proc
	starts  int
}

// newAgent prepares an agent with a fresh data dir and a root for
// hostname; it does not start it.
func newAgent(t *testing.T, hostname string) *agentProc {
	t.Helper()
	return &agentProc{
		owner:   t,
		name:    hostname,
		dataDir: filepath.Join(t.TempDir(), "agent-"+hostname),
		root:    hostRoot(t, hostname, swFixture),
	}
}

// start runs the agent. extra are more flags, such as the enrollment
// ones for a first start; later starts need only the data dir.
func (a *agentProc) start(c *controller, extra ...string) {
	a.starts++
	args := append([]string{"run", "--data-dir", a.dataDir, "--root", a.root,
		"--reconnect-max", "1s"}, extra...)
	a.p = startProc(a.owner, fmt.Sprintf("agent %s (start #%d)", a.name, a.starts), c.env, "cairn-agent", args...)
}

// enrollFlags are the flags of an agent's first start.
func (c *controller) enrollFlags(token string, labels string) []string {
	return []string{"--controller", c.addr, "--ca", c.caPath(), "--token", token, "--labels", labels}
}

// createUser creates a controller user with roles (as the admin) and
// returns a new API token for it.
func (c *controller) createUser(t *testing.T, name string, roles ...string) string {
	t.Helper()
	c.mustCtl(t, "user", "create", name, "--role", strings.Join(roles, ","))
	var tok struct {
		Token string `json:"token"`
	}
	c.ctlJSON(t, &tok, "token", "create", "--user", name)
	if tok.Token == "" {
		t.Fatalf("token create --user %s printed no token", name)
	}
	return tok.Token
}

// mustCtlAs runs cairnctl with token and requires exit 0.
func (c *controller) mustCtlAs(t *testing.T, token string, args ...string) string {
	t.Helper()
	r := c.ctlAs(t, token, args...)
	if r.code != 0 {
		t.Fatalf("cairnctl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// ctlProtoAs runs cairnctl with token and -o json, requires exit 0 and
// decodes the output into m with protojson (cairnctl prints protos with
// their .proto field names); fields the test's protos do not know are
// ignored.
func (c *controller) ctlProtoAs(t *testing.T, token string, m proto.Message, args ...string) {
	t.Helper()
	out := c.mustCtlAs(t, token, append(args, "-o", "json")...)
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal([]byte(out), m); err != nil {
		t.Fatalf("cairnctl %s -o json: decode %T: %v\n%s", strings.Join(args, " "), m, err, out)
	}
}

// newAgentOn prepares an agent like newAgent, on a root composed of
// trees (see composeRoot) instead of the software fixture alone.
func newAgentOn(t *testing.T, hostname string, trees ...string) *agentProc {
	t.Helper()
	return &agentProc{
		owner:   t,
		name:    hostname,
		dataDir: filepath.Join(t.TempDir(), "agent-"+hostname),
		root:    hostRoot(t, hostname, trees...),
	}
}

// enroll starts agents for the first time with one join token, agent i
// with labels[i], waits until every one is connected and returns the
// node IDs by hostname.
func (c *controller) enroll(t *testing.T, agents []*agentProc, labels []string) map[string]string {
	t.Helper()
	var join struct {
		Token string `json:"token"`
	}
	c.ctlJSON(t, &join, "enroll-token", "create", "--uses", fmt.Sprint(len(agents)))
	for i, a := range agents {
		a.start(c, c.enrollFlags(join.Token, labels[i])...)
	}
	ids := map[string]string{}
	waitFor(t, 2*startTimeout, fmt.Sprintf("%d connected nodes", len(agents)), func() bool {
		for _, a := range agents {
			if a.p.exited() {
				t.Fatalf("agent %s exited with %d while enrolling", a.name, a.p.code)
			}
		}
		clear(ids)
		for _, n := range c.nodes(t) {
			if n.State == "STATE_CONNECTED" {
				ids[n.Hostname] = n.ID
			}
		}
		return len(ids) == len(agents)
	})
	return ids
}

// kill ends the agent with SIGKILL, as a power cut or the OOM killer
// would. Its plugin processes die with it; any still there are killed
// when the test ends.
func (a *agentProc) kill(t *testing.T) {
	t.Helper()
	orphans := descendants(a.p.cmd.Process.Pid)
	a.owner.Cleanup(func() {
		for _, p := range orphans {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	})
	a.p.stop(t, syscall.SIGKILL)
}
