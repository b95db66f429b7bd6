package auth_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/controller/auth/authtest"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/pki"
	"github.com/cairn-ops/cairn/internal/refusal"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

func TestNewToken(t *testing.T) {
	seen := map[string]bool{}
	for _, kind := range []string{auth.TokenUser, auth.TokenEnroll, auth.TokenUser} {
		tok, err := auth.NewToken(kind)
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^cairn_` + kind + `_[a-z2-7]{52}$`).MatchString(tok) {
			t.Errorf("NewToken(%q) = %q, want cairn_%s_ and 52 lowercase base32 characters", kind, tok, kind)
		}
		if seen[tok] {
			t.Errorf("NewToken returned %q twice", tok)
		}
		seen[tok] = true
	}
	for _, kind := range []string{"", "U", "u_x"} {
		if _, err := auth.NewToken(kind); err == nil {
			t.Errorf("NewToken(%q) succeeded, want an error", kind)
		}
	}
}

func TestHashToken(t *testing.T) {
	// sha256("abc")
	const want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := auth.HashToken("abc"); got != want {
		t.Errorf("HashToken(abc) = %s, want %s", got, want)
	}
}

// echoUsers answers WhoAmI with the principal the interceptor set.
type echoUsers struct {
	controllerv1.UnimplementedUsersServer
}

func (echoUsers) WhoAmI(ctx context.Context, _ *controllerv1.WhoAmIRequest) (*controllerv1.UserRecord, error) {
	p, _ := auth.FromContext(ctx)
	return &controllerv1.UserRecord{Name: p.User, Roles: p.Roles}, nil
}

func (echoUsers) CreateUser(ctx context.Context, _ *controllerv1.CreateUserRequest) (*controllerv1.UserRecord, error) {
	p, _ := auth.FromContext(ctx)
	return &controllerv1.UserRecord{Name: p.User, Roles: p.Roles}, nil
}

// echoAgent answers Renew and Session with the node ID the interceptor set.
type echoAgent struct {
	agentv1.UnimplementedAgentServer
}

func (echoAgent) Renew(ctx context.Context, _ *agentv1.RenewRequest) (*agentv1.RenewResponse, error) {
	p, _ := auth.FromContext(ctx)
	return &agentv1.RenewResponse{CertificateDer: []byte(p.NodeID)}, nil
}

func (echoAgent) Session(s grpc.BidiStreamingServer[agentv1.AgentMessage, agentv1.ControllerMessage]) error {
	p, _ := auth.FromContext(s.Context())
	return s.Send(&agentv1.ControllerMessage{Msg: &agentv1.ControllerMessage_ResultAck{ResultAck: &agentv1.ResultAck{CommandId: p.NodeID}}})
}

type fixture struct {
	srv    *authtest.Server
	tokens map[string]string
	certs  map[string]*tls.Certificate
}

func setup(t *testing.T) *fixture {
	t.Helper()
	st := store.NewMemory()
	srv := authtest.Start(t, st, func(s *grpc.Server) {
		controllerv1.RegisterUsersServer(s, echoUsers{})
		agentv1.RegisterAgentServer(s, echoAgent{})
		grpc_health_v1.RegisterHealthServer(s, health.NewServer())
	})
	f := &fixture{srv: srv, tokens: map[string]string{}, certs: map[string]*tls.Certificate{}}
	f.tokens["admin"] = authtest.AddUser(t, st, "ada", auth.RoleAdmin)
	f.tokens["auditor"] = authtest.AddUser(t, st, "aud", auth.RoleAuditor, auth.RoleTester)
	f.tokens["noroles"] = authtest.AddUser(t, st, "nobody")
	f.tokens["disabled"] = authtest.AddUser(t, st, "gone", auth.RoleAdmin)
	f.tokens["expired"] = authtest.AddUser(t, st, "old", auth.RoleAdmin)
	f.tokens["orphan"] = authtest.AddUser(t, st, "orphan", auth.RoleAdmin)
	f.tokens["revoked"] = authtest.AddUser(t, st, "rev", auth.RoleAdmin)
	f.tokens["unknown"] = "cairn_u_notatoken"
	err := st.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.PutUser(&controllerv1.UserRecord{Name: "gone", Roles: []string{auth.RoleAdmin}, Disabled: true,
			DisabledBy: "user:ada", DisabledAt: "2026-01-02T03:04:05Z"}); err != nil {
			return err
		}
		if err := tx.PutAPIToken(&controllerv1.APITokenRecord{Id: "tok_rev", User: "rev", TokenHash: auth.HashToken(f.tokens["revoked"]),
			RevokedBy: "user:ada", RevokedAt: "2026-01-02T03:04:05Z"}); err != nil {
			return err
		}
		if err := tx.PutAPIToken(&controllerv1.APITokenRecord{Id: "tok_old", User: "old", TokenHash: auth.HashToken(f.tokens["expired"]),
			ExpiresAt: time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)}); err != nil {
			return err
		}
		return tx.PutAPIToken(&controllerv1.APITokenRecord{Id: "tok_orphan", User: "deleted-user", TokenHash: auth.HashToken(f.tokens["orphan"])})
	})
	if err != nil {
		t.Fatal(err)
	}
	authtest.AddNode(t, st, &controllerv1.NodeRecord{Id: "n-ok", State: controllerv1.NodeRecord_STATE_CONNECTED})
	authtest.AddNode(t, st, &controllerv1.NodeRecord{Id: "n-revoked", State: controllerv1.NodeRecord_STATE_REVOKED})
	for _, id := range []string{"n-ok", "n-revoked", "n-unknown"} {
		f.certs[id] = srv.NodeCert(t, id)
	}
	// A certificate from another CA is refused by TLS itself.
	other := authtest.Start(t, store.NewMemory(), func(*grpc.Server) {})
	f.certs["foreign"] = other.NodeCert(t, "n-ok")
	return f
}

// TestUserAuthentication calls a role-restricted (CreateUser: admin) and
// an any-user (WhoAmI) method with each kind of credential.
func TestUserAuthentication(t *testing.T) {
	f := setup(t)
	tests := []struct {
		name   string
		method string
		header string // the authorization header; "" sends none
		cert   string
		want   *controllerv1.UserRecord
		code   codes.Code
		msg    string
		reason refusal.Reason
	}{
		{name: "admin", method: "whoami", header: "Bearer " + f.tokens["admin"], want: &controllerv1.UserRecord{Name: "ada", Roles: []string{"admin"}}},
		{name: "admin scheme is case-insensitive", method: "whoami", header: "bearer " + f.tokens["admin"], want: &controllerv1.UserRecord{Name: "ada", Roles: []string{"admin"}}},
		{name: "admin may create users", method: "create", header: "Bearer " + f.tokens["admin"], want: &controllerv1.UserRecord{Name: "ada", Roles: []string{"admin"}}},
		{name: "user without roles may ask who it is", method: "whoami", header: "Bearer " + f.tokens["noroles"], want: &controllerv1.UserRecord{Name: "nobody"}},
		{name: "user without roles", method: "create", header: "Bearer " + f.tokens["noroles"], code: codes.PermissionDenied, msg: "user nobody (no roles) needs one of admin for Users/CreateUser"},
		{name: "auditor", method: "create", header: "Bearer " + f.tokens["auditor"], code: codes.PermissionDenied, msg: "user aud (roles auditor,tester) needs one of admin for Users/CreateUser"},
		{name: "no token", method: "whoami", code: codes.Unauthenticated, msg: "missing bearer token: set --token or CAIRN_TOKEN", reason: refusal.TokenMissing},
		{name: "node certificate is no user", method: "whoami", cert: "n-ok", code: codes.Unauthenticated, msg: "missing bearer token: set --token or CAIRN_TOKEN", reason: refusal.TokenMissing},
		{name: "not bearer", method: "whoami", header: "Basic " + f.tokens["admin"], code: codes.Unauthenticated, msg: `malformed authorization header: want "Bearer <token>"`, reason: refusal.TokenMissing},
		{name: "empty bearer", method: "whoami", header: "Bearer ", code: codes.Unauthenticated, msg: `malformed authorization header: want "Bearer <token>"`, reason: refusal.TokenMissing},
		{name: "unknown token", method: "whoami", header: "Bearer " + f.tokens["unknown"], code: codes.Unauthenticated, msg: "invalid token: it is unknown to this controller", reason: refusal.TokenUnknown},
		{name: "expired token", method: "whoami", header: "Bearer " + f.tokens["expired"], code: codes.Unauthenticated, msg: "token tok_old expired at", reason: refusal.TokenExpired},
		{name: "revoked token", method: "whoami", header: "Bearer " + f.tokens["revoked"], code: codes.Unauthenticated, msg: "token tok_rev was revoked by user:ada at 2026-01-02T03:04:05Z", reason: refusal.TokenRevoked},
		{name: "disabled user", method: "whoami", header: "Bearer " + f.tokens["disabled"], code: codes.Unauthenticated, msg: "user gone was disabled by user:ada at 2026-01-02T03:04:05Z", reason: refusal.UserDisabled},
		{name: "deleted user", method: "whoami", header: "Bearer " + f.tokens["orphan"], code: codes.Unauthenticated, msg: "the token's user deleted-user no longer exists", reason: refusal.UserUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := f.srv.Dial(t, f.certs[tt.cert])
			ctx := context.Background()
			if tt.header != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", tt.header)
			}
			c := controllerv1.NewUsersClient(conn)
			var got *controllerv1.UserRecord
			var err error
			if tt.method == "create" {
				got, err = c.CreateUser(ctx, &controllerv1.CreateUserRequest{})
			} else {
				got, err = c.WhoAmI(ctx, &controllerv1.WhoAmIRequest{})
			}
			checkStatus(t, err, tt.code, tt.msg)
			if got := refusal.Of(err); got != tt.reason {
				t.Errorf("reason = %q, want %q", got, tt.reason)
			}
			if tt.want != nil {
				if diff := cmp.Diff(tt.want.String(), got.String()); diff != "" {
					t.Errorf("principal (-want +got):\n%s", diff)
				}
			}
		})
	}
	// Tokens never appear in errors.
	_, err := controllerv1.NewUsersClient(f.srv.Dial(t, nil)).WhoAmI(authtest.WithToken(context.Background(), f.tokens["unknown"]), &controllerv1.WhoAmIRequest{})
	if strings.Contains(err.Error(), f.tokens["unknown"]) {
		t.Errorf("error %q echoes the token", err)
	}
}

// TestNodeAuthentication calls node methods, unary and streaming.
func TestNodeAuthentication(t *testing.T) {
	f := setup(t)
	tests := []struct {
		name   string
		cert   string
		token  string
		code   codes.Code
		msg    string
		reason refusal.Reason
	}{
		{name: "enrolled node", cert: "n-ok"},
		{name: "revoked node", cert: "n-revoked", code: codes.PermissionDenied, msg: "node n-revoked is revoked", reason: refusal.NodeRevoked},
		{name: "unknown node", cert: "n-unknown", code: codes.Unauthenticated, msg: "node n-unknown is not enrolled with this controller", reason: refusal.NodeUnknown},
		{name: "no certificate", code: codes.Unauthenticated, msg: "a node client certificate signed by the controller's CA is required"},
		{name: "admin token is no node", token: "admin", code: codes.PermissionDenied, msg: "only agents may call this method"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := f.srv.Dial(t, f.certs[tt.cert])
			ctx := context.Background()
			if tt.token != "" {
				ctx = authtest.WithToken(ctx, f.tokens[tt.token])
			}
			c := agentv1.NewAgentClient(conn)
			resp, err := c.Renew(ctx, &agentv1.RenewRequest{})
			checkStatus(t, err, tt.code, tt.msg)
			if got := refusal.Of(err); got != tt.reason {
				t.Errorf("Renew: reason = %q, want %q", got, tt.reason)
			}
			if err == nil && string(resp.GetCertificateDer()) != tt.cert {
				t.Errorf("Renew saw node %q, want %q", resp.GetCertificateDer(), tt.cert)
			}
			stream, err := c.Session(ctx)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := stream.Recv()
			checkStatus(t, err, tt.code, tt.msg)
			if got := refusal.Of(err); got != tt.reason {
				t.Errorf("Session: reason = %q, want %q", got, tt.reason)
			}
			if err == nil && msg.GetResultAck().GetCommandId() != tt.cert {
				t.Errorf("Session saw node %q, want %q", msg.GetResultAck().GetCommandId(), tt.cert)
			}
		})
	}
	t.Run("certificate from another CA", func(t *testing.T) {
		_, err := agentv1.NewAgentClient(f.srv.Dial(t, f.certs["foreign"])).Renew(context.Background(), &agentv1.RenewRequest{})
		if status.Code(err) != codes.Unavailable {
			t.Errorf("Renew with a foreign certificate: %v, want the TLS handshake to fail (Unavailable)", err)
		}
	})
}

func TestOpenMethods(t *testing.T) {
	f := setup(t)
	c := grpc_health_v1.NewHealthClient(f.srv.Dial(t, nil))
	if _, err := c.Check(context.Background(), &grpc_health_v1.HealthCheckRequest{}); err != nil {
		t.Errorf("Health/Check without credentials: %v", err)
	}
	w, err := c.Watch(context.Background(), &grpc_health_v1.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); err != nil {
		t.Errorf("Health/Watch without credentials: %v", err)
	}
	_, err = c.List(context.Background(), &grpc_health_v1.HealthListRequest{})
	checkStatus(t, err, codes.Unauthenticated, "missing bearer token")
}

func TestUnknownMethodRefused(t *testing.T) {
	a := auth.New(store.NewMemory(), nil, nil)
	_, err := a.Authorize(context.Background(), "/cairn.controller.v1.Nodes/DropEverything")
	checkStatus(t, err, codes.PermissionDenied, "method not in the authorization table")
}

// TestRules checks the table's own consistency: every rule allows exactly
// one kind of caller and names only known roles.
func TestRules(t *testing.T) {
	for method, r := range auth.Rules {
		kinds := 0
		for _, b := range []bool{r.Open, r.Node, r.AnyUser, len(r.Roles) > 0} {
			if b {
				kinds++
			}
		}
		if kinds != 1 {
			t.Errorf("%s: rule %+v allows %d kinds of caller, want exactly 1", method, r, kinds)
		}
		for _, role := range r.Roles {
			if !auth.ValidRole(role) {
				t.Errorf("%s: unknown role %q", method, role)
			}
		}
	}
}

func checkStatus(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	if got := status.Code(err); got != code {
		t.Fatalf("code = %v (%v), want %v", got, err, code)
	}
	if msg != "" && !strings.Contains(status.Convert(err).Message(), msg) {
		t.Errorf("message = %q, want it to contain %q", status.Convert(err).Message(), msg)
	}
}

// TestActor: an actor string names the token's issuers when other users
// could hold it, and ParseActor reads it back.
func TestActor(t *testing.T) {
	for _, tc := range []struct {
		p           auth.Principal
		actor, user string
		issuers     []string
	}{
		{auth.Principal{User: "ap2"}, "user:ap2", "ap2", nil},
		{auth.Principal{User: "ap2", Issuers: []string{"admin1"}}, "user:ap2 (token issued by admin1)", "ap2", []string{"admin1"}},
		{auth.Principal{User: "ap3", Issuers: []string{"admin9", "admin1", "root"}}, "user:ap3 (token issued by admin9 via admin1 via root)", "ap3", []string{"admin9", "admin1", "root"}},
		{auth.Principal{NodeID: "n1"}, "node:n1", "", nil},
		{auth.Principal{}, "anonymous", "", nil},
	} {
		if got := tc.p.Actor(); got != tc.actor {
			t.Errorf("Actor() = %q, want %q", got, tc.actor)
		}
		user, issuers := auth.ParseActor(tc.actor)
		if user != tc.user || !slices.Equal(issuers, tc.issuers) {
			t.Errorf("ParseActor(%q) = %q, %q; want %q, %q", tc.actor, user, issuers, tc.user, tc.issuers)
		}
	}
}

// TestLastUsed: a token's use is noted to the minute, and written at most
// once a minute.
func TestLastUsed(t *testing.T) {
	st := store.NewMemory()
	token := authtest.AddUser(t, st, "ada", auth.RoleAdmin)
	clock := time.Date(2026, 1, 2, 12, 0, 10, 0, time.UTC)
	a := auth.New(st, func() time.Time { return clock }, nil)
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+token))
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 1, 2, 12, 0, 10, 0, time.UTC), "2026-01-02T12:00:00.000000000Z"},
		{time.Date(2026, 1, 2, 12, 0, 59, 0, time.UTC), "2026-01-02T12:00:00.000000000Z"},
		{time.Date(2026, 1, 2, 12, 1, 0, 0, time.UTC), "2026-01-02T12:01:00.000000000Z"},
		// A clock that went back does not move the note back.
		{time.Date(2026, 1, 2, 11, 0, 0, 0, time.UTC), "2026-01-02T12:01:00.000000000Z"},
	} {
		clock = tc.at
		if _, err := a.Authorize(ctx, controllerv1.Users_WhoAmI_FullMethodName); err != nil {
			t.Fatal(err)
		}
		var got string
		err := st.View(context.Background(), func(tx store.Tx) error {
			rec, err := tx.APIToken(auth.HashToken(token))
			got = rec.GetLastUsedAt()
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("after a call at %s: last_used_at = %q, want %q", tc.at.Format(time.RFC3339), got, tc.want)
		}
	}
}

// retiredCAs retires one CA at a time.
type retiredCAs struct {
	ca *x509.Certificate
	at time.Time
}

func (r retiredCAs) Retired(ca *x509.Certificate, now time.Time) (time.Time, bool) {
	if !ca.Equal(r.ca) {
		return time.Time{}, false
	}
	return r.at, !now.Before(r.at)
}

// TestRetiredCA: after a CA rotation's overlap, a node certificate of the
// old CA is refused with the reason refusal.CertificateRetired, naming the
// CA and when it retired; during the overlap it is accepted.
func TestRetiredCA(t *testing.T) {
	st := store.NewMemory()
	authtest.AddNode(t, st, &controllerv1.NodeRecord{Id: "n-ok", State: controllerv1.NodeRecord_STATE_CONNECTED})
	srv := authtest.Start(t, st, func(*grpc.Server) {})
	cert := srv.NodeCert(t, "n-ok")
	ctx := peer.NewContext(context.Background(), &peer.Peer{AuthInfo: credentials.TLSInfo{State: tls.ConnectionState{
		VerifiedChains: [][]*x509.Certificate{{cert.Leaf, srv.CA.Cert}},
	}}})
	retires := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		now  time.Time
		code codes.Code
	}{
		{"during the overlap", retires.Add(-time.Second), codes.OK},
		{"after the overlap", retires, codes.PermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := auth.New(st, func() time.Time { return tc.now }, retiredCAs{ca: srv.CA.Cert, at: retires})
			p, err := a.Authorize(ctx, agentv1.Agent_Renew_FullMethodName)
			if tc.code == codes.OK {
				if err != nil || p.NodeID != "n-ok" {
					t.Errorf("Authorize = %v, %v; want node n-ok", p, err)
				}
				return
			}
			checkStatus(t, err, tc.code, "node n-ok's certificate was issued by CA "+pki.SerialHex(srv.CA.Cert)+", which retired at 2026-05-01T12:00:00Z")
			if refusal.Of(err) != refusal.CertificateRetired {
				t.Errorf("reason = %q, want %q", refusal.Of(err), refusal.CertificateRetired)
			}
		})
	}
}
