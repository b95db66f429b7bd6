package session

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/internal/audit"
	"github.com/cairn-ops/cairn/internal/pki"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

const (
	goodToken = "cairn_e_good"
	testNode  = "node-1"
	// waitFor bounds every wait for the agent in these tests.
	waitFor = 20 * time.Second
)

// fakeController is a hand-written controller: a real gRPC server with
// real TLS on 127.0.0.1 that records what agents send and sends the
// commands a test gives it.
type fakeController struct {
	agentv1.UnimplementedEnrollmentServer
	agentv1.UnimplementedAgentServer

	t          *testing.T
	ca         *pki.CA
	caPEM      []byte
	release    ed25519.PublicKey
	releaseKey ed25519.PrivateKey
	addr       string
	tlsConf    *tls.Config
	// clientCAs verify node certificates; ca (under mu) issues them.
	clientCAs *x509.CertPool

	events chan event
	// backlog holds events wait read past; only the test goroutine uses it.
	backlog  []event
	sessions chan *fakeSession

	mu       sync.Mutex
	srv      *grpc.Server
	refusal  error         // Enroll's answer when set
	validity time.Duration // of certificates Enroll issues
	// sessionRefusal, when set, is what Session answers at once.
	sessionRefusal error
	noAck          bool // do not send ResultAck
	enrolls        int
	renewals       int
	hellos         []*agentv1.Hello
	peerCerts      []*x509.Certificate // the client certificate of each session
	results        []*agentv1.CommandResult
	audits         []*inventoryv1.Audit
	uploadCmds     []string

	noOutboxAck bool // do not send OutboxAck
	outbox      []*agentv1.OutboxItem
	asked       []*agentv1.ConfirmationRequest
	// artifacts are what FetchArtifact serves, by digest; cutAfter, when
	// positive, ends each fetch with Unavailable after that many bytes.
	artifacts map[string][]byte
	cutAfter  int
	offsets   []int64 // of each FetchArtifact call
}

type event struct {
	kind string // hello, ack, result, upload, renew, outbox, confirm, fetch
	id   string // the command ID (for confirm, command/step; outbox: item ID)
}

// fakeSession is one open session; a test sends on it or drops it.
type fakeSession struct {
	send chan *agentv1.ControllerMessage
	drop chan struct{}
}

func (s *fakeSession) command(id string, collectors ...string) {
	s.send <- &agentv1.ControllerMessage{Msg: &agentv1.ControllerMessage_Command{Command: &agentv1.Command{
		Id:   id,
		Kind: &agentv1.Command_Audit{Audit: &agentv1.AuditCommand{Collectors: collectors}},
	}}}
}

func newFakeController(t *testing.T) *fakeController {
	t.Helper()
	now := time.Now()
	ca, err := pki.NewCA("cairn test CA", now)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, now)
	if err != nil {
		t.Fatal(err)
	}
	serverCert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	release, err := pki.NewReleaseKey()
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeController{
		t:          t,
		ca:         ca,
		caPEM:      ca.CertPEM,
		release:    release.Public().(ed25519.PublicKey),
		releaseKey: release,
		validity:   pki.NodeValidity,
		events:     make(chan event, 1000),
		sessions:   make(chan *fakeSession, 100),
		artifacts:  map[string][]byte{},
	}
	f.clientCAs = pool
	// Each handshake reads the client CAs now: rotate adds one.
	f.tlsConf = &tls.Config{
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			return &tls.Config{
				Certificates: []tls.Certificate{serverCert},
				ClientAuth:   tls.VerifyClientCertIfGiven,
				ClientCAs:    f.clientCAs,
				MinVersion:   tls.VersionTLS12,
			}, nil
		},
	}
	f.start("127.0.0.1:0")
	t.Cleanup(f.stop)
	return f
}

// rotate makes ca the CA that issues node certificates, trusted besides
// the old one, as the controller does during a CA rotation's overlap.
func (f *fakeController) rotate(ca *pki.CA) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pool := f.clientCAs.Clone()
	pool.AddCert(ca.Cert)
	f.clientCAs, f.ca = pool, ca
}

// start serves on addr; the first start picks a free port.
func (f *fakeController) start(addr string) {
	f.t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		f.t.Fatal(err)
	}
	f.addr = lis.Addr().String()
	srv := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(f.tlsConf)),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 20 * time.Second, PermitWithoutStream: true}),
	)
	agentv1.RegisterEnrollmentServer(srv, f)
	agentv1.RegisterAgentServer(srv, f)
	f.mu.Lock()
	f.srv = srv
	f.mu.Unlock()
	go srv.Serve(lis)
}

