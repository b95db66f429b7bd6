package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/cairn-ops/cairn/controller/api"
	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/controller/blob"
	"github.com/cairn-ops/cairn/controller/dml"
	"github.com/cairn-ops/cairn/controller/fleet"
	"github.com/cairn-ops/cairn/controller/keyring"
	"github.com/cairn-ops/cairn/controller/notify"
	"github.com/cairn-ops/cairn/controller/release"
	"github.com/cairn-ops/cairn/controller/report"
	"github.com/cairn-ops/cairn/controller/rollout"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/version"
)

// Server limits and timings.
const (
	// maxRecvMsgSize bounds one message from an agent or an operator (an
	// audit or an artifact arrives in chunks of at most 1 MiB; a manifest
	// is at most 1 MiB). A larger message is refused with
	// ResourceExhausted before it is read whole.
	maxRecvMsgSize = 4 << 20
	// keepaliveTime is how long the server waits on an idle connection
	// before pinging the agent, and keepaliveTimeout how long it waits for
	// the answer.
	keepaliveTime    = 2 * time.Minute
	keepaliveTimeout = 20 * time.Second
	// stopTimeout bounds a graceful stop; then connections are closed.
	stopTimeout  = 10 * time.Second
	storeTimeout = 2 * time.Second
)

// Server is a running cairn-controller: listeners bound, store open.
type Server struct {
	cfg       Config
	log       *slog.Logger
	st        *store.Bolt
	fleet     *fleet.Fleet
	lib       *dml.DML
	rollouts  *rollout.Engine
	notifier  *notify.Notifier
	grpc      *grpc.Server
	health    *health.Server
	lis       net.Listener
	metrics   *http.Server
	metricLis net.Listener
	// keys are the CAs and release keys, reloaded when a rotation
	// (cairn-controller rotate) changes them.
	keys *keyring.Live
}

// NewServer loads the data directory's keys, opens the store and blobs
// and binds the listeners. Run serves; a Server that is never run must be
// closed with Close.
func NewServer(cfg Config, log *slog.Logger) (*Server, error) {
	l := layout(cfg.DataDir)
	if _, err := os.Stat(l.path(StoreFile)); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no %s; run 'cairn-controller init --data-dir %s' first", ErrNotInitialized, cfg.DataDir, StoreFile, cfg.DataDir)
	}
	keys, err := keyring.Open(cfg.DataDir, time.Now())
	if err != nil {
		return nil, fmt.Errorf("load keys: %w", err)
	}
	blobs, err := blob.Open(l.path(BlobDir))
	if err != nil {
		return nil, fmt.Errorf("open blobs: %w", err)
	}
	st, err := store.OpenBolt(l.path(StoreFile), store.BoltOptions{Timeout: storeTimeout})
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, st: st, keys: keys}
	if err := s.build(blobs); err != nil {
		st.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) build(blobs *blob.Store) error {
	cfg := s.cfg
	now := time.Now
	counter := newRPCCounter()
	authn := auth.New(s.st, now, s.keys)
	s.grpc = grpc.NewServer(
		// The server certificate and the CAs node certificates are
		// verified with follow the keyring, which rotations change.
		grpc.Creds(credentials.NewTLS(s.keys.TLSConfig(now))),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: cfg.KeepaliveMinTime, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: keepaliveTime, Timeout: keepaliveTimeout}),
		grpc.MaxRecvMsgSize(maxRecvMsgSize),
		grpc.ChainUnaryInterceptor(counter.unary, authn.Unary()),
		grpc.ChainStreamInterceptor(counter.stream, authn.Stream()),
	)
	s.fleet = fleet.New(fleet.Config{
		Store:         s.st,
		Blobs:         blobs,
		Keys:          s.keys,
		Now:           now,
		Logger:        s.log.With("component", "fleet"),
		MaxAuditBytes: cfg.MaxAuditBytes,
		LostAfter:     cfg.LostAfter,
	})
	s.fleet.Register(s.grpc)
	lib, err := dml.New(s.st, blobs, dml.Options{MaxBytes: cfg.MaxArtifactBytes, Sessions: cfg.UploadLimits(), Now: now,
		Logger: s.log.With("component", "dml")})
	if err != nil {
		return err
	}
	s.lib = lib
	if kept, removed := lib.Recovered(); kept > 0 || removed > 0 {
		s.log.Info("upload sessions recovered", "kept", kept, "files_removed", removed)
	}
	rm := newRolloutMetrics()
	s.notifier = notify.New(notify.Config{Hooks: cfg.NotifyHooks(), Logger: s.log.With("component", "notify"), Now: now})
	s.rollouts = rollout.New(rollout.Config{
		Store:       s.st,
		Blobs:       blobs,
		DML:         lib,
		Fleet:       s.fleet,
		ReleaseKeys: s.keys,
		Notifier:    s.notifier,
		Metrics:     rm,
		Now:         now,
		Logger:      s.log.With("component", "rollout"),
		// A node in flight is unreachable when the fleet marks it lost,
		// unless a rollout says otherwise (its lost_after).
		LostAfter: cfg.LostAfter,
	})
	s.fleet.SetEvents(s.rollouts)
	api.Register(s.grpc, api.Deps{
		Rollouts:           s.rollouts,
		Reports:            report.New(report.Config{Store: s.st, Now: now}),
		Store:              s.st,
		Blobs:              blobs,
		DML:                lib,
		ArtifactReferenced: release.Referenced,
		ReleaseKeys:        s.keys,
		Dispatcher:         s.fleet,
		Now:                now,
		Logger:             s.log.With("component", "api"),
	})
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)

	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	s.lis = lis
	if cfg.MetricsListen != "" {
		mlis, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			lis.Close()
			return fmt.Errorf("metrics listen on %s: %w", cfg.MetricsListen, err)
		}
		s.metricLis = mlis
		m := &metrics{fleet: s.fleet, st: s.st, rpc: counter, rollouts: rm, uploads: lib}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /metrics", m.serveMetrics)
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, "ok\n")
		})
		s.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	}
	return nil
}

