package cli

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairn-ops/cairn/agent/collector"
	"github.com/cairn-ops/cairn/agent/inventory"
	"github.com/cairn-ops/cairn/internal/audit"
	"github.com/cairn-ops/cairn/internal/bytesize"
	"github.com/cairn-ops/cairn/internal/version"
)

func newAuditCommand(s *streams) *cobra.Command {
	var (
		opts       inventory.Options
		output     string
		summary    bool
		collectors []string
		maxHash    = bytesize.Value(inventory.DefaultMaxHashBytes)
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

  # Only packages and services of a chroot or a mounted disk image
  cairn-agent audit --root /mnt/image --collectors packages,services

  # Record checksums of configuration files
  cairn-agent audit --track /etc/nginx --track '/etc/ssh/*_config'`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("audit takes no arguments, got %q: give a tree to audit with --root DIR, and quote globs given to --track", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if summary && !cmd.Flags().Changed("output") {
				output = "text"
			}
			switch output {
			case "json", "text", "yaml":
			default:
				return fmt.Errorf("unknown output format %q: use json, text or yaml", output)
			}
			if summary && output != "text" {
				return fmt.Errorf("--summary works with -o text only")
			}
			for _, p := range opts.Track {
				if _, err := filepath.Match(p, ""); err != nil {
					return fmt.Errorf("--track %q: %v", p, err)
				}
			}
			opts.MaxHashBytes = int64(maxHash)
			opts.Collectors = collectors
			opts.AgentVersion = version.String()
			opts.Logger = s.log
			a, err := inventory.Collect(cmd.Context(), opts)
			if err != nil {
				return err
			}
			switch output {
			case "text":
				err = audit.WriteText(s.out, a, audit.TextOptions{Summary: summary})
			case "yaml":
				err = audit.WriteYAML(s.out, a)
			default:
				err = audit.WriteJSON(s.out, a)
			}
			if err != nil {
				return err
			}
			if failed := audit.Failed(a); len(failed) == len(a.GetCollectors()) {
				return &exitError{code: ExitFailed, err: fmt.Errorf("no collector succeeded (%s): the audit is empty", strings.Join(failed, ", "))}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Root, "root", "/", "audit the tree under this directory instead of the host")
	f.StringVarP(&output, "output", "o", "json", "output format: json (the document diff reads), text or yaml")
	f.BoolVar(&summary, "summary", false, "print one line per section instead of every item (implies -o text)")
	f.StringSliceVar(&collectors, "collectors", nil, "comma-separated collectors to run (default all)")
	f.StringArrayVar(&opts.Track, "track", nil, "file, directory or glob to record in the files section (repeatable)")
	f.DurationVar(&opts.Timeout, "timeout", inventory.DefaultTimeout, "time limit for each collector")
	f.IntVar(&opts.MaxFiles, "max-files", inventory.DefaultMaxFiles, "most tracked files recorded, in path order")
	f.Var(&maxHash, "max-hash-bytes", "most bytes of tracked files hashed in all, e.g. 512MiB (files past it are recorded unhashed)")
	return cmd
}
