package ctl

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestExitStatus(t *testing.T) {
	const addr = "ctl:7443"
	tests := []struct {
		name     string
		err      error
		ran      bool
		wantCode int
		wantMsg  string
	}{
		{"ok", nil, true, ExitOK, ""},
		{"usage error", usageErrorf("--ttl 48h: too long"), true, ExitUsage, "--ttl 48h: too long"},
		{"no CA", usageError(ErrNoCA), true, ExitUsage, "no CA: pass --ca or set CAIRN_CA to the controller's ca.pem"},
		{"failed", failedf("audit log broken at entry 3"), true, ExitFailed, "audit log broken at entry 3"},
		{"unauthenticated", rpcErr("list nodes", status.Error(codes.Unauthenticated, "unknown token")), true, ExitDenied, "list nodes: unknown token: check --token / CAIRN_TOKEN"},
		{"permission denied", rpcErr("revoke node web1", status.Error(codes.PermissionDenied, "needs role operator")), true, ExitDenied, "revoke node web1: needs role operator (refused; see 'cairnctl whoami' for your user and roles)"},
		{"invalid argument", rpcErr("create user bob", status.Error(codes.InvalidArgument, `unknown role "root"`)), true, ExitUsage, `create user bob: unknown role "root"`},
		{"unavailable", rpcErr("list nodes", status.Error(codes.Unavailable, "connection refused")), true, ExitFailed, "cannot reach controller at ctl:7443: is cairn-controller serve running? (connection refused)"},
		{"unavailable tls", rpcErr("list nodes", status.Error(codes.Unavailable, "x509: certificate signed by unknown authority")), true, ExitFailed, "TLS handshake with controller at ctl:7443 failed: is --ca / CAIRN_CA the controller's ca.pem, and does its certificate name this address? (x509: certificate signed by unknown authority)"},
		{"unavailable from the controller", rpcErr("rollout list", status.Error(codes.Unavailable, "rollouts are not enabled on this controller")), true, ExitFailed, "rollout list: rollouts are not enabled on this controller"},
		{"deadline", rpcErr("drift", status.Error(codes.DeadlineExceeded, "context deadline exceeded")), true, ExitFailed, "drift: the controller did not answer in time: raise --timeout or check the controller (context deadline exceeded)"},
		{"not found", rpcErr("show node x", status.Error(codes.NotFound, `node "x" not found`)), true, ExitFailed, `show node x: node "x" not found`},
		{"internal", rpcErr("export", status.Error(codes.Internal, "store closed")), true, ExitFailed, "export: store closed"},
		{"bare status", fmt.Errorf("wrapped: %w", status.Error(codes.PermissionDenied, "no")), true, ExitDenied, "no (refused; see 'cairnctl whoami' for your user and roles)"},
		{"cobra error before run", errors.New(`unknown command "nodes" for "cairnctl"` + "\n\nDid you mean this?\n\tnode\n"), false, ExitUsage, `unknown command "nodes" for "cairnctl": did you mean node?`},
		{"plain error in run", errors.New("write table: broken pipe"), true, ExitFailed, "write table: broken pipe"},
		{"interrupted", fmt.Errorf("wait: %w", context.Canceled), true, ExitFailed, "interrupted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, msg := exitStatus(tt.err, tt.ran, addr)
			if code != tt.wantCode || msg != tt.wantMsg {
				t.Errorf("got (%d, %q), want (%d, %q)", code, msg, tt.wantCode, tt.wantMsg)
			}
		})
	}
}
