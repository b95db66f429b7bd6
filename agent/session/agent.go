package session

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/agent/apply"
	"github.com/cairn-ops/cairn/agent/inventory"
	"github.com/cairn-ops/cairn/internal/handshake"
	"github.com/cairn-ops/cairn/internal/pki"
	"github.com/cairn-ops/cairn/internal/readlimit"
	"github.com/cairn-ops/cairn/internal/refusal"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// Defaults for Config fields left zero.
const (
	DefaultReconnectMax  = 60 * time.Second
	defaultReconnectBase = 500 * time.Millisecond
	// defaultStableAfter is how long a session must last for the next
	// reconnect to start the backoff from the beginning.
	defaultStableAfter = 30 * time.Second
	// defaultRenewCheck is how often a session checks whether the node
	// certificate is due for renewal.
	defaultRenewCheck = time.Hour
	// DefaultChunkSize is the size of UploadAudit chunks.
	DefaultChunkSize = 1 << 20
	// maxRecvMsgBytes bounds one message from the controller, as
	// grpc-go's default does, stated here because it is a limit the
	// controller must keep: a deploy command carries a manifest (at most
	// 1 MiB) and its signed bundle (at most 4 MiB, in practice the
	// manifest's canonical JSON), an artifact chunk is 1 MiB.
	maxRecvMsgBytes = 4 << 20
)

// DefaultKeepalive is the agent's keepalive: a ping every 30 s when the
// connection is idle, even without an open stream. The controller's
// enforcement policy must permit it.
var DefaultKeepalive = keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}

// Config is what an Agent needs besides its identity.
type Config struct {
	DataDir string
	// Controller overrides the address recorded at enrollment.
	Controller string
	// Root is the directory audits run against; "" means "/".
	Root string
	// Timeout bounds each collector of an audit.
	Timeout      time.Duration
	Hostname     string
	AgentVersion string
	// ReconnectMax caps the reconnect backoff.
	ReconnectMax time.Duration
	Logger       *slog.Logger

	// ReconnectBase is the first backoff step (default 500ms).
	ReconnectBase time.Duration
	// StableAfter is how long a session must last to reset the backoff
	// (default 30s).
	StableAfter time.Duration
	// RenewCheck is how often a session checks the certificate's age
	// (default 1h). It is also checked when each session starts.
	RenewCheck time.Duration
	// Keepalive replaces DefaultKeepalive.
	Keepalive *keepalive.ClientParameters
	// ChunkSize replaces DefaultChunkSize.
	ChunkSize int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the backoff's random source; nil means math/rand/v2.
	Rand func(n int64) int64
	// Collect replaces inventory.Collect, for tests.
	Collect func(context.Context, inventory.Options) (*inventoryv1.Audit, error)
	// Plugins starts the step plugins of deploy commands, which run
	// under Root with the journal in DataDir. Without it the agent
	// answers deploy commands with a failure.
	Plugins apply.Host
}

// Agent holds the node's session with the controller.
type Agent struct {
	cfg  Config
	log  *slog.Logger
	id   *Identity
	addr string
	host string
	// root is Root made absolute: a deployment's ID depends on it.
	root string
	// journal is the agent's database: the step journal, the completed
	// commands and the outbox.
	journal *journalHandle
	cache   *artifactCache
	// migrateStop, in tests, is called at each point of the migration of
	// state.json (migrateRead, …).
	migrateStop func(point string)

	mu    sync.Mutex
	creds *Credentials
	trust *Trust
	// rotated is set when a new trust names another CA than the one that
	// issued the node's certificate: the next renewal check renews at
	// once, so the node holds a certificate of the new CA before the old
	// one retires.
	rotated bool
}

