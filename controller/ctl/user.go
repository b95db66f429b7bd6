package ctl

import (
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
  cairnctl token create --user alice`,
		a.newUserCreateCommand(),
		a.newUserListCommand(),
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
