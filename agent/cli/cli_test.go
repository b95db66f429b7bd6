package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func execute(args ...string) (stdout, stderr string, code int) {
	var out, errOut bytes.Buffer
	code = Execute(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestHelpHasExamples(t *testing.T) {
	for _, cmd := range []string{"audit", "diff"} {
		t.Run(cmd, func(t *testing.T) {
			out, _, code := execute(cmd, "--help")
			if code != ExitOK || !strings.Contains(out, "Examples:") {
				t.Errorf("%s --help: exit %d, want examples:\n%s", cmd, code, out)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"audits"}, `unknown command "audits"`},
		{"unknown flag", []string{"audit", "--rot", "/"}, "unknown flag: --rot"},
		{"diff needs two files", []string{"diff", "a.json"}, "diff needs two audit files, BEFORE and AFTER (got 1)"},
		{"audit takes no arguments", []string{"audit", "/etc/passwd"}, `audit takes no arguments, got "/etc/passwd"`},
		{"bad track glob", []string{"audit", "--track", "/etc/["}, `--track "/etc/[": syntax error in pattern`},
		{"bad size", []string{"audit", "--max-hash-bytes", "lots"}, `invalid size "lots"`},
		{"summary with json", []string{"audit", "--summary", "-o", "json"}, "--summary works with -o text only"},
		{"diff bad format", []string{"diff", "-o", "html", "a.json", "b.json"}, `unknown output format "html"`},
		{"audit bad root", []string{"audit", "--root", "/nonexistent/root"}, "root: stat /nonexistent/root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := execute(tt.args...)
			if code != ExitError {
				t.Errorf("exit %d, want %d", code, ExitError)
			}
			if !strings.HasPrefix(errOut, "cairn-agent: ") || !strings.Contains(errOut, tt.want) {
				t.Errorf("stderr %q, want a cairn-agent error containing %q", errOut, tt.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	out, _, code := execute("version")
	if code != ExitOK || strings.TrimSpace(out) == "" {
		t.Errorf("version: exit %d, output %q", code, out)
	}
}