// New loads the identity and credentials from cfg.DataDir. It returns
// ErrNotEnrolled when the agent has no identity yet.
func New(cfg Config) (*Agent, error) {
	id, err := LoadIdentity(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	creds, err := LoadCredentials(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	trust, err := LoadTrust(cfg.DataDir, id)
	if err != nil {
		return nil, err
	}
	if cfg.Controller == "" {
		cfg.Controller = id.Controller
	}
	host, err := hostOf(cfg.Controller)
	if err != nil {
		return nil, err
	}
	cfg.ReconnectMax = orDefault(cfg.ReconnectMax, DefaultReconnectMax)
	cfg.ReconnectBase = orDefault(cfg.ReconnectBase, defaultReconnectBase)
	cfg.StableAfter = orDefault(cfg.StableAfter, defaultStableAfter)
	cfg.RenewCheck = orDefault(cfg.RenewCheck, defaultRenewCheck)
	if cfg.Keepalive == nil {
		cfg.Keepalive = &DefaultKeepalive
	}
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Collect == nil {
		cfg.Collect = inventory.Collect
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Hostname == "" {
		cfg.Hostname = Hostname(cfg.Root)
	}
	root := cfg.Root
	if root == "" {
		root = "/"
	}
	if root, err = filepath.Abs(root); err != nil {
		return nil, fmt.Errorf("root %s: %w", cfg.Root, err)
	}
	log := cfg.Logger.With("node", id.NodeID)
	return &Agent{
		cfg:     cfg,
		log:     log,
		id:      id,
		addr:    cfg.Controller,
		host:    host,
		creds:   creds,
		trust:   trust,
		root:    root,
		journal: &journalHandle{dataDir: cfg.DataDir, log: log},
		cache:   newArtifactCache(cfg.DataDir, log),
	}, nil
}

// Identity returns the agent's identity.
func (a *Agent) Identity() *Identity { return a.id }

// Run holds a session with the controller until ctx ends, reconnecting
// with backoff. It returns nil when ctx ends, and an error wrapping
// ErrRevoked or ErrRefused when the controller refuses the node: retrying
// would not help. First it moves an older agent's state.json into the
// journal; when it cannot, it returns that error before connecting.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.migrateState(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	a.recoverJournal(ctx)
	bo := &Backoff{Base: a.cfg.ReconnectBase, Cap: a.cfg.ReconnectMax, Rand: a.cfg.Rand}
	quiet := false // a failure to connect was logged; log the next ones at debug
	for {
		start := time.Now()
		opened, err := a.session(ctx)
		if ctx.Err() != nil {
			a.log.Info("session closed", "reason", "agent stopping")
			return nil
		}
		if errors.Is(err, errRenewed) {
			a.log.Info("reconnecting with the renewed certificate")
			bo.Reset()
			continue
		}
		if errors.Is(err, ErrRevoked) || errors.Is(err, ErrRefused) {
			return err
		}
		if opened {
			quiet = false
			if time.Since(start) > a.cfg.StableAfter {
				bo.Reset()
			}
		}
		d := bo.Next()
		switch {
		case opened:
			a.log.Warn("disconnected from controller", "controller", a.addr, "reason", reason(err), "retry_in", d.Round(time.Millisecond))
		case !quiet:
			a.log.Warn("cannot reach controller", "controller", a.addr, "reason", reason(err), "retry_in", d.Round(time.Millisecond))
			quiet = true
		default:
			a.log.Debug("cannot reach controller", "controller", a.addr, "reason", reason(err), "retry_in", d.Round(time.Millisecond))
		}
		if !sleep(ctx, d) {
			a.log.Info("session closed", "reason", "agent stopping")
			return nil
		}
	}
}

// errRenewed ends a session after the certificate was renewed, so the
// next one presents the new certificate.
var errRenewed = errors.New("certificate renewed")

// session runs one session. opened reports whether the stream was
// established (Hello sent), as opposed to a failure to connect.
func (a *Agent) session(ctx context.Context) (opened bool, err error) {
	tlsConf := clientTLS(a.trustNow().Pool(a.cfg.Now()), a.host, func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &a.credsNow().Cert, nil
	})
	creds := handshake.Wrap(credentials.NewTLS(tlsConf))
	conn, err := grpc.NewClient(a.addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(*a.cfg.Keepalive),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvMsgBytes)),
	)
	if err != nil {
		return false, fmt.Errorf("controller address %q: %w", a.addr, err)
	}
	defer conn.Close()
	client := newClient(conn)

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.agent.Session(sctx)
	if err != nil {
		return false, a.connectError(err, creds)
	}
	out := &sender{stream: stream, sent: map[string]bool{}}
	if err := out.hello(a.cfg.Hostname, a.cfg.AgentVersion, a.recent(sctx)); err != nil {
		return false, a.connectError(streamError(stream, err), creds)
	}
	a.log.Info("session opened", "controller", a.addr)
	if err := a.drainOutbox(sctx, out); err != nil {
		return true, classify(streamError(stream, err))
	}

	l := &link{client: client, out: out, waits: newConfirmations(), trusted: make(chan struct{}, 1)}
	commands := make(chan *agentv1.Command, 64)
	worked := make(chan error, 1)
	received := make(chan error, 1)
	idle := make(chan struct{}) // closed when the worker stops taking commands
	go func() {
		defer close(idle)
		worked <- a.work(ctx, sctx, l, commands)
	}()
	go func() { received <- a.receive(sctx, stream, l, commands, idle) }()
	select {
	case err = <-received:
		cancel()
		<-worked
	case err = <-worked:
		if errors.Is(err, io.EOF) {
			// The controller ended the stream; Recv returns its status.
			err = <-received
			cancel()
			break
		}
		cancel()
		<-received
	}
	return true, classify(err)
}

