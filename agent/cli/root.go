// Package cli is cairn-agent's command line: one file per command, each
// with its help text, flags and examples. Output goes to injected writers
// so tests can assert it, and exit codes are decided in Execute alone.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/cairn-ops/cairn/internal/termsafe"
	"github.com/cairn-ops/cairn/internal/version"
)

// Exit codes.
const (
	ExitOK = 0
	// ExitChanges is what `diff` returns when the audits differ.
	ExitChanges = 1
	// ExitFailed is what `audit` returns when no collector succeeded.
	ExitFailed = 1
	// ExitError covers usage errors, bad input and failures.
	ExitError = 2
)

// exitError carries an exit code other than ExitError up to Execute.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// streams are where a command writes.
type streams struct {
	out, errOut io.Writer
	log         *slog.Logger
}

// Execute runs cairn-agent with args and returns the process exit code.
//
// What it prints can hold input (audits, manifests, plugin messages,
// errors quoting them): both streams pass internal/termsafe, which escapes
// what a terminal would act on; JSON stays JSON with the same values.
// (plugin serve, which speaks go-plugin's protocol, writes to the process's
// own stdout, not here.)
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	out, errOut := termsafe.NewWriter(stdout), termsafe.NewWriter(stderr)
	defer func() {
		_ = out.Flush() // a failed write to a terminal has no one to tell
		_ = errOut.Flush()
	}()
	stdout, stderr = out, errOut
	s := &streams{
		out:    stdout,
		errOut: stderr,
		log:    slog.New(newLineHandler(stderr, slog.LevelWarn)),
	}
	root := newRootCommand(s)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "cairn-agent: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "cairn-agent: %v\n", err)
	return ExitError
}

func newRootCommand(s *streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "cairn-agent",
		Short: "Cairn's agent: audits this host's hardware and software",
		Long: `cairn-agent runs on every managed server. It audits the host's hardware
and software (CPUs, memory, disks, NICs, PCI, DMI, OS, packages, systemd
units, tracked files, kernel modules) into a canonical, hashed document,
and compares two audits.`,
		Example: `  # What this host is, one line per section
  cairn-agent audit --summary

  # Before and after a change: the typed diff, exit status 1 when it differs
  cairn-agent audit > before.json
  cairn-agent audit > after.json
  cairn-agent diff before.json after.json`,
		Version:       version.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newAuditCommand(s), newDiffCommand(s), newRunCommand(s), newPluginCommand(s), newApplyCommand(s), newJournalCommand(s), newVersionCommand(s))
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w\nSee '%s --help'.", err, c.CommandPath())
	})
	return root
}

func newVersionCommand(s *streams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the agent's version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(s.out, version.String())
			return err
		},
	}
}
