// Command slowplugin is the kill -9 test's idempotent external plugin
// ("slow"): Apply appends a line to the marker file named by its params,
// and on its first attempt (an empty marker) then sleeps for params.sleep
// before finishing. A later attempt finds the earlier line and finishes
// at once, as an idempotent step converges.
//
// With SLOWPLUGIN_OUTLIVE_AGENT=1 in its environment (the agent passes
// its own on), it clears the parent-death signal the agent gave it, as a
// plugin that outlives its agent would.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

type params struct {
	Marker string `json:"marker"`
	Sleep  string `json:"sleep"`
}

type slow struct{}

func (slow) Describe(context.Context) (*sdk.Description, error) {
	return &sdk.Description{Name: "slow", Version: "1.0.0", Idempotent: true, Summary: "append to a marker, slowly the first time",
		Params: []*sdk.ParamSpec{{Name: "marker", Type: "string", Required: true}, {Name: "sleep", Type: "string"}}}, nil
}

func load(sc *sdk.StepContext) (params, time.Duration, []*sdk.FieldError) {
	var p params
	if errs := sdk.DecodeParams(sc, &p); len(errs) > 0 {
		return p, 0, errs
	}
	if p.Marker == "" {
		return p, 0, []*sdk.FieldError{sdk.Errorf("marker", "required")}
	}
	d, err := time.ParseDuration(p.Sleep)
	if p.Sleep != "" && err != nil {
		return p, 0, []*sdk.FieldError{sdk.Errorf("sleep", "not a duration")}
	}
	return p, d, nil
}

func (slow) Validate(_ context.Context, sc *sdk.StepContext) ([]*sdk.FieldError, error) {
	_, _, errs := load(sc)
	return errs, nil
}

func (slow) Plan(_ context.Context, sc *sdk.StepContext) (*sdk.Plan, error) {
	p, _, _ := load(sc)
	return &sdk.Plan{Actions: []string{"append to " + p.Marker}, WouldChange: true}, nil
}

func (slow) Apply(ctx context.Context, sc *sdk.StepContext, r sdk.Reporter) (*sdk.Result, error) {
	p, d, errs := load(sc)
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid params")
	}
	before, _ := os.ReadFile(p.Marker)
	f, err := os.OpenFile(p.Marker, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "apply %s\n", sc.GetIdempotencyKey())
	if err := f.Sync(); err != nil {
		return nil, err
	}
	f.Close()
	if strings.TrimSpace(string(before)) == "" {
		r.Log(sdk.LevelInfo, "first attempt: sleeping "+d.String())
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &sdk.Result{Changed: true}, nil
}

func (slow) Verify(context.Context, *sdk.StepContext) (*sdk.Verification, error) {
	return &sdk.Verification{Passed: true}, nil
}

func (slow) Rollback(context.Context, *sdk.StepContext, []byte) (*sdk.RollbackResult, error) {
	return &sdk.RollbackResult{}, nil
}

func main() {
	if os.Getenv("SLOWPLUGIN_OUTLIVE_AGENT") == "1" {
		if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, 0, 0); errno != 0 {
			fmt.Fprintln(os.Stderr, "prctl:", errno)
			os.Exit(1)
		}
	}
	sdk.Serve(slow{})
}
