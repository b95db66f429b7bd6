package ctl

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-ops/cairn/internal/limits"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

func (a *app) newTokenCommand() *cobra.Command {
	return group("token", "Make, list and revoke API tokens for users",
		`An API token authenticates a user to the controller (cairnctl --token or
CAIRN_TOKEN). It is shown once; the controller keeps only its hash. A token
works until it expires or an admin revokes it; the controller checks both
at every call, so a revoked token is refused from the next call on.`,
		`  cairnctl token create --user alice --ttl 720h
  cairnctl token list --user alice
  cairnctl token revoke tok_0123456789abcdef`,
		a.newTokenCreateCommand(),
		a.newTokenListCommand(),
		a.newTokenRevokeCommand())
}

func (a *app) newTokenCreateCommand() *cobra.Command {
	var (
		user    string
		ttl     time.Duration
		expires string
	)
	cmd := &cobra.Command{
		Use:   "create --user NAME [--ttl DURATION | --expires TIME]",
		Short: "Create a token for a user (shown once)",
		Long: `Create makes a new API token for --user, valid for --ttl or until --expires
(an RFC 3339 time); with neither, until an admin revokes it ('cairnctl
token revoke'). An expiry is at most 400 days ahead. The token alone goes
to standard output, so a script can capture it; its ID and expiry go to
standard error. It is shown only this once.

The token records you (and whoever issued your own token) as its issuers.
The audit log names them with everything the token does ("user:ap2 (token
issued by admin1)"), and separation of duties counts its steps as
possibly yours: an admin who authored a release cannot approve it through
a token they made for an approver.`,
		Example: `  cairnctl token create --user alice
  cairnctl token create --user auditor-2026 --expires 2026-12-31T23:59:59Z
  export CAIRN_TOKEN=$(cairnctl token create --user ci --ttl 24h)`,
		Args: noArgs,
	}
	f := addFormat(cmd, formatTable, listFormats...)
	cmd.Flags().StringVar(&user, "user", "", "the user the token authenticates (required)")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "how long the token is valid (0: until revoked; at most 400 days)")
	cmd.Flags().StringVar(&expires, "expires", "", "when the token expires, RFC 3339 (2026-12-31T23:59:59Z); instead of --ttl")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := f.check(); err != nil {
			return err
		}
		if user == "" {
			return usageErrorf("--user is required: name the user the token is for")
		}
		if ttl < 0 {
			return usageErrorf("--ttl %s: give a positive duration, or 0 for no expiry", ttl)
		}
		if ttl > limits.APITokenTTL {
			return usageErrorf("--ttl %s: at most %s (%d days), or 0 for no expiry", ttl, limits.APITokenTTL, limits.APITokenTTL/(24*time.Hour))
		}
		if expires != "" {
			if ttl != 0 {
				return usageErrorf("--ttl and --expires: give one of them")
			}
			if _, err := time.Parse(time.RFC3339, expires); err != nil {
				return usageErrorf("--expires %q: want an RFC 3339 time such as 2026-12-31T23:59:59Z", expires)
			}
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		resp, err := controllerv1.NewUsersClient(cc).CreateToken(ctx, &controllerv1.CreateTokenRequest{User: user, TtlSeconds: int64(ttl / time.Second), ExpiresAt: expires})
		if err != nil {
			return rpcErr("create token for "+user, err)
		}
		if f.name != formatTable {
			return printProto(a.out, f, resp, nil)
		}
		fmt.Fprintf(a.errOut, "token %s for user %s, expires %s; shown once, store it now\n", resp.GetId(), user, orNever(resp.GetExpiresAt()))
		if len(resp.GetIssuers()) > 0 {
			fmt.Fprintf(a.errOut, "issued by %s: what %s does with it counts for separation of duties as possibly done by them too, and the audit log says so\n",
				strings.Join(resp.GetIssuers(), " via "), user)
		}
		_, err = fmt.Fprintln(a.out, resp.GetToken())
		return err
	}
	return cmd
}

