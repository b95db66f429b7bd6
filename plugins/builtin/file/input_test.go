package file

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cairn-ops/cairn/internal/readlimit"
)

// TestArtifactNotRegular: an artifact that is a named pipe or a device is
// refused at once, not waited on or read forever.
func TestArtifactNotRegular(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, art := range map[string]string{"named pipe": fifo, "device": "/dev/zero"} {
		t.Run(name, func(t *testing.T) {
			sc := stepContext(t, newRoot(t), map[string]any{"path": "/srv/blob", "artifact": "blob"})
			sc.Artifacts = map[string]string{"blob": art}
			_, err := New().Plan(t.Context(), sc)
			if !errors.Is(err, readlimit.ErrNotRegular) {
				t.Errorf("Plan = %v, want ErrNotRegular", err)
			}
		})
	}
}
