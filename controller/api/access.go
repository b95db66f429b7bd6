package api

import (
	"cmp"
	"context"
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

// This file takes access away: tokens are listed and revoked, users
// disabled, enabled and given other roles. The authenticator reads the
// token and its user on every call, so each change here holds from the
// next call on, on every connection. Each change and its audit-log entry
// commit in one transaction.
//
// Two guards keep the controller administrable: the last enabled admin
// cannot be disabled or lose the admin role, and the last working token of
// the enabled admins cannot be revoked.

func (s *users) ListTokens(ctx context.Context, req *controllerv1.ListTokensRequest) (*controllerv1.ListTokensResponse, error) {
	resp, err := s.listTokens(ctx, req)
	return resp, s.rpcError("ListTokens", err)
}

func (s *users) listTokens(ctx context.Context, req *controllerv1.ListTokensRequest) (*controllerv1.ListTokensResponse, error) {
	if err := checkOptional("user", limits.UserName, req.GetUser()); err != nil {
		return nil, err
	}
	now := s.Now()
	resp := &controllerv1.ListTokensResponse{}
	err := s.Store.View(ctx, func(tx store.Tx) error {
		if u := req.GetUser(); u != "" {
			if _, err := tx.User(u); err != nil {
				return fmt.Errorf("user %s: %w", u, err)
			}
		}
		tokens, users, err := tokensAndUsers(tx)
		if err != nil {
			return err
		}
		for _, t := range tokens {
			if req.GetUser() != "" && t.GetUser() != req.GetUser() {
				continue
			}
			resp.Tokens = append(resp.Tokens, tokenView(t, users[t.GetUser()], now))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// tokensAndUsers returns every token, by user, then creation time, then
// ID, and every user by name.
func tokensAndUsers(tx store.Tx) ([]*controllerv1.APITokenRecord, map[string]*controllerv1.UserRecord, error) {
	tokens, err := tx.APITokens()
	if err != nil {
		return nil, nil, err
	}
	slices.SortFunc(tokens, func(a, b *controllerv1.APITokenRecord) int {
		return cmp.Or(strings.Compare(a.GetUser(), b.GetUser()), strings.Compare(a.GetCreatedAt(), b.GetCreatedAt()), strings.Compare(a.GetId(), b.GetId()))
	})
	list, err := tx.Users()
	if err != nil {
		return nil, nil, err
	}
	users := make(map[string]*controllerv1.UserRecord, len(list))
	for _, u := range list {
		users[u.GetName()] = u
	}
	return tokens, users, nil
}

// tokenView is what the API shows of a token: everything but its hash,
// and its state at now. A token whose user no longer exists is shown as
// revoked: nothing can make it work again.
func tokenView(t *controllerv1.APITokenRecord, u *controllerv1.UserRecord, now time.Time) *controllerv1.APIToken {
	v := &controllerv1.APIToken{
		Id: t.GetId(), User: t.GetUser(), CreatedBy: t.GetCreatedBy(), CreatedAt: t.GetCreatedAt(),
		ExpiresAt: t.GetExpiresAt(), Issuers: t.GetIssuers(), RevokedAt: t.GetRevokedAt(), RevokedBy: t.GetRevokedBy(),
		LastUsedAt: t.GetLastUsedAt(),
	}
	expired, err := auth.TokenExpired(t, now)
	switch {
	case t.GetRevokedAt() != "" || u == nil:
		v.State = controllerv1.APIToken_STATE_REVOKED
	case expired || err != nil:
		v.State = controllerv1.APIToken_STATE_EXPIRED
	case u.GetDisabled():
		v.State = controllerv1.APIToken_STATE_USER_DISABLED
	default:
		v.State = controllerv1.APIToken_STATE_ACTIVE
	}
	return v
}

func (s *users) RevokeToken(ctx context.Context, req *controllerv1.RevokeTokenRequest) (*controllerv1.RevokeTokenResponse, error) {
	resp, err := s.revokeToken(ctx, req)
	return resp, s.rpcError("RevokeToken", err)
}

func (s *users) revokeToken(ctx context.Context, req *controllerv1.RevokeTokenRequest) (*controllerv1.RevokeTokenResponse, error) {
	switch {
	case len(req.GetIds()) == 0 && req.GetUser() == "":
		return nil, invalid("ids", "name the tokens to revoke by ID, or a user whose tokens to revoke")
	case len(req.GetIds()) > 0 && req.GetUser() != "":
		return nil, invalid("user", "give either token IDs or a user, not both")
	}
	if err := checkList("ids", limits.ObjectID, req.GetIds()); err != nil {
		return nil, err
	}
	if err := checkOptional("user", limits.UserName, req.GetUser()); err != nil {
		return nil, err
	}
	now := s.Now()
	by := actor(ctx)
	resp := &controllerv1.RevokeTokenResponse{}
	err := s.Store.Update(ctx, func(tx store.Tx) error {
		tokens, users, err := tokensAndUsers(tx)
		if err != nil {
			return err
		}
		var revoke []*controllerv1.APITokenRecord
		if u := req.GetUser(); u != "" {
			if users[u] == nil {
				return fmt.Errorf("user %s: %w", u, store.ErrNotFound)
			}
			for _, t := range tokens {
				if t.GetUser() == u && t.GetRevokedAt() == "" {
					revoke = append(revoke, t)
				}
			}
		} else {
			byID := make(map[string]*controllerv1.APITokenRecord, len(tokens))
			for _, t := range tokens {
				byID[t.GetId()] = t
			}
			for _, id := range req.GetIds() {
				t := byID[id]
				switch {
				case t == nil:
					return fmt.Errorf("token %s: %w: nothing was revoked (list tokens with 'cairnctl token list')", id, store.ErrNotFound)
				case t.GetRevokedAt() == "" && !slices.Contains(revoke, t):
					revoke = append(revoke, t)
				}
			}
		}
		for _, t := range revoke {
			t.RevokedAt, t.RevokedBy = stamp.Format(now), by
		}
		if err := checkAdminsRemain(tokens, users, now); err != nil {
			return err
		}
		for _, t := range revoke {
			if err := tx.PutAPIToken(t); err != nil {
				return fmt.Errorf("store token %s: %w", t.GetId(), err)
			}
			if _, err := auditlog.Append(tx, now, by, "token.revoke", "token/"+t.GetId(), map[string]string{"user": t.GetUser()}); err != nil {
				return err
			}
			resp.Revoked = append(resp.Revoked, tokenView(t, users[t.GetUser()], now))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func (s *users) DisableUser(ctx context.Context, req *controllerv1.DisableUserRequest) (*controllerv1.UserRecord, error) {
	u, err := s.changeUser(ctx, req.GetName(), func(u *controllerv1.UserRecord, now time.Time, by string) (string, map[string]string) {
		if u.GetDisabled() {
			return "", nil
		}
		u.Disabled, u.DisabledBy, u.DisabledAt = true, by, stamp.Format(now)
		return "user.disable", nil
	}, req.GetRevokeTokens())
	return u, s.rpcError("DisableUser", err)
}

func (s *users) EnableUser(ctx context.Context, req *controllerv1.EnableUserRequest) (*controllerv1.UserRecord, error) {
	u, err := s.changeUser(ctx, req.GetName(), func(u *controllerv1.UserRecord, _ time.Time, _ string) (string, map[string]string) {
		if !u.GetDisabled() {
			return "", nil
		}
		details := map[string]string{"disabled_by": u.GetDisabledBy(), "disabled_at": u.GetDisabledAt()}
		u.Disabled, u.DisabledBy, u.DisabledAt = false, "", ""
		return "user.enable", details
	}, false)
	return u, s.rpcError("EnableUser", err)
}

func (s *users) SetRoles(ctx context.Context, req *controllerv1.SetRolesRequest) (*controllerv1.UserRecord, error) {
	roles, err := checkRoles(req.GetRoles())
	if err != nil {
		return nil, s.rpcError("SetRoles", err)
	}
	u, err := s.changeUser(ctx, req.GetName(), func(u *controllerv1.UserRecord, _ time.Time, _ string) (string, map[string]string) {
		if slices.Equal(u.GetRoles(), roles) {
			return "", nil
		}
		details := map[string]string{"roles": strings.Join(roles, ","), "previous_roles": strings.Join(u.GetRoles(), ",")}
		u.Roles = roles
		return "user.set-roles", details
	}, false)
	return u, s.rpcError("SetRoles", err)
}

// changeUser applies change to the named user in one transaction: change
// returns the audit-log action and details, or "" when the user is
// already as asked (then nothing is written). revokeTokens also revokes
// every token of the user. A change that would leave no enabled admin, or
// no working token of one, is refused and nothing is written.
func (s *users) changeUser(ctx context.Context, name string, change func(u *controllerv1.UserRecord, now time.Time, by string) (string, map[string]string), revokeTokens bool) (*controllerv1.UserRecord, error) {
	if err := checkText("name", limits.UserName, name); err != nil {
		return nil, err
	}
	now := s.Now()
	by := actor(ctx)
	var out *controllerv1.UserRecord
	err := s.Store.Update(ctx, func(tx store.Tx) error {
		tokens, users, err := tokensAndUsers(tx)
		if err != nil {
			return err
		}
		u := users[name]
		if u == nil {
			return fmt.Errorf("user %s: %w", name, store.ErrNotFound)
		}
		action, details := change(u, now, by)
		var revoked []*controllerv1.APITokenRecord
		if revokeTokens {
			for _, t := range tokens {
				if t.GetUser() == name && t.GetRevokedAt() == "" {
					t.RevokedAt, t.RevokedBy = stamp.Format(now), by
					revoked = append(revoked, t)
				}
			}
		}
		out = u
		if action == "" && len(revoked) == 0 {
			return nil
		}
		if err := checkAdminsRemain(tokens, users, now); err != nil {
			return err
		}
		if action != "" {
			if err := tx.PutUser(u); err != nil {
				return fmt.Errorf("store user %s: %w", name, err)
			}
			if _, err := auditlog.Append(tx, now, by, action, "user/"+name, details); err != nil {
				return err
			}
		}
		for _, t := range revoked {
			if err := tx.PutAPIToken(t); err != nil {
				return fmt.Errorf("store token %s: %w", t.GetId(), err)
			}
			if _, err := auditlog.Append(tx, now, by, "token.revoke", "token/"+t.GetId(), map[string]string{"user": name}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// checkAdminsRemain refuses a change (already applied to users and
// tokens, not yet stored) after which no enabled user holds the admin
// role, or none of them holds a token that works: nobody could manage
// users and tokens any more.
func checkAdminsRemain(tokens []*controllerv1.APITokenRecord, users map[string]*controllerv1.UserRecord, now time.Time) error {
	var admins []string
	for name, u := range users {
		if !u.GetDisabled() && slices.Contains(u.GetRoles(), auth.RoleAdmin) {
			admins = append(admins, name)
		}
	}
	if len(admins) == 0 {
		return fmt.Errorf("%w: this would leave no enabled user with the admin role: give another user the admin role first ('cairnctl user set-roles NAME admin')", ErrPrecondition)
	}
	for _, t := range tokens {
		if !slices.Contains(admins, t.GetUser()) || t.GetRevokedAt() != "" {
			continue
		}
		if expired, err := auth.TokenExpired(t, now); err == nil && !expired {
			return nil
		}
	}
	slices.Sort(admins)
	return fmt.Errorf("%w: this would leave no enabled admin (%s) with a token that works: create a new admin token first ('cairnctl token create --user %s')", ErrPrecondition, strings.Join(admins, ", "), admins[0])
}
