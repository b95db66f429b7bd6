package auth

import "context"

// Principal is who is calling: an operator (a user with roles, from a
// bearer token) or a node (from its client certificate).
type Principal struct {
	User   string
	Roles  []string
	NodeID string
}

// Actor names the principal in the audit log: "user:NAME", "node:ID", or
// "anonymous" for the open methods.
func (p Principal) Actor() string {
	switch {
	case p.User != "":
		return "user:" + p.User
	case p.NodeID != "":
		return "node:" + p.NodeID
	default:
		return "anonymous"
	}
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