// stop closes the listener and every connection, like a controller that
// went away.
func (f *fakeController) stop() {
	f.mu.Lock()
	srv := f.srv
	f.mu.Unlock()
	srv.Stop()
}

func (f *fakeController) record(e event) { f.events <- e }

// wait returns once an event of kind (and id, when given) has arrived.
// Events it reads past are kept for later waits: the agent's session
// stream and its uploads are separate calls, so their events may be
// recorded in either order.
func (f *fakeController) wait(kind, id string) {
	f.t.Helper()
	match := func(e event) bool { return e.kind == kind && (id == "" || e.id == id) }
	for i, e := range f.backlog {
		if match(e) {
			f.backlog = append(f.backlog[:i:i], f.backlog[i+1:]...)
			return
		}
	}
	deadline := time.After(waitFor)
	for {
		select {
		case e := <-f.events:
			if match(e) {
				return
			}
			f.backlog = append(f.backlog, e)
		case <-deadline:
			f.t.Fatalf("no %s %s from the agent within %v", kind, id, waitFor)
		}
	}
}

// session waits for the agent's next session.
func (f *fakeController) session() *fakeSession {
	f.t.Helper()
	select {
	case s := <-f.sessions:
		return s
	case <-time.After(waitFor):
		f.t.Fatalf("the agent opened no session within %v", waitFor)
		return nil
	}
}

func (f *fakeController) locked(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

func peerCert(ctx context.Context) (*x509.Certificate, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "no peer")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 {
		return nil, status.Error(codes.Unauthenticated, "no verified client certificate")
	}
	return info.State.VerifiedChains[0][0], nil
}

func (f *fakeController) Enroll(_ context.Context, req *agentv1.EnrollRequest) (*agentv1.EnrollResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.enrolls++
	if f.refusal != nil {
		return nil, f.refusal
	}
	if req.GetToken() != goodToken {
		return nil, status.Error(codes.PermissionDenied, "unknown join token")
	}
	der, err := f.ca.SignNode(req.GetCsrDer(), testNode, time.Now(), f.validity)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &agentv1.EnrollResponse{NodeId: testNode, CertificateDer: der, CaPem: f.caPEM, ReleasePublicKey: f.release}, nil
}

func (f *fakeController) Renew(ctx context.Context, req *agentv1.RenewRequest) (*agentv1.RenewResponse, error) {
	cert, err := peerCert(ctx)
	if err != nil {
		return nil, err
	}
	id, err := pki.NodeID(cert)
	if err != nil {
		return nil, status.Error(codes.PermissionDenied, err.Error())
	}
	f.mu.Lock()
	ca := f.ca
	f.mu.Unlock()
	der, err := ca.SignNode(req.GetCsrDer(), id, time.Now(), pki.NodeValidity)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	f.locked(func() { f.renewals++ })
	f.record(event{kind: "renew"})
	return &agentv1.RenewResponse{CertificateDer: der}, nil
}

func (f *fakeController) UploadAudit(stream agentv1.Agent_UploadAuditServer) error {
	if _, err := peerCert(stream.Context()); err != nil {
		return err
	}
	var cmd string
	var data []byte
	for {
		c, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if cmd == "" {
			cmd = c.GetCommandId()
		}
		data = append(data, c.GetData()...)
	}
	a, err := audit.Decode(data)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	f.locked(func() {
		f.audits = append(f.audits, a)
		f.uploadCmds = append(f.uploadCmds, cmd)
	})
	f.record(event{kind: "upload", id: cmd})
	return stream.SendAndClose(&agentv1.UploadAuditResponse{AuditId: a.GetHashes().GetDocument(), Header: a.GetHeader()})
}

