package ctl

import (
	"fmt"

	"github.com/spf13/cobra"

	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

func (a *app) newKnownErrorCommand() *cobra.Command {
	return group("knownerror", "Search the known errors that releases declare",
		`Releases declare known errors: an ID, a summary, the symptom, a workaround
and a status. These commands search them across every stored release.`,
		`  cairnctl knownerror list --open
  cairnctl knownerror list --release webshop@1.0.0`,
		a.newKnownErrorListCommand(),
	)
}

func (a *app) newKnownErrorListCommand() *cobra.Command {
	var open bool
	var release string
	cmd := &cobra.Command{
		Use:   "list [--open] [--release NAME[@VERSION]]",
		Short: "List known errors across releases",
		Long: `List prints the known errors of every release, or of the releases named by
--release (every version of NAME, or NAME@VERSION). --open leaves out the
ones whose status says they are fixed.`,
		Example: `  cairnctl knownerror list
  cairnctl knownerror list --open --release webshop -o json`,
		Args: noArgs,
	}
	f := addFormat(cmd, formatTable, listFormats...)
	cmd.Flags().BoolVar(&open, "open", false, "only known errors that are not fixed")
	cmd.Flags().StringVar(&release, "release", "", "only this release: NAME or NAME@VERSION")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := f.check(); err != nil {
			return err
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		resp, err := controllerv1.NewKnownErrorsClient(cc).ListKnownErrors(ctx, &controllerv1.ListKnownErrorsRequest{OpenOnly: open, Release: release})
		if err != nil {
			return rpcErr("list known errors", err)
		}
		if f.name == formatTable && len(resp.GetKnownErrors()) == 0 {
			_, err := fmt.Fprintln(a.out, "no known errors")
			return err
		}
		return printProto(a.out, f, resp, func(t *table) {
			t.row("RELEASE", "ID", "STATUS", "SUMMARY", "WORKAROUND")
			for _, k := range resp.GetKnownErrors() {
				t.row(k.GetRelease(), k.GetId(), k.GetStatus(), k.GetSummary(), k.GetWorkaround())
			}
		})
	}
	return cmd
}
