package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-ops/cairn/agent/inventory"
	"github.com/cairn-ops/cairn/agent/session"
	"github.com/cairn-ops/cairn/internal/pki"
	"github.com/cairn-ops/cairn/internal/readlimit"
	"github.com/cairn-ops/cairn/internal/version"
)

// runFlags are run's flags; env fills those not given.
type runFlags struct {
	controller   string
	dataDir      string
	token        string
	caFile       string
	root         string
	labels       map[string]string
	reconnectMax time.Duration
	timeout      time.Duration
	plugins      string
	logLevel     string
}

// runEnv maps flags to the environment variables that stand in for them.
var runEnv = []struct{ flag, env string }{
	{"controller", "CAIRN_CONTROLLER"},
	{"token", "CAIRN_ENROLL_TOKEN"},
	{"data-dir", "CAIRN_AGENT_DATA_DIR"},
	{"ca", "CAIRN_CA"},
}

func newRunCommand(s *streams) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Enroll with the controller (first start) and hold a session with it",
		Long: `Run connects this agent to a Cairn controller and keeps it connected,
running the audits and deployments the controller asks for.

First start: the agent enrolls. It needs a join token (from
'cairnctl enroll-token create'), the controller's address, and the
controller's CA certificate (the controller's DATA/ca.pem, copied to this
host): the agent verifies the controller against it and never trusts a
controller on first use. It generates its key locally, sends a
certificate request and keeps its identity in --data-dir (created 0700,
files 0600).

Later starts reuse that identity: no token or CA is needed, and a token
given anyway is ignored. The certificate is renewed automatically when two
thirds of its lifetime (30 days) have passed.

Deployments run like 'cairn-agent apply' under --root, with the journal
in --data-dir: the built-in plugins, and external ones from the --plugins
catalog. Each deploy command is its own deployment in the journal, so
deploying a release the node had before runs its steps again. The agent fetches a release's artifacts from the controller into
--data-dir/artifacts (by sha256, verified), verifies the signed release
against the release key it received at enrollment, and runs nothing of a
release that does not verify. Manual steps wait for an operator's
'cairnctl rollout confirm'. The journal is open only while a deployment
runs, so 'cairn-agent journal' works beside an idle agent.

The agent reconnects after any disconnect, with exponential backoff and
jitter up to --reconnect-max. It stops with exit status 1 when the
controller refuses the token or has revoked the node, and with 0 on
SIGINT or SIGTERM.

Environment: CAIRN_CONTROLLER, CAIRN_ENROLL_TOKEN, CAIRN_AGENT_DATA_DIR and CAIRN_CA
stand in for --controller, --token, --data-dir and --ca. (They are named
apart from cairnctl's CAIRN_TOKEN and cairn-controller's CAIRN_DATA_DIR,
so an operator's shell cannot hand the agent the wrong ones.)`,
		Example: `  # First start: enroll with a join token and the controller's CA
  cairn-agent run --controller ctl.example.net:7443 --ca /etc/cairn/ca.pem \
    --token cairn_e_... --data-dir /var/lib/cairn-agent --labels env=prod,role=web

  # Later starts (e.g. from a systemd unit)
  cairn-agent run --data-dir /var/lib/cairn-agent

  # Audit and deploy to a chroot or a test tree instead of the host
  cairn-agent run --data-dir ./agent-a --root ./fixtures/host-a

  # With external plugins
  cairn-agent run --data-dir /var/lib/cairn-agent --plugins /etc/cairn/plugins`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, e := range runEnv {
				if v := os.Getenv(e.env); v != "" && !cmd.Flags().Changed(e.flag) {
					if err := cmd.Flags().Set(e.flag, v); err != nil {
						return fmt.Errorf("%s: %w", e.env, err)
					}
				}
			}
			return runAgent(cmd, s, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.controller, "controller", "", "controller address host:port (needed to enroll; later starts use the enrolled one)")
	fl.StringVar(&f.dataDir, "data-dir", "", "directory for the agent's identity and state (required)")
	fl.StringVar(&f.token, "token", "", "join token from 'cairnctl enroll-token create' (first start only)")
	fl.StringVar(&f.caFile, "ca", "", "the controller's CA certificate, PEM (first start only)")
	fl.StringVar(&f.root, "root", "/", "audit and deploy to the tree under this directory instead of the host")
	fl.StringToStringVar(&f.labels, "labels", nil, "labels to ask for at enrollment, k=v,...")
	fl.DurationVar(&f.reconnectMax, "reconnect-max", session.DefaultReconnectMax, "longest wait between reconnect attempts")
	fl.DurationVar(&f.timeout, "timeout", inventory.DefaultTimeout, "time limit for each collector of an audit")
	fl.StringVar(&f.plugins, "plugins", "", "plugin catalog directory (catalog.yaml) for external plugins")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