func (a *app) newTokenListCommand() *cobra.Command {
	var user string
	cmd := &cobra.Command{
		Use:   "list [--user NAME]",
		Short: "List API tokens: who holds them, who issued them, their state",
		Long: `List prints every API token (or --user's): its ID, user, state (active,
expired, revoked, or user-disabled: it works again when the user is
enabled), who issued it, when it was created, when it expires, when it last
authenticated a call (to the minute), and who revoked it. Never the token
itself: the controller keeps only its hash. Admins and auditors may list.`,
		Example: `  cairnctl token list
  cairnctl token list --user alice -o json`,
		Args: noArgs,
	}
	f := addFormat(cmd, formatTable, listFormats...)
	cmd.Flags().StringVar(&user, "user", "", "only this user's tokens")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := f.check(); err != nil {
			return err
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		resp, err := controllerv1.NewUsersClient(cc).ListTokens(ctx, &controllerv1.ListTokensRequest{User: user})
		if err != nil {
			return rpcErr("list tokens", err)
		}
		return printProto(a.out, f, resp, func(t *table) {
			t.row("ID", "USER", "STATE", "ISSUED BY", "CREATED", "EXPIRES", "LAST USED", "REVOKED")
			for _, tok := range resp.GetTokens() {
				t.row(tok.GetId(), tok.GetUser(), tokenState(tok.GetState()), tok.GetCreatedBy(), ago(a.now(), tok.GetCreatedAt()),
					ago(a.now(), tok.GetExpiresAt()), ago(a.now(), tok.GetLastUsedAt()), a.revocation(tok))
			}
		})
	}
	return cmd
}

func (a *app) newTokenRevokeCommand() *cobra.Command {
	var user string
	cmd := &cobra.Command{
		Use:   "revoke (ID... | --user NAME)",
		Short: "Revoke API tokens: refused from the next call on",
		Long: `Revoke revokes the tokens with the given IDs ('cairnctl token list' shows
them), or every token of --user. The controller refuses a revoked token
from its next call on, on connections already open too, saying who
revoked it and when. A revoked token never works again: make a new one
with 'cairnctl token create'. Revoking is all or nothing: an unknown ID
revokes none. The last token that works of the last enabled admin cannot
be revoked.`,
		Example: `  cairnctl token revoke tok_0123456789abcdef
  cairnctl token revoke --user alice`,
	}
	f := addFormat(cmd, formatTable, listFormats...)
	cmd.Flags().StringVar(&user, "user", "", "revoke every token of this user")
	cmd.RunE = func(cmd *cobra.Command, ids []string) error {
		if err := f.check(); err != nil {
			return err
		}
		switch {
		case len(ids) == 0 && user == "":
			return usageErrorf("name the tokens to revoke by ID ('cairnctl token list'), or --user NAME for all of a user's")
		case len(ids) > 0 && user != "":
			return usageErrorf("give token IDs or --user, not both")
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		what := "revoke tokens of user " + user
		if user == "" {
			what = "revoke token " + strings.Join(ids, ", ")
		}
		resp, err := controllerv1.NewUsersClient(cc).RevokeToken(ctx, &controllerv1.RevokeTokenRequest{Ids: ids, User: user})
		if err != nil {
			return rpcErr(what, err)
		}
		if f.name != formatTable {
			return printProto(a.out, f, resp, nil)
		}
		if len(resp.GetRevoked()) == 0 {
			_, err := fmt.Fprintln(a.out, "no token revoked: each was revoked before")
			return err
		}
		for _, tok := range resp.GetRevoked() {
			if _, err := fmt.Fprintf(a.out, "token %s of user %s revoked: refused from its next call on\n", tok.GetId(), tok.GetUser()); err != nil {
				return err
			}
		}
		return nil
	}
	return cmd
}

// tokenState renders a token's state for the table: "active", "expired",
// "revoked", "user-disabled".
func tokenState(s controllerv1.APIToken_State) string {
	return strings.ReplaceAll(enumName(s), "_", "-")
}

// revocation renders who revoked a token and when, or "" (printed "-").
func (a *app) revocation(tok *controllerv1.APIToken) string {
	if tok.GetRevokedAt() == "" {
		return ""
	}
	return ago(a.now(), tok.GetRevokedAt()) + " by " + tok.GetRevokedBy()
}

// orNever is s, or "never" for an empty expiry.
func orNever(s string) string {
	if s == "" {
		return "never"
	}
	return s
}
