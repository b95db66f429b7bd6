package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-ops/cairn/agent/inventory"
	"github.com/cairn-ops/cairn/internal/audit"
	"github.com/cairn-ops/cairn/internal/pki"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// Timing of the simulated agents, as the real agent's.
var (
	agentKeepalive = keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}
	backoffBase    = 200 * time.Millisecond
	backoffCap     = 5 * time.Second
)

const agentVersion = "bench-fleet"

// counters are what the simulated fleet tells the benchmark.
type counters struct {
	// live is the number of sessions open now (Hello sent).
	live atomic.Int64
	// opened counts sessions opened.
	opened atomic.Int64
	// lastOpened is when the latest session opened, in Unix nanoseconds.
	lastOpened atomic.Int64
	// resultsAcked counts results the controller acknowledged, once per
	// command.
	resultsAcked atomic.Int64
	// uploadErrors counts UploadAudit calls that failed.
	uploadErrors atomic.Int64
	// sessionErrors counts sessions that ended or failed to open.
	sessionErrors atomic.Int64
	// deploys counts deploy commands run (each ID once), and
	// fetchedBytes the artifact bytes they fetched.
	deploys      atomic.Int64
	fetchedBytes atomic.Int64

	mu sync.Mutex
	// failed holds the agents that gave up: the controller refused them.
	failed map[string]error
	// lastErrors keeps a few session errors by message, for the report.
	lastErrors map[string]int
}

func newCounters() *counters {
	return &counters{failed: map[string]error{}, lastErrors: map[string]int{}}
}

func (c *counters) sessionError(err error) {
	c.sessionErrors.Add(1)
	msg := status.Convert(err).Message()
	if len(msg) > 120 {
		msg = msg[:120] + "…"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.lastErrors[msg]; ok || len(c.lastErrors) < 20 {
		c.lastErrors[msg]++
	}
}

func (c *counters) fail(host string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failed[host] = err
}

func (c *counters) failures() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.failed)
}

// simAgent is one simulated agent with its own identity.
type simAgent struct {
	hostname string
	addr     string
	roots    *x509.CertPool
	cert     tls.Certificate
	nodeID   string
	// audit is the sealed audit document this agent uploads, unless fix
	// is set: then its audits are fix's documents of its state.
	audit []byte
	fix   *fixture
	state string
	c     *counters

	// Used only by the goroutine running run.
	done  map[string]*agentv1.CommandResult // results by command ID
	acked map[string]bool
}

// enroll creates the agent's key and CSR and enrolls it with token, on
// its own connection, as cairn-agent does on first start.
func enroll(ctx context.Context, addr string, roots *x509.CertPool, token, hostname string, c *counters) (*simAgent, error) {
	key, err := pki.NewKey()
	if err != nil {
		return nil, err
	}
	csr, err := pki.NewCSR(key, hostname)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS12, RootCAs: roots, ServerName: "127.0.0.1",
	})))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	resp, err := agentv1.NewEnrollmentClient(conn).Enroll(ctx, &agentv1.EnrollRequest{
		Token: token, CsrDer: csr, Hostname: hostname, AgentVersion: agentVersion,
	})
	if err != nil {
		return nil, fmt.Errorf("enroll %s: %w", hostname, err)
	}
	leaf, err := x509.ParseCertificate(resp.GetCertificateDer())
	if err != nil {
		return nil, fmt.Errorf("enroll %s: node certificate: %w", hostname, err)
	}
	return &simAgent{
		hostname: hostname,
		addr:     addr,
		roots:    roots,
		cert:     tls.Certificate{Certificate: [][]byte{resp.GetCertificateDer()}, PrivateKey: key, Leaf: leaf},
		nodeID:   resp.GetNodeId(),
		c:        c,
		done:     map[string]*agentv1.CommandResult{},
		acked:    map[string]bool{},
	}, nil
}

// run holds the agent's session until ctx ends, reconnecting with
// exponential backoff and full jitter. It gives up only when the
// controller refuses the node.
func (a *simAgent) run(ctx context.Context) {
	attempt := 0
	for {
		opened, err := a.session(ctx)
		if ctx.Err() != nil {
			return
		}
		a.c.sessionError(err)
		switch status.Code(err) {
		case codes.PermissionDenied, codes.Unauthenticated:
			a.c.fail(a.hostname, err)
			return
		}
		if opened {
			attempt = 0
		}
		step := min(backoffCap, backoffBase<<min(attempt, 16))
		attempt++
		t := time.NewTimer(time.Duration(rand.Int64N(int64(step)) + 1))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// session runs one session on a new connection. opened reports whether
// the Hello went out.
func (a *simAgent) session(ctx context.Context) (opened bool, err error) {
	conn, err := grpc.NewClient(a.addr,
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
			MinVersion: tls.VersionTLS12, RootCAs: a.roots, ServerName: "127.0.0.1",
			Certificates: []tls.Certificate{a.cert},
		})),
		grpc.WithKeepaliveParams(agentKeepalive),
	)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	client := agentv1.NewAgentClient(conn)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.Session(ctx)
	if err != nil {
		return false, err
	}
	completed := make([]string, 0, len(a.done))
	for id := range a.done {
		completed = append(completed, id)
	}
	hello := &agentv1.Hello{Hostname: a.hostname, AgentVersion: agentVersion, CompletedCommands: completed}
	if err := stream.Send(&agentv1.AgentMessage{Msg: &agentv1.AgentMessage_Hello{Hello: hello}}); err != nil {
		return false, recvError(stream, err)
	}
	a.c.live.Add(1)
	a.c.opened.Add(1)
	a.c.lastOpened.Store(time.Now().UnixNano())
	defer a.c.live.Add(-1)
	// Results the controller has not acknowledged yet go out again.
	for id, r := range a.done {
		if !a.acked[id] {
			if err := stream.Send(&agentv1.AgentMessage{Msg: &agentv1.AgentMessage_Result{Result: r}}); err != nil {
				return true, recvError(stream, err)
			}
		}
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return true, err
		}
		switch m := msg.GetMsg().(type) {
		case *agentv1.ControllerMessage_Command:
			if err := a.handle(ctx, client, stream, m.Command); err != nil {
				return true, err
			}
		case *agentv1.ControllerMessage_ResultAck:
			id := m.ResultAck.GetCommandId()
			if _, ours := a.done[id]; ours && !a.acked[id] {
				a.acked[id] = true
				a.c.resultsAcked.Add(1)
			}
		}
	}
}

