package fleet_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/controller/blob"
	"github.com/cairn-ops/cairn/controller/fleet"
	"github.com/cairn-ops/cairn/controller/keyring"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/audit"
	"github.com/cairn-ops/cairn/internal/pki"
	"github.com/cairn-ops/cairn/internal/refusal"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// clock is a fake clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// harness is a fleet behind a real gRPC server with real TLS and the real
// auth interceptors, on 127.0.0.1.
type harness struct {
	t     *testing.T
	st    store.Store
	blobs *blob.Store
	ca    *pki.CA
	// dir is the data directory of keys.
	dir   string
	keys  *keyring.Live
	clock *clock
	fleet *fleet.Fleet
	addr  string
}

// newHarness starts a fleet; setup runs before it serves (SetEvents).
// Its keys are a real keyring in a data directory of its own (dir), so
// a test can rotate them.
func newHarness(t *testing.T, maxAudit int64, setup ...func(*fleet.Fleet)) *harness {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	if _, err := keyring.Create(dir, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Now()); err != nil {
		t.Fatal(err)
	}
	keys, err := keyring.Open(dir, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewMemory()
	f := fleet.New(fleet.Config{
		Store:         st,
		Blobs:         blobs,
		Keys:          keys,
		Now:           clk.Now,
		MaxAuditBytes: maxAudit,
		LostAfter:     5 * time.Minute,
	})
	for _, fn := range setup {
		fn(f)
	}
	authn := auth.New(st, clk.Now, keys)
	srv := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(keys.TLSConfig(clk.Now))),
		grpc.UnaryInterceptor(authn.Unary()),
		grpc.StreamInterceptor(authn.Stream()),
	)
	f.Register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return &harness{t: t, st: st, blobs: blobs, ca: keys.IssuingCA(), dir: dir, keys: keys, clock: clk, fleet: f, addr: lis.Addr().String()}
}

// dial connects with cert as the client certificate (none when nil).
func (h *harness) dial(cert *tls.Certificate) *grpc.ClientConn {
	h.t.Helper()
	// Every CA of the keyring: the server's certificate changes CA at the
	// end of a rotation's overlap.
	cfg := &tls.Config{RootCAs: h.keys.Keyring().ClientCAs(), ServerName: "localhost", MinVersion: tls.VersionTLS13}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	conn, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { conn.Close() })
	return conn
}

