package cli

import (
	"context"
	"log/slog"

	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"text/tabwriter"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/spf13/cobra"

	"github.com/cairn-ops/cairn/internal/jsonyaml"
	"github.com/cairn-ops/cairn/plugins/builtin"
	"github.com/cairn-ops/cairn/plugins/catalog"
	"github.com/cairn-ops/cairn/plugins/sdk"
)

func newPluginCommand(s *streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "List the step plugins this agent can run",
		Long: `Deployment steps run in plugin processes. Built-in plugins ship inside
cairn-agent and run by re-executing it; external plugins are binaries
listed, with their sha256, in a plugin catalog (DIR/catalog.yaml):

  plugins:
    - name: motd
      file: cairn-plugin-motd
      sha256: <64 hex digits>

A binary whose sha256 differs from its catalog entry is never started.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newPluginListCommand(s), newPluginDescribeCommand(s), newPluginServeCommand())
	return cmd
}

// pluginRow is one line of `plugin list`.
type pluginRow struct {
	Name       string `json:"name"`
	Kind       string `json:"kind"`
	Version    string `json:"version,omitempty"`
	Idempotent *bool  `json:"idempotent,omitempty"`
	Summary    string `json:"summary,omitempty"`
	File       string `json:"file,omitempty"`
	SHA256     string `json:"sha256,omitempty"`
	Status     string `json:"status"`
}

func newPluginListCommand(s *streams) *cobra.Command {
	var catalogDir, output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List built-in plugins and the catalog's external plugins",
		Long: `List prints the built-in plugins (name, version and whether Apply is
idempotent, from each plugin's Describe) and, with --catalog, the external
plugins of that catalog with their sha256 and whether the binary on disk
matches it. External plugins are checked, not started.`,
		Example: `  # Built-in plugins
  cairn-agent plugin list

  # Plus the external plugins of a catalog, as JSON
  cairn-agent plugin list --catalog /etc/cairn/plugins -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains([]string{"table", "json", "yaml"}, output) {
				return fmt.Errorf("unknown output format %q: use table, json or yaml", output)
			}
			var rows []pluginRow
			reg := builtin.Registry()
			for _, name := range builtin.Names() {
				row := pluginRow{Name: name, Kind: "built-in", Status: "ok"}
				d, err := reg[name]().Describe(cmd.Context())
				if err != nil {
					row.Status = "describe failed: " + err.Error()
				} else {
					idem := d.GetIdempotent()
					row.Version, row.Idempotent, row.Summary = d.GetVersion(), &idem, d.GetSummary()
				}
				rows = append(rows, row)
			}
			if catalogDir != "" {
				cat, err := catalog.Load(catalogDir)
				if err != nil {
					return err
				}
				for _, e := range cat.Entries() {
					row := pluginRow{Name: e.Name, Kind: "external", File: e.Path, SHA256: e.SHA256, Status: "ok"}
					switch err := e.Verify(); {
					case reg[e.Name] != nil:
						row.Status = "shadowed by the built-in"
					case errors.Is(err, catalog.ErrChecksum):
						row.Status = "checksum mismatch"
					case errors.Is(err, fs.ErrNotExist):
						row.Status = "missing"
					case err != nil:
						row.Status = err.Error()
					}
					rows = append(rows, row)
				}
			}
			return writePlugins(s, output, rows)
		},
	}
	cmd.Flags().StringVar(&catalogDir, "catalog", "", "plugin catalog directory (holding catalog.yaml)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	return cmd
}

func writePlugins(s *streams, output string, rows []pluginRow) error {
	if output == "table" {
		tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tKIND\tVERSION\tIDEMPOTENT\tSHA256\tSTATUS")
		for _, r := range rows {
			idem, sum, version := "-", "-", r.Version
			if r.Idempotent != nil {
				idem = fmt.Sprint(*r.Idempotent)
			}
			if r.SHA256 != "" {
				sum = r.SHA256[:12]
			}
			if version == "" {
				version = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Kind, version, idem, sum, r.Status)
		}
		return tw.Flush()
	}
	b, err := json.MarshalIndent(struct {
		Plugins []pluginRow `json:"plugins"`
	}{rows}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode plugin list: %w", err)
	}
	if output == "yaml" {
		return jsonyaml.Write(s.out, b)
	}
	_, err = fmt.Fprintf(s.out, "%s\n", b)
	return err
}

func newPluginDescribeCommand(s *streams) *cobra.Command {
	var catalogDir, output string
	cmd := &cobra.Command{
		Use:   "describe NAME [--catalog DIR]",
		Short: "Show a plugin's parameters and behaviour",
		Long: `Describe prints what a plugin does, whether a step of it can be re-run
after a crash (idempotent), whether each step needs an operator's
confirmation, and every parameter a manifest's params may give. A built-in
describes itself in this process; an external plugin of --catalog is
started as a step would start it (its sha256 checked first) and asked.`,
		Example: `  cairn-agent plugin describe dpkg
  cairn-agent plugin describe motd --catalog /etc/cairn/plugins -o json`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("plugin describe needs one plugin NAME (got %d)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains([]string{"text", "json", "yaml"}, output) {
				return fmt.Errorf("unknown output format %q: use text, json or yaml", output)
			}
			d, err := describePlugin(cmd.Context(), args[0], catalogDir, s.log)
			if err != nil {
				return err
			}
			if output == "text" {
				return builtin.WriteDescription(s.out, d, func(line string) string { return line })
			}
			b, err := protojson.MarshalOptions{UseProtoNames: true, Multiline: true}.Marshal(d)
			if err != nil {
				return fmt.Errorf("encode description: %w", err)
			}
			if output == "yaml" {
				return jsonyaml.Write(s.out, b)
			}
			_, err = fmt.Fprintf(s.out, "%s\n", b)
			return err
		},
	}
	cmd.Flags().StringVar(&catalogDir, "catalog", "", "plugin catalog directory (holding catalog.yaml) for external plugins")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text, json or yaml")
	return cmd
}

// describePlugin describes a built-in in this process, or starts the
// catalog's external plugin name and asks it.
func describePlugin(ctx context.Context, name, catalogDir string, log *slog.Logger) (*sdk.Description, error) {
	if _, ok := builtin.Registry()[name]; ok || catalogDir == "" {
		d, err := builtin.Describe(ctx, name)
		if errors.Is(err, builtin.ErrUnknown) {
			return nil, fmt.Errorf("%w; give --catalog DIR for an external plugin", err)
		}
		return d, err
	}
	host, err := newPluginHost(catalogDir, "", log)
	if err != nil {
		return nil, err
	}
	defer host.Close()
	inst, err := host.Start(ctx, name)
	if err != nil {
		return nil, err
	}
	defer inst.Close()
	return inst.Plugin.Describe(ctx)
}

func newPluginServeCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "serve NAME",
		Short:  "Serve a built-in plugin (started by the agent's plugin host, not by hand)",
		Hidden: true,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("plugin serve needs one built-in plugin NAME (got %d)", len(args))
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			newPlugin, ok := builtin.Registry()[args[0]]
			if !ok {
				return fmt.Errorf("unknown built-in plugin %q (built-ins: %s)", args[0], strings.Join(builtin.Names(), ", "))
			}
			sdk.Serve(newPlugin())
			return nil
		},
	}
}