// connectError is the error of a session that did not open: a refusal
// (classify), or, when the controller's certificate did not verify
// against the CAs the agent trusts, ErrUntrusted saying so. The agent
// keeps trying either way but a refusal; an untrusted controller may be
// one whose CA was rotated while the agent was away.
func (a *Agent) connectError(err error, creds *handshake.Credentials) error {
	if bad := handshake.Untrusted(creds.Err()); bad != nil {
		return fmt.Errorf("%w: %v: if the controller's CA was rotated while this agent was not connected, enroll it again", ErrUntrusted, bad)
	}
	return classify(err)
}

// streamError returns the status that ended a stream when Send reports
// only io.EOF.
func streamError(stream agentv1.Agent_SessionClient, err error) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	for {
		if _, rerr := stream.Recv(); rerr != nil {
			return rerr
		}
	}
}

// classify turns a session's gRPC error into a permanent error when the
// controller refused the node, and otherwise leaves it as it is. It
// decides on the refusal's reason (internal/refusal), never on the
// message's text: a revoked node is ErrRevoked, any other refusal of the
// node's identity ErrRefused.
func classify(err error) error {
	if err == nil || errors.Is(err, errRenewed) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch refusal.Of(err) {
	case refusal.NodeRevoked:
		return fmt.Errorf("%w: %s: enroll again with a new token after removing %s", ErrRevoked, st.Message(), IdentityFile)
	case refusal.NodeUnknown, refusal.CertificateRetired:
		return fmt.Errorf("%w: %s: enroll again with a new token after removing %s", ErrRefused, st.Message(), IdentityFile)
	}
	switch st.Code() {
	case codes.PermissionDenied, codes.Unauthenticated:
		return fmt.Errorf("%w: %s", ErrRefused, st.Message())
	}
	return err
}

// reason is a disconnect's cause in a few words.
func reason(err error) string {
	if err == nil {
		return "closed by the controller"
	}
	if errors.Is(err, io.EOF) {
		return "closed by the controller"
	}
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}

func (a *Agent) credsNow() *Credentials {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.creds
}

func (a *Agent) setCreds(c *Credentials) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.creds = c
}

func (a *Agent) trustNow() *Trust {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.trust
}

// updateTrust takes what the controller sent to trust: checked, then
// saved (atomically) before it is used. A trust that changes nothing is
// not written. When the node's certificate is from another CA than the
// one that issues certificates now, the next renewal check renews it.
func (a *Agent) updateTrust(m *agentv1.Trust) error {
	t, err := trustFromProto(m)
	if err != nil {
		return fmt.Errorf("the controller sent a trust the agent refuses: %w", err)
	}
	if t.Equal(a.trustNow()) {
		return nil
	}
	if err := saveTrust(a.cfg.DataDir, t); err != nil {
		return err
	}
	renew := a.credsNow().Leaf.CheckSignatureFrom(t.Issuing()) != nil
	a.mu.Lock()
	a.trust, a.rotated = t, renew
	a.mu.Unlock()
	a.log.Info("controller trust updated", "cas", len(t.CAs), "release_keys", len(t.ReleaseKeys),
		"issuing_ca", pki.SerialHex(t.Issuing()), "renew_certificate", renew)
	return nil
}

// clientTLS is the agent's TLS configuration: the controller verified
// against roots under serverName; getCert presents the node certificate
// (nil for enrollment, which has none yet).
func clientTLS(roots *x509.CertPool, serverName string, getCert func(*tls.CertificateRequestInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS12,
		RootCAs:              roots,
		ServerName:           serverName,
		GetClientCertificate: getCert,
	}
}

// hostOf returns the host part of a host:port address, for TLS
// verification.
func hostOf(addr string) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("controller address %q: want host:port: %w", addr, err)
	}
	return host, nil
}

// maxHostnameBytes bounds etc/hostname under a root (a name is at most
// 253 bytes).
const maxHostnameBytes = 4 << 10

// Hostname is the name of the host the agent audits: the tree's
// etc/hostname under a root other than "/", else the running host's name.
func Hostname(root string) string {
	if root != "" && root != "/" {
		if b, err := readlimit.File(filepath.Join(root, "etc", "hostname"), "", maxHostnameBytes); err == nil {
			if h := strings.TrimSpace(string(b)); h != "" {
				return h
			}
		}
	}
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// sleep waits for d; it returns false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
