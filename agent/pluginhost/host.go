package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/cairn-ops/cairn/internal/digest"
	"github.com/cairn-ops/cairn/plugins/catalog"
	"github.com/cairn-ops/cairn/plugins/sdk"
)

// DefaultStartTimeout bounds how long a plugin may take to complete the
// handshake when Config.StartTimeout is zero.
const DefaultStartTimeout = 30 * time.Second

// stderrLines is how many of a plugin's last stderr lines a crash report
// carries.
const stderrLines = 10

// Config is what a Host needs. It is a value: the agent fills it once.
type Config struct {
	// Self is the path of the cairn-agent binary; built-ins are started by
	// re-executing it as "SELF plugin serve NAME".
	Self string
	// SelfRunning says Self is the running executable itself (Linux's
	// /proc/self/exe, see RunningExecutable), which nothing can swap
	// underneath: built-ins then start without a checksum (it could only
	// compare the running bytes with themselves) and without AutoMTLS
	// (their unix socket is in a directory only this user can enter).
	// Hashing the agent and making P-521 keys at every start was most of
	// a step's cost. External plugins always get both.
	SelfRunning bool
	// Builtins are the names of the built-in plugins.
	Builtins []string
	// Catalog lists the external plugins; nil means none.
	Catalog *catalog.Catalog
	// Logger receives the host's log and every plugin's relayed stderr.
	Logger *slog.Logger
	// StartTimeout bounds the handshake; zero means DefaultStartTimeout.
	StartTimeout time.Duration
	// ProcDir is where the host records each plugin process it starts
	// (one small file per process, removed when the process is gone), so
	// that Reap, when the next agent starts, can kill one that outlived
	// its agent. Empty records nothing.
	ProcDir string
}

// Host starts plugin processes and keeps track of them.
type Host struct {
	cfg Config
	log *slog.Logger

	selfOnce sync.Once
	selfSum  string
	selfErr  error

	socketsOnce sync.Once
	sockets     string
	socketsErr  error

	// recordWarn logs a failure to record a plugin process once.
	recordWarn sync.Once

	mu        sync.Mutex
	instances map[*Instance]struct{}
	closed    bool
}

// New returns a Host. It starts nothing until Start.
func New(cfg Config) *Host {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	h := &Host{cfg: cfg, log: cfg.Logger, instances: map[*Instance]struct{}{}}
	for _, e := range cfg.Catalog.Entries() {
		if slices.Contains(cfg.Builtins, e.Name) {
			h.log.Warn("catalog plugin has a built-in's name; the built-in wins", "plugin", e.Name, "file", e.Path)
		}
	}
	return h
}

// target is what Start runs for one plugin name.
type target struct {
	path string
	args []string
	sum  string // expected sha256, hex; empty for the running executable
	// whose says where the expected sum comes from, for error messages.
	whose string
	// running: the running executable (Config.SelfRunning).
	running bool
}

func (h *Host) resolve(name string) (target, error) {
	if slices.Contains(h.cfg.Builtins, name) {
		if h.cfg.SelfRunning {
			return target{path: h.cfg.Self, args: []string{"plugin", "serve", name}, running: true}, nil
		}
		sum, err := h.selfChecksum()
		if err != nil {
			return target{}, fmt.Errorf("plugin %s: %w", name, err)
		}
		return target{path: h.cfg.Self, args: []string{"plugin", "serve", name}, sum: sum, whose: "the running agent's is"}, nil
	}
	if e, ok := h.cfg.Catalog.Lookup(name); ok {
		return target{path: e.Path, sum: e.SHA256, whose: "catalog says"}, nil
	}
	return target{}, fmt.Errorf("plugin %q: %w (not built in, not in the catalog)", name, ErrUnknownPlugin)
}

