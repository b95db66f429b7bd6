package builtin

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

// Describe returns the description of the built-in plugin name: its
// version, summary, parameters and whether Apply is idempotent.
func Describe(ctx context.Context, name string) (*sdk.Description, error) {
	newPlugin, ok := Registry()[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q (the built-in plugins are %s)", ErrUnknown, name, strings.Join(Names(), ", "))
	}
	d, err := newPlugin().Describe(ctx)
	if err != nil {
		return nil, fmt.Errorf("describe plugin %s: %w", name, err)
	}
	return d, nil
}

// WriteDescription prints a plugin's description for an author of
// release manifests: what it does, how it behaves on a re-run, and a
// table of its parameters. Each line goes through clean, which escapes
// what a terminal would act on (a plugin's description is its author's
// text).
func WriteDescription(w io.Writer, d *sdk.Description, clean func(string) string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "plugin %s %s\n", d.GetName(), d.GetVersion())
	if s := d.GetSummary(); s != "" {
		fmt.Fprintf(&b, "  %s\n", s)
	}
	if d.GetIdempotent() {
		b.WriteString("idempotent: yes (a step cut off by a crash is run again)\n")
	} else {
		b.WriteString("idempotent: no (a step cut off by a crash waits for an operator)\n")
	}
	if d.GetNeedsConfirmation() {
		b.WriteString("needs confirmation: yes (an operator confirms each step before it runs)\n")
	}
	if len(d.GetParams()) == 0 {
		b.WriteString("\nparameters: none\n")
	} else {
		b.WriteString("\nparameters:\n")
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  NAME\tTYPE\tREQUIRED\tDESCRIPTION")
		for _, p := range d.GetParams() {
			req := "no"
			if p.GetRequired() {
				req = "yes"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", p.GetName(), p.GetType(), req, p.GetDescription())
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, line := range strings.SplitAfter(b.String(), "\n") {
		if _, err := io.WriteString(w, clean(strings.TrimSuffix(line, "\n"))+strings.Repeat("\n", strings.Count(line, "\n"))); err != nil {
			return err
		}
	}
	return nil
}