// handle acknowledges a command and, for a command it has not run
// before, runs it (an audit: uploads the agent's audit; a deploy: see
// deploy) and reports the result.
func (a *simAgent) handle(ctx context.Context, client agentv1.AgentClient, stream agentv1.Agent_SessionClient, cmd *agentv1.Command) error {
	id := cmd.GetId()
	if err := stream.Send(&agentv1.AgentMessage{Msg: &agentv1.AgentMessage_Ack{Ack: &agentv1.CommandAck{CommandId: id}}}); err != nil {
		return recvError(stream, err)
	}
	r, ok := a.done[id]
	if !ok {
		r = &agentv1.CommandResult{CommandId: id}
		switch cmd.GetKind().(type) {
		case *agentv1.Command_Audit:
			auditID, err := a.upload(ctx, client, id, cmd.GetAudit())
			if err != nil {
				a.c.uploadErrors.Add(1)
				switch status.Code(err) {
				case codes.Unavailable, codes.Canceled, codes.DeadlineExceeded, codes.Aborted:
					return err // the command comes again on the next session
				}
				r.Error = "upload audit: " + status.Convert(err).Message()
			} else {
				r.Ok, r.AuditId = true, auditID
			}
		case *agentv1.Command_Deploy:
			dr, err := a.deploy(ctx, client, cmd.GetDeploy())
			if err != nil {
				return err
			}
			r = dr
			r.CommandId = id
			a.c.deploys.Add(1)
		default:
			r.Error = "unsupported command"
		}
		a.done[id] = r
	}
	if err := stream.Send(&agentv1.AgentMessage{Msg: &agentv1.AgentMessage_Result{Result: r}}); err != nil {
		return recvError(stream, err)
	}
	return nil
}

// upload sends the agent's audit in one chunk.
func (a *simAgent) upload(ctx context.Context, client agentv1.AgentClient, commandID string, cmd *agentv1.AuditCommand) (string, error) {
	doc, err := a.auditFor(ctx, cmd)
	if err != nil {
		return "", err
	}
	up, err := client.UploadAudit(ctx)
	if err != nil {
		return "", err
	}
	if err := up.Send(&agentv1.AuditChunk{CommandId: commandID, Data: doc}); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	resp, err := up.CloseAndRecv()
	if err != nil {
		return "", err
	}
	return resp.GetAuditId(), nil
}

// recvError returns the status that ended a stream when Send reports only
// io.EOF.
func recvError(stream agentv1.Agent_SessionClient, err error) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	for {
		if _, rerr := stream.Recv(); rerr != nil {
			return rerr
		}
	}
}

// baseAudit takes one small audit of the debian-a software fixture
// (collectors os and packages). Each agent uploads a copy bearing its own
// hostname, resealed: the controller keys audits by their document hash
// and refuses one node's upload of another node's document.
func baseAudit(ctx context.Context, root string) (*inventoryv1.Audit, error) {
	doc, err := inventory.Collect(ctx, inventory.Options{
		Root:         root + "/agent/collector/testdata/sw/debian-a",
		Collectors:   []string{"os", "packages"},
		AgentVersion: agentVersion,
	})
	if err != nil {
		return nil, fmt.Errorf("take the benchmark audit: %w", err)
	}
	if failed := audit.Failed(doc); len(failed) > 0 {
		return nil, fmt.Errorf("take the benchmark audit: collectors failed: %v", failed)
	}
	return doc, nil
}

// auditFor returns base as hostname's sealed audit document.
func auditFor(base *inventoryv1.Audit, hostname string) ([]byte, error) {
	doc := proto.Clone(base).(*inventoryv1.Audit)
	if doc.Os == nil {
		doc.Os = &inventoryv1.OS{}
	}
	doc.Os.Hostname = hostname
	if err := audit.Seal(doc); err != nil {
		return nil, err
	}
	return audit.Marshal(doc)
}
