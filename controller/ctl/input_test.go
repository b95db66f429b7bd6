package ctl

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-ops/cairn/internal/testutil"
)

// TestInputLimits: every file or stream cairnctl reads has a limit, and
// input past it (or an endless device) is refused with an error naming
// the input and the limit, exit 2, before anything reaches the
// controller. A named pipe where a regular file is wanted is refused
// without waiting for a writer.
func TestInputLimits(t *testing.T) {
	f := startFake(t)
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	bigManifest := testutil.SparseFile(t, 1<<20+1)
	bigPEM := testutil.SparseFile(t, 1<<20+1)
	bigConfig := testutil.SparseFile(t, 64<<10+1)
	bigImport := testutil.SparseFile(t, 16<<20+1)
	tests := []struct {
		name   string
		env    map[string]string
		stdin  string
		args   []string
		errOut string
	}{
		{
			name: "release validate: manifest over the limit", args: []string{"release", "validate", "-f", bigManifest},
			errOut: "cairnctl: release manifest " + bigManifest + ": larger than 1 MiB (limit)\n",
		},
		{
			name: "release validate: /dev/zero", args: []string{"release", "validate", "-f", "/dev/zero"},
			errOut: "cairnctl: release manifest /dev/zero: larger than 1 MiB (limit)\n",
		},
		{
			name: "release create: /dev/zero", args: []string{"release", "create", "-f", "/dev/zero"},
			errOut: "cairnctl: release manifest /dev/zero: larger than 1 MiB (limit)\n",
		},
		{
			name: "CA over the limit", env: map[string]string{"CAIRN_CA": bigPEM}, args: []string{"whoami"},
			errOut: "cairnctl: CA certificate " + bigPEM + ": larger than 1 MiB (limit): pass --ca or set CAIRN_CA to the controller's ca.pem\n",
		},
		{
			name: "--ca /dev/zero", args: []string{"--ca", "/dev/zero", "whoami"},
			errOut: "cairnctl: CA certificate /dev/zero: larger than 1 MiB (limit): pass --ca or set CAIRN_CA to the controller's ca.pem\n",
		},
		{
			name: "--config /dev/zero", args: []string{"--config", "/dev/zero", "whoami"},
			errOut: "cairnctl: config file /dev/zero: larger than 64 KiB (limit)\n",
		},
		{
			name: "config over the limit", args: []string{"--config", bigConfig, "whoami"},
			errOut: "cairnctl: config file " + bigConfig + ": larger than 64 KiB (limit)\n",
		},
		{
			name: "cms import: file over the limit", args: []string{"cms", "import", bigImport},
			errOut: "cairnctl: import: import document " + bigImport + ": larger than 16 MiB (limit)\n",
		},
		{
			name: "cms import: standard input over the limit", stdin: strings.Repeat(" ", 16<<20+1), args: []string{"cms", "import", "-"},
			errOut: "cairnctl: import: import document on standard input: larger than 16 MiB (limit)\n",
		},
		{
			name: "artifact push: a named pipe", args: []string{"artifact", "push", fifo},
			errOut: "cairnctl: artifact push: " + fifo + ": not a regular file (a named pipe)\n",
		},
		{
			name: "release test record: evidence from a named pipe", args: []string{"release", "test", "record", "shop@1.0.0", "--result", "pass", "--note", "ok", "--evidence", fifo},
			errOut: "cairnctl: artifact push: " + fifo + ": not a regular file (a named pipe)\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.reset()
			r := f.run(t, tt.env, tt.stdin, tt.args...)
			if r.code != ExitUsage {
				t.Errorf("exit code %d, want %d (usage); stderr:\n%s", r.code, ExitUsage, r.stderr)
			}
			if diff := cmp.Diff(tt.errOut, r.stderr); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
			if m := f.last(); m != nil {
				t.Errorf("the controller received %T; want nothing sent", m)
			}
		})
	}
}

// TestLargeAnswer: an answer larger than grpc-go's default 4 MiB (a whole
// audit of a big host, a report of a big rollout) reaches cairnctl; the
// controller may store audits up to its max_audit_bytes, 64 MiB by
// default.
func TestLargeAnswer(t *testing.T) {
	f := startFake(t)
	var pkgs []string
	for i := range 60000 {
		pkgs = append(pkgs, fmt.Sprintf("package-with-a-long-name-%06d=1.0.%d-1+deb12u1", i, i))
	}
	big := newAudit(t, "web1", ts(time.Hour), pkgs...)
	if n := proto.Size(big); n < 5<<20 {
		t.Fatalf("the audit is %d bytes; the test needs more than 5 MiB", n)
	}
	id := big.GetHashes().GetDocument()
	f.audits[id] = big
	r := f.run(t, nil, "", "audit", "show", id, "--summary")
	if r.code != ExitOK {
		t.Fatalf("audit show of a %d-byte audit: exit %d: %s", proto.Size(big), r.code, r.stderr)
	}
}
