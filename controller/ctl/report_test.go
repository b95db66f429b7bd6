package ctl

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-ops/cairn/controller/report"
	"github.com/cairn-ops/cairn/controller/rollout/state"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// issueReport renders a small report in format as the controller does,
// writes it to a file and records it in the fake as issued.
func issueReport(t *testing.T, f *fake, format string) (path string, content []byte, digest string) {
	t.Helper()
	in := report.Input{
		Rollout: &controllerv1.RolloutRecord{Id: "ro-1", Release: webshop24, State: state.RolloutCompleted,
			Nodes: []*controllerv1.RolloutNode{{NodeId: "n-1", Hostname: "web1", Wave: 1, State: state.NodePassed}}},
		Release:     &controllerv1.ReleaseRecord{Name: "webshop", Version: "2.4.0"},
		GeneratedAt: time.Date(2026, 12, 7, 13, 3, 12, 0, time.UTC),
		Location:    time.FixedZone("CET", 3600),
	}
	content, _, err := report.Render(in, format)
	if err != nil {
		t.Fatal(err)
	}
	file, err := report.Inspect(content)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	if f.issued == nil {
		f.issued = map[string]*controllerv1.IssuedReport{}
	}
	f.issued[file.Digest] = &controllerv1.IssuedReport{Digest: file.Digest, RolloutId: "ro-1", Release: webshop24, Format: format,
		GeneratedAt: "2026-12-07T13:03:12.000000000Z", GeneratedAtShown: "2026-12-07 14:03:12 CET", IssuedTo: "user:erin"}
	f.mu.Unlock()
	path = filepath.Join(t.TempDir(), "report."+format)
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, content, file.Digest
}

// write writes content to a new file and returns its path.
func write(t *testing.T, name string, content []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReportVerify(t *testing.T) {
	f := startFake(t)
	for _, format := range []string{"text", "json", "markdown", "html"} {
		t.Run(format, func(t *testing.T) {
			path, content, digest := issueReport(t, f, format)

			// As issued: verified.
			r := f.run(t, nil, "", "report", "verify", path)
			want := "verified: report of rollout ro-1 generated at 2026-12-07 14:03:12 CET by the controller (webshop@2.4.0, " + format + ", issued to user:erin; " + digest + ")\n"
			if r.code != ExitOK || r.stdout != want {
				t.Errorf("verify the issued report: exit %d\nstdout %q\nwant   %q\nstderr %s", r.code, r.stdout, want, r.stderr)
			}

			// One byte of the content edited: the content no longer hashes
			// to its digest, which the controller did issue.
			edited := bytes.Replace(content, []byte("web1"), []byte("web9"), 1)
			r = f.run(t, nil, "", "report", "verify", write(t, "edited", edited))
			if r.code != ExitFailed || !strings.Contains(r.stderr, "edited: its content does not hash to the digest it carries ("+digest+")") ||
				!strings.Contains(r.stderr, "the controller issued "+digest+" as the "+format+" report of rollout ro-1 (webshop@2.4.0) generated at 2026-12-07 14:03:12 CET") {
				t.Errorf("verify an edited report: exit %d, stderr %s", r.code, r.stderr)
			}

			// Edited and its digest recomputed: a digest the controller
			// never issued.
			sum := sha256.Sum256(bytes.ReplaceAll(edited, []byte(digest), nil))
			forged := "sha256:" + hex.EncodeToString(sum[:])
			r = f.run(t, nil, "", "report", "verify", write(t, "forged", bytes.ReplaceAll(edited, []byte(digest), []byte(forged))))
			if r.code != ExitFailed || !strings.Contains(r.stderr, "unknown digest: the controller issued no report with digest "+forged) {
				t.Errorf("verify an edited report with its digest recomputed: exit %d, stderr %s", r.code, r.stderr)
			}
		})
	}
}

func TestReportVerifyRefused(t *testing.T) {
	f := startFake(t)
	path, content, digest := issueReport(t, f, "text")
	tests := []struct {
		name   string
		args   []string
		code   int
		errOut string
	}{
		{"not a report", []string{write(t, "notes.txt", []byte("meeting notes\n"))}, ExitUsage, `notes.txt: malformed report: not a rollout report in any of the formats [text json markdown html] (it starts "meeting notes")`},
		{"digest line removed", []string{write(t, "cut.txt", bytes.Replace(content, []byte("Report digest: "+digest+"\n"), nil, 1))}, ExitUsage,
			`cut.txt: malformed report: the text report carries no digest (a line "Report digest: sha256:…")`},
		{"no such file", []string{filepath.Join(t.TempDir(), "nope.html")}, ExitUsage, "nope.html"},
		{"no file named", nil, ExitUsage, "cairnctl report verify needs FILE"},
		{"forbidden", []string{path}, ExitDenied, "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string(nil)
			if tt.name == "forbidden" {
				env = map[string]string{"CAIRN_TOKEN": viewerToken}
			}
			r := f.run(t, env, "", append([]string{"report", "verify"}, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.errOut) {
				t.Errorf("exit %d, want %d; stderr %q, want it to say %q", r.code, tt.code, r.stderr, tt.errOut)
			}
		})
	}
}