// selfChecksum is the sha256 of the agent binary, computed once.
func (h *Host) selfChecksum() (string, error) {
	h.selfOnce.Do(func() {
		if h.cfg.Self == "" {
			h.selfErr = errors.New("no agent binary to re-execute for built-in plugins (Config.Self is empty)")
			return
		}
		h.selfSum, h.selfErr = digest.File(h.cfg.Self)
	})
	return h.selfSum, h.selfErr
}

// socketDir is the directory, made once with mode 0700, where every
// plugin this host starts makes its unix socket: no other user can reach
// a plugin's socket. Close removes it.
func (h *Host) socketDir() (string, error) {
	h.socketsOnce.Do(func() {
		h.sockets, h.socketsErr = os.MkdirTemp("", "cairn-plugins-")
		if h.socketsErr != nil {
			h.socketsErr = fmt.Errorf("make the plugins' socket directory: %w", h.socketsErr)
		}
	})
	return h.sockets, h.socketsErr
}

// checksumError is the clear message for a binary that is not the one
// expected.
func checksumError(name string, t target, got string) error {
	return fmt.Errorf("plugin %s: sha256 of %s is %s, %s %s: %w", name, t.path, got, t.whose, t.sum, ErrChecksum)
}

// Start starts the plugin called name and completes the handshake. ctx
// bounds the start only: its deadline caps the handshake (with
// Config.StartTimeout), and if it has ended by then the plugin is killed
// and Start fails. Each later call is bounded by the ctx given to it; the
// instance lives until Close.
//
// Errors: ErrUnknownPlugin, ErrChecksum (the binary is not started),
// ErrProtocol (the process did not speak the plugin protocol).
func (h *Host) Start(ctx context.Context, name string) (*Instance, error) {
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("plugin %s: %w", name, ErrClosed)
	}
	t, err := h.resolve(name)
	if err != nil {
		return nil, err
	}
	var secure *plugin.SecureConfig
	if !t.running {
		// Check before go-plugin does, for the clear message.
		got, err := digest.File(t.path)
		if err != nil {
			return nil, fmt.Errorf("plugin %s: %w", name, err)
		}
		if got != t.sum {
			return nil, checksumError(name, t, got)
		}
		want, _ := hex.DecodeString(t.sum)
		secure = &plugin.SecureConfig{Checksum: want, Hash: sha256.New()}
	}
	sockets, err := h.socketDir()
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", name, err)
	}

	log := h.log.With("plugin", name)
	stderr := newTail(stderrLines)
	cmd := exec.Command(t.path, t.args...)
	if t.running {
		cmd.Args[0] = "cairn-agent" // not /proc/self/exe, in ps
	}
	// The plugin makes its unix socket in the host's private directory.
	cmd.Env = append(os.Environ(), plugin.EnvUnixSocketDir+"="+sockets)
	setProcAttr(cmd)

	timeout := h.cfg.StartTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          sdk.PluginSet(),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         !t.running,
		SecureConfig:     secure,
		Logger:           newHCLogAdapter(log),
		Stderr:           stderr,
		SyncStdout:       &lineWriter{fn: func(l string) { log.Info(l, "stream", "stdout") }},
		SyncStderr:       &lineWriter{fn: func(l string) { log.Info(l, "stream", "stderr") }},
		StartTimeout:     timeout,
	})

	// go-plugin's Start takes no context; the context's deadline bounds the
	// handshake through StartTimeout, and it is checked again afterwards.
	inst := &Instance{name: name, host: h, client: client, cmd: cmd, stderr: stderr, log: log, released: make(chan struct{})}
	p, err := startLocked(client, inst.released)
	if cmd.Process != nil {
		inst.pidv = cmd.Process.Pid
		if st, ok := readStat(inst.pidv); ok {
			inst.start = st.start
		}
	}
	if err == nil {
		h.record(inst)
	}
	if err != nil {
		inst.kill()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("plugin %s: start: %w", name, ctx.Err())
		}
		return nil, h.startError(name, t, stderr, err)
	}
	if ctx.Err() != nil {
		inst.kill()
		return nil, fmt.Errorf("plugin %s: start: %w", name, ctx.Err())
	}
	inst.Plugin = &guarded{inst: inst, p: p}

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		inst.kill()
		return nil, fmt.Errorf("plugin %s: %w", name, ErrClosed)
	}
	h.instances[inst] = struct{}{}
	h.mu.Unlock()
	log.Debug("plugin started", "pid", inst.pidv)
	return inst, nil
}

