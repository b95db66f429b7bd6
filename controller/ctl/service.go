package ctl

import (
	"fmt"

	"github.com/spf13/cobra"

	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

func (a *app) newServiceCommand() *cobra.Command {
	return group("service", "Manage services: named groups of nodes (CIs)",
		`A service is a configuration item grouping the nodes whose labels match its
selector, e.g. the web servers of the shop. Drift and reports filter by
service.`,
		`  cairnctl service create shop --selector app=shop --description "web shop"
  cairnctl cms drift --service shop`,
		a.newServiceCreateCommand(),
		a.newServiceListCommand(),
		a.newServiceDeleteCommand(),
	)
}

func (a *app) newServiceCreateCommand() *cobra.Command {
	var (
		selector    []string
		description string
	)
	cmd := &cobra.Command{
		Use:     "create NAME --selector k=v,...",
		Short:   "Create a service",
		Long:    `Create makes a service NAME grouping the nodes whose labels match every k=v of --selector.`,
		Example: `  cairnctl service create shop --selector app=shop,env=prod --description "web shop"`,
		Args:    exactArgs("NAME"),
	}
	f := addFormat(cmd, formatTable, listFormats...)
	cmd.Flags().StringArrayVar(&selector, "selector", nil, describePairs("labels of the service's nodes (required)"))
	cmd.Flags().StringVar(&description, "description", "", "what the service is")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := f.check(); err != nil {
			return err
		}
		sel, err := parsePairs("--selector", splitPairs(selector), false)
		if err != nil {
			return err
		}
		if len(sel) == 0 {
			return usageErrorf("--selector is required: give the labels of the service's nodes, e.g. --selector app=shop")
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		s, err := controllerv1.NewServicesClient(cc).CreateService(ctx, &controllerv1.CreateServiceRequest{Name: args[0], Selector: sel, Description: description})
		if err != nil {
			return rpcErr("create service "+args[0], err)
		}
		if f.name == formatTable {
			_, err := fmt.Fprintf(a.out, "service %s created: selector %s\n", s.GetName(), kvList(s.GetSelector()))
			return err
		}
		return printProto(a.out, f, s, nil)
	}
	return cmd
}

func (a *app) newServiceListCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List services",
		Long:  `List prints every service with its selector and description.`,
		Example: `  cairnctl service list
  cairnctl service list -o yaml`,
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
		resp, err := controllerv1.NewServicesClient(cc).ListServices(ctx, &controllerv1.ListServicesRequest{})
		if err != nil {
			return rpcErr("list services", err)
		}
		return printProto(a.out, f, resp, func(t *table) {
			t.row("NAME", "SELECTOR", "DESCRIPTION", "CREATED BY", "CREATED")
			for _, s := range resp.GetServices() {
				t.row(s.GetName(), kvList(s.GetSelector()), s.GetDescription(), s.GetCreatedBy(), ago(a.now(), s.GetCreatedAt()))
			}
		})
	}
	return cmd
}

func (a *app) newServiceDeleteCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "delete NAME",
		Short:   "Delete a service",
		Long:    `Delete removes a service. Its nodes are not touched.`,
		Example: `  cairnctl service delete shop`,
		Args:    exactArgs("NAME"),
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		if _, err := controllerv1.NewServicesClient(cc).DeleteService(ctx, &controllerv1.DeleteServiceRequest{Name: args[0]}); err != nil {
			return rpcErr("delete service "+args[0], err)
		}
		_, err = fmt.Fprintf(a.out, "service %s deleted\n", args[0])
		return err
	}
	return cmd
}
