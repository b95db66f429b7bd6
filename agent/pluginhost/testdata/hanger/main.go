// Command hanger is a test plugin whose Apply starts two children
// ("sleep 1000"), one in its own process group and one in a new group of
// its own (as the exec plugin does), writes their pids to ROOT/child.pid
// and then never returns, ignoring its context.
package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

type hanger struct{}

func (hanger) Describe(context.Context) (*sdk.Description, error) {
	return &sdk.Description{Name: "hanger", Version: "0.0.1", Summary: "never finishes Apply"}, nil
}

func (hanger) Validate(context.Context, *sdk.StepContext) ([]*sdk.FieldError, error) {
	return nil, nil
}

func (hanger) Plan(context.Context, *sdk.StepContext) (*sdk.Plan, error) { return &sdk.Plan{}, nil }

func (hanger) Apply(_ context.Context, sc *sdk.StepContext, _ sdk.Reporter) (*sdk.Result, error) {
	var pids []string
	for _, ownGroup := range []bool{false, true} {
		child := exec.Command("sleep", "1000")
		child.SysProcAttr = &syscall.SysProcAttr{Setpgid: ownGroup}
		if err := child.Start(); err != nil {
			return nil, err
		}
		pids = append(pids, strconv.Itoa(child.Process.Pid))
	}
	if err := os.WriteFile(filepath.Join(sc.GetRootDir(), "child.pid"), []byte(strings.Join(pids, " ")), 0o644); err != nil {
		return nil, err
	}
	select {}
}

func (hanger) Verify(context.Context, *sdk.StepContext) (*sdk.Verification, error) {
	return &sdk.Verification{}, nil
}

func (hanger) Rollback(context.Context, *sdk.StepContext, []byte) (*sdk.RollbackResult, error) {
	return &sdk.RollbackResult{}, nil
}

func main() { sdk.Serve(hanger{}) }
