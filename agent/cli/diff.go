package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/cairn-ops/cairn/internal/audit"
	"github.com/cairn-ops/cairn/internal/diff"
)

func newDiffCommand(s *streams) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "diff BEFORE AFTER",
		Short: "Compare two audits and print what changed",
		Long: `Diff compares two audit documents written by 'cairn-agent audit -o json'
and prints typed changes (added, removed, changed with field: old → new),
grouped by section, after a one-line summary.

Volatile facts (uptime, load, free memory, boot time) are ignored. A section
whose collector failed in either audit is reported as not comparable, never
as additions or removals; a tracked path only one audit tracked (--track)
is reported as not compared. Both files are verified against their hashes
first, so an edited audit is refused.

Exit status: 0 no changes; 1 changes, a section not comparable or a path
not compared (the audits cannot be shown equal); 2 error.`,
		Example: `  cairn-agent audit > before.json
  # ... change the host ...
  cairn-agent audit > after.json
  cairn-agent diff before.json after.json

  # For a script or a ticket
  cairn-agent diff -o json before.json after.json | jq .summary
  cairn-agent diff -o markdown before.json after.json > change.md`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 2 {
				return fmt.Errorf("diff needs two audit files, BEFORE and AFTER (got %d): see 'cairn-agent diff --help'", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var write func(io.Writer, *diff.Report) error
			switch output {
			case "text":
				write = diff.WriteText
			case "json":
				write = diff.WriteJSON
			case "markdown", "md":
				write = diff.WriteMarkdown
			default:
				return fmt.Errorf("unknown output format %q: use text, json or markdown", output)
			}
			before, err := audit.ReadFile(args[0])
			if err != nil {
				return err
			}
			after, err := audit.ReadFile(args[1])
			if err != nil {
				return err
			}
			r := diff.Compare(before, after)
			if !r.SameHost() {
				s.log.Warn("the audits are of different hosts", "before", r.Before.Hostname, "after", r.After.Hostname)
			}
			if err := write(s.out, r); err != nil {
				return err
			}
			if r.HasChanges() || !r.Complete() {
				return &exitError{code: ExitChanges}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text, json or markdown")
	return cmd
}
