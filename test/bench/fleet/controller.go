package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// controller is a cairn-controller subprocess and an operator connection
// to it.
type controller struct {
	bin     string
	dataDir string
	addr    string
	token   string
	roots   *x509.CertPool
	logPath string
	logFile *os.File

	cmd    *exec.Cmd
	exited chan error

	conn    *grpc.ClientConn
	nodes   controllerv1.NodesClient
	audits  controllerv1.AuditsClient
	enrollT controllerv1.EnrollTokensClient
}

var adminToken = regexp.MustCompile(`cairn_u_[A-Za-z0-9_-]+`)

// startController initializes a data directory under dir and starts the
// controller on a free loopback port.
func startController(ctx context.Context, bin, dir string) (*controller, error) {
	c := &controller{
		bin:     filepath.Join(bin, "cairn-controller"),
		dataDir: filepath.Join(dir, "data"),
		logPath: filepath.Join(dir, "controller.log"),
	}
	out, err := exec.CommandContext(ctx, c.bin, "init", "--data-dir", c.dataDir).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("cairn-controller init: %w: %s", err, bytes.TrimSpace(out))
	}
	c.token = adminToken.FindString(string(out))
	if c.token == "" {
		return nil, fmt.Errorf("cairn-controller init printed no admin token (cairn_u_…):\n%s", out)
	}
	caPEM, err := os.ReadFile(filepath.Join(c.dataDir, "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("read controller CA: %w", err)
	}
	c.roots = x509.NewCertPool()
	if !c.roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s/ca.pem holds no certificate", c.dataDir)
	}
	if c.addr, err = freePort(); err != nil {
		return nil, err
	}
	if c.logFile, err = os.Create(c.logPath); err != nil {
		return nil, fmt.Errorf("create controller log: %w", err)
	}
	if err := c.serve(ctx); err != nil {
		c.logFile.Close()
		return nil, err
	}
	c.conn, err = c.dial(c.token)
	if err != nil {
		c.close()
		return nil, fmt.Errorf("operator connection: %w", err)
	}
	c.nodes = controllerv1.NewNodesClient(c.conn)
	c.audits = controllerv1.NewAuditsClient(c.conn)
	c.enrollT = controllerv1.NewEnrollTokensClient(c.conn)
	if err := c.waitReady(ctx, 30*time.Second); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// serve starts `cairn-controller serve` in the background. Its output
// goes to the log file.
func (c *controller) serve(ctx context.Context) error {
	// Not CommandContext: the benchmark stops the controller itself, with
	// SIGTERM, and must be able to outlive ctx long enough to do so.
	cmd := exec.Command(c.bin, "serve", "--data-dir", c.dataDir, "--listen", c.addr)
	cmd.Stdout, cmd.Stderr = c.logFile, c.logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start cairn-controller serve: %w", err)
	}
	c.cmd = cmd
	c.exited = make(chan error, 1)
	go func() { c.exited <- cmd.Wait() }()
	return nil
}

// dial opens an operator connection that authenticates with token.
func (c *controller) dial(token string) (*grpc.ClientConn, error) {
	return grpc.NewClient(c.addr,
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12, RootCAs: c.roots, ServerName: "127.0.0.1"})),
		grpc.WithPerRPCCredentials(bearer(token)),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)),
	)
}

