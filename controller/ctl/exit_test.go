package ctl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/internal/refusal"
)

func TestExitStatus(t *testing.T) {
	const addr = "ctl:7443"
	tests := []struct {
		name     string
		err      error
		ran      bool
		tlsErr   error
		wantCode int
		wantMsg  string
	}{
		{"ok", nil, true, nil, ExitOK, ""},
		{"usage error", usageErrorf("--ttl 48h: too long"), true, nil, ExitUsage, "--ttl 48h: too long"},
		{"no CA", usageError(ErrNoCA), true, nil, ExitUsage, "no CA: pass --ca or set CAIRN_CA to the controller's ca.pem"},
		{"failed", failedf("audit log broken at entry 3"), true, nil, ExitFailed, "audit log broken at entry 3"},
		{"unauthenticated", rpcErr("list nodes", status.Error(codes.Unauthenticated, "unknown token")), true, nil, ExitDenied, "list nodes: unknown token: check --token / CAIRN_TOKEN"},
		{"permission denied", rpcErr("revoke node web1", status.Error(codes.PermissionDenied, "needs role operator")), true, nil, ExitDenied, "revoke node web1: needs role operator (refused; see 'cairnctl whoami' for your user and roles)"},
		{"invalid argument", rpcErr("create user bob", status.Error(codes.InvalidArgument, `unknown role "root"`)), true, nil, ExitUsage, `create user bob: unknown role "root"`},
		{"unavailable", rpcErr("list nodes", status.Error(codes.Unavailable, "connection refused")), true, nil, ExitFailed, "cannot reach controller at ctl:7443: is cairn-controller serve running? (connection refused)"},
		{"unavailable tls", rpcErr("list nodes", status.Error(codes.Unavailable, "connection error: desc = \"transport: authentication handshake failed: tls: failed to verify certificate\"")), true,
			&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, ExitFailed,
			"TLS handshake with controller at ctl:7443 failed: is --ca / CAIRN_CA the controller's ca.pem, and does its certificate name this address? (tls: failed to verify certificate: x509: certificate signed by unknown authority)"},
		{"unavailable, x509 only in the text", rpcErr("list nodes", status.Error(codes.Unavailable, "x509: certificate signed by unknown authority")), true, nil, ExitFailed, "list nodes: x509: certificate signed by unknown authority"},
		{"unavailable, handshake broken off", rpcErr("list nodes", status.Error(codes.Unavailable, "connection error: desc = \"transport: authentication handshake failed: EOF\"")), true,
			io.EOF, ExitFailed, "TLS handshake with controller at ctl:7443 failed: is it a cairn-controller? (EOF)"},
		{"revoked token", rpcErr("list nodes", refusal.Errorf(codes.Unauthenticated, refusal.TokenRevoked, "token tok_1 was revoked by user:admin at 2026-01-02T03:04:05Z: ask an admin for a new one")), true, nil, ExitDenied,
			"list nodes: token tok_1 was revoked by user:admin at 2026-01-02T03:04:05Z: ask an admin for a new one"},
		{"disabled user", rpcErr("list nodes", refusal.Errorf(codes.Unauthenticated, refusal.UserDisabled, "user bob was disabled by user:admin at 2026-01-02T03:04:05Z: ask an admin to enable it again")), true, nil, ExitDenied,
			"list nodes: user bob was disabled by user:admin at 2026-01-02T03:04:05Z: ask an admin to enable it again"},
		{"unknown token", rpcErr("list nodes", refusal.Errorf(codes.Unauthenticated, refusal.TokenUnknown, "invalid token: it is unknown to this controller")), true, nil, ExitDenied,
			"list nodes: invalid token: it is unknown to this controller: check --token / CAIRN_TOKEN"},
		{"unavailable from the controller", rpcErr("rollout list", status.Error(codes.Unavailable, "rollouts are not enabled on this controller")), true, nil, ExitFailed, "rollout list: rollouts are not enabled on this controller"},
		{"deadline", rpcErr("drift", status.Error(codes.DeadlineExceeded, "context deadline exceeded")), true, nil, ExitFailed, "drift: the controller did not answer in time: raise --timeout or check the controller (context deadline exceeded)"},
		{"not found", rpcErr("show node x", status.Error(codes.NotFound, `node "x" not found`)), true, nil, ExitFailed, `show node x: node "x" not found`},
		{"internal", rpcErr("export", status.Error(codes.Internal, "store closed")), true, nil, ExitFailed, "export: store closed"},
		{"bare status", fmt.Errorf("wrapped: %w", status.Error(codes.PermissionDenied, "no")), true, nil, ExitDenied, "no (refused; see 'cairnctl whoami' for your user and roles)"},
		{"cobra error before run", errors.New(`unknown command "nodes" for "cairnctl"` + "\n\nDid you mean this?\n\tnode\n"), false, nil, ExitUsage, `unknown command "nodes" for "cairnctl": did you mean node?`},
		{"plain error in run", errors.New("write table: broken pipe"), true, nil, ExitFailed, "write table: broken pipe"},
		{"interrupted", fmt.Errorf("wait: %w", context.Canceled), true, nil, ExitFailed, "interrupted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, msg := exitStatus(tt.err, tt.ran, addr, tt.tlsErr)
			if code != tt.wantCode || msg != tt.wantMsg {
				t.Errorf("got (%d, %q), want (%d, %q)", code, msg, tt.wantCode, tt.wantMsg)
			}
		})
	}
}
