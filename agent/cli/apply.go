package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-ops/cairn/agent/apply"
	"github.com/cairn-ops/cairn/agent/journal"
	"github.com/cairn-ops/cairn/agent/pluginhost"
	"github.com/cairn-ops/cairn/agent/session"
	"github.com/cairn-ops/cairn/internal/manifest"
	"github.com/cairn-ops/cairn/internal/pki"
	"github.com/cairn-ops/cairn/internal/readlimit"
	"github.com/cairn-ops/cairn/internal/release"
	"github.com/cairn-ops/cairn/plugins/builtin"
	"github.com/cairn-ops/cairn/plugins/catalog"
	"github.com/cairn-ops/cairn/plugins/sdk"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// DefaultDataDir is where the agent keeps its journal unless told.
const DefaultDataDir = "/var/lib/cairn-agent"

type applyFlags struct {
	file      string
	root      string
	check     bool
	artifacts string
	dataDir   string
	plugins   string
	confirm   []string
	output    string
	logLevel  string
	bundle    string
	key       string
}

func newApplyCommand(s *streams) *cobra.Command {
	var f applyFlags
	cmd := &cobra.Command{
		Use:   "apply -f release.yaml",
		Short: "Run a release manifest's steps and verify checks on this machine",
		Long: `Apply runs a release manifest (apiVersion cairn/v1, kind Release) on this
machine: each step in its plugin process, in order, journaled in
--data-dir before and after it runs, each with its own timeout. When a
step fails, the steps already applied are undone (newest first) and the
manifest's rollback steps run; when all steps succeed, the verify checks
run.

--check is the dry run: every step's parameters are validated and every
plugin of the steps list prints its Plan (what it would do and the
changes it declares). Nothing is changed and nothing is journaled.

Applying the same manifest to the same --root again is the same
deployment: steps that succeeded are skipped, failed ones run again. A
step cut off by a crash whose plugin is not idempotent blocks the
deployment until an operator decides with 'cairn-agent journal resolve'.

Steps of the manual plugin need an operator's confirmation: pass
--confirm STEP=NOTE, or answer the prompt when apply runs on a terminal.

--bundle gives the signed release (JSON) the manifest belongs to: before
anything is journaled or run, apply checks that the manifest is the
bundle's, that the bundle's digest matches its manifest and components,
that the controller's release key signed it, that it is approved by as
many distinct approvers (each bound to this digest) as it requires, and
that every artifact file has its component's sha256. The key is
--release-key (the PEM file cairn-controller writes as
DATA/release.pub.pem) or, without it, the one the agent received at
enrollment (identity.json in --data-dir). A bundle that does not verify
runs no step.

-o json prints the report as JSON with the .proto field names of
proto/agent/v1 (ApplyReport, or PlanReport with --check), the message the
agent sends the controller: durations are int64 nanoseconds (a JSON
string), fields at their zero value are left out.

Exit status: 0 when the deployment (or the check) succeeded, 1 when a
step or check failed, the deployment is blocked or the signed release
does not verify, 2 for bad input.

Environment: CAIRN_AGENT_DATA_DIR stands in for --data-dir.`,
		Example: `  # What would change, without changing anything
  cairn-agent apply -f release.yaml --check

  # Apply to a sandbox root, with the journal in ./state
  cairn-agent apply -f release.yaml --root /tmp/sandbox --data-dir ./state

  # A signed release, verified against the controller's release key
  cairn-agent apply -f release.yaml --bundle webshop-1.0.0.json --release-key release.pub.pem

  # A release with a manual step
  cairn-agent apply -f release.yaml --confirm fit-disk="fitted in bay 3, ticket 4711"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if v := os.Getenv("CAIRN_AGENT_DATA_DIR"); v != "" && !cmd.Flags().Changed("data-dir") {
				f.dataDir = v
			}
			return runApply(cmd.Context(), cmd.InOrStdin(), s, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.file, "file", "f", "", "the release manifest (required)")
	fl.StringVar(&f.root, "root", "/", "apply under this directory instead of the host's /")
	fl.BoolVar(&f.check, "check", false, "validate and print every plugin's plan; change nothing")
	fl.StringVar(&f.artifacts, "artifacts", "", "directory the components' paths are relative to (default: the manifest's directory)")
	fl.StringVar(&f.dataDir, "data-dir", DefaultDataDir, "the agent's state directory (holds the journal)")
	fl.StringVar(&f.plugins, "plugins", "", "plugin catalog directory (catalog.yaml) for external plugins")
	fl.StringArrayVar(&f.confirm, "confirm", nil, "confirm a manual step: STEP=NOTE (repeatable)")
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	fl.StringVar(&f.bundle, "bundle", "", "the signed release (JSON) to verify the manifest and artifacts against before running")
	fl.StringVar(&f.key, "release-key", "", "the controller's release public key (PEM) for --bundle (default: the one received at enrollment)")
	fl.StringVar(&f.logLevel, "log-level", "warn", "debug, info, warn or error (plugin logs are relayed at their level)")
	return cmd
}

func runApply(ctx context.Context, in io.Reader, s *streams, f applyFlags) error {
	if f.file == "" {
		return errors.New("-f is required: the release manifest to apply")
	}
	if f.output != "text" && f.output != "json" {
		return fmt.Errorf("unknown output format %q: use text or json", f.output)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: use debug, info, warn or error", f.logLevel)
	}
	log := slog.New(newLineHandler(s.errOut, level))
	notes := map[string]string{}
	for _, c := range f.confirm {
		step, note, ok := strings.Cut(c, "=")
		if !ok || step == "" || strings.TrimSpace(note) == "" {
			return fmt.Errorf("--confirm %q: use STEP=NOTE, with a note saying what was done", c)
		}
		notes[step] = note
	}
	root, err := filepath.Abs(f.root)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return fmt.Errorf("--root %s: not a directory", f.root)
	}
	artifacts := f.artifacts
	if artifacts != "" {
		if artifacts, err = filepath.Abs(artifacts); err != nil {
			return err
		}
	}
	m, err := manifest.Load(f.file)
	if err != nil {
		return err
	}
	for step := range notes {
		if !hasStep(m, step) {
			return fmt.Errorf("--confirm %s: the manifest has no step %q", step, step)
		}
	}
	if f.key != "" && f.bundle == "" {
		return errors.New("--release-key is only used with --bundle")
	}
	var bundle *release.Bundle
	var releaseKeys release.Keys
	if f.bundle != "" && !f.check {
		if bundle, err = loadBundle(f.bundle); err != nil {
			return err
		}
		if releaseKeys, err = loadReleaseKeys(f.key, f.dataDir); err != nil {
			return err
		}
	}
	records := f.dataDir
	if f.check {
		records = "" // a dry run leaves the data dir alone
	}
	host, err := newPluginHost(f.plugins, records, log)
	if err != nil {
		return err
	}
	defer host.Close()
	r := &apply.Runner{
		Host:         hostAdapter{host},
		Root:         root,
		ArtifactsDir: artifacts,
		CacheDir:     filepath.Join(f.dataDir, session.PluginCacheDir),
		StateDir:     filepath.Join(f.dataDir, session.StepStateDir),
		Confirm:      confirmer(in, s.errOut, notes),
		Logger:       log,
		Bundle:       bundle,
		ReleaseKeys:  releaseKeys,
	}
	if f.check {
		rep, err := r.Check(ctx, m)
		if err != nil {
			return err
		}
		if err := writeCheck(s.out, f.output, rep); err != nil {
			return err
		}
		if !rep.OK() {
			return &exitError{code: ExitFailed, err: errors.New("the check found problems (listed above)")}
		}
		return nil
	}
	j, err := journal.Open(f.dataDir, journal.Options{Logger: log})
	if err != nil {
		return err
	}
	defer j.Close()
	r.Journal = j
	rep, runErr := r.Run(ctx, m)
	if rep != nil && (runErr == nil || errors.Is(runErr, apply.ErrFailed) || len(rep.Steps) > 0) {
		if err := writeReport(s.out, f.output, rep); err != nil {
			return err
		}
	}
	switch {
	case runErr == nil:
		return nil
	case errors.Is(runErr, apply.ErrFailed), errors.Is(runErr, apply.ErrInterrupted), errors.Is(runErr, apply.ErrUnverified):
		return &exitError{code: ExitFailed, err: runErr}
	default:
		return runErr
	}
}

// loadBundle reads a signed release bundle (JSON).
func loadBundle(path string) (*release.Bundle, error) {
	data, err := readlimit.Stream(path, "release bundle", release.MaxBundleBytes)
	if err != nil {
		return nil, fmt.Errorf("--bundle: %w", err)
	}
	var b release.Bundle
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("--bundle %s: not a release bundle: %w", path, err)
	}
	return &b, nil
}

// loadReleaseKeys reads the release public key from the PEM file path
// or, when path is empty, the release keys the agent trusts (what the
// controller last sent, or the key it received at enrollment), with when
// each retires.
func loadReleaseKeys(path, dataDir string) (release.Keys, error) {
	if path != "" {
		data, err := readlimit.Stream(path, "release key", pki.MaxPEMBytes)
		if err != nil {
			return nil, fmt.Errorf("--release-key: %w", err)
		}
		key, err := release.ParsePublicKeyPEM(data)
		if err != nil {
			return nil, fmt.Errorf("--release-key %s: %w", path, err)
		}
		return release.SingleKey(key), nil
	}
	id, err := session.LoadIdentity(dataDir)
	if err != nil {
		return nil, fmt.Errorf("--bundle needs the controller's release key: pass --release-key FILE or enroll this agent: %w", err)
	}
	trust, err := session.LoadTrust(dataDir, id)
	if err != nil {
		return nil, err
	}
	if len(trust.ReleaseKeys) == 0 {
		return nil, fmt.Errorf("the agent in %s knows no release key: pass --release-key FILE", dataDir)
	}
	return trust.ReleaseKeys, nil
}

func hasStep(m *manifest.Manifest, name string) bool {
	for _, list := range m.Lists() {
		for _, s := range list {
			if s.Name == name {
				return true
			}
		}
	}
	return false
}

// newPluginHost builds the plugin host: the built-ins by re-executing
// this binary, external plugins from the catalog in dir (if any). With a
// dataDir, it records the plugin processes it starts there, and first
// kills those an earlier agent on dataDir left running
// (pluginhost.Reap).
func newPluginHost(dir, dataDir string, log *slog.Logger) (*pluginhost.Host, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the cairn-agent binary to start built-in plugins: %w", err)
	}
	var cat *catalog.Catalog
	if dir != "" {
		if cat, err = catalog.Load(dir); err != nil {
			return nil, err
		}
	}
	cfg := pluginhost.Config{Self: self, Builtins: builtin.Names(), Catalog: cat, Logger: log}
	if dataDir != "" {
		cfg.ProcDir = filepath.Join(dataDir, session.PluginProcDir)
		pluginhost.Reap(cfg.ProcDir, log)
	}
	if pluginhost.RunningExecutable != "" {
		cfg.Self, cfg.SelfRunning = pluginhost.RunningExecutable, true
	}
	return pluginhost.New(cfg), nil
}

// hostAdapter makes *pluginhost.Host an apply.Host.
type hostAdapter struct{ h *pluginhost.Host }

func (a hostAdapter) Start(ctx context.Context, name string) (apply.Instance, error) {
	inst, err := a.h.Start(ctx, name)
	if err != nil {
		return apply.Instance{}, err
	}
	return apply.Instance{Plugin: inst.Plugin, Close: inst.Close}, nil
}

// maxNoteBytes bounds a confirmation note typed at the prompt.
const maxNoteBytes = 64 << 10

// confirmer confirms manual steps from --confirm notes or, on a
// terminal, by asking.
func confirmer(in io.Reader, prompt io.Writer, notes map[string]string) apply.ConfirmFunc {
	by := "unknown"
	if u, err := user.Current(); err == nil {
		by = u.Username
	}
	var lines *readlimit.Lines
	return func(ctx context.Context, step, instructions string) (*sdk.Confirmation, error) {
		now := time.Now().UTC().Format(time.RFC3339)
		if note, ok := notes[step]; ok {
			return &sdk.Confirmation{By: by, Note: note, At: now}, nil
		}
		f, ok := in.(*os.File)
		if !ok || !isTerminal(f) {
			return nil, fmt.Errorf("step %s needs an operator's confirmation: pass --confirm %s=NOTE: %w", step, step, apply.ErrConfirmation)
		}
		if lines == nil {
			lines = readlimit.NewLines(in, "confirmation note", maxNoteBytes)
		}
		fmt.Fprintf(prompt, "\nStep %s needs an operator's confirmation:\n  %s\nType a note saying what was done (empty to refuse): ", step, instructions)
		if !lines.Scan() {
			if err := lines.Err(); err != nil {
				return nil, fmt.Errorf("step %s: %w: %w", step, err, apply.ErrConfirmation)
			}
			return nil, fmt.Errorf("step %s: the operator did not confirm: %w", step, apply.ErrConfirmation)
		}
		note := strings.TrimSpace(lines.Text())
		if note == "" {
			return nil, fmt.Errorf("step %s: the operator did not confirm: %w", step, apply.ErrConfirmation)
		}
		return &sdk.Confirmation{By: by, Note: note, At: now}, nil
	}
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// writeProtoJSON writes m as indented JSON with the .proto field names
// (snake_case), as cairnctl's -o json does; fields at their zero value
// are left out. The indentation is redone with encoding/json because
// protojson varies its whitespace on purpose; this output is stable.
func writeProtoJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %s: %w", m.ProtoReflect().Descriptor().Name(), err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return fmt.Errorf("indent %s: %w", m.ProtoReflect().Descriptor().Name(), err)
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

// writeCheck prints a dry run: -o json is the cairn.agent.v1.PlanReport.
func writeCheck(w io.Writer, output string, rep *agentv1.PlanReport) error {
	if output == "json" {
		return writeProtoJSON(w, rep)
	}
	fmt.Fprintf(w, "check of %s against root %s (nothing is changed)\n", rep.Release, rep.Root)
	for _, a := range rep.ArtifactErrors {
		fmt.Fprintf(w, "artifact problem: %s\n", a)
	}
	for _, p := range rep.Steps {
		fmt.Fprintf(w, "\n%s/%s (plugin %s", p.List, p.Name, p.Plugin)
		if p.Idempotent {
			fmt.Fprint(w, ", idempotent")
		}
		if p.NeedsConfirmation {
			fmt.Fprint(w, ", needs confirmation")
		}
		fmt.Fprintln(w, ")")
		if p.Error != "" {
			fmt.Fprintf(w, "  error: %s\n", p.Error)
		}
		for _, pr := range p.Problems {
			fmt.Fprintf(w, "  problem: %s\n", pr.Text())
		}
		if p.Error != "" || len(p.Problems) > 0 {
			continue
		}
		if p.List != manifest.ListSteps {
			fmt.Fprintln(w, "  parameters ok")
			continue
		}
		if !p.WouldChange {
			fmt.Fprintln(w, "  no change")
		}
		for _, a := range p.Actions {
			fmt.Fprintf(w, "  - %s\n", a)
		}
		for _, c := range p.Changes {
			fmt.Fprintf(w, "  declares: %s\n", c.Text())
		}
	}
	if rep.OK() {
		fmt.Fprintln(w, "\ncheck passed")
	}
	return nil
}

// writeReport prints what a run did: -o json is the
// cairn.agent.v1.ApplyReport.
func writeReport(w io.Writer, output string, rep *agentv1.ApplyReport) error {
	if output == "json" {
		return writeProtoJSON(w, rep)
	}
	fmt.Fprintf(w, "deployment %s: %s on root %s\n", shortID(rep.DeploymentId), rep.Release, rep.Root)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tPLUGIN\tRESULT\tDURATION")
	for _, st := range rep.Steps {
		fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\n", st.List, st.Name, st.Plugin, st.Outcome, st.Elapsed().Round(time.Millisecond))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, st := range rep.Steps {
		if st.Error != "" {
			fmt.Fprintf(w, "%s/%s: %s\n", st.List, st.Name, st.Error)
		}
	}
	_, err := fmt.Fprintf(w, "%s in %s\n", rep.State, rep.Elapsed().Round(time.Millisecond))
	return err
}

func shortID(id string) string { return id[:min(12, len(id))] }
