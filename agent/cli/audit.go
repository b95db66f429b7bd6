package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairn-ops/cairn/agent/collector"
	"github.com/cairn-ops/cairn/agent/inventory"
	"github.com/cairn-ops/cairn/internal/audit"
	"github.com/cairn-ops/cairn/internal/version"
)

func newAuditCommand(s *streams) *cobra.Command {
	var (
		opts       inventory.Options
		output     string
		summary    bool
		collectors []string
	)
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Audit this host's hardware and software",
		Long: `Audit collects a full inventory of the host, or of the tree under --root,
and prints it. The JSON document is canonical: the same host state gives
the same bytes and the same content hash, and a sha256 per section plus one
over the whole document let 'cairn-agent diff' detect any later edit.

Every collector runs concurrently with its own --timeout. A collector that
fails or times out is recorded in the audit's collector status (and
reported on stderr); the audit still succeeds with the other sections.

Collectors: ` + strings.Join(collector.Names(), ", ") + `.`,
		Example: `  # Full audit of this host as JSON, kept for a later diff
  cairn-agent audit > before.json

  # Human-readable, one line per section
  cairn-agent audit -o text --summary

  # Only packages and services of a chroot or fixture tree
  cairn-agent audit --root /srv/chroot --collectors packages,services

  # Record checksums of configuration files
  cairn-agent audit --track /etc/nginx --track '/etc/ssh/*_config'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch output {
			case "json", "text", "yaml":
			default:
				return fmt.Errorf("unknown output format %q: use json, text or yaml", output)
			}
			opts.Collectors = collectors
			opts.AgentVersion = version.String()
			opts.Logger = s.log
			a, err := inventory.Collect(cmd.Context(), opts)
			if err != nil {
				return err
			}
			switch output {
			case "text":
				return audit.WriteText(s.out, a, audit.TextOptions{Summary: summary})
			case "yaml":
				return audit.WriteYAML(s.out, a)
			default:
				return audit.WriteJSON(s.out, a)
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Root, "root", "/", "audit the tree under this directory instead of the host")
	f.StringVarP(&output, "output", "o", "json", "output format: json, text or yaml")
	f.BoolVar(&summary, "summary", false, "with -o text, print one line per section instead of every item")
	f.StringSliceVar(&collectors, "collectors", nil, "comma-separated collectors to run (default all)")
	f.StringArrayVar(&opts.Track, "track", nil, "file, directory or glob to record in the files section (repeatable)")
	f.DurationVar(&opts.Timeout, "timeout", inventory.DefaultTimeout, "time limit for each collector")
	f.IntVar(&opts.MaxFiles, "max-files", inventory.DefaultMaxFiles, "most tracked files recorded")
	f.Int64Var(&opts.MaxHashBytes, "max-hash-bytes", inventory.DefaultMaxHashBytes, "most bytes of tracked files hashed")
	return cmd
}
