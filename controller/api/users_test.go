package api_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/controller/auth/authtest"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

func TestServices(t *testing.T) {
	e := newEnv(t)
	c := controllerv1.NewServicesClient(e.conn)
	op := e.ctx[auth.RoleOperator]
	for _, tt := range []struct {
		name string
		req  *controllerv1.CreateServiceRequest
		code codes.Code
		msg  string
	}{
		{name: "ok", req: &controllerv1.CreateServiceRequest{Name: "web", Selector: map[string]string{"role": "web"}, Description: "front"}},
		{name: "exists", req: &controllerv1.CreateServiceRequest{Name: "web", Selector: map[string]string{"role": "web"}}, code: codes.AlreadyExists, msg: "service web"},
		{name: "bad name", req: &controllerv1.CreateServiceRequest{Name: "Web!", Selector: map[string]string{"role": "web"}}, code: codes.InvalidArgument, msg: "name:"},
		{name: "no selector", req: &controllerv1.CreateServiceRequest{Name: "db"}, code: codes.InvalidArgument, msg: "selector: a service needs a selector"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.CreateService(op, tt.req)
			checkCode(t, err, tt.code, tt.msg)
		})
	}
	list, err := c.ListServices(e.ctx[auth.RoleAuditor], &controllerv1.ListServicesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := []*controllerv1.ServiceRecord{{Name: "web", Selector: map[string]string{"role": "web"}, Description: "front", CreatedBy: "user:operator1", CreatedAt: stampNow}}
	if diff := cmp.Diff(want, list.GetServices(), protocmp.Transform()); diff != "" {
		t.Errorf("ListServices (-want +got):\n%s", diff)
	}
	if _, err := c.DeleteService(op, &controllerv1.DeleteServiceRequest{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteService(op, &controllerv1.DeleteServiceRequest{Name: "web"})
	checkCode(t, err, codes.NotFound, "service web")
	e.checkLog(t, "service.create", "service.delete")
}

func TestUsers(t *testing.T) {
	e := newEnv(t)
	c := controllerv1.NewUsersClient(e.conn)
	admin := e.ctx[auth.RoleAdmin]
	for _, tt := range []struct {
		name string
		req  *controllerv1.CreateUserRequest
		want *controllerv1.UserRecord
		code codes.Code
		msg  string
	}{
		{name: "ok", req: &controllerv1.CreateUserRequest{Name: "alice", Roles: []string{"tester", "auditor", "tester"}},
			want: &controllerv1.UserRecord{Name: "alice", Roles: []string{"tester", "auditor"}, CreatedBy: "user:admin1", CreatedAt: stampNow}},
		{name: "exists", req: &controllerv1.CreateUserRequest{Name: "alice", Roles: []string{"tester"}}, code: codes.AlreadyExists, msg: "user alice"},
		{name: "unknown role", req: &controllerv1.CreateUserRequest{Name: "bob", Roles: []string{"root"}}, code: codes.InvalidArgument, msg: `roles: unknown role "root"`},
		{name: "no role", req: &controllerv1.CreateUserRequest{Name: "bob"}, code: codes.InvalidArgument, msg: "roles: give at least one role"},
		{name: "bad name", req: &controllerv1.CreateUserRequest{Name: "", Roles: []string{"tester"}}, code: codes.InvalidArgument, msg: "name:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.CreateUser(admin, tt.req)
			checkCode(t, err, tt.code, tt.msg)
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); err == nil && diff != "" {
				t.Errorf("CreateUser (-want +got):\n%s", diff)
			}
		})
	}
	list, err := c.ListUsers(e.ctx[auth.RoleAuditor], &controllerv1.ListUsersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range list.GetUsers() {
		names = append(names, u.GetName())
	}
	if diff := cmp.Diff([]string{"admin1", "alice", "auditor1", "operator1"}, names); diff != "" {
		t.Errorf("ListUsers (-want +got):\n%s", diff)
	}

	tok, err := c.CreateToken(admin, &controllerv1.CreateTokenRequest{User: "alice", TtlSeconds: 3600})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.GetToken(), "cairn_u_") || tok.GetExpiresAt() != "2026-03-01T13:00:00.000000000Z" {
		t.Errorf("CreateToken = %v", tok)
	}
	// The API's clock is fixed in the past, so this token has expired for
	// the interceptor, which reads the real time.
	_, err = c.WhoAmI(authtest.WithToken(context.Background(), tok.GetToken()), &controllerv1.WhoAmIRequest{})
	checkCode(t, err, codes.Unauthenticated, "expired at 2026-03-01T13:00:00.000000000Z")
	forever, err := c.CreateToken(admin, &controllerv1.CreateTokenRequest{User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	me, err := c.WhoAmI(authtest.WithToken(context.Background(), forever.GetToken()), &controllerv1.WhoAmIRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if me.GetName() != "alice" || forever.GetExpiresAt() != "" {
		t.Errorf("WhoAmI with the new token = %v (expires %q), want alice, never", me, forever.GetExpiresAt())
	}
	_, err = c.CreateToken(admin, &controllerv1.CreateTokenRequest{User: "nobody"})
	checkCode(t, err, codes.NotFound, "user nobody")
	_, err = c.CreateToken(admin, &controllerv1.CreateTokenRequest{User: "alice", TtlSeconds: -5})
	checkCode(t, err, codes.InvalidArgument, "ttl_seconds")
	// 2^63-1 seconds overflowed time.Duration and made a token that had
	// already expired; anything over the maximum is refused.
	_, err = c.CreateToken(admin, &controllerv1.CreateTokenRequest{User: "alice", TtlSeconds: math.MaxInt64})
	checkCode(t, err, codes.InvalidArgument, "ttl_seconds: 9223372036854775807 seconds is longer than the maximum of 9600h0m0s (400 days)")
	_, err = c.CreateToken(admin, &controllerv1.CreateTokenRequest{User: "alice", TtlSeconds: 400*24*3600 + 1})
	checkCode(t, err, codes.InvalidArgument, "ttl_seconds")
	year, err := c.CreateToken(admin, &controllerv1.CreateTokenRequest{User: "alice", TtlSeconds: 400 * 24 * 3600})
	if err != nil || year.GetExpiresAt() != "2027-04-05T12:00:00.000000000Z" {
		t.Errorf("CreateToken for 400 days = %v, %v; want it to expire 2027-04-05", year, err)
	}

	entries := e.checkLog(t, "user.create", "token.create", "token.create", "token.create")
	for _, en := range entries {
		for _, secret := range []string{tok.GetToken(), forever.GetToken()} {
			if strings.Contains(en.String(), secret) {
				t.Errorf("audit log entry %d holds a token", en.GetSequence())
			}
		}
	}
}

func TestAuditLog(t *testing.T) {
	e := newEnv(t)
	svc := controllerv1.NewServicesClient(e.conn)
	for _, name := range []string{"a", "b", "c", "d"} {
		if _, err := svc.CreateService(e.ctx[auth.RoleOperator], &controllerv1.CreateServiceRequest{Name: name, Selector: map[string]string{"s": name}}); err != nil {
			t.Fatal(err)
		}
	}
	c := controllerv1.NewAuditLogClient(e.conn)
	for _, tt := range []struct {
		name string
		req  *controllerv1.ListEntriesRequest
		want []uint64
		code codes.Code
		msg  string
	}{
		{name: "all", req: &controllerv1.ListEntriesRequest{}, want: []uint64{1, 2, 3, 4}},
		{name: "after", req: &controllerv1.ListEntriesRequest{AfterSequence: 2}, want: []uint64{3, 4}},
		{name: "limit", req: &controllerv1.ListEntriesRequest{AfterSequence: 1, Limit: 2}, want: []uint64{2, 3}},
		{name: "since now", req: &controllerv1.ListEntriesRequest{Since: now.Format(time.RFC3339), Limit: 3}, want: []uint64{1, 2, 3}},
		{name: "since later", req: &controllerv1.ListEntriesRequest{Since: now.Add(time.Second).Format(time.RFC3339)}},
		{name: "bad since", req: &controllerv1.ListEntriesRequest{Since: "yesterday"}, code: codes.InvalidArgument, msg: "since"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := c.ListEntries(e.ctx[auth.RoleAuditor], tt.req)
			checkCode(t, err, tt.code, tt.msg)
			var got []uint64
			for _, en := range resp.GetEntries() {
				got = append(got, en.GetSequence())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("sequences (-want +got):\n%s", diff)
			}
		})
	}
	v, err := c.Verify(e.ctx[auth.RoleAuditor], &controllerv1.VerifyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	entries := e.checkLog(t, "service.create", "service.create", "service.create", "service.create")
	if !v.GetOk() || v.GetHeadHash() != entries[3].GetHash() || v.GetEntries() != 4 {
		t.Errorf("Verify = %v, want ok, 4 entries, head %s", v, entries[3].GetHash())
	}
}
