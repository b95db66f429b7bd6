package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cairn-ops/cairn/controller/auditlog"
	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/limits"
	"github.com/cairn-ops/cairn/internal/stamp"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

type users struct {
	controllerv1.UnimplementedUsersServer
	*base
}

func (s *users) CreateUser(ctx context.Context, req *controllerv1.CreateUserRequest) (*controllerv1.UserRecord, error) {
	u, err := s.createUser(ctx, req)
	return u, s.rpcError("CreateUser", err)
}

func (s *users) createUser(ctx context.Context, req *controllerv1.CreateUserRequest) (*controllerv1.UserRecord, error) {
	if err := checkText("name", limits.UserName, req.GetName()); err != nil {
		return nil, err
	}
	roles, err := checkRoles(req.GetRoles())
	if err != nil {
		return nil, err
	}
	now := s.Now()
	u := &controllerv1.UserRecord{Name: req.GetName(), Roles: roles, CreatedBy: actor(ctx), CreatedAt: stamp.Format(now)}
	err = s.Store.Update(ctx, func(tx store.Tx) error {
		_, err := tx.User(u.Name)
		switch {
		case err == nil:
			return fmt.Errorf("user %s: %w", u.Name, ErrExists)
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if err := tx.PutUser(u); err != nil {
			return fmt.Errorf("store user %s: %w", u.Name, err)
		}
		_, err = auditlog.Append(tx, now, u.CreatedBy, "user.create", "user/"+u.Name,
			map[string]string{"roles": strings.Join(roles, ",")})
		return err
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// checkRoles validates a user's roles and drops repeats, keeping the
// order given.
func checkRoles(given []string) ([]string, error) {
	if len(given) == 0 {
		return nil, invalid("roles", "give at least one role (%s)", strings.Join(auth.Roles, ", "))
	}
	var roles []string
	for _, r := range given {
		if !auth.ValidRole(r) {
			return nil, invalid("roles", "unknown role %q (want one of %s)", r, strings.Join(auth.Roles, ", "))
		}
		if !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	return roles, nil
}

func (s *users) ListUsers(ctx context.Context, _ *controllerv1.ListUsersRequest) (*controllerv1.ListUsersResponse, error) {
	var out []*controllerv1.UserRecord
	err := s.Store.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.Users()
		return err
	})
	if err != nil {
		return nil, s.rpcError("ListUsers", err)
	}
	return &controllerv1.ListUsersResponse{Users: out}, nil
}

func (s *users) CreateToken(ctx context.Context, req *controllerv1.CreateTokenRequest) (*controllerv1.CreateTokenResponse, error) {
	resp, err := s.createToken(ctx, req)
	return resp, s.rpcError("CreateToken", err)
}

func (s *users) createToken(ctx context.Context, req *controllerv1.CreateTokenRequest) (*controllerv1.CreateTokenResponse, error) {
	if req.GetUser() == "" {
		return nil, invalid("user", "a user name is required")
	}
	if err := checkText("user", limits.UserName, req.GetUser()); err != nil {
		return nil, err
	}
	now := s.Now()
	expires, err := tokenExpiry(req, now)
	if err != nil {
		return nil, err
	}
	token, err := auth.NewToken(auth.TokenUser)
	if err != nil {
		return nil, err
	}
	id, err := newID("tok_")
	if err != nil {
		return nil, err
	}
	issuers, err := tokenIssuers(ctx, req.GetUser())
	if err != nil {
		return nil, err
	}
	rec := &controllerv1.APITokenRecord{
		Id:        id,
		User:      req.GetUser(),
		TokenHash: auth.HashToken(token),
		CreatedBy: actor(ctx),
		CreatedAt: stamp.Format(now),
		Issuers:   issuers,
	}
	if !expires.IsZero() {
		rec.ExpiresAt = stamp.Format(expires)
	}
	err = s.Store.Update(ctx, func(tx store.Tx) error {
		u, err := tx.User(rec.User)
		if err != nil {
			return fmt.Errorf("user %s: %w", rec.User, err)
		}
		if u.GetDisabled() {
			return fmt.Errorf("%w: user %s is disabled", ErrPrecondition, u.GetName())
		}
		if err := tx.PutAPIToken(rec); err != nil {
			return fmt.Errorf("store token %s: %w", id, err)
		}
		details := map[string]string{"token_id": id}
		if rec.ExpiresAt != "" {
			details["expires_at"] = rec.ExpiresAt
		}
		if len(rec.Issuers) > 0 {
			details["issuers"] = strings.Join(rec.Issuers, ",")
		}
		_, err = auditlog.Append(tx, now, rec.CreatedBy, "token.create", "user/"+rec.User, details)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &controllerv1.CreateTokenResponse{Token: token, Id: id, ExpiresAt: rec.ExpiresAt, Issuers: rec.Issuers}, nil
}

// maxTokenTTLText names limits.APITokenTTL in messages.
var maxTokenTTLText = fmt.Sprintf("%s (%d days)", limits.APITokenTTL, limits.APITokenTTL/(24*time.Hour))

// tokenExpiry is when a token CreateToken makes expires: now plus
// ttl_seconds, or expires_at, or never (the zero time) when neither is
// given. Both at once, an expiry that has passed or one further than
// limits.APITokenTTL ahead are refused.
func tokenExpiry(req *controllerv1.CreateTokenRequest, now time.Time) (time.Time, error) {
	ttl, err := checkSeconds("ttl_seconds", req.GetTtlSeconds(), limits.APITokenTTL, maxTokenTTLText)
	if err != nil {
		return time.Time{}, err
	}
	at := req.GetExpiresAt()
	switch {
	case at != "" && ttl > 0:
		return time.Time{}, invalid("expires_at", "give either ttl_seconds or expires_at, not both")
	case ttl > 0:
		return now.Add(ttl), nil
	case at == "":
		return time.Time{}, nil
	}
	if err := checkText("expires_at", limits.Word, at); err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	switch {
	case err != nil:
		return time.Time{}, invalid("expires_at", "%q is not an RFC 3339 time (2026-01-02T15:04:05Z)", at)
	case !t.After(now):
		return time.Time{}, invalid("expires_at", "%s has passed (the controller's time is %s)", at, stamp.Format(now))
	case t.Sub(now) > limits.APITokenTTL:
		return time.Time{}, invalid("expires_at", "%s is more than the maximum of %s ahead", at, maxTokenTTLText)
	}
	return t, nil
}

// tokenIssuers returns the issuers of a token the caller in ctx creates
// for user: the caller, then the issuers of the caller's own token,
// without user and without repeats. Whoever holds the caller's token can
// hold the new one, so separation of duties must see all of them
// (controller/release). A chain longer than limits.IssuerChain is
// refused.
func tokenIssuers(ctx context.Context, user string) ([]string, error) {
	p, _ := auth.FromContext(ctx)
	var out []string
	for _, u := range append([]string{p.User}, p.Issuers...) {
		if u != "" && u != user && !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	if len(out) > limits.IssuerChain {
		return nil, fmt.Errorf("%w: a token for %s would be issued through %d users (%s), more than %d: create it with the token of an admin whose own token names fewer issuers (init's first admin token names none)",
			ErrPrecondition, user, len(out), strings.Join(out, ", "), limits.IssuerChain)
	}
	return out, nil
}

func (s *users) WhoAmI(ctx context.Context, _ *controllerv1.WhoAmIRequest) (*controllerv1.UserRecord, error) {
	p, _ := auth.FromContext(ctx)
	if p.User == "" {
		return nil, s.rpcError("WhoAmI", fmt.Errorf("%w: the caller is not a user", ErrPrecondition))
	}
	var u *controllerv1.UserRecord
	err := s.Store.View(ctx, func(tx store.Tx) error {
		var err error
		if u, err = tx.User(p.User); err != nil {
			return fmt.Errorf("user %s: %w", p.User, err)
		}
		return nil
	})
	return u, s.rpcError("WhoAmI", err)
}
