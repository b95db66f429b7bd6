package daemon

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-ops/cairn/controller/keyring"
)

func newRotateCommand(stdout io.Writer, env func(string) (string, bool)) *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "rotate (ca | signing-key) [--overlap DURATION | --finish]",
		Short: "Rotate the CA or the release-signing key, with an overlap",
		Long: `rotate replaces the controller's CA (which issues node certificates and the
controller's own TLS certificate) or its release-signing key. The new one is
used at once; the old one stays accepted for --overlap (default 168h, at
least 1m, at most 400 days), then retires. It works on the data directory,
whether the controller runs or not: a running controller picks the change up
within a second, records it in the audit log (actor local:USER, the user who
ran rotate) and tells every connected agent.

rotate ca: during the overlap the controller still presents its certificate
from the old CA, so agents that have not heard of the new one can connect
and learn of it; each connected agent saves the new CA and renews its
certificate from it at once. DATA/ca.pem holds both CAs: give it again to
cairnctl users and to agents you will enroll. After the overlap the
controller presents its certificate from the new CA and refuses node
certificates of the old one ("issued by CA ..., which retired at ..."): an
agent that was not connected during the whole overlap must be enrolled
again.

rotate signing-key: releases sealed from now on are signed with the new
key; releases signed with the old one still verify, on the controller and
on agents, until the overlap ends, then are refused ("signed by release key
..., which retired at ..."): finish their rollouts and rollbacks within the
overlap, or seal a new version. DATA/release.pub.pem is the new key.

--finish ends the overlap now, for example once every agent has renewed
(cairnctl node list shows them connected). 'rotate status' shows the CAs
and keys and when each retires.

A rotation writes its new key files first and DATA/keys.json last, in one
atomic step: if it dies before, nothing changed and it can be run again; if
it dies after, it is done, and the controller finishes writing ca.pem and
release.pub.pem when it starts.`,
		Example: `  cairn-controller rotate ca --data-dir /var/lib/cairn --overlap 336h
  cairn-controller rotate signing-key --data-dir /var/lib/cairn
  cairn-controller rotate ca --data-dir /var/lib/cairn --finish
  cairn-controller rotate status --data-dir /var/lib/cairn`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", "", "data directory made by init (or CAIRN_DATA_DIR)")
	dir := func() (string, error) {
		if dataDir == "" {
			dataDir, _ = env("CAIRN_DATA_DIR")
		}
		if dataDir == "" {
			return "", &usageError{errors.New("--data-dir is required (or CAIRN_DATA_DIR)")}
		}
		if _, err := os.Stat(layout(dataDir).path(StoreFile)); errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%w: %s has no %s", ErrNotInitialized, dataDir, StoreFile)
		}
		return dataDir, nil
	}
	for _, kind := range []keyring.Kind{keyring.KindCA, keyring.KindSigningKey} {
		cmd.AddCommand(newRotateKindCommand(stdout, kind, dir))
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "status",
		Short:   "Show the CAs and release keys, and when each retires",
		Example: `  cairn-controller rotate status --data-dir /var/lib/cairn`,
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			d, err := dir()
			if err != nil {
				return err
			}
			k, err := keyring.Load(d)
			if err != nil {
				return err
			}
			return writeStatus(stdout, k, time.Now())
		},
	})
	return cmd
}

