package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestConfigInputLimits: the config file and a webhook's secret_file are
// regular files of bounded size. An endless device, a named pipe (which
// would hold the daemon's start waiting for a writer) or a file past the
// limit is refused with an error naming it.
func TestConfigInputLimits(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 1<<20+1); err != nil {
		t.Fatal(err)
	}
	withSecret := func(secretFile string) string {
		path := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(path, []byte("webhooks:\n  - url: https://hooks.example/x\n    secret_file: "+secretFile+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name, config, want string
	}{
		{"config /dev/zero", "/dev/zero", "config /dev/zero: not a regular file (a character device)"},
		{"config from a named pipe", fifo, "config " + fifo + ": not a regular file (a named pipe)"},
		{"config over the limit", big, "config " + big + ": larger than 1 MiB (limit)"},
		{"secret_file /dev/zero", withSecret("/dev/zero"), ": webhooks[0].secret_file: secret /dev/zero: not a regular file (a character device)"},
		{"secret_file a named pipe", withSecret(fifo), ": webhooks[0].secret_file: secret " + fifo + ": not a regular file (a named pipe)"},
		{"secret_file over the limit", withSecret(big), ": webhooks[0].secret_file: secret " + big + ": larger than 64 KiB (limit)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(Sources{ConfigFile: tt.config})
			if err == nil {
				t.Fatal("Load: no error")
			}
			got := strings.TrimPrefix(err.Error(), tt.config)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}
