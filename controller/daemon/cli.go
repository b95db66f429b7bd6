package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cairn-ops/cairn/internal/termsafe"
	"github.com/cairn-ops/cairn/internal/version"
)

// Exit codes of cairn-controller.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// usageError marks an error in what the user asked for (flags, arguments,
// configuration): exit code 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// Execute runs cairn-controller with args and returns the exit code.
// Configuration comes from the environment through os.LookupEnv.
//
// Both streams pass internal/termsafe: the log holds what agents and
// operators send (hostnames, names, errors quoting them), and a terminal
// must not act on it. JSON logs stay JSON with the same values.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	out, errOut := termsafe.NewWriter(stdout), termsafe.NewWriter(stderr)
	defer func() {
		_ = out.Flush() // a failed write to a terminal has no one to tell
		_ = errOut.Flush()
	}()
	stdout, stderr = out, errOut
	root := newRootCommand(stdout, stderr, os.LookupEnv)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(stderr, "cairn-controller: %v\n", err)
	var ue *usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
		return ExitUsage
	}
	return ExitFailed
}

func newRootCommand(stdout, stderr io.Writer, env func(string) (string, bool)) *cobra.Command {
	root := &cobra.Command{
		Use:   "cairn-controller",
		Short: "Cairn's controller: enrolls agents, keeps the CMS, serves cairnctl",
		Long: `cairn-controller is Cairn's central server. Agents enroll with a join token
and hold one mutual-TLS session each; operators use cairnctl with a bearer
token. It keeps the node registry, remote audits, the CMS baselines and a
hash-chained audit log in one bbolt file in its data directory.`,
		Example: `  # Create a data directory and the first admin token (printed once)
  cairn-controller init --data-dir /var/lib/cairn --san cairn.example.com

  # Run it
  cairn-controller serve --data-dir /var/lib/cairn --listen 0.0.0.0:7443`,
		Version:       version.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{fmt.Errorf("%w\nSee '%s --help'.", err, c.CommandPath())}
	})
	root.AddCommand(newInitCommand(stdout, env), newServeCommand(stderr, env), newRotateCommand(stdout, env), newVersionCommand(stdout))
	return root
}