func newRotateKindCommand(stdout io.Writer, kind keyring.Kind, dir func() (string, error)) *cobra.Command {
	var (
		overlap time.Duration
		finish  bool
	)
	what := map[keyring.Kind]string{keyring.KindCA: "the CA", keyring.KindSigningKey: "the release-signing key"}[kind]
	cmd := &cobra.Command{
		Use:     string(kind) + " [--overlap DURATION | --finish]",
		Short:   "Rotate " + what + " (see 'cairn-controller rotate --help')",
		Example: "  cairn-controller rotate " + string(kind) + " --data-dir /var/lib/cairn --overlap 72h",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := dir()
			if err != nil {
				return err
			}
			if finish && cmd.Flags().Changed("overlap") {
				return &usageError{errors.New("--finish ends an overlap; it takes no --overlap")}
			}
			if overlap < keyring.MinOverlap || overlap > keyring.MaxOverlap {
				return &usageError{fmt.Errorf("--overlap %s: give between %s and %s", overlap, keyring.MinOverlap, keyring.MaxOverlap)}
			}
			c := keyring.Change{Now: time.Now(), By: osUser(), Overlap: overlap}
			var k *keyring.Keyring
			if finish {
				k, err = keyring.Finish(d, kind, c)
			} else {
				k, err = keyring.Rotate(d, kind, c)
			}
			if err != nil {
				return err
			}
			return writeRotated(stdout, d, kind, finish, k)
		},
	}
	cmd.Flags().DurationVar(&overlap, "overlap", keyring.DefaultOverlap, "how long the old one stays accepted")
	cmd.Flags().BoolVar(&finish, "finish", false, "end the overlap of the last rotation now")
	return cmd
}

// writeRotated says what a rotation did and what the operator does next.
func writeRotated(w io.Writer, dir string, kind keyring.Kind, finish bool, k *keyring.Keyring) error {
	ev := k.Events[len(k.Events)-1]
	switch {
	case finish:
		_, err := fmt.Fprintf(w, "%s rotation finished: %s retired now. A running controller refuses them within a second.\n", kind, ev.Details["retired"])
		return err
	case kind == keyring.KindCA:
		_, err := fmt.Fprintf(w, `CA rotated (generation %d): CA %s issues node certificates from now on; %s stays accepted until %s.
A running controller picks this up within a second and tells connected agents, which renew their certificates from the new CA.
%s holds both CAs now: give it to cairnctl users and to agents you enroll. Agents not connected before %s must be enrolled again.
`, k.Generation, ev.Details["ca_serial"], orNone(ev.Details["retiring"]), ev.Details["overlap_ends"], layout(dir).path(CACertFile), ev.Details["overlap_ends"])
		return err
	default:
		_, err := fmt.Fprintf(w, `Release-signing key rotated (generation %d): key %s signs releases sealed from now on; %s still verifies until %s.
A running controller picks this up within a second and tells connected agents. Finish rollouts and rollbacks of releases sealed before now within the overlap.
%s holds the new public key.
`, k.Generation, ev.Details["release_key"], orNone(ev.Details["retiring"]), ev.Details["overlap_ends"], layout(dir).path(ReleasePubFile))
		return err
	}
}

// writeStatus prints the keyring as a table.
func writeStatus(w io.Writer, k *keyring.Keyring, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "generation %d\n", k.Generation)
	fmt.Fprintln(tw, "KIND\tID\tADDED\tRETIRES\tSTATE")
	state := func(last bool, retires time.Time, current string) string {
		switch {
		case last:
			return current
		case !now.Before(retires):
			return "retired"
		default:
			return "in overlap"
		}
	}
	for i, ca := range k.CAs {
		fmt.Fprintf(tw, "ca\t%s\t%s\t%s\t%s\n", ca.Serial, when(ca.AddedAt), when(ca.RetiresAt), state(i == len(k.CAs)-1, ca.RetiresAt, "issues node certificates"))
	}
	for i, rk := range k.ReleaseKeys {
		fmt.Fprintf(tw, "signing-key\t%s\t%s\t%s\t%s\n", rk.ID, when(rk.AddedAt), when(rk.RetiresAt), state(i == len(k.ReleaseKeys)-1, rk.RetiresAt, "signs releases"))
	}
	return tw.Flush()
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orNone(s string) string {
	if s == "" {
		return "no earlier one"
	}
	return s
}

// osUser names who runs the command, for the audit log.
func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "uid-" + strconv.Itoa(os.Getuid())
}
