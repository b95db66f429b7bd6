package cli

import (
	"regexp"
	"testing"

	"github.com/cairn-ops/cairn/agent/journal"
)

// TestJournalShowsCommand: list and show name the deploy command a
// deployment belongs to, and "-" for a local apply.
func TestJournalShowsCommand(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []journal.Deployment{
		{ID: "1111111111112222", CommandID: "cmd-42", Manifest: "shop@2.0.1", Root: "/srv"},
		{ID: "3333333333334444", Manifest: "shop@2.0.0", Root: "/srv"},
	} {
		if _, _, err := j.Begin(t.Context(), d, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"journal", "list"}, []string{`DEPLOYMENT\s+COMMAND\s+RELEASE`, `111111111111\s+cmd-42\s+shop@2.0.1`, `333333333333\s+-\s+shop@2.0.0`}},
		{[]string{"journal", "list", "-o", "json"}, []string{`"command_id": "cmd-42"`}},
		{[]string{"journal", "show", "1111"}, []string{`(?m)^command\s+cmd-42$`}},
		{[]string{"journal", "show", "3333"}, []string{`(?m)^command\s+-$`}},
	}
	for _, tt := range tests {
		out, errOut, code := execute(append(tt.args, "--data-dir", dir)...)
		if code != ExitOK {
			t.Fatalf("%v: exit %d: %s", tt.args, code, errOut)
		}
		for _, w := range tt.want {
			if !regexp.MustCompile(w).MatchString(out) {
				t.Errorf("%v: output does not match %s:\n%s", tt.args, w, out)
			}
		}
	}
}
