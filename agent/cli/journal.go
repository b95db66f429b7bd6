package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-ops/cairn/agent/journal"
)

func newJournalCommand(s *streams) *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "journal",
		Short: "Read the step journal and resolve interrupted steps",
		Long: `The journal (DATA/journal.db) records every step of every deployment this
agent ran: pending, running, succeeded, failed, skipped or interrupted.

A step is interrupted when the agent stopped (crashed, was killed) while
the step ran and its plugin is not idempotent: it may or may not have
taken effect, so the agent never runs it again on its own. Check the
host, then tell the agent what happened with 'journal resolve'.

Environment: CAIRN_AGENT_DATA_DIR stands in for --data-dir.`,
		Args: cobra.NoArgs,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if v := os.Getenv("CAIRN_AGENT_DATA_DIR"); v != "" && !cmd.Flags().Changed("data-dir") {
				dataDir = v
			}
			return nil
		},
	}
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", DefaultDataDir, "the agent's state directory (holds the journal)")
	open := func() (*journal.Journal, error) {
		if _, err := os.Stat(dataDir); err != nil {
			return nil, fmt.Errorf("--data-dir %s: %w", dataDir, err)
		}
		return journal.Open(dataDir, journal.Options{})
	}
	cmd.AddCommand(newJournalListCommand(s, open), newJournalShowCommand(s, open), newJournalResolveCommand(s, open))
	return cmd
}

type openJournal func() (*journal.Journal, error)

func newJournalListCommand(s *streams, open openJournal) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the journaled deployments, newest first",
		Long: `List prints every journaled deployment, newest first: its ID, the
controller's deploy command it belongs to ("-" for a local apply), the
release, the root, its state and when it started.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("unknown output format %q: use text or json", output)
			}
			j, err := open()
			if err != nil {
				return err
			}
			defer j.Close()
			ds, err := j.Deployments(cmd.Context())
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(s.out, struct {
					Deployments []journal.Deployment `json:"deployments"`
				}{ds})
			}
			tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DEPLOYMENT\tCOMMAND\tRELEASE\tROOT\tSTATE\tSTARTED")
			for _, d := range ds {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", shortID(d.ID), orDash(d.CommandID), d.Manifest, d.Root, d.State, d.StartedAt.Local().Format(time.DateTime))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func newJournalShowCommand(s *streams, open openJournal) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "show DEPLOYMENT",
		Short: "Show a deployment's steps (DEPLOYMENT may be a unique prefix of its ID)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("unknown output format %q: use text or json", output)
			}
			j, err := open()
			if err != nil {
				return err
			}
			defer j.Close()
			return showDeployment(cmd.Context(), s, j, args[0], output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func showDeployment(ctx context.Context, s *streams, j *journal.Journal, id, output string) error {
	d, err := j.Deployment(ctx, id)
	if err != nil {
		return err
	}
	steps, err := j.Steps(ctx, d.ID)
	if err != nil {
		return err
	}
	for i := range steps {
		steps[i].RollbackRecord = nil
	}
	if output == "json" {
		return writeJSON(s.out, struct {
			Deployment journal.Deployment `json:"deployment"`
			Steps      []journal.Step     `json:"steps"`
		}{d, steps})
	}
	fmt.Fprintf(s.out, "deployment %s\ncommand    %s\nrelease    %s\nroot       %s\nstate      %s\n", d.ID, orDash(d.CommandID), d.Manifest, d.Root, d.State)
	if d.Error != "" {
		fmt.Fprintf(s.out, "error      %s\n", d.Error)
	}
	fmt.Fprintln(s.out)
	tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tPLUGIN\tSTATE\tATTEMPTS\tIDEMPOTENT\tCHANGED")
	for _, st := range steps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%v\t%v\n", st.Ref(), st.Plugin, st.State, st.Attempts, st.Idempotent, st.Changed)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, st := range steps {
		if st.Error != "" {
			fmt.Fprintf(s.out, "%s: %s\n", st.Ref(), st.Error)
		}
		for _, r := range st.Resolutions {
			fmt.Fprintf(s.out, "%s: resolved as %s by %s at %s: %s\n", st.Ref(), r.As, r.By, r.At.Local().Format(time.DateTime), r.Note)
		}
		if st.State == journal.StateInterrupted {
			fmt.Fprintf(s.out, "%s: decide with: cairn-agent journal resolve %s %s --as succeeded|failed|retry --note TEXT\n", st.Ref(), shortID(d.ID), st.Name)
		}
	}
	return nil
}

func newJournalResolveCommand(s *streams, open openJournal) *cobra.Command {
	var as, note string
	cmd := &cobra.Command{
		Use:   "resolve DEPLOYMENT STEP --as succeeded|failed|retry --note TEXT",
		Short: "Decide what became of an interrupted step",
		Long: `Resolve records an operator's decision on an interrupted step, with a note
saying what they checked (kept in the journal with their user name):

  succeeded  the step took effect; the next apply continues after it
  failed     it did not (or its effect was undone); the deployment is failed,
             and the next apply runs the step again
  retry      run it again on the next apply

STEP is the step's name, or LIST/NAME (steps/…, rollback/…) when a name
is in more than one list.`,
		Example: `  cairn-agent journal resolve 3f2a9c1b2d4e migrate --as succeeded --note "schema is at v42, checked by hand"`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if as != journal.ResolveSucceeded && as != journal.ResolveFailed && as != journal.ResolveRetry {
				return fmt.Errorf("--as %q: use succeeded, failed or retry", as)
			}
			if note == "" {
				return errors.New("--note is required: say what you checked")
			}
			by := "unknown"
			if u, err := user.Current(); err == nil {
				by = u.Username
			}
			j, err := open()
			if err != nil {
				return err
			}
			defer j.Close()
			st, err := j.Resolve(cmd.Context(), args[0], args[1], as, note, by)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(s.out, "%s of deployment %s is now %s\n", st.Ref(), shortID(st.DeploymentID), st.State)
			return err
		},
	}
	cmd.Flags().StringVar(&as, "as", "", "succeeded, failed or retry (required)")
	cmd.Flags().StringVar(&note, "note", "", "what you checked (required)")
	return cmd
}

// orDash is s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
