package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cairn-ops/cairn/controller/rollout/state"
)

// TestReportVerify exports a rollout's report in every format, to a file
// (--out) and through standard output, and has another reader verify
// each with the controller; then edits a byte of each, and separately
// edits one and recomputes its digest, and expects verify to refuse both,
// saying which.
func TestReportVerify(t *testing.T) {
	t.Parallel()
	f := newFleet(t, 1)
	ref := f.release(t, "simple.yaml", nil)
	id := f.start(t, ref)
	f.waitRollout(t, id, state.RolloutCompleted)
	dir := t.TempDir()

	digestRE := regexp.MustCompile(`sha256:[0-9a-f]{64}`)
	verified := regexp.MustCompile(`^verified: report of rollout ` + id + ` generated at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+ by the controller \(` +
		regexp.QuoteMeta(ref) + `, (text|json|markdown|html), issued to user:operator[^;]*; sha256:[0-9a-f]{64}\)\n$`)
	for _, format := range []string{"text", "json", "markdown", "html"} {
		t.Run(format, func(t *testing.T) {
			// Written by --out, and printed on standard output: both are
			// the report as issued.
			out := filepath.Join(dir, "report."+format)
			wrote := f.must(t, operator, "rollout", "report", id, "-o", format, "--out", out)
			printed := filepath.Join(dir, "printed."+format)
			if err := os.WriteFile(printed, []byte(f.report(t, id, format)), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, path := range []string{out, printed} {
				got := f.must(t, tester, "report", "verify", path)
				if !verified.MatchString(got) {
					t.Errorf("report verify %s:\n%s\nwant it to match %s", path, got, verified)
				}
			}
			content, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			digest := digestRE.FindString(wrote)
			if digest == "" || !bytes.Contains(content, []byte(digest)) {
				t.Fatalf("rollout report --out said %q; the file does not carry that digest", wrote)
			}

			// One byte of the content changed: the hostname of the node.
			edited := bytes.Replace(content, []byte("itest-1"), []byte("itest-7"), 1)
			if bytes.Equal(edited, content) {
				t.Fatalf("the %s report does not name itest-1", format)
			}
			r := f.as(t, tester, "report", "verify", write(t, dir, "edited."+format, edited))
			if r.code != 1 || !strings.Contains(r.stderr, "edited: its content does not hash to the digest it carries ("+digest+")") ||
				!strings.Contains(r.stderr, "the controller issued "+digest+" as the "+format+" report of rollout "+id) {
				t.Errorf("report verify of an edited %s report: exit %d, stderr:\n%s", format, r.code, r.stderr)
			}

			// Edited, and the digest recomputed as the definition says:
			// the content hashes to its digest, which the controller never
			// issued.
			sum := sha256.Sum256(bytes.ReplaceAll(edited, []byte(digest), nil))
			forged := "sha256:" + hex.EncodeToString(sum[:])
			r = f.as(t, tester, "report", "verify", write(t, dir, "forged."+format, bytes.ReplaceAll(edited, []byte(digest), []byte(forged))))
			if r.code != 1 || !strings.Contains(r.stderr, "unknown digest: the controller issued no report with digest "+forged) {
				t.Errorf("report verify of an edited %s report with its digest recomputed: exit %d, stderr:\n%s", format, r.code, r.stderr)
			}

			// Not a report any more.
			r = f.as(t, tester, "report", "verify", write(t, dir, "cut."+format, content[len(content)/3:]))
			if r.code != 2 || !strings.Contains(r.stderr, "malformed report") {
				t.Errorf("report verify of a cut %s report: exit %d, stderr:\n%s", format, r.code, r.stderr)
			}
		})
	}

	// The summary names who tested and who approved the release, and
	// shows times to the second with their zone.
	text := f.report(t, id, "text")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^  Tested by +user:` + tester + `\b`),
		regexp.MustCompile(`(?m)^  Approvers +user:` + approver + `\b`),
		regexp.MustCompile(`(?m)^Generated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+ by the controller$`),
		regexp.MustCompile(`(?m)^  Created +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+ by user:` + operator + `\b`),
	} {
		if !want.MatchString(text) {
			t.Errorf("the text report has no line matching %s:\n%s", want, text)
		}
	}
}

// write writes content to dir/name and returns the path.
func write(t *testing.T, dir, name string, content []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
