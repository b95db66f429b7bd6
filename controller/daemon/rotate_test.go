package daemon

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestRotateCommand runs cairn-controller rotate on a data directory:
// exit codes, what it says, and what it refuses.
func TestRotateCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := Init(context.Background(), InitOptions{DataDir: dir}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		out    string
		errOut string
	}{
		{name: "ca", args: []string{"rotate", "ca", "--data-dir", dir, "--overlap", "1h"}, out: "CA rotated (generation 1): CA "},
		{name: "signing key", args: []string{"rotate", "signing-key", "--data-dir", dir}, out: "Release-signing key rotated (generation 2)"},
		{name: "status", args: []string{"rotate", "status", "--data-dir", dir}, out: "in overlap"},
		{name: "finish ca", args: []string{"rotate", "ca", "--data-dir", dir, "--finish"}, out: "ca rotation finished: "},
		{name: "finish ca again", args: []string{"rotate", "ca", "--data-dir", dir, "--finish"}, code: ExitFailed, errOut: "no rotation in its overlap: no ca is retiring"},
		{name: "overlap too short", args: []string{"rotate", "ca", "--data-dir", dir, "--overlap", "10s"}, code: ExitUsage, errOut: "--overlap 10s: give between 1m0s and 9600h0m0s"},
		{name: "finish with overlap", args: []string{"rotate", "ca", "--data-dir", dir, "--finish", "--overlap", "1h"}, code: ExitUsage, errOut: "--finish ends an overlap; it takes no --overlap"},
		{name: "no data dir", args: []string{"rotate", "ca"}, code: ExitUsage, errOut: "--data-dir is required"},
		{name: "not initialized", args: []string{"rotate", "ca", "--data-dir", t.TempDir()}, code: ExitFailed, errOut: "data directory not initialized"},
		{name: "unknown kind", args: []string{"rotate", "server", "--data-dir", dir}, code: ExitUsage, errOut: `unknown command "server"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Execute(context.Background(), tc.args, &out, &errOut)
			if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errOut.String(), tc.errOut) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q", code, out.String(), errOut.String(), tc.code, tc.out, tc.errOut)
			}
		})
	}
}
