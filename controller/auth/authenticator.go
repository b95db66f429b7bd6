package auth

import (
	"context"
	"crypto/x509"
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
	"github.com/cairn-ops/cairn/internal/refusal"
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
	cas   CAs
	rules map[string]Rule
}

// CAs tell whether the CA that issued a node certificate still counts
// (controller/keyring): after a CA rotation's overlap the old CA's
// certificates are refused.
type CAs interface {
	// Retired reports whether ca's overlap has ended at now, and when.
	Retired(ca *x509.Certificate, now time.Time) (time.Time, bool)
}

// New returns an Authenticator that looks tokens and nodes up in st,
// reads the time from now (nil: time.Now) and refuses node certificates
// of the CAs cas says are retired (nil: none ever is).
func New(st store.Store, now func() time.Time, cas CAs) *Authenticator {
	if now == nil {
		now = time.Now
	}
	return &Authenticator{store: st, now: now, cas: cas, rules: Rules}
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
	chain := info.State.VerifiedChains[0]
	id, err := pki.NodeID(chain[0])
	if err != nil {
		return Principal{}, status.Error(codes.PermissionDenied, err.Error())
	}
	if a.cas != nil {
		ca := chain[len(chain)-1]
		if at, retired := a.cas.Retired(ca, a.now()); retired {
			return Principal{}, CertificateRetiredError(id, ca, at)
		}
	}
	var n *controllerv1.NodeRecord
	err = a.store.View(ctx, func(tx store.Tx) error {
		var err error
		n, err = tx.Node(id)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Principal{}, refusal.Errorf(codes.Unauthenticated, refusal.NodeUnknown, "node %s is not enrolled with this controller: enroll it again with a new join token", id)
	case err != nil:
		return Principal{}, storeError(err)
	case n.GetState() == controllerv1.NodeRecord_STATE_REVOKED:
		return Principal{}, NodeRevokedError(id)
	}
	return Principal{NodeID: id}, nil
}

// CertificateRetiredError is the refusal of a node certificate issued by
// CA ca, whose rotation overlap ended at at, with the reason
// refusal.CertificateRetired.
func CertificateRetiredError(nodeID string, ca *x509.Certificate, at time.Time) error {
	return refusal.Error(codes.PermissionDenied, refusal.CertificateRetired, map[string]string{"node_id": nodeID, "ca_serial": pki.SerialHex(ca)},
		fmt.Sprintf("node %s's certificate was issued by CA %s, which retired at %s when the controller's CA was rotated: enroll the node again with a new join token",
			nodeID, pki.SerialHex(ca), at.UTC().Format(time.RFC3339)))
}

// NodeRevokedError is the refusal of a revoked node, with the reason
// refusal.NodeRevoked that the agent acts on.
func NodeRevokedError(id string) error {
	return refusal.Error(codes.PermissionDenied, refusal.NodeRevoked, map[string]string{"node_id": id}, "node "+id+" is revoked")
}

// user identifies an operator by the bearer token in the call's metadata.
// Every call reads the token and its user from the store, so a token
// revoked or a user disabled a moment ago is refused at the next call,
// on any connection. Tokens are never logged or echoed.
func (a *Authenticator) user(ctx context.Context) (Principal, error) {
	token, err := bearer(ctx)
	if err != nil {
		return Principal{}, err
	}
	now := a.now()
	var (
		u *controllerv1.UserRecord
		t *controllerv1.APITokenRecord
	)
	err = a.store.View(ctx, func(tx store.Tx) error {
		var err error
		if t, err = tx.APIToken(HashToken(token)); err != nil {
			return err
		}
		if err := tokenUsable(t, now); err != nil {
			return err
		}
		u, err = tx.User(t.GetUser())
		if errors.Is(err, store.ErrNotFound) {
			return refusal.Error(codes.Unauthenticated, refusal.UserUnknown, tokenMeta(t), fmt.Sprintf("the token's user %s no longer exists", t.GetUser()))
		}
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Principal{}, refusal.Errorf(codes.Unauthenticated, refusal.TokenUnknown, "invalid token: it is unknown to this controller")
	case err != nil:
		if _, ok := status.FromError(err); ok {
			return Principal{}, err
		}
		return Principal{}, storeError(err)
	case u.GetDisabled():
		return Principal{}, UserDisabledError(u)
	}
	a.noteUse(ctx, t.GetTokenHash(), now)
	return Principal{User: u.GetName(), Roles: u.GetRoles(), Issuers: t.GetIssuers()}, nil
}

// tokenUsable refuses a revoked or expired token, with its reason.
func tokenUsable(t *controllerv1.APITokenRecord, now time.Time) error {
	if t.GetRevokedAt() != "" {
		return refusal.Error(codes.Unauthenticated, refusal.TokenRevoked, tokenMeta(t),
			fmt.Sprintf("token %s was revoked by %s at %s: ask an admin for a new one", t.GetId(), orUnknown(t.GetRevokedBy()), t.GetRevokedAt()))
	}
	expired, err := TokenExpired(t, now)
	if err != nil {
		return err
	}
	if expired {
		return refusal.Error(codes.Unauthenticated, refusal.TokenExpired, tokenMeta(t),
			fmt.Sprintf("token %s expired at %s: ask an admin for a new one", t.GetId(), t.GetExpiresAt()))
	}
	return nil
}

// TokenExpired reports whether t's expiry is at or before now (never for
// a token without one).
func TokenExpired(t *controllerv1.APITokenRecord, now time.Time) (bool, error) {
	exp := t.GetExpiresAt()
	if exp == "" {
		return false, nil
	}
	at, err := time.Parse(time.RFC3339Nano, exp)
	if err != nil {
		return false, fmt.Errorf("token %s: expires_at %q: %w", t.GetId(), exp, err)
	}
	return !now.Before(at), nil
}

// UserDisabledError is the refusal of a disabled user's token, with the
// reason refusal.UserDisabled.
func UserDisabledError(u *controllerv1.UserRecord) error {
	msg := fmt.Sprintf("user %s is disabled", u.GetName())
	if u.GetDisabledBy() != "" {
		msg = fmt.Sprintf("user %s was disabled by %s at %s", u.GetName(), u.GetDisabledBy(), u.GetDisabledAt())
	}
	return refusal.Error(codes.Unauthenticated, refusal.UserDisabled, map[string]string{"user": u.GetName()}, msg+": ask an admin to enable it again")
}

func tokenMeta(t *controllerv1.APITokenRecord) map[string]string {
	return map[string]string{"token_id": t.GetId(), "user": t.GetUser()}
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown actor"
	}
	return s
}

// lastUsedEvery is the resolution of APITokenRecord.last_used_at: a
// token's use is written at most once per interval, so a busy token does
// not turn every call into a write.
const lastUsedEvery = time.Minute

// noteUse records that the token with hash was used at now, when its
// last_used_at is older than lastUsedEvery (the fixed-width format of the
// records compares in time order). It is best effort: the call is
// authorized whether or not the note is written, and a failed write is
// tried again at the token's next use.
func (a *Authenticator) noteUse(ctx context.Context, hash string, now time.Time) {
	at := now.UTC().Truncate(lastUsedEvery).Format("2006-01-02T15:04:05.000000000Z")
	_ = a.store.Batch(ctx, func(tx store.Tx) error {
		t, err := tx.APIToken(hash)
		if err != nil || t.GetLastUsedAt() >= at {
			return err
		}
		t.LastUsedAt = at
		return tx.PutAPIToken(t)
	})
}

// bearer returns the token of the "authorization: Bearer <token>" header.
func bearer(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 || strings.TrimSpace(vals[0]) == "" {
		return "", refusal.Errorf(codes.Unauthenticated, refusal.TokenMissing, "missing bearer token: set --token or CAIRN_TOKEN")
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", refusal.Errorf(codes.Unauthenticated, refusal.TokenMissing, `malformed authorization header: want "Bearer <token>"`)
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
