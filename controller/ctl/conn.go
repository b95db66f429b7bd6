package ctl

import (
	"context"
	"crypto/tls"
	"crypto/x509"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/cairn-ops/cairn/internal/handshake"
	"github.com/cairn-ops/cairn/internal/pki"
	"github.com/cairn-ops/cairn/internal/readlimit"
)

// bearer presents an operator's token on every call as
// "authorization: Bearer <token>". It is only ever sent over TLS.
type bearer string

var _ credentials.PerRPCCredentials = bearer("")

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return true }

// maxRecvMsgBytes bounds one answer from the controller. grpc-go's default
// (4 MiB) is too small for what cairnctl asks for: a whole audit (the
// controller keeps audits up to its max_audit_bytes, 64 MiB of JSON by
// default, less as protobuf), the report of a large rollout, a CMS export.
// The controller is the party cairnctl has verified and trusts.
const maxRecvMsgBytes = 256 << 20

// dial makes a client connection to the controller in cfg. grpc.NewClient
// connects lazily: an unreachable controller shows up as Unavailable on
// the first call, and the returned credentials keep the error of the TLS
// handshake, which tells an untrusted controller from an unreachable one.
func dial(cfg Config) (*grpc.ClientConn, *handshake.Credentials, error) {
	if cfg.CA == "" {
		return nil, nil, usageError(ErrNoCA)
	}
	// Stream: a CA is often given as a process substitution <(...).
	pemBytes, err := readlimit.Stream(cfg.CA, "CA certificate", pki.MaxPEMBytes)
	if err != nil {
		return nil, nil, usageErrorf("%v: pass --ca or set CAIRN_CA to the controller's ca.pem", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, nil, usageErrorf("CA %s holds no PEM certificate: pass the controller's ca.pem", cfg.CA)
	}
	creds := handshake.Wrap(credentials.NewTLS(&tls.Config{
		RootCAs:    pool,
		MinVersion: tls.VersionTLS12,
	}))
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvMsgBytes)),
	}
	if cfg.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(cfg.Token)))
	}
	cc, err := grpc.NewClient(cfg.Controller, opts...)
	if err != nil {
		return nil, nil, usageErrorf("controller address %q: %v: give HOST:PORT", cfg.Controller, err)
	}
	return cc, creds, nil
}

// conn returns the connection to the controller, dialing it on first use.
func (a *app) conn() (*grpc.ClientConn, error) {
	if a.cc == nil {
		cc, creds, err := dial(a.cfg)
		if err != nil {
			return nil, err
		}
		a.cc, a.tls = cc, creds
	}
	return a.cc, nil
}

// client returns the connection to the controller (dialled once) and a
// context for one call, bounded by --timeout; every command's call to the
// controller starts here.
func (a *app) client(ctx context.Context) (*grpc.ClientConn, context.Context, context.CancelFunc, error) {
	cc, err := a.conn()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := a.callCtx(ctx)
	return cc, ctx, cancel, nil
}

// callCtx bounds one call to the controller by --timeout.
func (a *app) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, a.cfg.Timeout)
}
