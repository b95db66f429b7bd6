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
	return group("token", "Make API tokens for users",
		`An API token authenticates a user to the controller (cairnctl --token or
CAIRN_TOKEN). It is shown once; the controller keeps only its hash.`,
		`  cairnctl token create --user alice --ttl 720h`,
		a.newTokenCreateCommand())
}

func (a *app) newTokenCreateCommand() *cobra.Command {
	var (
		user string
		ttl  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "create --user NAME [--ttl DURATION]",
		Short: "Create a token for a user (shown once)",
		Long: `Create makes a new API token for --user, valid for --ttl (default: until
revoked; at most 400 days). The token alone goes to standard output, so a
script can capture it; its ID and expiry go to standard error. It is shown
only this once.

The token records you (and whoever issued your own token) as its issuers.
The audit log names them with everything the token does ("user:ap2 (token
issued by admin1)"), and separation of duties counts its steps as
possibly yours: an admin who authored a release cannot approve it through
a token they made for an approver.`,
		Example: `  cairnctl token create --user alice
  export CAIRN_TOKEN=$(cairnctl token create --user ci --ttl 24h)`,
		Args: noArgs,
	}
	f := addFormat(cmd, formatTable, listFormats...)
	cmd.Flags().StringVar(&user, "user", "", "the user the token authenticates (required)")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "how long the token is valid (0: until revoked; at most 400 days)")
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
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		resp, err := controllerv1.NewUsersClient(cc).CreateToken(ctx, &controllerv1.CreateTokenRequest{User: user, TtlSeconds: int64(ttl / time.Second)})
		if err != nil {
			return rpcErr("create token for "+user, err)
		}
		if f.name != formatTable {
			return printProto(a.out, f, resp, nil)
		}
		expires := resp.GetExpiresAt()
		if expires == "" {
			expires = "never"
		}
		fmt.Fprintf(a.errOut, "token %s for user %s, expires %s; shown once, store it now\n", resp.GetId(), user, expires)
		if len(resp.GetIssuers()) > 0 {
			fmt.Fprintf(a.errOut, "issued by %s: what %s does with it counts for separation of duties as possibly done by them too, and the audit log says so\n",
				strings.Join(resp.GetIssuers(), " via "), user)
		}
		_, err = fmt.Fprintln(a.out, resp.GetToken())
		return err
	}
	return cmd
}