func (f *fakeController) Session(stream agentv1.Agent_SessionServer) error {
	cert, err := peerCert(stream.Context())
	if err != nil {
		return err
	}
	f.mu.Lock()
	refused := f.sessionRefusal
	f.mu.Unlock()
	if refused != nil {
		return refused
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	if first.GetHello() == nil {
		return status.Error(codes.InvalidArgument, "first message is not a Hello")
	}
	f.locked(func() {
		f.hellos = append(f.hellos, first.GetHello())
		f.peerCerts = append(f.peerCerts, cert)
	})
	s := &fakeSession{send: make(chan *agentv1.ControllerMessage, 100), drop: make(chan struct{})}
	f.sessions <- s
	f.record(event{kind: "hello"})

	received := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				received <- err
				return
			}
			switch m := m.GetMsg().(type) {
			case *agentv1.AgentMessage_Ack:
				f.record(event{kind: "ack", id: m.Ack.GetCommandId()})
			case *agentv1.AgentMessage_Result:
				f.mu.Lock()
				f.results = append(f.results, m.Result)
				ack := !f.noAck
				f.mu.Unlock()
				if ack {
					s.send <- &agentv1.ControllerMessage{Msg: &agentv1.ControllerMessage_ResultAck{ResultAck: &agentv1.ResultAck{CommandId: m.Result.GetCommandId()}}}
				}
				f.record(event{kind: "result", id: m.Result.GetCommandId()})
			case *agentv1.AgentMessage_Outbox:
				f.mu.Lock()
				f.outbox = append(f.outbox, m.Outbox)
				ack := !f.noOutboxAck
				f.mu.Unlock()
				if ack {
					s.send <- &agentv1.ControllerMessage{Msg: &agentv1.ControllerMessage_OutboxAck{OutboxAck: &agentv1.OutboxAck{Id: m.Outbox.GetId()}}}
				}
				f.record(event{kind: "outbox", id: m.Outbox.GetId()})
			case *agentv1.AgentMessage_ConfirmationRequest:
				f.locked(func() { f.asked = append(f.asked, m.ConfirmationRequest) })
				f.record(event{kind: "confirm", id: m.ConfirmationRequest.GetCommandId() + "/" + m.ConfirmationRequest.GetStep()})
			}
		}
	}()
	for {
		select {
		case m := <-s.send:
			if err := stream.Send(m); err != nil {
				return err
			}
		case <-s.drop:
			return status.Error(codes.Unavailable, "dropped by the test")
		case err := <-received:
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// FetchArtifact serves f.artifacts, resumable from an offset, in chunks
// of 1000 bytes.
func (f *fakeController) FetchArtifact(req *agentv1.FetchArtifactRequest, stream agentv1.Agent_FetchArtifactServer) error {
	if _, err := peerCert(stream.Context()); err != nil {
		return err
	}
	f.mu.Lock()
	data, ok := f.artifacts[req.GetDigest()]
	cut := f.cutAfter
	f.offsets = append(f.offsets, req.GetOffset())
	f.mu.Unlock()
	f.record(event{kind: "fetch", id: req.GetDigest()})
	if !ok {
		return status.Errorf(codes.PermissionDenied, "node has no unfinished deploy command that lists artifact %s", req.GetDigest())
	}
	off := req.GetOffset()
	if off > int64(len(data)) {
		return status.Errorf(codes.OutOfRange, "offset %d is beyond the end", off)
	}
	sent := 0
	for first := true; first || off < int64(len(data)); first = false {
		end := min(off+1000, int64(len(data)))
		if cut > 0 && sent+int(end-off) > cut {
			end = off + int64(cut-sent)
		}
		chunk := &agentv1.ArtifactChunk{Data: data[off:end]}
		if first {
			chunk.SizeBytes = int64(len(data))
		}
		if err := stream.Send(chunk); err != nil {
			return err
		}
		sent += int(end - off)
		off = end
		if cut > 0 && sent >= cut {
			return status.Error(codes.Unavailable, "cut off by the test")
		}
	}
	return nil
}

// enroll enrolls a new agent data dir with the fake and returns the dir.
func (f *fakeController) enroll(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "agent")
	_, err := Enroll(t.Context(), EnrollOptions{
		DataDir:    dir,
		Controller: f.addr,
		Token:      goodToken,
		CAPEM:      f.caPEM,
		Hostname:   "host-a",
		Logger:     testLogger(t),
	})
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	return dir
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// fixtureRoot is a Debian tree the os and packages collectors read.
func fixtureRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "collector", "testdata", "sw", "debian-a"))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// runAgent starts an agent on dir and returns a function that stops it
// and returns Run's error.
func runAgent(t *testing.T, dir string, tweak func(*Config)) (stop func() error) {
	t.Helper()
	cfg := Config{
		DataDir:       dir,
		Root:          fixtureRoot(t),
		AgentVersion:  "test",
		Logger:        testLogger(t),
		ReconnectBase: 5 * time.Millisecond,
		ReconnectMax:  50 * time.Millisecond,
		ChunkSize:     4096, // several chunks per audit
	}
	if tweak != nil {
		tweak(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("new agent: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(waitFor):
				runErr = fmt.Errorf("agent did not stop within %v", waitFor)
			}
		})
		return runErr
	}
	t.Cleanup(func() { stop() })
	return stop
}
