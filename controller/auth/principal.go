package auth

import (
	"context"
	"strings"
)

// Principal is who is calling: an operator (a user with roles, from a
// bearer token) or a node (from its client certificate).
type Principal struct {
	User  string
	Roles []string
	// Issuers are the users who could also hold the user's token: whoever
	// created it, and that token's issuers (APITokenRecord.issuers).
	// Empty when the user made the token themselves or init did.
	Issuers []string
	NodeID  string
}

// issuedBy and via shape an actor whose token another user issued:
// "user:ap2 (token issued by admin2 via admin1)".
const (
	issuedBy = " (token issued by "
	via      = " via "
)

// Actor names the principal in records and the audit log: "user:NAME",
// "user:NAME (token issued by ISSUER[ via ISSUER...])" when other users
// could hold the token, "node:ID", or "anonymous" for the open methods.
// ParseActor reads it back.
func (p Principal) Actor() string {
	switch {
	case p.User != "" && len(p.Issuers) > 0:
		return "user:" + p.User + issuedBy + strings.Join(p.Issuers, via) + ")"
	case p.User != "":
		return "user:" + p.User
	case p.NodeID != "":
		return "node:" + p.NodeID
	default:
		return "anonymous"
	}
}

// ParseActor reads an actor string that Actor wrote: the user's name and
// the token's issuers. It returns "" and nil for an actor that is not a
// user ("node:ID", "system").
func ParseActor(actor string) (user string, issuers []string) {
	rest, ok := strings.CutPrefix(actor, "user:")
	if !ok {
		return "", nil
	}
	user, trace, ok := strings.Cut(rest, issuedBy)
	if !ok {
		return user, nil
	}
	return user, strings.Split(strings.TrimSuffix(trace, ")"), via)
}

// HasRole reports whether the principal holds role (admin holds every role).
func (p Principal) HasRole(role string) bool {
	for _, r := range p.Roles {
		if r == role || r == RoleAdmin {
			return true
		}
	}
	return false
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal the auth interceptor put in ctx.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
