package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/agent/session"
	"github.com/cairn-ops/cairn/internal/pki"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// controller is a fake controller for the run command: it enrolls with
// one token and accepts sessions, recording the node each presents.
type controller struct {
	agentv1.UnimplementedEnrollmentServer
	agentv1.UnimplementedAgentServer

	ca     *pki.CA
	caFile string
	addr   string
	token  string

	mu       sync.Mutex
	enrolls  int
	sessions []string
	opened   chan struct{}
}

func newController(t *testing.T) *controller {
	t.Helper()
	ca, err := pki.NewCA("cli test CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueServer(nil, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	c := &controller{ca: ca, token: "cairn_e_ok", opened: make(chan struct{}, 10)}
	c.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(c.caFile, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.addr = lis.Addr().String()
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    pool,
	})))
	agentv1.RegisterEnrollmentServer(srv, c)
	agentv1.RegisterAgentServer(srv, c)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return c
}

func (c *controller) Enroll(_ context.Context, req *agentv1.EnrollRequest) (*agentv1.EnrollResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.enrolls++
	if req.GetToken() != c.token {
		return nil, status.Error(codes.PermissionDenied, "join token expired")
	}
	der, err := c.ca.SignNode(req.GetCsrDer(), "node-7", time.Now(), pki.NodeValidity)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &agentv1.EnrollResponse{NodeId: "node-7", CertificateDer: der, CaPem: c.ca.CertPEM}, nil
}

func (c *controller) Session(stream agentv1.Agent_SessionServer) error {
	p, _ := peer.FromContext(stream.Context())
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 {
		return status.Error(codes.Unauthenticated, "no client certificate")
	}
	id, err := pki.NodeID(info.State.VerifiedChains[0][0])
	if err != nil {
		return status.Error(codes.PermissionDenied, err.Error())
	}
	if _, err := stream.Recv(); err != nil {
		return err
	}
	c.mu.Lock()
	c.sessions = append(c.sessions, id)
	c.mu.Unlock()
	c.opened <- struct{}{}
	<-stream.Context().Done()
	return nil
}

// runUntilSession runs cairn-agent with args until the fake controller
// sees a session, then stops it like SIGTERM would.
func runUntilSession(t *testing.T, c *controller, args ...string) (stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errOut bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- Execute(ctx, args, &out, &errOut) }()
	select {
	case <-c.opened:
		cancel()
		code = <-done
	case code = <-done:
		t.Logf("cairn-agent exited before opening a session")
	case <-time.After(20 * time.Second):
		cancel()
		<-done
		t.Fatalf("no session within 20s; stderr:\n%s", errOut.String())
	}
	return errOut.String(), code
}

func TestRunEnrollsThenReusesIdentity(t *testing.T) {
	c := newController(t)
	dataDir := filepath.Join(t.TempDir(), "agent")

	errOut, code := runUntilSession(t, c, "run", "--controller", c.addr, "--ca", c.caFile,
		"--token", c.token, "--data-dir", dataDir, "--labels", "env=test")
	if code != ExitOK {
		t.Fatalf("first start: exit %d, stderr:\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "cairn-agent: info: enrolled: node=node-7") {
		t.Errorf("first start does not say it enrolled:\n%s", errOut)
	}
	for _, name := range []string{session.KeyFile, session.CertFile, session.CAFile, session.IdentityFile} {
		fi, err := os.Stat(filepath.Join(dataDir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v; want mode 0600", name, fi.Mode(), err)
		}
	}

	// Second start: the token is ignored, the identity reused; the
	// controller address comes from the identity, through the environment
	// this time for the data dir.
	t.Setenv("CAIRN_AGENT_DATA_DIR", dataDir)
	errOut, code = runUntilSession(t, c, "run", "--token", "cairn_e_spent")
	if code != ExitOK {
		t.Fatalf("second start: exit %d, stderr:\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "already enrolled, ignoring the token") {
		t.Errorf("second start does not say it ignores the token:\n%s", errOut)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.enrolls != 1 || len(c.sessions) != 2 || c.sessions[1] != "node-7" {
		t.Errorf("%d enrollments and sessions %v, want 1 and two sessions of node-7", c.enrolls, c.sessions)
	}
}

func TestRunEnrollmentRefused(t *testing.T) {
	c := newController(t)
	dataDir := filepath.Join(t.TempDir(), "agent")
	start := time.Now()
	_, errOut, code := execute("run", "--controller", c.addr, "--ca", c.caFile, "--token", "cairn_e_old", "--data-dir", dataDir)
	if code != ExitFailed {
		t.Errorf("exit %d, want %d", code, ExitFailed)
	}
	want := "cairn-agent: enrollment refused by " + c.addr + ": join token expired"
	if lines := strings.Split(strings.TrimSpace(errOut), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], want) {
		t.Errorf("stderr %q, want one line starting %q", errOut, want)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("took %v: a refusal must not be retried", time.Since(start))
	}
	if _, err := os.Stat(filepath.Join(dataDir, session.IdentityFile)); err == nil {
		t.Errorf("identity written after a refused enrollment")
	}
}

func TestRunUsageErrors(t *testing.T) {
	dataDir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no data dir", []string{"run"}, "--data-dir is required"},
		{"first start without anything", []string{"run", "--data-dir", dataDir}, "holds no identity yet; to enroll, give --token (create one with 'cairnctl enroll-token create'), --controller, --ca"},
		{"first start without CA", []string{"run", "--data-dir", dataDir, "--token", "t", "--controller", "127.0.0.1:1"}, "give --ca (the controller's ca.pem: the agent does not trust a controller on first use)"},
		{"bad root", []string{"run", "--data-dir", dataDir, "--root", "/nonexistent/root"}, "--root /nonexistent/root: not a directory"},
		{"bad labels", []string{"run", "--data-dir", dataDir, "--labels", "env"}, `invalid argument "env" for "--labels"`},
		{"bad log level", []string{"run", "--data-dir", dataDir, "--log-level", "loud"}, `--log-level "loud"`},
		{"arguments", []string{"run", "extra"}, `unknown command "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := execute(tt.args...)
			if code != ExitError {
				t.Errorf("exit %d, want %d", code, ExitError)
			}
			if !strings.HasPrefix(errOut, "cairn-agent: ") || !strings.Contains(errOut, tt.want) {
				t.Errorf("stderr %q, want a cairn-agent error containing %q", errOut, tt.want)
			}
		})
	}
}

func TestRunHelp(t *testing.T) {
	out, _, code := execute("run", "--help")
	for _, want := range []string{"Examples:", "--ca", "CAIRN_CONTROLLER", "--reconnect-max"} {
		if code != ExitOK || !strings.Contains(out, want) {
			t.Errorf("run --help: exit %d, want %q in:\n%s", code, want, out)
		}
	}
}