// startLocked starts the plugin process and completes the handshake
// (dispense) in a goroutine locked to its OS thread, which stays locked,
// running nothing else, until released is closed (the process is gone).
// The kernel sends a parent-death signal when the thread that forked the
// child ends, not the process (prctl(2), https://go.dev/issue/27505), and
// Go ends a thread whose goroutine exits while locked to it (a library
// that calls runtime.LockOSThread and returns): on a thread of the pool,
// that would kill the plugin. On its own locked thread, the plugin gets
// the signal only when the agent dies. The cost is one idle thread per
// running plugin.
func startLocked(client *plugin.Client, released <-chan struct{}) (sdk.Plugin, error) {
	type started struct {
		p   sdk.Plugin
		err error
	}
	done := make(chan started, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		p, err := dispense(client)
		done <- started{p, err}
		<-released
	}()
	s := <-done
	return s.p, s.err
}

// dispense completes the handshake and returns the plugin's client.
func dispense(client *plugin.Client) (sdk.Plugin, error) {
	rpc, err := client.Client()
	if err != nil {
		return nil, err
	}
	raw, err := rpc.Dispense(sdk.PluginKey)
	if err != nil {
		return nil, err
	}
	p, ok := raw.(sdk.Plugin)
	if !ok {
		return nil, fmt.Errorf("dispensed %T, not an sdk.Plugin", raw)
	}
	return p, nil
}

// startError turns go-plugin's start failures into actionable ones.
func (h *Host) startError(name string, t target, stderr *tail, err error) error {
	if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
		// The file changed between our check and go-plugin's.
		got, serr := digest.File(t.path)
		if serr != nil {
			got = "unreadable"
		}
		return checksumError(name, t, got)
	}
	// go-plugin's message runs on with generic diagnostics; its first
	// line says what happened.
	msg, _, _ := strings.Cut(strings.TrimSpace(err.Error()), "\n")
	const junk = "Unrecognized remote plugin message: "
	for _, s := range []string{junk, "plugin exited before we could connect",
		"timeout while waiting for plugin to start", "incompatible core API version",
		"Incompatible API version", "unsupported plugin protocol"} {
		if !strings.HasPrefix(msg, s) {
			continue
		}
		if line, ok := strings.CutPrefix(msg, junk); ok {
			msg = fmt.Sprintf("it wrote %q on stdout instead of the handshake", line)
			if line == "" {
				msg = "it exited without the handshake"
			}
		}
		if out := stderr.String(); out != "" {
			msg += "; stderr: " + out
		}
		return fmt.Errorf("plugin %s did not speak the plugin protocol: %s (%s): %w", name, msg, t.path, ErrProtocol)
	}
	return fmt.Errorf("plugin %s: start %s: %w", name, t.path, err)
}

// Close kills every plugin the host started. Start fails afterwards.
func (h *Host) Close() {
	h.mu.Lock()
	h.closed = true
	insts := make([]*Instance, 0, len(h.instances))
	for i := range h.instances {
		insts = append(insts, i)
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, i := range insts {
		wg.Go(i.Close)
	}
	wg.Wait()
	h.socketsOnce.Do(func() {}) // synchronizes with a socketDir that ran
	if h.sockets != "" {
		os.RemoveAll(h.sockets)
	}
}

func (h *Host) forget(i *Instance) {
	h.mu.Lock()
	delete(h.instances, i)
	h.mu.Unlock()
}
