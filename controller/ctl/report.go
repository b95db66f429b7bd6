package ctl

import (
	"fmt"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/controller/report"
	"github.com/cairn-ops/cairn/internal/readlimit"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// maxReportBytes is the largest report file 'report verify' reads: the
// largest report cairnctl receives.
const maxReportBytes = maxRecvMsgBytes

func (a *app) newReportCommand() *cobra.Command {
	return group("report", "Check that an exported rollout report is the one the controller issued",
		`Every report 'cairnctl rollout report' writes (text, JSON, Markdown or
HTML) carries a digest of its content, and the controller records every
digest it issues. 'report verify' recomputes a file's digest and asks the
controller for its record, so an edited report is caught, also one whose
digest the editor recomputed.`,
		`  cairnctl rollout report ro-6c3302e95c4e -o html --out rollout.html
  cairnctl report verify rollout.html`,
		a.newReportVerifyCommand(),
	)
}

func (a *app) newReportVerifyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check that a report file is exactly what the controller issued",
		Long: `Verify tells the report's format from the file, recomputes the digest of
its content (SHA-256 of the file without its digest) and asks the
controller whether it issued a report with that digest. It prints which
rollout the report is of and when the controller generated it.

Exit status: 0 verified; 1 the content was edited (it no longer hashes to
the digest it carries), or the controller issued no report with its
digest (edited and its digest recomputed, or issued by another
controller); 2 the file is not a report that carries a digest.`,
		Example: `  cairnctl report verify rollout.html
  cairnctl rollout report ro-6c3302e95c4e -o json | cairnctl report verify /dev/stdin`,
		Args: exactArgs("FILE"),
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		path := args[0]
		data, err := readlimit.Stream(path, "report", maxReportBytes)
		if err != nil {
			return usageError(err)
		}
		f, err := report.Inspect(data)
		if err != nil {
			return usageError(fmt.Errorf("%s: %w", path, err))
		}
		cc, ctx, cancel, err := a.client(cmd.Context())
		if err != nil {
			return err
		}
		defer cancel()
		client := controllerv1.NewRolloutsClient(cc)
		if f.Edited() {
			msg := fmt.Sprintf("%s: edited: its content does not hash to the digest it carries (%s): it hashes to %s", path, f.Digest, f.Content)
			if rec, err := client.VerifyRolloutReport(ctx, &controllerv1.VerifyReportRequest{Digest: f.Digest}); err == nil {
				msg += "; the controller issued " + f.Digest + " as " + issuedWords(rec)
			}
			return failedf("%s", msg)
		}
		rec, err := client.VerifyRolloutReport(ctx, &controllerv1.VerifyReportRequest{Digest: f.Content})
		if status.Code(err) == codes.NotFound {
			return failedf("%s: unknown digest: the controller issued no report with digest %s: the report was edited and its digest recomputed, or another controller issued it", path, f.Content)
		}
		if err != nil {
			return rpcErr("verify report "+path, err)
		}
		if rec.GetFormat() != f.Format {
			// The same bytes cannot be two formats; a controller that says
			// so is not to be believed.
			return failedf("%s: the file is a %s report, but the controller issued %s as %s", path, f.Format, f.Content, issuedWords(rec))
		}
		_, err = fmt.Fprintf(a.out, "verified: report of rollout %s generated at %s by the controller (%s, %s, issued to %s; %s)\n",
			rec.GetRolloutId(), rec.GetGeneratedAtShown(), refString(rec.GetRelease()), rec.GetFormat(), rec.GetIssuedTo(), rec.GetDigest())
		return err
	}
	return cmd
}

// issuedWords says what an issued report was: "the html report of
// rollout ro-1 (webshop@2.4.0) generated at 2026-12-07 14:03:12 CET".
func issuedWords(rec *controllerv1.IssuedReport) string {
	return fmt.Sprintf("the %s report of rollout %s (%s) generated at %s", rec.GetFormat(), rec.GetRolloutId(),
		refString(rec.GetRelease()), rec.GetGeneratedAtShown())
}