// waitReady waits until the operator API answers.
func (c *controller) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := c.nodes.ListNodes(cctx, &controllerv1.ListNodesRequest{Selector: map[string]string{"bench": "none"}})
		ccancel()
		if err == nil {
			return nil
		}
		select {
		case err := <-c.exited:
			c.exited <- err
			return fmt.Errorf("cairn-controller exited while starting (%v); see %s", err, c.logPath)
		case <-ctx.Done():
			return fmt.Errorf("cairn-controller not ready after %s: %w (see %s)", timeout, err, c.logPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// restart stops the controller with SIGTERM, waits for it to exit and
// starts it again on the same address and data directory. It returns how
// long the old process took to exit and when the new one was started.
func (c *controller) restart(ctx context.Context) (stopTook time.Duration, started time.Time, err error) {
	t0 := time.Now()
	if err := c.stop(30 * time.Second); err != nil {
		return 0, time.Time{}, err
	}
	stopTook = time.Since(t0)
	started = time.Now()
	if err := c.serve(ctx); err != nil {
		return stopTook, started, err
	}
	return stopTook, started, nil
}

// stop sends SIGTERM and waits up to timeout for the process to exit.
func (c *controller) stop(timeout time.Duration) error {
	if c.cmd == nil {
		return nil
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal cairn-controller: %w", err)
	}
	select {
	case err := <-c.exited:
		c.cmd = nil
		if err != nil {
			return fmt.Errorf("cairn-controller exited with %v after SIGTERM; see %s", err, c.logPath)
		}
		return nil
	case <-time.After(timeout):
		c.cmd.Process.Kill()
		<-c.exited
		c.cmd = nil
		return fmt.Errorf("cairn-controller did not exit within %s of SIGTERM; killed it", timeout)
	}
}

// close stops the controller and the operator connection. It may be
// called more than once.
func (c *controller) close() error {
	var err error
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
	if c.cmd != nil {
		err = c.stop(30 * time.Second)
	}
	if c.logFile != nil {
		c.logFile.Close()
		c.logFile = nil
	}
	return err
}

// memory is a reading of the controller's /proc/PID/status.
type memory struct {
	rss, anon, file int64 // bytes
}

// memory reads the controller's resident memory.
func (c *controller) memory() (memory, error) {
	if c.cmd == nil {
		return memory{}, errors.New("controller not running")
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return memory{}, fmt.Errorf("read controller memory: %w", err)
	}
	defer f.Close()
	var m memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *int64
		switch key {
		case "VmRSS":
			dst = &m.rss
		case "RssAnon":
			dst = &m.anon
		case "RssFile":
			dst = &m.file
		default:
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			return memory{}, fmt.Errorf("parse %s %q: %w", key, val, err)
		}
		*dst = kb << 10
	}
	if m.rss == 0 {
		return memory{}, errors.New("no VmRSS in /proc/PID/status")
	}
	return m, sc.Err()
}

// cpu returns the user and system CPU time the controller has used.
func (c *controller) cpu() (time.Duration, error) {
	if c.cmd == nil {
		return 0, errors.New("controller not running")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("read controller CPU time: %w", err)
	}
	// The fields after the command name, which is in parentheses:
	// utime and stime are the 12th and 13th, in clock ticks (100 Hz on
	// Linux for /proc, whatever the kernel's HZ).
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, fmt.Errorf("parse /proc/%d/stat", c.cmd.Process.Pid)
	}
	var ticks int64
	for _, s := range f[11:13] {
		t, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc/%d/stat: %w", c.cmd.Process.Pid, err)
		}
		ticks += t
	}
	return time.Duration(ticks) * (time.Second / 100), nil
}

// selfCPU returns the user and system CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// connected counts the nodes the controller lists as connected whose
// last-seen time is at or after since (the zero time counts all).
func (c *controller) connected(ctx context.Context, selector map[string]string, since time.Time) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := c.nodes.ListNodes(ctx, &controllerv1.ListNodesRequest{Selector: selector})
	if err != nil {
		return 0, fmt.Errorf("list nodes: %w", err)
	}
	n := 0
	for _, node := range resp.GetNodes() {
		if node.GetState() != controllerv1.NodeRecord_STATE_CONNECTED {
			continue
		}
		if !since.IsZero() {
			seen, err := time.Parse(time.RFC3339Nano, node.GetLastSeen())
			if err != nil || seen.Before(since) {
				continue
			}
		}
		n++
	}
	return n, nil
}

// logProblems returns the controller log's warning and error lines.
func (c *controller) logProblems() ([]string, error) {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return nil, err
	}
	var out []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			out = append(out, line)
		}
	}
	return out, nil
}

// freePort returns a loopback address with a port nothing listens on.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// bearer sends the operator token with every call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return true }

var _ credentials.PerRPCCredentials = bearer("")