func runAgent(cmd *cobra.Command, s *streams, f runFlags) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: use debug, info, warn or error", f.logLevel)
	}
	log := slog.New(newLineHandler(s.errOut, level))
	if f.dataDir == "" {
		return errors.New("--data-dir is required: the directory that keeps the agent's identity")
	}
	if f.reconnectMax <= 0 {
		return fmt.Errorf("--reconnect-max must be positive, got %v", f.reconnectMax)
	}
	if fi, err := os.Stat(f.root); err != nil || !fi.IsDir() {
		return fmt.Errorf("--root %s: not a directory", f.root)
	}
	root, err := filepath.Abs(f.root)
	if err != nil {
		return fmt.Errorf("--root %s: %w", f.root, err)
	}
	plugins, err := newPluginHost(f.plugins, f.dataDir, log)
	if err != nil {
		return fmt.Errorf("--plugins: %w", err)
	}
	defer plugins.Close()
	ctx := cmd.Context()
	hostname := session.Hostname(root)

	id, err := session.LoadIdentity(f.dataDir)
	switch {
	case errors.Is(err, session.ErrNotEnrolled):
		id, err = enroll(cmd, f, hostname, log)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
	case err != nil:
		return &exitError{code: ExitFailed, err: err}
	default:
		if f.token != "" {
			log.Info("already enrolled, ignoring the token", "node", id.NodeID)
		}
		if len(f.labels) > 0 {
			log.Info("labels are set at enrollment, ignoring --labels; change them with 'cairnctl node label'", "node", id.NodeID)
		}
	}

	agent, err := session.New(session.Config{
		DataDir:      f.dataDir,
		Controller:   f.controller,
		Root:         root,
		Timeout:      f.timeout,
		Hostname:     hostname,
		AgentVersion: version.String(),
		ReconnectMax: f.reconnectMax,
		Logger:       log,
		Plugins:      hostAdapter{plugins},
	})
	if err != nil {
		return &exitError{code: ExitFailed, err: err}
	}
	if err := agent.Run(ctx); err != nil {
		return &exitError{code: ExitFailed, err: fmt.Errorf("node %s: %w", id.NodeID, err)}
	}
	return nil
}

// enroll makes this agent a node: first start only.
func enroll(cmd *cobra.Command, f runFlags, hostname string, log *slog.Logger) (*session.Identity, error) {
	var missing []string
	if f.token == "" {
		missing = append(missing, "--token (create one with 'cairnctl enroll-token create')")
	}
	if f.controller == "" {
		missing = append(missing, "--controller")
	}
	if f.caFile == "" {
		missing = append(missing, "--ca (the controller's ca.pem: the agent does not trust a controller on first use)")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s holds no identity yet; to enroll, give %s", f.dataDir, strings.Join(missing, ", "))
	}
	caPEM, err := readlimit.Stream(f.caFile, "CA certificate", pki.MaxPEMBytes)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	id, err := session.Enroll(cmd.Context(), session.EnrollOptions{
		DataDir:      f.dataDir,
		Controller:   f.controller,
		Token:        f.token,
		CAPEM:        caPEM,
		Hostname:     hostname,
		Labels:       f.labels,
		AgentVersion: version.String(),
		ReconnectMax: f.reconnectMax,
		Logger:       log,
	})
	if errors.Is(err, session.ErrEnrollRefused) || errors.Is(err, session.ErrUntrusted) {
		return nil, &exitError{code: ExitFailed, err: err}
	}
	return id, err
}
