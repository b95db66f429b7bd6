// Command crasher is a test plugin whose Apply kills its own process with
// exit status 3 in the middle of the call, after logging a line to stderr.
package main

import (
	"context"
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

type crasher struct{ log hclog.Logger }

func (crasher) Describe(context.Context) (*sdk.Description, error) {
	return &sdk.Description{Name: "crasher", Version: "0.0.1", Summary: "exits during Apply"}, nil
}

func (crasher) Validate(context.Context, *sdk.StepContext) ([]*sdk.FieldError, error) {
	return nil, nil
}

func (crasher) Plan(context.Context, *sdk.StepContext) (*sdk.Plan, error) { return &sdk.Plan{}, nil }

func (c crasher) Apply(_ context.Context, _ *sdk.StepContext, r sdk.Reporter) (*sdk.Result, error) {
	r.Log(sdk.LevelInfo, "about to crash")
	c.log.Error("crasher giving up", "code", 3)
	os.Exit(3)
	return nil, nil
}

func (crasher) Verify(context.Context, *sdk.StepContext) (*sdk.Verification, error) {
	return &sdk.Verification{}, nil
}

func (crasher) Rollback(context.Context, *sdk.StepContext, []byte) (*sdk.RollbackResult, error) {
	return &sdk.RollbackResult{}, nil
}

func main() {
	// os.Stderr before sdk.Serve replaces it: the pipe the host reads.
	log := hclog.New(&hclog.LoggerOptions{Name: "crasher", Output: os.Stderr, JSONFormat: true})
	sdk.Serve(crasher{log: log})
}
