package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/internal/testutil"
)

// TestInputLimits: the files cairn-agent is given on its command line
// have limits; input past one, or an endless device, is refused with an
// error naming the input and the limit (exit 2) before anything runs.
func TestInputLimits(t *testing.T) {
	dataDir := t.TempDir()
	manifest := filepath.Join(t.TempDir(), "release.yaml")
	if err := os.WriteFile(manifest, []byte("apiVersion: cairn/v1\nkind: Release\nname: shop\nversion: 1.0.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	big := testutil.SparseFile(t, 1<<20+1)
	bigBundle := testutil.SparseFile(t, 4<<20+1)
	tests := []struct {
		name   string
		args   []string
		errOut string
	}{
		{
			name:   "apply --check -f /dev/zero",
			args:   []string{"apply", "-f", "/dev/zero", "--check", "--data-dir", dataDir},
			errOut: "cairn-agent: release manifest /dev/zero: larger than 1 MiB (limit)\n",
		},
		{
			name:   "apply -f a manifest over the limit",
			args:   []string{"apply", "-f", big, "--check", "--data-dir", dataDir},
			errOut: "cairn-agent: release manifest " + big + ": larger than 1 MiB (limit)\n",
		},
		{
			name:   "apply --bundle /dev/zero",
			args:   []string{"apply", "-f", manifest, "--bundle", "/dev/zero", "--data-dir", dataDir},
			errOut: "cairn-agent: --bundle: release bundle /dev/zero: larger than 4 MiB (limit)\n",
		},
		{
			name:   "apply --bundle over the limit",
			args:   []string{"apply", "-f", manifest, "--bundle", bigBundle, "--data-dir", dataDir},
			errOut: "cairn-agent: --bundle: release bundle " + bigBundle + ": larger than 4 MiB (limit)\n",
		},
		{
			name:   "run --ca over the limit",
			args:   []string{"run", "--data-dir", dataDir, "--controller", "127.0.0.1:1", "--token", "t", "--ca", big},
			errOut: "cairn-agent: --ca: CA certificate " + big + ": larger than 1 MiB (limit)\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := execute(tt.args...)
			if code != ExitError {
				t.Errorf("exit %d, want %d", code, ExitError)
			}
			if diff := cmp.Diff(tt.errOut, errOut); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}
