package exec

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/cairn-ops/cairn/plugins/sdk"
	"github.com/cairn-ops/cairn/plugins/sdk/sdktest"
)

// TestMain serves the plugin when this test binary is started as one.
func TestMain(m *testing.M) {
	sdktest.ServeIfPlugin(New)
	if pidFile := os.Getenv(envPluginStandIn); pidFile != "" {
		standIn(pidFile)
	}
	if root := os.Getenv(applyHelperEnv); root != "" {
		os.Exit(applyHelper(root))
	}
	os.Exit(m.Run())
}

// applyHelperEnv makes this test binary a plugin process that runs one
// Apply of a program that never ends (TestProgramDiesWithThePlugin kills
// it): the program writes its pid to ROOT/program.pid.
const applyHelperEnv = "CAIRN_EXEC_TEST_APPLY"

func applyHelper(root string) int {
	params, err := sdk.ParamsOf(map[string]any{"argv": []any{"sh", "-c", `echo $$ > "$CAIRN_ROOT/program.pid"; exec sleep 1000`}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_, err = New().Apply(context.Background(), &sdk.StepContext{RootDir: root, Params: params, Step: "hang"}, nopReporter{})
	fmt.Fprintln(os.Stderr, err)
	return 1
}

type nopReporter struct{}

func (nopReporter) Log(string, string)       {}
func (nopReporter) Progress(float64, string) {}
