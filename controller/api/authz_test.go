package api_test

import (
	"context"
	"crypto/tls"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/cairn-ops/cairn/controller/api"
	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/controller/auth/authtest"
	"github.com/cairn-ops/cairn/controller/blob"
	"github.com/cairn-ops/cairn/controller/store"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// openMethods are the only methods anyone may call without credentials.
var openMethods = []string{
	agentv1.Enrollment_Enroll_FullMethodName,
	grpc_health_v1.Health_Check_FullMethodName,
	grpc_health_v1.Health_Watch_FullMethodName,
}

// anyUserMethods are the only methods every authenticated user may call,
// whatever their roles.
var anyUserMethods = []string{
	controllerv1.Users_WhoAmI_FullMethodName,
	grpc_health_v1.Health_List_FullMethodName,
}

// stubAgent stands in for controller/fleet's agent services: the
// interceptors run before any handler, so the handlers do not matter.
type stubAgent struct {
	agentv1.UnimplementedAgentServer
	agentv1.UnimplementedEnrollmentServer
}

// caller is one set of credentials.
type caller struct {
	name  string
	token string
	cert  *tls.Certificate
}

// TestEveryMethodIsAuthorized enumerates every method of every service the
// controller registers and proves each refuses a call without credentials
// and with credentials that lack permission, and lets the permitted
// callers through — except the explicit open allowlist. It also proves
// the authorization table names exactly the registered methods.
func TestEveryMethodIsAuthorized(t *testing.T) {
	st := store.NewMemory()
	blobs, err := blob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := authtest.Start(t, st, func(s *grpc.Server) {
		api.Register(s, api.Deps{Store: st, Blobs: blobs})
		agentv1.RegisterAgentServer(s, stubAgent{})
		agentv1.RegisterEnrollmentServer(s, stubAgent{})
		grpc_health_v1.RegisterHealthServer(s, health.NewServer())
	})

	// One user per role, one without roles, a disabled admin, an
	// enrolled node and a revoked node.
	users := map[string]caller{}
	for _, role := range auth.Roles {
		users[role] = caller{name: "role " + role, token: authtest.AddUser(t, st, "u-"+role, role)}
	}
	noRoles := caller{name: "user without roles", token: authtest.AddUser(t, st, "u-none")}
	disabledTok := authtest.AddUser(t, st, "u-disabled", auth.RoleAdmin)
	if err := st.Update(context.Background(), func(tx store.Tx) error {
		return tx.PutUser(&controllerv1.UserRecord{Name: "u-disabled", Roles: []string{auth.RoleAdmin}, Disabled: true})
	}); err != nil {
		t.Fatal(err)
	}
	disabled := caller{name: "disabled admin", token: disabledTok}
	authtest.AddNode(t, st, &controllerv1.NodeRecord{Id: "n1", State: controllerv1.NodeRecord_STATE_CONNECTED})
	authtest.AddNode(t, st, &controllerv1.NodeRecord{Id: "n2", State: controllerv1.NodeRecord_STATE_REVOKED})
	node := caller{name: "enrolled node", cert: srv.NodeCert(t, "n1")}
	revoked := caller{name: "revoked node", cert: srv.NodeCert(t, "n2")}
	anonymous := caller{name: "no credentials"}

	conns := map[*tls.Certificate]*grpc.ClientConn{}
	for _, c := range []caller{anonymous, node, revoked} {
		conns[c.cert] = srv.Dial(t, c.cert)
	}
	call := func(method string, info grpc.MethodInfo, c caller) error {
		conn := conns[c.cert]
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if c.token != "" {
			ctx = authtest.WithToken(ctx, c.token)
		}
		// The interceptors run before a request is decoded, and an empty
		// message is a valid encoding of every request type.
		if !info.IsClientStream && !info.IsServerStream {
			return conn.Invoke(ctx, method, &emptypb.Empty{}, &emptypb.Empty{})
		}
		stream, err := conn.NewStream(ctx, &grpc.StreamDesc{StreamName: method, ServerStreams: info.IsServerStream, ClientStreams: info.IsClientStream}, method)
		if err != nil {
			return err
		}
		_ = stream.SendMsg(&emptypb.Empty{}) // fails when the server already refused
		_ = stream.CloseSend()
		return stream.RecvMsg(&emptypb.Empty{})
	}
	refused := func(err error) bool {
		c := status.Code(err)
		return c == codes.Unauthenticated || c == codes.PermissionDenied
	}

	registered := map[string]bool{}
	for svc, si := range srv.GRPC.GetServiceInfo() {
		for _, m := range si.Methods {
			method := "/" + svc + "/" + m.Name
			registered[method] = true
			t.Run(strings.TrimPrefix(method, "/"), func(t *testing.T) {
				rule, ok := auth.Rules[method]
				if !ok {
					t.Fatalf("%s is registered but has no rule in auth.Rules", method)
				}
				if slices.Contains(openMethods, method) {
					if !rule.Open {
						t.Errorf("%s is in the open allowlist but its rule is %+v", method, rule)
					}
					if err := call(method, m, anonymous); refused(err) {
						t.Errorf("open method refused a call without credentials: %v", err)
					}
					return
				}
				if rule.Open {
					t.Fatalf("%s is open but not in the allowlist %v", method, openMethods)
				}

				if rule.AnyUser != slices.Contains(anyUserMethods, method) {
					t.Fatalf("%s: rule %+v, but the methods open to any user are exactly %v", method, rule, anyUserMethods)
				}
				var denied, allowed []caller
				denied = append(denied, anonymous, disabled)
				switch {
				case rule.Node:
					for _, role := range auth.Roles {
						denied = append(denied, users[role])
					}
					denied = append(denied, revoked)
					allowed = append(allowed, node)
				case rule.AnyUser:
					denied = append(denied, node, revoked)
					allowed = append(allowed, noRoles)
					for _, role := range auth.Roles {
						allowed = append(allowed, users[role])
					}
				default:
					denied = append(denied, node, noRoles)
					for _, role := range auth.Roles {
						if role == auth.RoleAdmin || slices.Contains(rule.Roles, role) {
							allowed = append(allowed, users[role])
						} else {
							denied = append(denied, users[role])
						}
					}
				}
				lacking := 0
				for _, c := range denied {
					err := call(method, m, c)
					if !refused(err) {
						t.Errorf("%s: got %v, want Unauthenticated or PermissionDenied", c.name, err)
					}
					if c.token != "" && c.token != disabled.token && status.Code(err) == codes.PermissionDenied {
						lacking++
					}
				}
				if !rule.AnyUser && lacking == 0 {
					t.Errorf("no valid user lacking permission was refused with PermissionDenied")
				}
				for _, c := range allowed {
					if err := call(method, m, c); refused(err) {
						t.Errorf("%s: refused (%v), want the call let through", c.name, err)
					}
				}
			})
		}
	}
	for method := range auth.Rules {
		if !registered[method] {
			t.Errorf("auth.Rules names %s, which no service registers (a stale entry)", method)
		}
	}
	if n := len(registered); n < 30 {
		t.Errorf("only %d methods registered; the enumeration is missing services", n)
	}
}
