package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/pki"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// Authenticator checks every call against Rules and puts the caller's
// Principal into the call's context.
//
// Nodes are identified by a client certificate that the TLS layer has
// verified against the controller's CA. Any certificate the CA signed for
// a node ID is accepted, not only the newest one recorded in the node's
// cert_serial: an agent that renewed but has not yet reconnected keeps
// working until its old certificate expires. Revoking the node is what
// cuts it off, whichever certificate it presents.
type Authenticator struct {
	store store.Store
	now   func() time.Time
	rules map[string]Rule
}

// New returns an Authenticator that looks tokens and nodes up in st and
// reads the time from now (nil: time.Now).
func New(st store.Store, now func() time.Time) *Authenticator {
	if now == nil {
		now = time.Now
	}
	return &Authenticator{store: st, now: now, rules: Rules}
}

// Unary returns the interceptor for unary methods.
func (a *Authenticator) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		p, err := a.Authorize(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(WithPrincipal(ctx, p), req)
	}
}

// Stream returns the interceptor for streaming methods.
func (a *Authenticator) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		p, err := a.Authorize(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &principalStream{ServerStream: ss, ctx: WithPrincipal(ss.Context(), p)})
	}
}

type principalStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *principalStream) Context() context.Context { return s.ctx }

// Authorize decides whether the caller in ctx may call method, and who it
// is. Its errors are gRPC status errors: Unauthenticated when the caller
// could not be identified, PermissionDenied when it may not call method.
func (a *Authenticator) Authorize(ctx context.Context, method string) (Principal, error) {
	rule, ok := a.rules[method]
	if !ok {
		return Principal{}, status.Errorf(codes.PermissionDenied, "%s: method not in the authorization table", method)
	}
	switch {
	case rule.Open:
		return Principal{}, nil
	case rule.Node:
		return a.node(ctx)
	}
	p, err := a.user(ctx)
	if err != nil {
		return Principal{}, err
	}
	if rule.AnyUser || p.HasRole(RoleAdmin) || slices.ContainsFunc(rule.Roles, p.HasRole) {
		return p, nil
	}
	need := rule.Roles
	if len(need) == 0 {
		need = []string{RoleAdmin}
	}
	have := "no roles"
	if len(p.Roles) > 0 {
		have = "roles " + strings.Join(p.Roles, ",")
	}
	return Principal{}, status.Errorf(codes.PermissionDenied, "user %s (%s) needs one of %s for %s",
		p.User, have, strings.Join(need, ", "), shortMethod(method))
}

// node identifies an agent by its verified client certificate.
func (a *Authenticator) node(ctx context.Context) (Principal, error) {
	pr, ok := peer.FromContext(ctx)
	if !ok {
		return Principal{}, status.Error(codes.Unauthenticated, "no peer information: a node certificate is required")
	}
	info, ok := pr.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		if md, _ := metadata.FromIncomingContext(ctx); len(md.Get("authorization")) > 0 {
			return Principal{}, status.Error(codes.PermissionDenied, "only agents may call this method, with their node certificate; user tokens may not")
		}
		return Principal{}, status.Error(codes.Unauthenticated, "a node client certificate signed by the controller's CA is required")
	}
	id, err := pki.NodeID(info.State.VerifiedChains[0][0])
	if err != nil {
		return Principal{}, status.Error(codes.PermissionDenied, err.Error())
	}
	var n *controllerv1.NodeRecord
	err = a.store.View(ctx, func(tx store.Tx) error {
		var err error
		n, err = tx.Node(id)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Principal{}, status.Errorf(codes.Unauthenticated, "node %s is not enrolled with this controller: enroll it again with a new join token", id)
	case err != nil:
		return Principal{}, storeError(err)
	case n.GetState() == controllerv1.NodeRecord_STATE_REVOKED:
		return Principal{}, status.Errorf(codes.PermissionDenied, "node %s is revoked", id)
	}
	return Principal{NodeID: id}, nil
}

// user identifies an operator by the bearer token in the call's metadata.
// Tokens are never logged or echoed.
func (a *Authenticator) user(ctx context.Context) (Principal, error) {
	token, err := bearer(ctx)
	if err != nil {
		return Principal{}, err
	}
	var (
		u *controllerv1.UserRecord
		t *controllerv1.APITokenRecord
	)
	err = a.store.View(ctx, func(tx store.Tx) error {
		var err error
		t, err = tx.APIToken(HashToken(token))
		if errors.Is(err, store.ErrNotFound) {
			return status.Error(codes.Unauthenticated, "invalid token: it is unknown to this controller")
		}
		if err != nil {
			return err
		}
		if exp := t.GetExpiresAt(); exp != "" {
			at, err := time.Parse(time.RFC3339Nano, exp)
			if err != nil {
				return fmt.Errorf("token %s: expires_at %q: %w", t.GetId(), exp, err)
			}
			if !a.now().Before(at) {
				return status.Errorf(codes.Unauthenticated, "token expired at %s: ask an admin for a new one", exp)
			}
		}
		u, err = tx.User(t.GetUser())
		if errors.Is(err, store.ErrNotFound) {
			return status.Errorf(codes.Unauthenticated, "the token's user %s no longer exists", t.GetUser())
		}
		return err
	})
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return Principal{}, err
		}
		return Principal{}, storeError(err)
	}
	if u.GetDisabled() {
		return Principal{}, status.Errorf(codes.Unauthenticated, "user %s is disabled", u.GetName())
	}
	return Principal{User: u.GetName(), Roles: u.GetRoles(), Issuers: t.GetIssuers()}, nil
}

// bearer returns the token of the "authorization: Bearer <token>" header.
func bearer(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 || strings.TrimSpace(vals[0]) == "" {
		return "", status.Error(codes.Unauthenticated, "missing bearer token: set --token or CAIRN_TOKEN")
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", status.Error(codes.Unauthenticated, `malformed authorization header: want "Bearer <token>"`)
	}
	return token, nil
}

func storeError(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	return status.Errorf(codes.Unavailable, "authorization: %v", err)
}

// shortMethod turns "/cairn.controller.v1.Nodes/ListNodes" into
// "Nodes/ListNodes".
func shortMethod(full string) string {
	svc, m, ok := strings.Cut(strings.TrimPrefix(full, "/"), "/")
	if !ok {
		return full
	}
	if i := strings.LastIndex(svc, "."); i >= 0 {
		svc = svc[i+1:]
	}
	return svc + "/" + m
}