func newInitCommand(stdout io.Writer, env func(string) (string, bool)) *cobra.Command {
	var opts InitOptions
	cmd := &cobra.Command{
		Use:   "init --data-dir DIR [--san NAME_OR_IP ...] [--admin NAME]",
		Short: "Create a data directory: CA, server certificate, release key, store, admin token",
		Long: `init creates a new controller data directory (mode 0700): the CA that signs
node certificates, the controller's TLS server certificate (for localhost,
127.0.0.1, ::1 and every --san), the ed25519 release-signing key, the store,
and a first user with the admin role.

The admin's API token is printed once on standard output; the controller
keeps only its hash. init refuses a directory that already holds a store.`,
		Example: `  cairn-controller init --data-dir /var/lib/cairn
  cairn-controller init --data-dir ./data --san ctl.example.com --san 10.0.0.5 --admin alice`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.DataDir == "" {
				opts.DataDir, _ = env("CAIRN_DATA_DIR")
			}
			if opts.DataDir == "" {
				return &usageError{errors.New("--data-dir is required (or CAIRN_DATA_DIR)")}
			}
			res, err := Init(cmd.Context(), opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, `Initialized a Cairn controller in %s.

API token for user %q (shown only once; the controller keeps just its hash):

  %s

Use it with cairnctl:

  export CAIRN_TOKEN=%s
  export CAIRN_CA=%s

Start the controller:

  cairn-controller serve --data-dir %s
`, opts.DataDir, res.Admin, res.Token, res.Token, res.CAPath, opts.DataDir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.DataDir, "data-dir", "", "data directory to create (or CAIRN_DATA_DIR)")
	f.StringSliceVar(&opts.SANs, "san", nil, "extra DNS name or IP address for the server certificate (repeatable)")
	f.StringVar(&opts.Admin, "admin", "admin", "name of the first admin user")
	return cmd
}

func newServeCommand(stderr io.Writer, env func(string) (string, bool)) *cobra.Command {
	var configFile string
	def := Defaults()
	cmd := &cobra.Command{
		Use:   "serve --data-dir DIR [--listen ADDR] [--metrics-listen ADDR] [--config FILE]",
		Short: "Run the controller",
		Long: `serve runs the controller until it receives SIGINT or SIGTERM, then stops
gracefully.

Configuration is read from, each overriding the one before: defaults, the
YAML file (--config, or DATA_DIR/config.yaml when it exists), CAIRN_*
environment variables, then flags. File keys: data_dir, listen,
metrics_listen, lost_after, max_audit_bytes, max_artifact_bytes,
upload_sessions_per_user, upload_sessions, upload_bytes_per_user,
upload_bytes, upload_idle_timeout, log_level, log_format,
keepalive_min_time. Environment: the key in upper case after CAIRN_
(CAIRN_DATA_DIR, CAIRN_LISTEN, ..., CAIRN_UPLOAD_IDLE_TIMEOUT,
CAIRN_KEEPALIVE_MIN_TIME).

Unfinished artifact pushes are capped so that abandoned ones cannot fill
the disk: upload_sessions_per_user (default 4) and upload_sessions (32)
sessions, upload_bytes_per_user and upload_bytes declared bytes (default
4 and 16 times max_artifact_bytes), each discarded upload_idle_timeout
(1h) after its last data.

With --metrics-listen, /metrics serves Prometheus metrics and /healthz a
liveness check over plain HTTP; bind it to a private address.`,
		Example: `  cairn-controller serve --data-dir /var/lib/cairn
  cairn-controller serve --data-dir ./data --listen 0.0.0.0:7443 --metrics-listen 127.0.0.1:9464
  CAIRN_LOG_LEVEL=debug cairn-controller serve --config /etc/cairn/controller.yaml`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flags := map[string]string{}
			cmd.Flags().Visit(func(fl *pflag.Flag) {
				if fl.Name != "config" {
					flags[fl.Name] = fl.Value.String()
				}
			})
			cfg, err := Load(Sources{ConfigFile: configFile, Env: env, Flags: flags})
			if err != nil {
				return &usageError{err}
			}
			srv, err := NewServer(cfg, NewLogger(cfg, stderr))
			if err != nil {
				return err
			}
			return srv.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "YAML configuration file (default DATA_DIR/config.yaml if present)")
	f.String("data-dir", "", "data directory made by init")
	f.String("listen", def.Listen, "gRPC address for agents and cairnctl")
	f.String("metrics-listen", "", "HTTP address for /metrics and /healthz (off when empty)")
	f.String("lost-after", def.LostAfter.String(), "mark a node lost after it has been disconnected this long")
	f.String("max-audit-bytes", "64MiB", "largest audit document an agent may upload")
	f.String("max-artifact-bytes", "1GiB", "largest artifact cairnctl artifact push may store in the DML")
	f.String("upload-sessions-per-user", strconv.Itoa(def.UploadSessionsPerUser), "unfinished artifact pushes one user may hold")
	f.String("upload-sessions", strconv.Itoa(def.UploadSessions), "unfinished artifact pushes all users may hold")
	f.String("upload-bytes-per-user", "", "bytes one user's unfinished pushes may declare (default 4 × max-artifact-bytes)")
	f.String("upload-bytes", "", "bytes all unfinished pushes may declare (default 16 × max-artifact-bytes)")
	f.String("upload-idle-timeout", def.UploadIdleTimeout.String(), "discard an unfinished push this long after its last data")
	f.String("log-level", def.LogLevel, "debug, info, warn or error")
	f.String("log-format", def.LogFormat, "text or json (logs go to standard error)")
	f.String("keepalive-min-time", def.KeepaliveMinTime.String(), "shortest keepalive ping interval agents may use")
	return cmd
}

func newVersionCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the controller's version",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(stdout, version.String())
			return err
		},
	}
}

// noArgs refuses positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if err := cobra.NoArgs(cmd, args); err != nil {
		return &usageError{err}
	}
	return nil
}
