package ctl

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// roleHelp names the roles for help text. The controller validates them.
const roleHelp = "admin, release-manager, tester, approver, operator, auditor"

func (a *app) newUserCommand() *cobra.Command {
	return group("user", "Manage operator users and their roles",
		`Users are the people (and tools) that call the controller. Each has one
or more roles: `+roleHelp+`. Admin holds every role; auditor is read-only,
plus reports and audit-log verification. A user authenticates with tokens
made by 'cairnctl token create'.`,
		`  cairnctl user create alice --role release-manager
  cairnctl token create --user alice
  cairnctl user set-roles alice tester approver
  cairnctl user disable alice`,
		a.newUserCreateCommand(),
		a.newUserListCommand(),
		a.newUserDisableCommand(),
		a.newUserEnableCommand(),
		a.newUserSetRolesCommand(),
	)
}

func (a *app) newUserCreateCommand() *cobra.Command {
	var roles []string
	cmd := &cobra.Command{
		Use:   "create NAME --role ROLE[,ROLE]",
		Short: "Create a user with roles",
		Long:  `Create makes a user NAME with the given roles (` + roleHelp + `).`,
		Example: `  cairnctl user create alice --role release-manager
  cairnctl user create ci --role operator,auditor`,
		Args: exactArgs("NAME"),
	}
	f := addFormat(cmd, formatTable, listFormats...)
	cmd.Flags().StringSliceVar(&roles, "role", nil, "roles, comma-separated or repeated: "+roleHelp)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := f.check(); err != nil {
			return err
		}
		if len(roles) == 0 {
			return usageErrorf("--role is required: one or more of %s", roleHelp)
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		u, err := controllerv1.NewUsersClient(cc).CreateUser(ctx, &controllerv1.CreateUserRequest{Name: args[0], Roles: roles})
		if err != nil {
			return rpcErr("create user "+args[0], err)
		}
		if f.name == formatTable {
			_, err := fmt.Fprintf(a.out, "user %s created with roles %s: make a token with 'cairnctl token create --user %s'\n", u.GetName(), strings.Join(u.GetRoles(), ","), u.GetName())
			return err
		}
		return printProto(a.out, f, u, nil)
	}
	return cmd
}

func (a *app) newUserListCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Long:  `List prints every user with roles, who created it and when.`,
		Example: `  cairnctl user list
  cairnctl user list -o json`,
		Args: noArgs,
	}
	f := addFormat(cmd, formatTable, listFormats...)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := f.check(); err != nil {
			return err
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		resp, err := controllerv1.NewUsersClient(cc).ListUsers(ctx, &controllerv1.ListUsersRequest{})
		if err != nil {
			return rpcErr("list users", err)
		}
		return printProto(a.out, f, resp, func(t *table) {
			t.row("NAME", "ROLES", "STATUS", "CREATED BY", "CREATED")
			for _, u := range resp.GetUsers() {
				status := "active"
				if u.GetDisabled() {
					status = "disabled"
				}
				t.row(u.GetName(), strings.Join(u.GetRoles(), ","), status, u.GetCreatedBy(), ago(a.now(), u.GetCreatedAt()))
			}
		})
	}
	return cmd
}

func (a *app) newUserDisableCommand() *cobra.Command {
	var revoke bool
	cmd := &cobra.Command{
		Use:   "disable NAME [--revoke-tokens]",
		Short: "Disable a user: every token of it is refused from the next call on",
		Long: `Disable refuses every token of user NAME from its next call on, on
connections already open too, saying who disabled the user and when.

Disabling suspends: 'cairnctl user enable NAME' makes the user's tokens that
are neither revoked nor expired work again. With --revoke-tokens every token
of the user is revoked as well, in the same step, so enabling the user
later brings none back. The last enabled admin cannot be disabled.`,
		Example: `  cairnctl user disable alice
  cairnctl user disable bob --revoke-tokens`,
		Args: exactArgs("NAME"),
	}
	f := addFormat(cmd, formatTable, listFormats...)
	cmd.Flags().BoolVar(&revoke, "revoke-tokens", false, "also revoke every token of the user, so enabling it brings none back")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return a.changeUser(cmd, f, "disable user "+args[0], func(c controllerv1.UsersClient, ctx context.Context) (*controllerv1.UserRecord, error) {
			return c.DisableUser(ctx, &controllerv1.DisableUserRequest{Name: args[0], RevokeTokens: revoke})
		}, func(u *controllerv1.UserRecord) string {
			msg := fmt.Sprintf("user %s disabled by %s at %s: its tokens are refused from their next call on", u.GetName(), u.GetDisabledBy(), u.GetDisabledAt())
			if revoke {
				return msg + ", and they are revoked"
			}
			return msg + "; 'cairnctl user enable " + u.GetName() + "' brings back those neither revoked nor expired"
		})
	}
	return cmd
}

