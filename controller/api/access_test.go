package api_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/controller/auth/authtest"
	"github.com/cairn-ops/cairn/internal/refusal"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// newToken creates a token for user through the API, as the admin.
func (e *env) newToken(t *testing.T, user string) *controllerv1.CreateTokenResponse {
	t.Helper()
	tok, err := controllerv1.NewUsersClient(e.conn).CreateToken(e.ctx[auth.RoleAdmin], &controllerv1.CreateTokenRequest{User: user})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// checkRefused asserts that err is an Unauthenticated refusal with reason
// and a message containing msg.
func checkRefused(t *testing.T, err error, reason refusal.Reason, msg string) {
	t.Helper()
	checkCode(t, err, codes.Unauthenticated, msg)
	if got := refusal.Of(err); got != reason {
		t.Errorf("reason = %q, want %q", got, reason)
	}
}

// TestRevokedTokenRefusedOnLiveConnection: a token works on a connection,
// another admin revokes it, and the next call on the same connection is
// refused, saying who revoked it and when. The user's other token goes on
// working.
func TestRevokedTokenRefusedOnLiveConnection(t *testing.T) {
	e := newEnv(t)
	users := controllerv1.NewUsersClient(e.conn)
	if _, err := users.CreateUser(e.ctx[auth.RoleAdmin], &controllerv1.CreateUserRequest{Name: "bob", Roles: []string{auth.RoleOperator}}); err != nil {
		t.Fatal(err)
	}
	first, second := e.newToken(t, "bob"), e.newToken(t, "bob")
	bob := authtest.WithToken(context.Background(), first.GetToken())
	nodes := controllerv1.NewNodesClient(e.conn)
	if _, err := nodes.ListNodes(bob, &controllerv1.ListNodesRequest{}); err != nil {
		t.Fatalf("first call: %v", err)
	}

	resp, err := users.RevokeToken(e.ctx[auth.RoleAdmin], &controllerv1.RevokeTokenRequest{Ids: []string{first.GetId()}})
	if err != nil {
		t.Fatal(err)
	}
	want := []*controllerv1.APIToken{{Id: first.GetId(), User: "bob", State: controllerv1.APIToken_STATE_REVOKED, CreatedBy: "user:admin1", CreatedAt: stampNow,
		Issuers: []string{"admin1"}, RevokedAt: stampNow, RevokedBy: "user:admin1"}}
	// last_used_at comes from the authenticator's clock, the real one.
	if diff := cmp.Diff(want, resp.GetRevoked(), protocmp.Transform(), protocmp.IgnoreFields(&controllerv1.APIToken{}, "last_used_at")); diff != "" {
		t.Errorf("RevokeToken (-want +got):\n%s", diff)
	}

	_, err = nodes.ListNodes(bob, &controllerv1.ListNodesRequest{})
	checkRefused(t, err, refusal.TokenRevoked, "token "+first.GetId()+" was revoked by user:admin1 at "+stampNow)
	if _, err := nodes.ListNodes(authtest.WithToken(context.Background(), second.GetToken()), &controllerv1.ListNodesRequest{}); err != nil {
		t.Errorf("bob's other token: %v", err)
	}
	// Revoking again changes nothing and logs nothing.
	again, err := users.RevokeToken(e.ctx[auth.RoleAdmin], &controllerv1.RevokeTokenRequest{Ids: []string{first.GetId()}})
	if err != nil || len(again.GetRevoked()) != 0 {
		t.Errorf("revoking a revoked token = %v, %v; want nothing revoked", again, err)
	}
	e.checkLog(t, "user.create", "token.create", "token.create", "token.revoke")
}

// TestDisabledUserRefusedOnLiveConnection: every token of a user disabled
// mid-way is refused at the next call; enabling the user brings back the
// tokens that were neither revoked nor expired; disabling with
// revoke_tokens makes them gone for good.
func TestDisabledUserRefusedOnLiveConnection(t *testing.T) {
	e := newEnv(t)
	users := controllerv1.NewUsersClient(e.conn)
	nodes := controllerv1.NewNodesClient(e.conn)
	if _, err := users.CreateUser(e.ctx[auth.RoleAdmin], &controllerv1.CreateUserRequest{Name: "carol", Roles: []string{auth.RoleOperator}}); err != nil {
		t.Fatal(err)
	}
	var carol []context.Context
	for range 2 {
		carol = append(carol, authtest.WithToken(context.Background(), e.newToken(t, "carol").GetToken()))
	}
	call := func(ctx context.Context) error {
		_, err := nodes.ListNodes(ctx, &controllerv1.ListNodesRequest{})
		return err
	}
	for i, ctx := range carol {
		if err := call(ctx); err != nil {
			t.Fatalf("token %d before the disable: %v", i, err)
		}
	}

	u, err := users.DisableUser(e.ctx[auth.RoleAdmin], &controllerv1.DisableUserRequest{Name: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	if !u.GetDisabled() || u.GetDisabledBy() != "user:admin1" || u.GetDisabledAt() != stampNow {
		t.Errorf("DisableUser = %v, want disabled by user:admin1 at %s", u, stampNow)
	}
	for _, ctx := range carol {
		checkRefused(t, call(ctx), refusal.UserDisabled, "user carol was disabled by user:admin1 at "+stampNow)
	}
	list, err := users.ListTokens(e.ctx[auth.RoleAuditor], &controllerv1.ListTokensRequest{User: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range list.GetTokens() {
		if tok.GetState() != controllerv1.APIToken_STATE_USER_DISABLED {
			t.Errorf("token %s of a disabled user is %v, want STATE_USER_DISABLED", tok.GetId(), tok.GetState())
		}
	}

	if _, err := users.EnableUser(e.ctx[auth.RoleAdmin], &controllerv1.EnableUserRequest{Name: "carol"}); err != nil {
		t.Fatal(err)
	}
	for i, ctx := range carol {
		if err := call(ctx); err != nil {
			t.Errorf("token %d after the enable: %v", i, err)
		}
	}

	if _, err := users.DisableUser(e.ctx[auth.RoleAdmin], &controllerv1.DisableUserRequest{Name: "carol", RevokeTokens: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := users.EnableUser(e.ctx[auth.RoleAdmin], &controllerv1.EnableUserRequest{Name: "carol"}); err != nil {
		t.Fatal(err)
	}
	for _, ctx := range carol {
		checkRefused(t, call(ctx), refusal.TokenRevoked, "was revoked by user:admin1")
	}
	// Enabling an enabled user changes nothing and logs nothing.
	if _, err := users.EnableUser(e.ctx[auth.RoleAdmin], &controllerv1.EnableUserRequest{Name: "carol"}); err != nil {
		t.Fatal(err)
	}
	e.checkLog(t, "user.create", "token.create", "token.create",
		"user.disable", "user.enable", "user.disable", "token.revoke", "token.revoke", "user.enable")
}

// TestLastAdmin: the last enabled admin cannot be disabled, lose the
// admin role, or lose the last token that works; with a second admin, it
// can.
func TestLastAdmin(t *testing.T) {
	e := newEnv(t)
	users := controllerv1.NewUsersClient(e.conn)
	admin := e.ctx[auth.RoleAdmin]
	const noAdmin = "this would leave no enabled user with the admin role"
	for _, tc := range []struct {
		name string
		call func() error
		msg  string
	}{
		{"disable", func() error {
			_, err := users.DisableUser(admin, &controllerv1.DisableUserRequest{Name: "admin1"})
			return err
		}, noAdmin},
		{"set-roles", func() error {
			_, err := users.SetRoles(admin, &controllerv1.SetRolesRequest{Name: "admin1", Roles: []string{auth.RoleAuditor}})
			return err
		}, noAdmin},
		{"revoke its only token", func() error {
			_, err := users.RevokeToken(admin, &controllerv1.RevokeTokenRequest{Ids: []string{"tok_admin1"}})
			return err
		}, "this would leave no enabled admin (admin1) with a token that works"},
		{"revoke every token of the user", func() error {
			_, err := users.RevokeToken(admin, &controllerv1.RevokeTokenRequest{User: "admin1"})
			return err
		}, "with a token that works"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkCode(t, tc.call(), codes.FailedPrecondition, tc.msg)
		})
	}
	me, err := users.WhoAmI(admin, &controllerv1.WhoAmIRequest{})
	if err != nil || me.GetDisabled() || me.GetRoles()[0] != auth.RoleAdmin {
		t.Fatalf("after the refusals, WhoAmI = %v, %v; want admin1, enabled admin", me, err)
	}

	if _, err := users.CreateUser(admin, &controllerv1.CreateUserRequest{Name: "dave", Roles: []string{auth.RoleAdmin}}); err != nil {
		t.Fatal(err)
	}
	dave := authtest.WithToken(context.Background(), e.newToken(t, "dave").GetToken())
	u, err := users.SetRoles(dave, &controllerv1.SetRolesRequest{Name: "admin1", Roles: []string{auth.RoleAuditor, auth.RoleOperator, auth.RoleAuditor}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{auth.RoleAuditor, auth.RoleOperator}, u.GetRoles()); diff != "" {
		t.Errorf("SetRoles (-want +got):\n%s", diff)
	}
	_, err = controllerv1.NewNodesClient(e.conn).RevokeNode(admin, &controllerv1.RevokeNodeRequest{Node: "n-1"})
	checkCode(t, err, codes.PermissionDenied, "user admin1 (roles auditor,operator) needs one of admin")
	// dave is now the last admin.
	_, err = users.DisableUser(dave, &controllerv1.DisableUserRequest{Name: "dave"})
	checkCode(t, err, codes.FailedPrecondition, noAdmin)

	entries := e.checkLog(t, "user.create", "token.create", "user.set-roles")
	if diff := cmp.Diff(map[string]string{"roles": "auditor,operator", "previous_roles": "admin"}, entries[2].GetDetails()); diff != "" {
		t.Errorf("user.set-roles details (-want +got):\n%s", diff)
	}
}

func TestAccessBadRequests(t *testing.T) {
	e := newEnv(t)
	users := controllerv1.NewUsersClient(e.conn)
	admin := e.ctx[auth.RoleAdmin]
	if _, err := users.CreateUser(admin, &controllerv1.CreateUserRequest{Name: "erin", Roles: []string{auth.RoleTester}}); err != nil {
		t.Fatal(err)
	}
	erin := e.newToken(t, "erin")
	for _, tc := range []struct {
		name string
		call func() error
		code codes.Code
		msg  string
	}{
		{"revoke nothing", func() error {
			_, err := users.RevokeToken(admin, &controllerv1.RevokeTokenRequest{})
			return err
		}, codes.InvalidArgument, "ids: name the tokens to revoke by ID, or a user"},
		{"revoke ids and user", func() error {
			_, err := users.RevokeToken(admin, &controllerv1.RevokeTokenRequest{Ids: []string{erin.GetId()}, User: "erin"})
			return err
		}, codes.InvalidArgument, "user: give either token IDs or a user, not both"},
		{"revoke an unknown token with a known one", func() error {
			_, err := users.RevokeToken(admin, &controllerv1.RevokeTokenRequest{Ids: []string{erin.GetId(), "tok_nope"}})
			return err
		}, codes.NotFound, "token tok_nope: not found: nothing was revoked"},
		{"revoke a bad ID", func() error {
			_, err := users.RevokeToken(admin, &controllerv1.RevokeTokenRequest{Ids: []string{"tok nope"}})
			return err
		}, codes.InvalidArgument, "ids[0]:"},
		{"revoke an unknown user's tokens", func() error {
			_, err := users.RevokeToken(admin, &controllerv1.RevokeTokenRequest{User: "nobody"})
			return err
		}, codes.NotFound, "user nobody"},
		{"disable an unknown user", func() error {
			_, err := users.DisableUser(admin, &controllerv1.DisableUserRequest{Name: "nobody"})
			return err
		}, codes.NotFound, "user nobody"},
		{"enable a bad name", func() error {
			_, err := users.EnableUser(admin, &controllerv1.EnableUserRequest{Name: "No Body"})
			return err
		}, codes.InvalidArgument, "name:"},
		{"set an unknown role", func() error {
			_, err := users.SetRoles(admin, &controllerv1.SetRolesRequest{Name: "erin", Roles: []string{"root"}})
			return err
		}, codes.InvalidArgument, `roles: unknown role "root"`},
		{"set no roles", func() error {
			_, err := users.SetRoles(admin, &controllerv1.SetRolesRequest{Name: "erin"})
			return err
		}, codes.InvalidArgument, "roles: give at least one role"},
		{"list an unknown user's tokens", func() error {
			_, err := users.ListTokens(admin, &controllerv1.ListTokensRequest{User: "nobody"})
			return err
		}, codes.NotFound, "user nobody"},
		{"token with ttl and expiry", func() error {
			_, err := users.CreateToken(admin, &controllerv1.CreateTokenRequest{User: "erin", TtlSeconds: 60, ExpiresAt: "2026-04-01T00:00:00Z"})
			return err
		}, codes.InvalidArgument, "expires_at: give either ttl_seconds or expires_at, not both"},
		{"token expiring in the past", func() error {
			_, err := users.CreateToken(admin, &controllerv1.CreateTokenRequest{User: "erin", ExpiresAt: "2026-02-01T00:00:00Z"})
			return err
		}, codes.InvalidArgument, "expires_at: 2026-02-01T00:00:00Z has passed (the controller's time is " + stampNow + ")"},
		{"token expiring too late", func() error {
			_, err := users.CreateToken(admin, &controllerv1.CreateTokenRequest{User: "erin", ExpiresAt: "2027-06-01T00:00:00Z"})
			return err
		}, codes.InvalidArgument, "is more than the maximum of 9600h0m0s (400 days) ahead"},
		{"token expiry not a time", func() error {
			_, err := users.CreateToken(admin, &controllerv1.CreateTokenRequest{User: "erin", ExpiresAt: "next week"})
			return err
		}, codes.InvalidArgument, `expires_at: "next week" is not an RFC 3339 time`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkCode(t, tc.call(), tc.code, tc.msg)
		})
	}
	// Nothing of the refused requests was written: erin's token works.
	if _, err := users.WhoAmI(authtest.WithToken(context.Background(), erin.GetToken()), &controllerv1.WhoAmIRequest{}); err != nil {
		t.Errorf("erin's token after refused requests: %v", err)
	}
	at, err := users.CreateToken(admin, &controllerv1.CreateTokenRequest{User: "erin", ExpiresAt: "2026-04-01T00:00:00+02:00"})
	if err != nil || at.GetExpiresAt() != "2026-03-31T22:00:00.000000000Z" {
		t.Errorf("CreateToken with expires_at = %v, %v; want it to expire 2026-03-31T22:00:00Z", at, err)
	}
	e.checkLog(t, "user.create", "token.create", "token.create")
}

// TestListTokens shows every state a token can be in, and no secret.
func TestListTokens(t *testing.T) {
	e := newEnv(t)
	users := controllerv1.NewUsersClient(e.conn)
	admin := e.ctx[auth.RoleAdmin]
	for _, name := range []string{"fay", "gus"} {
		if _, err := users.CreateUser(admin, &controllerv1.CreateUserRequest{Name: name, Roles: []string{auth.RoleTester}}); err != nil {
			t.Fatal(err)
		}
	}
	active := e.newToken(t, "fay")
	revoked := e.newToken(t, "fay")
	expiring, err := users.CreateToken(admin, &controllerv1.CreateTokenRequest{User: "fay", ExpiresAt: "2026-03-02T00:00:00Z"})
	if err != nil {
		t.Fatal(err)
	}
	suspended := e.newToken(t, "gus")
	if _, err := users.RevokeToken(admin, &controllerv1.RevokeTokenRequest{Ids: []string{revoked.GetId()}}); err != nil {
		t.Fatal(err)
	}
	if _, err := users.DisableUser(admin, &controllerv1.DisableUserRequest{Name: "gus"}); err != nil {
		t.Fatal(err)
	}
	// The API's clock is fixed before the token's expiry; the
	// authenticator's (the real one) is past it.
	_, err = users.WhoAmI(authtest.WithToken(context.Background(), expiring.GetToken()), &controllerv1.WhoAmIRequest{})
	checkRefused(t, err, refusal.TokenExpired, "token "+expiring.GetId()+" expired at 2026-03-02T00:00:00.000000000Z")

	list, err := users.ListTokens(e.ctx[auth.RoleAuditor], &controllerv1.ListTokensRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]controllerv1.APIToken_State{}
	for _, tok := range list.GetTokens() {
		got[tok.GetId()] = tok.GetState()
	}
	want := map[string]controllerv1.APIToken_State{
		"tok_admin1": controllerv1.APIToken_STATE_ACTIVE, "tok_auditor1": controllerv1.APIToken_STATE_ACTIVE, "tok_operator1": controllerv1.APIToken_STATE_ACTIVE,
		active.GetId(): controllerv1.APIToken_STATE_ACTIVE, revoked.GetId(): controllerv1.APIToken_STATE_REVOKED,
		// Not yet expired by the API's clock.
		expiring.GetId():  controllerv1.APIToken_STATE_ACTIVE,
		suspended.GetId(): controllerv1.APIToken_STATE_USER_DISABLED,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("token states (-want +got):\n%s", diff)
	}
	var order []string
	for _, tok := range list.GetTokens() {
		order = append(order, tok.GetUser())
	}
	if diff := cmp.Diff([]string{"admin1", "auditor1", "fay", "fay", "fay", "gus", "operator1"}, order); diff != "" {
		t.Errorf("tokens not by user (-want +got):\n%s", diff)
	}
	// A used token records its use.
	for _, tok := range list.GetTokens() {
		if tok.GetId() == "tok_auditor1" && tok.GetLastUsedAt() == "" {
			t.Errorf("token tok_auditor1 was used for this very call but has no last_used_at")
		}
		if tok.GetId() == active.GetId() && tok.GetLastUsedAt() != "" {
			t.Errorf("token %s was never used but has last_used_at %s", tok.GetId(), tok.GetLastUsedAt())
		}
	}
	_, err = users.ListTokens(e.ctx[auth.RoleOperator], &controllerv1.ListTokensRequest{})
	checkCode(t, err, codes.PermissionDenied, "needs one of auditor")
}
