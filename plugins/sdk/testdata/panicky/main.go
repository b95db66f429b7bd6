// Command panicky is a test-only step plugin that misbehaves on request:
// its Apply panics, fails or crashes the process, as the parameter "how"
// says. plugins/sdk's tests build and run it.
package main

import (
	"context"
	"errors"
	"time"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

type panicky struct{}

func (panicky) Describe(context.Context) (*sdk.Description, error) {
	return &sdk.Description{Name: "panicky", Version: "0.0.1"}, nil
}

func (panicky) Validate(context.Context, *sdk.StepContext) ([]*sdk.FieldError, error) {
	panic("validate exploded")
}

func (panicky) Plan(context.Context, *sdk.StepContext) (*sdk.Plan, error) {
	return &sdk.Plan{}, nil
}

func (panicky) Apply(ctx context.Context, sc *sdk.StepContext, r sdk.Reporter) (*sdk.Result, error) {
	r.Log(sdk.LevelInfo, "about to misbehave")
	switch sdk.Params(sc)["how"] {
	case "panic":
		panic("boom")
	case "crash":
		// A panic no recover can catch: the process dies mid-call.
		go func() { panic("crash in a goroutine") }()
		time.Sleep(time.Minute)
	case "fail":
		return nil, errors.New("disk on fire: /dev/sda1")
	case "hang":
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &sdk.Result{}, nil
}

func (panicky) Verify(context.Context, *sdk.StepContext) (*sdk.Verification, error) {
	return &sdk.Verification{Passed: true, Evidence: "nothing to check"}, nil
}

func (panicky) Rollback(context.Context, *sdk.StepContext, []byte) (*sdk.RollbackResult, error) {
	return &sdk.RollbackResult{}, nil
}

func main() {
	sdk.Serve(panicky{})
}
