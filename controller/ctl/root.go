package ctl

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/cairn-ops/cairn/internal/handshake"
	"github.com/cairn-ops/cairn/internal/termsafe"
	"github.com/cairn-ops/cairn/internal/version"
)

// app is one run of cairnctl: where it reads and writes, its resolved
// configuration and its connection to the controller.
type app struct {
	in io.Reader
	// out and errOut are where commands write; execute makes every byte
	// of both pass internal/termsafe (see there). rawErr is the standard
	// error itself, for the upload progress's carriage returns only (raw
	// does the same for rollout watch's redraw).
	out, errOut io.Writer
	rawErr      io.Writer
	getenv      func(string) string
	now         func() time.Time
	// pollInterval is how often audit run --wait asks for progress
	// (defaultPollInterval when zero).
	pollInterval time.Duration

	flags globalFlags
	cfg   Config
	cc    *grpc.ClientConn
	// tls records cc's TLS handshakes (nil until cc is dialled).
	tls *handshake.Credentials
	// ran is set when a command's RunE starts; errors before that are
	// usage errors.
	ran bool
}

// Execute runs cairnctl with args and returns the process exit code.
func Execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{in: stdin, out: stdout, errOut: stderr, getenv: os.Getenv, now: time.Now}
	return a.execute(ctx, args)
}

func (a *app) execute(ctx context.Context, args []string) int {
	// Everything cairnctl prints can hold input (manifests, audits from
	// agents, names, errors quoting them): escape what a terminal would
	// act on, in one place. JSON stays JSON with the same values.
	out, errOut := termsafe.NewWriter(a.out), termsafe.NewWriter(a.errOut)
	a.out, a.errOut, a.rawErr = out, errOut, a.errOut
	defer func() {
		_ = out.Flush() // a failed write to a terminal has no one to tell
		_ = errOut.Flush()
	}()
	root := a.newRootCommand()
	root.SetArgs(args)
	root.SetIn(a.in)
	root.SetOut(a.out)
	root.SetErr(a.errOut)
	err := root.ExecuteContext(ctx)
	if a.cc != nil {
		_ = a.cc.Close() // nothing is left to flush on a client connection
	}
	var tlsErr error
	if a.tls != nil {
		tlsErr = a.tls.Err()
	}
	code, msg := exitStatus(err, a.ran, a.cfg.Controller, tlsErr)
	if msg != "" {
		fmt.Fprintf(a.errOut, "cairnctl: %s\n", msg)
	}
	return code
}

// warn prints a one-line warning on stderr.
func (a *app) warn(msg string) {
	fmt.Fprintf(a.errOut, "cairnctl: warning: %s\n", msg)
}

// noConfig marks commands that run without the configuration (completion).
const noConfig = "cairnctl/no-config"

func (a *app) newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "cairnctl",
		Short: "Operate a Cairn controller: nodes, audits, CMS baselines and drift, users, the audit log",
		Long: `cairnctl is the operator's command line for cairn-controller.

It talks to the controller's API over TLS, verifying the controller's
certificate against its CA, and authenticates with a bearer token bound to
a user and roles. Settings come from, in increasing precedence: defaults,
~/.config/cairn/config.yaml (keys controller, token, ca), the environment
(CAIRN_CONTROLLER, CAIRN_TOKEN, CAIRN_CA) and flags.

Exit status: 0 ok; 1 the operation failed; 2 usage or input error;
3 unauthenticated or forbidden.`,
		Example: `  # Once: point cairnctl at the controller
  export CAIRN_CONTROLLER=ctl.example.net:7443 CAIRN_CA=/etc/cairn/ca.pem
  export CAIRN_TOKEN=cairn_u_...

  # Enroll a server, audit it, make the audit its baseline, watch drift
  cairnctl enroll-token create --labels env=prod
  cairnctl node list
  cairnctl audit run --node web1 --wait
  cairnctl cms baseline accept web1 --reason "initial baseline"
  cairnctl cms drift`,
		Version:       version.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if _, ok := cmd.Annotations[noConfig]; ok {
				return nil
			}
			cfg, err := loadConfig(a.flags, a.getenv, a.warn)
			if err != nil {
				return usageError(err)
			}
			a.cfg = cfg
			return nil
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.flags.config, "config", "", "config file (default ~/.config/cairn/config.yaml)")
	pf.StringVar(&a.flags.controller, "controller", DefaultController, "controller address HOST:PORT (env CAIRN_CONTROLLER)")
	pf.StringVar(&a.flags.token, "token", "", "bearer token (env CAIRN_TOKEN)")
	pf.StringVar(&a.flags.ca, "ca", "", "the controller's CA certificate, PEM (env CAIRN_CA)")
	pf.DurationVar(&a.flags.timeout, "timeout", DefaultTimeout, "time limit for each call to the controller")
	a.flags.changed = func(name string) bool { return pf.Changed(name) }

	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(
		a.newEnrollTokenCommand(),
		a.newNodeCommand(),
		a.newAuditCommand(),
		a.newCMSCommand(),
		a.newServiceCommand(),
		a.newUserCommand(),
		a.newTokenCommand(),
		a.newWhoAmICommand(),
		a.newAuditLogCommand(),
		a.newArtifactCommand(),
		a.newReleaseCommand(),
		a.newKnownErrorCommand(),
		a.newRolloutCommand(),
		a.newPluginCommand(),
		a.newReportCommand(),
		a.newCompletionCommand(root),
	)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErrorf("%v: see '%s --help'", err, c.CommandPath())
	})
	markRun(root, &a.ran)
	return root
}

// markRun wraps the RunE of c and its subcommands to set *ran when it
// starts, so exitStatus can tell usage errors from failed operations.
func markRun(c *cobra.Command, ran *bool) {
	if f := c.RunE; f != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			*ran = true
			return f(cmd, args)
		}
	}
	for _, sub := range c.Commands() {
		markRun(sub, ran)
	}
}

// group returns a command that only groups subcommands.
func group(use, short, long, example string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:     use,
		Short:   short,
		Long:    long,
		Example: example,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	c.AddCommand(subs...)
	return c
}

// noArgs refuses arguments, naming the subcommands when there are some.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasSubCommands() {
		return usageErrorf("unknown command %q for %q: see '%s --help'", args[0], cmd.CommandPath(), cmd.CommandPath())
	}
	return usageErrorf("%s takes no arguments, got %q", cmd.CommandPath(), args[0])
}

// exactArgs requires n arguments, named in the error.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usageErrorf("%s needs %s (got %d arguments): see '%s --help'",
				cmd.CommandPath(), strings.Join(names, " "), len(args), cmd.CommandPath())
		}
		for i, arg := range args {
			if arg == "" {
				return usageErrorf("%s: %s is empty", cmd.CommandPath(), names[i])
			}
		}
		return nil
	}
}

// minArgs requires at least as many arguments as names; the last name
// may repeat ("NAME ROLE...").
func minArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < len(names) {
			return usageErrorf("%s needs %s... (got %d arguments): see '%s --help'",
				cmd.CommandPath(), strings.Join(names, " "), len(args), cmd.CommandPath())
		}
		for i, arg := range args {
			if arg == "" {
				return usageErrorf("%s: %s is empty", cmd.CommandPath(), names[min(i, len(names)-1)])
			}
		}
		return nil
	}
}
