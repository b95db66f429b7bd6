package exec

import (
	"context"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-ops/cairn/plugins/sdk/sdktest"
)

// envPluginStandIn makes this test binary stand in for the plugin
// process: it runs a program through execute that writes its pid to the
// file the variable names, and waits to be killed.
const envPluginStandIn = "CAIRN_EXEC_TEST_STAND_IN"

func standIn(pidFile string) {
	argv := []string{"sh", "-c", `echo $$ > "$1"; exec sleep 1000`, "sh", pidFile}
	execute(context.Background(), argv, "/", os.Environ(), nil)
	os.Exit(0)
}

// TestProgramDiesWithThePlugin: a program the exec plugin runs gets
// SIGKILL when the plugin process dies, even by SIGKILL, which the
// plugin cannot pass on.
func TestProgramDiesWithThePlugin(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "program.pid")
	plugin := osexec.Command(sdktest.Self(t), "-test.run=^$")
	plugin.Env = append(os.Environ(), envPluginStandIn+"="+pidFile)
	if err := plugin.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	deadline := time.Now().Add(10 * time.Second)
	for pid == 0 {
		if time.Now().After(deadline) {
			plugin.Process.Kill()
			t.Fatal("the program never started")
		}
		time.Sleep(10 * time.Millisecond)
		b, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	if err := plugin.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	plugin.Wait()
	// The kernel delivers the parent-death signal asynchronously.
	deadline = time.Now().Add(5 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the program %d outlived the plugin: %s", pid, stat)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
