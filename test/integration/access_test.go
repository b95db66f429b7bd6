package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/internal/refusal"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// dial opens one gRPC connection to the controller, trusting its CA
// bundle, as cairnctl does; the connection lives until the test ends.
func (c *controller) dial(t *testing.T) *grpc.ClientConn {
	t.Helper()
	pemBytes, err := os.ReadFile(c.caPath())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("%s holds no certificate", c.caPath())
	}
	conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func withToken(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// TestAccessTakenAwayMidSession: on one live connection to the real
// controller, a user's call succeeds; the admin revokes the token (or
// disables the user) with cairnctl; the next call on the same connection
// is refused with the reason and who did it. Every change is in the audit
// log, and the last admin cannot be disabled.
func TestAccessTakenAwayMidSession(t *testing.T) {
	c := startController(t)
	conn := c.dial(t)
	nodes := controllerv1.NewNodesClient(conn)
	list := func(token string) error {
		_, err := nodes.ListNodes(withToken(t.Context(), token), &controllerv1.ListNodesRequest{})
		return err
	}
	refused := func(t *testing.T, err error, reason refusal.Reason, msg string) {
		t.Helper()
		if status.Code(err) != codes.Unauthenticated || refusal.Of(err) != reason || !strings.Contains(status.Convert(err).Message(), msg) {
			t.Errorf("call = %v (reason %q), want Unauthenticated with reason %s and a message containing %q", err, refusal.Of(err), reason, msg)
		}
	}

	t.Run("revoked token", func(t *testing.T) {
		token := c.createUser(t, "ops1", "operator")
		if err := list(token); err != nil {
			t.Fatalf("first call: %v", err)
		}
		var tokens controllerv1.ListTokensResponse
		c.ctlProtoAs(t, c.token, &tokens, "token", "list", "--user", "ops1")
		if len(tokens.GetTokens()) != 1 || tokens.GetTokens()[0].GetState() != controllerv1.APIToken_STATE_ACTIVE || tokens.GetTokens()[0].GetLastUsedAt() == "" {
			t.Fatalf("token list --user ops1 = %v, want one active token, used", tokens.GetTokens())
		}
		id := tokens.GetTokens()[0].GetId()
		c.mustCtl(t, "token", "revoke", id)
		refused(t, list(token), refusal.TokenRevoked, "token "+id+" was revoked by user:admin at ")
		r := c.ctlAs(t, token, "node", "list")
		if r.code != 3 || !strings.Contains(r.stderr, "was revoked by user:admin") || strings.Contains(r.stderr, "check --token") {
			t.Errorf("cairnctl with a revoked token: exit %d, stderr %q; want 3 saying who revoked it", r.code, r.stderr)
		}
	})

	t.Run("disabled user", func(t *testing.T) {
		token := c.createUser(t, "ops2", "operator")
		if err := list(token); err != nil {
			t.Fatalf("first call: %v", err)
		}
		c.mustCtl(t, "user", "disable", "ops2")
		refused(t, list(token), refusal.UserDisabled, "user ops2 was disabled by user:admin at ")
		c.mustCtl(t, "user", "enable", "ops2")
		if err := list(token); err != nil {
			t.Errorf("after user enable: %v", err)
		}
		c.mustCtl(t, "user", "disable", "ops2", "--revoke-tokens")
		c.mustCtl(t, "user", "enable", "ops2")
		refused(t, list(token), refusal.TokenRevoked, "was revoked by user:admin")
	})

	t.Run("roles changed", func(t *testing.T) {
		token := c.createUser(t, "aud1", "auditor")
		if _, err := controllerv1.NewAuditLogClient(conn).Verify(withToken(t.Context(), token), &controllerv1.VerifyRequest{}); err != nil {
			t.Fatalf("auditor verifies the log: %v", err)
		}
		c.mustCtl(t, "user", "set-roles", "aud1", "tester")
		_, err := controllerv1.NewAuditLogClient(conn).Verify(withToken(t.Context(), token), &controllerv1.VerifyRequest{})
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("after set-roles tester, Verify = %v, want PermissionDenied", err)
		}
	})

	t.Run("last admin", func(t *testing.T) {
		r := c.ctl(t, "user", "disable", "admin")
		if r.code != 1 || !strings.Contains(r.stderr, "this would leave no enabled user with the admin role") {
			t.Errorf("disable the last admin: exit %d, stderr %q", r.code, r.stderr)
		}
		r = c.ctl(t, "user", "set-roles", "admin", "auditor")
		if r.code != 1 || !strings.Contains(r.stderr, "this would leave no enabled user with the admin role") {
			t.Errorf("take admin from the last admin: exit %d, stderr %q", r.code, r.stderr)
		}
	})

	var got []string
	for _, e := range c.auditEntries(t) {
		switch e.Action {
		case "token.revoke", "user.disable", "user.enable", "user.set-roles":
			got = append(got, e.Action+" "+e.Object+" by "+e.Actor)
		}
	}
	want := []string{
		"token.revoke token/", "user.disable user/ops2 by user:admin", "user.enable user/ops2 by user:admin",
		"user.disable user/ops2 by user:admin", "token.revoke token/", "user.enable user/ops2 by user:admin",
		"user.set-roles user/aud1 by user:admin",
	}
	if len(got) != len(want) {
		t.Fatalf("audit log access entries:\n%s\nwant %d like:\n%s", strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("audit log access entry %d = %q, want %q...", i, got[i], want[i])
		}
	}
	c.mustCtl(t, "auditlog", "verify")
}
