package ctl

import (
	"bytes"
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/cairn-ops/cairn/internal/jsonyaml"
	"github.com/cairn-ops/cairn/internal/termsafe"
	"github.com/cairn-ops/cairn/plugins/builtin"
	"github.com/cairn-ops/cairn/plugins/catalog"
	pluginv1 "github.com/cairn-ops/cairn/proto/plugin/v1"
)

func (a *app) newPluginCommand() *cobra.Command {
	c := group("plugin", "Show the step plugins a release can use, and their parameters",
		`The steps of a release manifest name plugins: the built-in ones ship
inside cairn-agent (exec, file, archive, dpkg, systemd, httpcheck, manual);
external ones are binaries in an agent's plugin catalog. These commands run
offline: they need no controller.`,
		`  cairnctl plugin list
  cairnctl plugin describe archive
  cairnctl plugin describe dpkg -o json`,
		a.newPluginListCommand(),
		a.newPluginDescribeCommand(),
	)
	// Offline: no configuration, no controller.
	for _, cmd := range append(c.Commands(), c) {
		cmd.Annotations = map[string]string{noConfig: ""}
	}
	return c
}

func (a *app) newPluginListCommand() *cobra.Command {
	var plugins string
	cmd := &cobra.Command{
		Use:   "list [--plugins DIR]",
		Short: "List the built-in plugins, and a catalog's external ones",
		Long: `List prints every built-in plugin with its version, whether Apply is
idempotent and what it does. With --plugins, the external plugins of that
catalog (DIR/catalog.yaml) follow, by name and file: cairnctl does not
start plugin binaries; 'cairn-agent plugin describe NAME --catalog DIR'
describes one on a machine with the agent.`,
		Example: `  cairnctl plugin list
  cairnctl plugin list --plugins /etc/cairn/plugins -o json`,
		Args: noArgs,
	}
	f := addFormat(cmd, formatTable, listFormats...)
	cmd.Flags().StringVar(&plugins, "plugins", "", "plugin catalog directory (catalog.yaml) naming external plugins")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := f.check(); err != nil {
			return err
		}
		var descs []*pluginv1.Description
		for _, name := range builtin.Names() {
			d, err := builtin.Describe(cmd.Context(), name)
			if err != nil {
				return failedf("%v", err)
			}
			descs = append(descs, d)
		}
		var external []catalog.Entry
		if plugins != "" {
			cat, err := catalog.Load(plugins)
			if err != nil {
				return usageError(err)
			}
			external = cat.Entries()
		}
		if f.name != formatTable {
			v := pluginListView{Builtin: []json.RawMessage{}, External: []pluginEntryView{}}
			for _, d := range descs {
				b, err := protoJSON(d, false)
				if err != nil {
					return err
				}
				v.Builtin = append(v.Builtin, b)
			}
			for _, e := range external {
				v.External = append(v.External, pluginEntryView{Name: e.Name, File: e.Path, SHA256: e.SHA256})
			}
			if f.name == formatYAML {
				var b bytes.Buffer
				if err := writeIndented(&b, v); err != nil {
					return err
				}
				return jsonyaml.Write(a.out, b.Bytes())
			}
			return writeIndented(a.out, v)
		}
		t := newTable(a.out)
		t.row("NAME", "KIND", "VERSION", "IDEMPOTENT", "SUMMARY")
		for _, d := range descs {
			t.row(d.GetName(), "built-in", d.GetVersion(), yesNo(d.GetIdempotent()), d.GetSummary())
		}
		for _, e := range external {
			t.row(e.Name, "external", "", "", e.Path)
		}
		return t.flush()
	}
	return cmd
}

// pluginListView is plugin list's JSON: each built-in's description as
// 'plugin describe -o json' prints it, and the catalog's entries.
type pluginListView struct {
	Builtin  []json.RawMessage `json:"builtin"`
	External []pluginEntryView `json:"external"`
}

type pluginEntryView struct {
	Name   string `json:"name"`
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
}

func (a *app) newPluginDescribeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a built-in plugin's parameters and behaviour",
		Long: `Describe prints what a built-in plugin does, whether a step of it can be
re-run after a crash (idempotent), whether each step needs an operator's
confirmation, and every parameter a manifest's params may give: its name,
type, whether it is required, and what it means.`,
		Example: `  cairnctl plugin describe file
  cairnctl plugin describe exec -o json | jq -r '.params[].name'`,
		Args: exactArgs("NAME"),
	}
	f := addFormat(cmd, formatText, formatText, formatJSON, formatYAML)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := f.check(); err != nil {
			return err
		}
		d, err := builtin.Describe(cmd.Context(), args[0])
		if err != nil {
			return usageErrorf("%v; an external plugin is described on an agent: 'cairn-agent plugin describe NAME --catalog DIR'", termsafe.String(err.Error()))
		}
		if f.name != formatText {
			return printProto(a.out, f, d, nil)
		}
		return builtin.WriteDescription(a.out, d, termsafe.String)
	}
	return cmd
}