func (h *harness) putToken(token string, expires time.Time, uses uint32, labels map[string]string) {
	h.t.Helper()
	err := h.st.Update(context.Background(), func(tx store.Tx) error {
		return tx.PutEnrollToken(&controllerv1.EnrollTokenRecord{
			Id:        "et_" + token,
			TokenHash: auth.HashToken(token),
			CreatedBy: "user:admin",
			CreatedAt: h.clock.Now().Format(time.RFC3339Nano),
			ExpiresAt: expires.UTC().Format(time.RFC3339Nano),
			UsesLeft:  uses,
			Labels:    labels,
		})
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

// newCSR returns a fresh key and its CSR.
func newCSR(t *testing.T) (*tls.Certificate, []byte) {
	t.Helper()
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, "agent")
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{PrivateKey: key}, csr
}

// enroll enrolls a node with a fresh one-use token and returns its ID and
// client certificate.
func (h *harness) enroll(hostname string) (string, *tls.Certificate) {
	h.t.Helper()
	token := "cairn_e_" + hostname
	h.putToken(token, h.clock.Now().Add(10*time.Minute), 1, nil)
	cert, csr := newCSR(h.t)
	resp, err := agentv1.NewEnrollmentClient(h.dial(nil)).Enroll(context.Background(), &agentv1.EnrollRequest{
		Token: token, CsrDer: csr, Hostname: hostname, AgentVersion: "1.0",
	})
	if err != nil {
		h.t.Fatalf("enroll %s: %v", hostname, err)
	}
	cert.Certificate = [][]byte{resp.GetCertificateDer()}
	return resp.GetNodeId(), cert
}

func (h *harness) node(id string) *controllerv1.NodeRecord {
	h.t.Helper()
	var n *controllerv1.NodeRecord
	err := h.st.View(context.Background(), func(tx store.Tx) error {
		var err error
		n, err = tx.Node(id)
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

func (h *harness) command(id string) *controllerv1.CommandRecord {
	h.t.Helper()
	var c *controllerv1.CommandRecord
	err := h.st.View(context.Background(), func(tx store.Tx) error {
		var err error
		c, err = tx.Command(id)
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

func (h *harness) putCommand(nodeID, id string) {
	h.t.Helper()
	h.clock.Add(time.Second) // distinct creation times keep the order
	err := h.st.Update(context.Background(), func(tx store.Tx) error {
		return tx.PutCommand(&controllerv1.CommandRecord{
			Id: id, NodeId: nodeID, Kind: "audit", State: controllerv1.CommandRecord_STATE_PENDING,
			CreatedBy: "user:admin", CreatedAt: h.clock.Now().UTC().Format("2006-01-02T15:04:05.000000000Z"),
			Collectors: []string{"os"},
		})
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) logActions() []string {
	h.t.Helper()
	var actions []string
	err := h.st.View(context.Background(), func(tx store.Tx) error {
		entries, err := tx.LogEntries(0, 0)
		for _, e := range entries {
			actions = append(actions, e.GetAction()+" "+e.GetObject())
		}
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return actions
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// session is an agent's stream as the tests use it: Recv passes over the
// Trust messages the controller sends (when a session opens and after a
// rotation), which go to trusts.
type session struct {
	grpc.BidiStreamingClient[agentv1.AgentMessage, agentv1.ControllerMessage]
	trusts chan *agentv1.Trust
}

// Recv returns the next message that is not a Trust.
func (s session) Recv() (*agentv1.ControllerMessage, error) {
	for {
		m, err := s.BidiStreamingClient.Recv()
		if err != nil || m.GetTrust() == nil {
			return m, err
		}
		select {
		case s.trusts <- m.GetTrust():
		default:
			return nil, errors.New("test: too many Trust messages nobody read")
		}
	}
}

// connect opens a session for cert and sends its Hello.
func (h *harness) connect(ctx context.Context, cert *tls.Certificate, completed ...string) session {
	h.t.Helper()
	stream, err := agentv1.NewAgentClient(h.dial(cert)).Session(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	s := session{BidiStreamingClient: stream, trusts: make(chan *agentv1.Trust, 16)}
	err = s.Send(&agentv1.AgentMessage{Msg: &agentv1.AgentMessage_Hello{Hello: &agentv1.Hello{
		Hostname: "web1-renamed", AgentVersion: "1.1", CompletedCommands: completed,
	}}})
	// io.EOF: the server already ended the stream; Recv returns its status.
	if err != nil && !errors.Is(err, io.EOF) {
		h.t.Fatal(err)
	}
	return s
}

// recvCommand returns the ID of the next command on s.
func recvCommand(t *testing.T, s session) string {
	t.Helper()
	m, err := s.Recv()
	if err != nil {
		t.Fatalf("receive command: %v", err)
	}
	c := m.GetCommand()
	if c == nil {
		t.Fatalf("received %v, want a command", m)
	}
	if c.GetAudit() == nil {
		t.Fatalf("command %s has no audit kind", c.GetId())
	}
	return c.GetId()
}

func codeOf(err error) codes.Code { return status.Code(err) }

func TestEnroll(t *testing.T) {
	tests := []struct {
		name      string
		token     string // the token the agent presents
		expires   time.Duration
		uses      uint32
		badCSR    bool
		wantCode  codes.Code
		wantMsg   string
		wantNodes int
		wantUses  uint32
		wantLog   []string
	}{
		{name: "ok", token: "cairn_e_good", expires: 10 * time.Minute, uses: 2, wantCode: codes.OK, wantNodes: 1, wantUses: 1},
		{name: "unknown token", token: "cairn_e_other", expires: 10 * time.Minute, uses: 1, wantCode: codes.PermissionDenied, wantMsg: "enrollment token unknown", wantUses: 1},
		{name: "expired token", token: "cairn_e_good", expires: -time.Minute, uses: 1, wantCode: codes.PermissionDenied, wantMsg: "enrollment token expired at 2026-11-26T11:59:00Z; create a new one with cairnctl enroll-token create", wantUses: 1},
		{name: "used-up token", token: "cairn_e_good", expires: 10 * time.Minute, uses: 0, wantCode: codes.PermissionDenied, wantMsg: "enrollment token already used", wantUses: 0},
		{name: "bad CSR writes nothing", token: "cairn_e_good", expires: 10 * time.Minute, uses: 1, badCSR: true, wantCode: codes.InvalidArgument, wantMsg: "bad certificate request", wantUses: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 0)
			h.putToken("cairn_e_good", h.clock.Now().Add(tt.expires), tt.uses, map[string]string{"env": "prod", "role": "web"})
			_, csr := newCSR(t)
			if tt.badCSR {
				csr = csr[:len(csr)/2]
			}
			resp, err := agentv1.NewEnrollmentClient(h.dial(nil)).Enroll(context.Background(), &agentv1.EnrollRequest{
				Token: tt.token, CsrDer: csr, Hostname: "web1", AgentVersion: "1.0",
				Labels: map[string]string{"role": "api", "zone": "a"},
			})
			if got := codeOf(err); got != tt.wantCode {
				t.Fatalf("Enroll: code %v (%v), want %v", got, err, tt.wantCode)
			}
			if err != nil && !strings.Contains(status.Convert(err).Message(), tt.wantMsg) {
				t.Errorf("Enroll: message %q, want it to contain %q", status.Convert(err).Message(), tt.wantMsg)
			}

			var nodes []*controllerv1.NodeRecord
			var tok *controllerv1.EnrollTokenRecord
			h.st.View(context.Background(), func(tx store.Tx) error {
				nodes, _ = tx.Nodes()
				tok, _ = tx.EnrollToken(auth.HashToken("cairn_e_good"))
				return nil
			})
			if len(nodes) != tt.wantNodes {
				t.Fatalf("%d nodes stored, want %d", len(nodes), tt.wantNodes)
			}
			if tok.GetUsesLeft() != tt.wantUses {
				t.Errorf("token uses left %d, want %d", tok.GetUsesLeft(), tt.wantUses)
			}
			if tt.wantCode != codes.OK {
				if log := h.logActions(); len(log) != 0 {
					t.Errorf("audit log after a refusal: %v, want nothing", log)
				}
				return
			}

			cert, err := x509.ParseCertificate(resp.GetCertificateDer())
			if err != nil {
				t.Fatal(err)
			}
			id, err := pki.NodeID(cert)
			if err != nil {
				t.Fatal(err)
			}
			if id != resp.GetNodeId() || !strings.HasPrefix(id, "n-") || len(id) != 14 {
				t.Errorf("node ID %q, certificate names %q; want n- and 12 hex digits in both", resp.GetNodeId(), id)
			}
			k := h.keys.Keyring()
			if !bytes.Equal(resp.GetCaPem(), h.ca.CertPEM) || !bytes.Equal(resp.GetReleasePublicKey(), k.SigningKey().Public().(ed25519.PublicKey)) ||
				!proto.Equal(resp.GetTrust(), k.Trust(h.clock.Now())) {
				t.Errorf("response CA, release key or trust wrong")
			}
			want := &controllerv1.NodeRecord{
				Id:           id,
				Hostname:     "web1",
				Labels:       map[string]string{"env": "prod", "role": "api", "zone": "a"},
				AgentVersion: "1.0",
				State:        controllerv1.NodeRecord_STATE_DISCONNECTED,
				EnrolledAt:   "2026-11-26T12:00:00.000000000Z",
				LastSeen:     "2026-11-26T12:00:00.000000000Z",
				CertSerial:   pki.SerialHex(cert),
				CertNotAfter: cert.NotAfter.UTC().Format("2006-01-02T15:04:05.000000000Z"),
			}
			if diff := cmp.Diff(want, nodes[0], protocmp.Transform()); diff != "" {
				t.Errorf("node record (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"node.enroll node/" + id}, h.logActions()); diff != "" {
				t.Errorf("audit log (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSessionMarksConnectedThenDisconnected(t *testing.T) {
	h := newHarness(t, 0)
	id, cert := h.enroll("web1")
	h.clock.Add(time.Minute)
	s := h.connect(context.Background(), cert)
	eventually(t, "node connected", func() bool {
		return h.node(id).GetState() == controllerv1.NodeRecord_STATE_CONNECTED
	})
	n := h.node(id)
	if n.GetHostname() != "web1-renamed" || n.GetAgentVersion() != "1.1" || n.GetLastSeen() != "2026-11-26T12:01:00.000000000Z" {
		t.Errorf("connected node: hostname %q, version %q, last seen %q", n.GetHostname(), n.GetAgentVersion(), n.GetLastSeen())
	}
	if got := h.fleet.Connected(); got != 1 {
		t.Errorf("Connected() = %d, want 1", got)
	}

	h.clock.Add(time.Minute)
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != io.EOF {
		t.Errorf("after CloseSend: %v, want EOF", err)
	}
	eventually(t, "node disconnected", func() bool {
		return h.node(id).GetState() == controllerv1.NodeRecord_STATE_DISCONNECTED
	})
	if got := h.node(id).GetLastSeen(); got != "2026-11-26T12:02:00.000000000Z" {
		t.Errorf("last seen %q after disconnect", got)
	}
	if got := h.fleet.Connected(); got != 0 {
		t.Errorf("Connected() = %d after disconnect, want 0", got)
	}
}

func TestNewSessionReplacesOld(t *testing.T) {
	h := newHarness(t, 0)
	id, cert := h.enroll("web1")
	old := h.connect(context.Background(), cert)
	eventually(t, "first session", func() bool { return h.fleet.Connected() == 1 })
	h.connect(context.Background(), cert)
	_, err := old.Recv()
	if codeOf(err) != codes.Unavailable || !strings.Contains(err.Error(), "replaced") {
		t.Errorf("old session ended with %v, want Unavailable: replaced", err)
	}
	time.Sleep(50 * time.Millisecond) // let the old session's cleanup run
	if got := h.node(id).GetState(); got != controllerv1.NodeRecord_STATE_CONNECTED {
		t.Errorf("node state %v after replacement, want connected", got)
	}
	if got := h.fleet.Connected(); got != 1 {
		t.Errorf("Connected() = %d, want 1", got)
	}
}

func TestCommandDeliveryAndResults(t *testing.T) {
	h := newHarness(t, 0)
	id, cert := h.enroll("web1")
	h.putCommand(id, "cmd_1") // before the node connects
	s := h.connect(context.Background(), cert)
	if got := recvCommand(t, s); got != "cmd_1" {
		t.Fatalf("on connect got %s, want cmd_1", got)
	}

	h.putCommand(id, "cmd_2")
	h.fleet.Notify(id)
	if got := recvCommand(t, s); got != "cmd_2" {
		t.Fatalf("on Notify got %s, want cmd_2 (and cmd_1 not again)", got)
	}

	send := func(m *agentv1.AgentMessage) {
		t.Helper()
		if err := s.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	send(&agentv1.AgentMessage{Msg: &agentv1.AgentMessage_Ack{Ack: &agentv1.CommandAck{CommandId: "cmd_1"}}})
	eventually(t, "cmd_1 acknowledged", func() bool {
		return h.command("cmd_1").GetState() == controllerv1.CommandRecord_STATE_ACKNOWLEDGED
	})

	results := []*agentv1.CommandResult{
		{CommandId: "cmd_1", Ok: true, AuditId: "audit-1"},
		{CommandId: "cmd_2", Ok: false, Error: "collector os: permission denied"},
	}
	for _, r := range results {
		send(&agentv1.AgentMessage{Msg: &agentv1.AgentMessage_Result{Result: r}})
		m, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if got := m.GetResultAck().GetCommandId(); got != r.GetCommandId() {
			t.Errorf("ResultAck for %q, want %q", got, r.GetCommandId())
		}
	}
	type outcome struct{ State, Error, AuditID string }
	got := map[string]outcome{}
	for _, c := range []string{"cmd_1", "cmd_2"} {
		r := h.command(c)
		got[c] = outcome{r.GetState().String(), r.GetError(), r.GetAuditId()}
	}
	want := map[string]outcome{
		"cmd_1": {"STATE_SUCCEEDED", "", "audit-1"},
		"cmd_2": {"STATE_FAILED", "collector os: permission denied", ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("command outcomes (-want +got):\n%s", diff)
	}

	// A finished command is not delivered again, even on Notify.
	h.putCommand(id, "cmd_3")
	h.fleet.Notify(id)
	if got := recvCommand(t, s); got != "cmd_3" {
		t.Errorf("after results got %s, want cmd_3", got)
	}
}

func TestCompletedCommandIsNotResent(t *testing.T) {
	h := newHarness(t, 0)
	id, cert := h.enroll("web1")
	h.putCommand(id, "cmd_done")
	h.putCommand(id, "cmd_new")
	// The agent ran cmd_done before the controller stored its result.
	s := h.connect(context.Background(), cert, "cmd_done")
	if got := recvCommand(t, s); got != "cmd_new" {
		t.Fatalf("first command %s, want cmd_new (cmd_done is completed)", got)
	}
	err := s.Send(&agentv1.AgentMessage{Msg: &agentv1.AgentMessage_Result{Result: &agentv1.CommandResult{CommandId: "cmd_done", Ok: true, AuditId: "a1"}}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if m.GetResultAck().GetCommandId() != "cmd_done" {
		t.Fatalf("got %v, want the ResultAck for cmd_done", m)
	}
	if got := h.command("cmd_done").GetState(); got != controllerv1.CommandRecord_STATE_SUCCEEDED {
		t.Errorf("cmd_done state %v, want succeeded", got)
	}
}

// sealedAudit returns a small sealed audit document.
func sealedAudit(t *testing.T) (*inventoryv1.Audit, []byte) {
	t.Helper()
	ok := inventoryv1.CollectorStatus_STATE_OK
	a := &inventoryv1.Audit{
		SchemaVersion: audit.SchemaVersion,
		Header:        &inventoryv1.Header{AgentVersion: "1.0", Root: "/", CollectedAt: "2026-11-26T11:59:00Z"},
		Os:            &inventoryv1.OS{Hostname: "web1", Id: "debian", VersionId: "12"},
		Packages: &inventoryv1.Packages{Managers: []string{"dpkg"}, Packages: []*inventoryv1.Package{
			{Key: "dpkg/jq/amd64", Manager: "dpkg", Name: "jq", Version: "1.6-2.1", Architecture: "amd64"},
		}},
		Collectors: []*inventoryv1.CollectorStatus{
			{Name: "os", Section: "os", State: ok},
			{Name: "packages", Section: "packages", State: ok},
			{Name: "services", Section: "services", State: inventoryv1.CollectorStatus_STATE_ERROR, Message: "no systemd"},
		},
	}
	if err := audit.Seal(a); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := audit.WriteJSON(&buf, a); err != nil {
		t.Fatal(err)
	}
	return a, buf.Bytes()
}

// upload sends data in chunks of chunk bytes.
func upload(t *testing.T, c agentv1.AgentClient, commandID string, data []byte, chunk int) (*agentv1.UploadAuditResponse, error) {
	t.Helper()
	s, err := c.UploadAudit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(data); i += chunk {
		m := &agentv1.AuditChunk{Data: data[i:min(i+chunk, len(data))]}
		if i == 0 {
			m.CommandId = commandID
		}
		if err := s.Send(m); err != nil {
			break // the server ended the call; CloseAndRecv has its status
		}
	}
	return s.CloseAndRecv()
}

func TestUploadAudit(t *testing.T) {
	a, doc := sealedAudit(t)
	tampered := bytes.Replace(doc, []byte(`"1.6-2.1"`), []byte(`"1.7-1"`), 1)
	otherNode := proto.Clone(a).(*inventoryv1.Audit)
	otherNode.Header.NodeId = "n-someoneelse"
	if err := audit.Seal(otherNode); err != nil {
		t.Fatal(err)
	}
	var other bytes.Buffer
	if err := audit.WriteJSON(&other, otherNode); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		data     []byte
		wantCode codes.Code
		wantMsg  string
	}{
		{name: "stored", data: doc, wantCode: codes.OK},
		{name: "oversize refused", data: bytes.Repeat([]byte("x"), 80<<10), wantCode: codes.ResourceExhausted, wantMsg: "limit of 64 KiB (65536 bytes"},
		{name: "tampered refused", data: tampered, wantCode: codes.InvalidArgument, wantMsg: "section packages hashes to"},
		{name: "not an audit", data: []byte("{}"), wantCode: codes.InvalidArgument, wantMsg: "no schema_version"},
		{name: "another node's audit refused", data: other.Bytes(), wantCode: codes.PermissionDenied, wantMsg: "taken for node n-someoneelse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 64<<10)
			id, cert := h.enroll("web1")
			h.putCommand(id, "cmd_1")
			resp, err := upload(t, agentv1.NewAgentClient(h.dial(cert)), "cmd_1", tt.data, 1000)
			if got := codeOf(err); got != tt.wantCode {
				t.Fatalf("UploadAudit: %v, want code %v", err, tt.wantCode)
			}
			var audits []*controllerv1.AuditRecord
			h.st.View(context.Background(), func(tx store.Tx) error {
				audits, _ = tx.NodeAudits(id)
				return nil
			})
			if err != nil {
				if !strings.Contains(status.Convert(err).Message(), tt.wantMsg) {
					t.Errorf("message %q, want it to contain %q", status.Convert(err).Message(), tt.wantMsg)
				}
				if len(audits) != 0 {
					t.Errorf("%d audits stored after a refusal", len(audits))
				}
				return
			}
			canon, err := audit.Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetAuditId() != a.GetHashes().GetDocument() || resp.GetHeader().GetCollectedAt() != "2026-11-26T11:59:00Z" {
				t.Errorf("response %v", resp)
			}
			if len(audits) != 1 {
				t.Fatalf("%d audits stored, want 1", len(audits))
			}
			want := &controllerv1.AuditRecord{
				Id:               a.GetHashes().GetDocument(),
				NodeId:           id,
				Hostname:         "web1",
				CollectedAt:      "2026-11-26T11:59:00Z",
				StoredAt:         "2026-11-26T12:00:01.000000000Z",
				ContentHash:      a.GetHashes().GetContent(),
				SizeBytes:        int64(len(canon)),
				CommandId:        "cmd_1",
				FailedCollectors: []string{"services"},
				Blob:             audits[0].GetBlob(),
			}
			if diff := cmp.Diff(want, audits[0], protocmp.Transform()); diff != "" {
				t.Errorf("audit record (-want +got):\n%s", diff)
			}
			rc, err := h.blobs.Open(audits[0].GetBlob())
			if err != nil {
				t.Fatalf("blob %s: %v", audits[0].GetBlob(), err)
			}
			stored, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Equal(stored, canon) {
				t.Errorf("blob holds %d bytes, want the %d canonical bytes", len(stored), len(canon))
			}
			n := h.node(id)
			if n.GetLastAuditId() != want.Id || n.GetLastAuditAt() != want.CollectedAt {
				t.Errorf("node last audit %q at %q", n.GetLastAuditId(), n.GetLastAuditAt())
			}
		})
	}
}

func TestRenew(t *testing.T) {
	h := newHarness(t, 0)
	id, cert := h.enroll("web1")
	before := h.node(id).GetCertSerial()
	h.clock.Add(20 * 24 * time.Hour)
	_, csr := newCSR(t)
	resp, err := agentv1.NewAgentClient(h.dial(cert)).Renew(context.Background(), &agentv1.RenewRequest{CsrDer: csr})
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(resp.GetCertificateDer())
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := pki.NodeID(c); got != id {
		t.Errorf("renewed certificate names %q, want %q", got, id)
	}
	n := h.node(id)
	if n.GetCertSerial() != pki.SerialHex(c) || n.GetCertSerial() == before {
		t.Errorf("node cert serial %q, want the new %q", n.GetCertSerial(), pki.SerialHex(c))
	}
	if want := h.clock.Now().Add(pki.NodeValidity).UTC().Format("2006-01-02T15:04:05.000000000Z"); n.GetCertNotAfter() != want {
		t.Errorf("cert not after %q, want %q", n.GetCertNotAfter(), want)
	}
	if diff := cmp.Diff([]string{"node.enroll node/" + id, "node.renew node/" + id}, h.logActions()); diff != "" {
		t.Errorf("audit log (-want +got):\n%s", diff)
	}

	_, err = agentv1.NewAgentClient(h.dial(cert)).Renew(context.Background(), &agentv1.RenewRequest{CsrDer: []byte("junk")})
	if codeOf(err) != codes.InvalidArgument {
		t.Errorf("renew with a bad CSR: %v, want InvalidArgument", err)
	}
}

func TestRevokedNodeIsRefused(t *testing.T) {
	h := newHarness(t, 0)
	id, cert := h.enroll("web1")
	err := h.st.Update(context.Background(), func(tx store.Tx) error {
		n, err := tx.Node(id)
		if err != nil {
			return err
		}
		n.State = controllerv1.NodeRecord_STATE_REVOKED
		return tx.PutNode(n)
	})
	if err != nil {
		t.Fatal(err)
	}
	s := h.connect(context.Background(), cert)
	_, err = s.Recv()
	if codeOf(err) != codes.PermissionDenied || refusal.Of(err) != refusal.NodeRevoked {
		t.Errorf("revoked node's session: %v, want PermissionDenied with reason %s", err, refusal.NodeRevoked)
	}
}

// TestRevokeEndsLiveSession: revoking a connected node and notifying the
// fleet (as the operator API does) ends its session at once, without
// waiting for the periodic sweep.
func TestRevokeEndsLiveSession(t *testing.T) {
	h := newHarness(t, 0)
	id, cert := h.enroll("web1")
	s := h.connect(context.Background(), cert)
	eventually(t, "node connected", func() bool {
		return h.node(id).GetState() == controllerv1.NodeRecord_STATE_CONNECTED
	})
	err := h.st.Update(context.Background(), func(tx store.Tx) error {
		n, err := tx.Node(id)
		if err != nil {
			return err
		}
		n.State = controllerv1.NodeRecord_STATE_REVOKED
		return tx.PutNode(n)
	})
	if err != nil {
		t.Fatal(err)
	}
	h.fleet.Notify(id)
	done := make(chan error, 1)
	go func() {
		_, err := s.Recv()
		done <- err
	}()
	select {
	case err := <-done:
		if codeOf(err) != codes.PermissionDenied || refusal.Of(err) != refusal.NodeRevoked {
			t.Errorf("session of a node revoked while connected ended with %v, want PermissionDenied with reason %s", err, refusal.NodeRevoked)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the revoked node's session is still open 5 s after Notify")
	}
}

func TestRunMarksLostAndEndsSessions(t *testing.T) {
	h := newHarness(t, 0)
	lost, _ := h.enroll("lost")
	recent, _ := h.enroll("recent")
	live, cert := h.enroll("live")
	s := h.connect(context.Background(), cert)
	eventually(t, "live connected", func() bool {
		return h.node(live).GetState() == controllerv1.NodeRecord_STATE_CONNECTED
	})
	// "recent" was last seen 4 minutes ago, "lost" 6 minutes ago.
	err := h.st.Update(context.Background(), func(tx store.Tx) error {
		for id, seen := range map[string]time.Duration{lost: -6 * time.Minute, recent: -4 * time.Minute} {
			n, err := tx.Node(id)
			if err != nil {
				return err
			}
			n.LastSeen = h.clock.Now().Add(seen).UTC().Format(time.RFC3339Nano)
			if err := tx.PutNode(n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.fleet.Run(ctx) }()
	eventually(t, "node marked lost", func() bool {
		return h.node(lost).GetState() == controllerv1.NodeRecord_STATE_LOST
	})
	states := map[string]string{}
	for name, id := range map[string]string{"lost": lost, "recent": recent, "live": live} {
		states[name] = h.node(id).GetState().String()
	}
	want := map[string]string{"lost": "STATE_LOST", "recent": "STATE_DISCONNECTED", "live": "STATE_CONNECTED"}
	if diff := cmp.Diff(want, states); diff != "" {
		t.Errorf("states after a sweep (-want +got):\n%s", diff)
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if _, err := s.Recv(); codeOf(err) != codes.Unavailable {
		t.Errorf("session after Run stopped: %v, want Unavailable", err)
	}
}

func TestAgentMethodsNeedANodeCertificate(t *testing.T) {
	h := newHarness(t, 0)
	_, err := agentv1.NewAgentClient(h.dial(nil)).Renew(context.Background(), &agentv1.RenewRequest{})
	if c := codeOf(err); c != codes.Unauthenticated {
		t.Errorf("Renew without a certificate: %v, want Unauthenticated", err)
	}
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) {
		t.Errorf("not a status error: %v", err)
	}
}