func (a *app) newUserEnableCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "enable NAME",
		Short: "Enable a disabled user again",
		Long: `Enable lets user NAME call the controller again: its tokens that are
neither revoked nor expired work again from the next call on.`,
		Example: `  cairnctl user enable alice`,
		Args:    exactArgs("NAME"),
	}
	f := addFormat(cmd, formatTable, listFormats...)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return a.changeUser(cmd, f, "enable user "+args[0], func(c controllerv1.UsersClient, ctx context.Context) (*controllerv1.UserRecord, error) {
			return c.EnableUser(ctx, &controllerv1.EnableUserRequest{Name: args[0]})
		}, func(u *controllerv1.UserRecord) string {
			return fmt.Sprintf("user %s enabled: its tokens that are neither revoked nor expired work again", u.GetName())
		})
	}
	return cmd
}

func (a *app) newUserSetRolesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "set-roles NAME ROLE...",
		Short: "Replace a user's roles",
		Long: `Set-roles gives user NAME exactly the roles listed (` + roleHelp + `),
separated by spaces or commas, from its next call on. The last enabled admin
cannot lose the admin role: give another user the admin role first.`,
		Example: `  cairnctl user set-roles alice tester approver
  cairnctl user set-roles ci operator,auditor`,
		Args: minArgs("NAME", "ROLE"),
	}
	f := addFormat(cmd, formatTable, listFormats...)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var roles []string
		for _, arg := range args[1:] {
			for r := range strings.SplitSeq(arg, ",") {
				if r = strings.TrimSpace(r); r != "" {
					roles = append(roles, r)
				}
			}
		}
		if len(roles) == 0 {
			return usageErrorf("give one or more roles: %s", roleHelp)
		}
		return a.changeUser(cmd, f, "set roles of user "+args[0], func(c controllerv1.UsersClient, ctx context.Context) (*controllerv1.UserRecord, error) {
			return c.SetRoles(ctx, &controllerv1.SetRolesRequest{Name: args[0], Roles: roles})
		}, func(u *controllerv1.UserRecord) string {
			return fmt.Sprintf("user %s now has roles %s", u.GetName(), strings.Join(u.GetRoles(), ","))
		})
	}
	return cmd
}

// changeUser runs one call that changes a user and prints the user: the
// line summary returns for the table format, the record otherwise.
func (a *app) changeUser(cmd *cobra.Command, f *format, op string,
	call func(controllerv1.UsersClient, context.Context) (*controllerv1.UserRecord, error),
	summary func(*controllerv1.UserRecord) string) error {
	if err := f.check(); err != nil {
		return err
	}
	cc, ctx, cancel, err := a.client(cmd.Context())
	if err != nil {
		return err
	}
	defer cancel()
	u, err := call(controllerv1.NewUsersClient(cc), ctx)
	if err != nil {
		return rpcErr(op, err)
	}
	if f.name != formatTable {
		return printProto(a.out, f, u, nil)
	}
	_, err = fmt.Fprintln(a.out, summary(u))
	return err
}

func (a *app) newWhoAmICommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show the user and roles of the current token",
		Long:  `Whoami asks the controller who the configured token belongs to. It is the quickest check that --controller, --ca and --token work.`,
		Example: `  cairnctl whoami
  CAIRN_TOKEN=cairn_u_... cairnctl whoami -o json`,
		Args: noArgs,
	}
	f := addFormat(cmd, formatTable, listFormats...)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := f.check(); err != nil {
			return err
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		u, err := controllerv1.NewUsersClient(cc).WhoAmI(ctx, &controllerv1.WhoAmIRequest{})
		if err != nil {
			return rpcErr("whoami", err)
		}
		if f.name == formatTable {
			_, err := fmt.Fprintf(a.out, "user %s, roles %s, controller %s\n", u.GetName(), strings.Join(u.GetRoles(), ","), a.cfg.Controller)
			return err
		}
		return printProto(a.out, f, u, nil)
	}
	return cmd
}
