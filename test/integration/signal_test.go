package integration

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestInterruptWhileBlocked: a command blocked where its context cannot
// reach — opening a named pipe nobody writes, given as -f or --ca (which
// take pipes, for <(...)) — still ends when the operator presses Ctrl-C
// again: the first interrupt cancels the command, the next ends the
// process.
func TestInterruptWhileBlocked(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		bin  string
		args []string
	}{
		{"cairn-agent", []string{"apply", "-f", fifo, "--check", "--data-dir", t.TempDir()}},
		{"cairn-agent", []string{"diff", fifo, fifo}},
		{"cairnctl", []string{"release", "validate", "-f", fifo}},
		{"cairnctl", []string{"--ca", fifo, "--controller", "127.0.0.1:1", "whoami"}},
	} {
		t.Run(fmt.Sprintf("%s %s", tc.bin, tc.args[0]), func(t *testing.T) {
			cmd := exec.Command(filepath.Join(binDir, tc.bin), tc.args...)
			cmd.Env = cleanEnv(t.TempDir())
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			// Until it ends: one interrupt may come before the command
			// blocks, or before it is ready for the next.
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			deadline := time.After(20 * time.Second)
			for {
				select {
				case <-done:
					return
				case <-tick.C:
					cmd.Process.Signal(syscall.SIGINT)
				case <-deadline:
					cmd.Process.Kill()
					<-done
					t.Fatalf("%s %v still ran 20 s after the first of many interrupts:\n%s", tc.bin, tc.args, out.String())
				}
			}
		})
	}
}