// keyReloadEvery is how often a running controller looks whether a
// rotation changed keys.json (a stat; the file is read when it changed).
const keyReloadEvery = time.Second

// watchKeys reloads the keyring when a rotation changed it, until ctx
// ends: the audit log records the rotation, and every connected agent is
// sent the new trust. A keys.json that does not load leaves the keyring
// in use; the error is logged when it first appears.
func (s *Server) watchKeys(ctx context.Context) {
	t := time.NewTicker(keyReloadEvery)
	defer t.Stop()
	var failing string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		changed, err := s.keys.Reload(now)
		if changed {
			if rerr := keyring.Record(ctx, s.st, s.keys.Keyring(), now); rerr != nil && err == nil {
				err = rerr
			}
			s.fleet.TrustChanged()
			k := s.keys.Keyring()
			s.log.Info("keys reloaded", "generation", k.Generation, "cas", len(k.CAs), "release_keys", len(k.ReleaseKeys))
		}
		switch {
		case err != nil && err.Error() != failing:
			failing = err.Error()
			s.log.Error("keys not reloaded; the keys in use stay", "err", err)
		case err == nil:
			failing = ""
		}
	}
}

// Addr is the gRPC listener's address.
func (s *Server) Addr() net.Addr { return s.lis.Addr() }

// MetricsAddr is the metrics listener's address, or nil when metrics are off.
func (s *Server) MetricsAddr() net.Addr {
	if s.metricLis == nil {
		return nil
	}
	return s.metricLis.Addr()
}

// Run serves until ctx ends, then stops gracefully (in-flight calls get
// stopTimeout to finish; agent sessions are closed at once) and closes
// the store.
func (s *Server) Run(ctx context.Context) error {
	defer s.st.Close()
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.log.Info("cairn-controller serving", "listen", s.lis.Addr().String(), "data_dir", s.cfg.DataDir,
		"metrics_listen", addrString(s.MetricsAddr()), "version", version.String())

	// Rotations run while the store is this controller's: the audit log
	// gets them when their keyring is loaded. A keys.json older than what
	// the log holds is refused: it would trust retired keys again.
	if err := keyring.Record(ctx, s.st, s.keys.Keyring(), time.Now()); err != nil {
		return fmt.Errorf("record key rotations: %w", err)
	}
	fleetCtx, stopFleet := context.WithCancel(ctx)
	defer stopFleet()
	fleetDone := make(chan error, 1)
	go func() { fleetDone <- s.fleet.Run(fleetCtx) }()
	// The rollout engine resumes the rollouts the store says are in
	// flight; webhooks are delivered until the controller stops.
	engineCtx, stopEngine := context.WithCancel(ctx)
	defer stopEngine()
	engineDone := make(chan error, 1)
	go func() { engineDone <- s.rollouts.Run(engineCtx) }()
	notifyDone := make(chan error, 1)
	go func() { notifyDone <- s.notifier.Run(engineCtx) }()
	// Idle upload sessions are discarded while the controller runs.
	uploadsDone := make(chan error, 1)
	go func() { uploadsDone <- s.lib.Run(engineCtx) }()
	// Rotations change the keyring under a running controller.
	keysDone := make(chan struct{})
	go func() { defer close(keysDone); s.watchKeys(engineCtx) }()

	errc := make(chan error, 2)
	go func() {
		if err := s.grpc.Serve(s.lis); err != nil {
			errc <- fmt.Errorf("grpc: %w", err)
		}
	}()
	if s.metrics != nil {
		go func() {
			if err := s.metrics.Serve(s.metricLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("metrics: %w", err)
			}
		}()
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	case err := <-engineDone:
		runErr = fmt.Errorf("rollout engine: %w", err)
		engineDone <- nil
	}
	s.log.Info("cairn-controller stopping")
	s.health.Shutdown()
	stopEngine()
	<-engineDone
	<-notifyDone
	<-uploadsDone
	<-keysDone
	stopFleet() // ends agent sessions, which would hold a graceful stop
	<-fleetDone
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(stopTimeout):
		s.log.Warn("graceful stop timed out; closing connections", "timeout", stopTimeout)
		s.grpc.Stop()
		<-stopped
	}
	if s.metrics != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
		s.metrics.Shutdown(sctx)
		cancel()
	}
	s.log.Info("cairn-controller stopped")
	return runErr
}

// Close releases a Server that was never run.
func (s *Server) Close() error {
	s.lis.Close()
	if s.metricLis != nil {
		s.metricLis.Close()
	}
	return s.st.Close()
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// NewLogger returns the daemon's logger for cfg, writing to w.
func NewLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: logLevels[cfg.LogLevel]}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
