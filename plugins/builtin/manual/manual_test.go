package manual

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/plugins/sdk"
	"github.com/cairn-ops/cairn/plugins/sdk/sdktest"
)

const instructions = "Install the second PSU in slot B"

func stepContext(t *testing.T, params map[string]any, c *sdk.Confirmation) *sdk.StepContext {
	t.Helper()
	p, err := sdk.ParamsOf(params)
	if err != nil {
		t.Fatal(err)
	}
	return &sdk.StepContext{RootDir: t.TempDir(), Params: p, Step: "psu", Confirmation: c}
}

var confirmed = &sdk.Confirmation{By: "alice", Note: "PSU serial 7Q2X installed", At: "2025-03-01T10:00:00Z"}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]any
		want   []*sdk.FieldError
	}{
		{"ok", map[string]any{"instructions": instructions}, nil},
		{"missing", map[string]any{}, []*sdk.FieldError{{Field: "instructions", Message: "is required: what the operator must do"}}},
		{"blank", map[string]any{"instructions": "  "}, []*sdk.FieldError{{Field: "instructions", Message: "is required: what the operator must do"}}},
		{"unknown", map[string]any{"instructions": "x", "timeout": "1h"}, []*sdk.FieldError{{Field: "timeout", Message: "unknown parameter"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New().Validate(t.Context(), stepContext(t, tt.params, nil))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("field errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApply(t *testing.T) {
	params := map[string]any{"instructions": instructions}
	tests := []struct {
		name         string
		confirmation *sdk.Confirmation
		wantErr      error
		wantMsg      string
		wantOutputs  map[string]string
	}{
		{name: "unconfirmed", wantErr: ErrAwaitingConfirmation, wantMsg: "waiting for an operator: " + instructions},
		{name: "empty confirmation", confirmation: &sdk.Confirmation{Note: "no name"}, wantErr: ErrAwaitingConfirmation, wantMsg: "waiting for an operator: " + instructions},
		{
			name:         "confirmed",
			confirmation: confirmed,
			wantOutputs: map[string]string{
				"confirmed_by": "alice", "note": "PSU serial 7Q2X installed",
				"confirmed_at": "2025-03-01T10:00:00Z", "instructions": instructions,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := New().Apply(t.Context(), stepContext(t, params, tt.confirmation), &sdktest.Recorder{})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Apply error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if err.Error() != tt.wantMsg {
					t.Errorf("error message %q, want %q", err, tt.wantMsg)
				}
				return
			}
			if !res.GetChanged() {
				t.Error("confirmed Apply reported changed=false")
			}
			if diff := cmp.Diff(tt.wantOutputs, res.GetOutputs()); diff != "" {
				t.Errorf("outputs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlanVerifyDescribe(t *testing.T) {
	params := map[string]any{"instructions": instructions}
	plan, err := New().Plan(t.Context(), stepContext(t, params, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := &sdk.Plan{Actions: []string{"operator must confirm: " + instructions}, WouldChange: true}
	if diff := cmp.Diff(want, plan, protocmp.Transform()); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
	tests := []struct {
		name string
		c    *sdk.Confirmation
		want *sdk.Verification
	}{
		{"unconfirmed", nil, &sdk.Verification{Evidence: "not confirmed: " + instructions}},
		{"confirmed", confirmed, &sdk.Verification{Passed: true, Evidence: "confirmed by alice at 2025-03-01T10:00:00Z: PSU serial 7Q2X installed"}},
	}
	for _, tt := range tests {
		got, err := New().Verify(t.Context(), stepContext(t, params, tt.c))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
			t.Errorf("%s: verify (-want +got):\n%s", tt.name, diff)
		}
	}
	d, _ := New().Describe(t.Context())
	if !d.GetNeedsConfirmation() || d.GetIdempotent() {
		t.Errorf("Describe = %v; want needs_confirmation, not idempotent", d)
	}
}

func TestConformance(t *testing.T) {
	sdktest.Run(t, New(), sdktest.Cases{
		Context: func(t *testing.T) *sdk.StepContext {
			return stepContext(t, map[string]any{"instructions": instructions}, confirmed)
		},
		Invalid: []sdktest.Invalid{
			{Name: "blank", Params: map[string]any{"instructions": ""}, Field: "instructions"},
		},
	})
}

// TestOverProcessBoundary runs the plugin in its own process, as the
// agent does: the confirmation crosses the wire, and so does the
// instructions-bearing error when it is missing.
func TestOverProcessBoundary(t *testing.T) {
	p := sdktest.Start(t, sdktest.Self(t))
	params := map[string]any{"instructions": instructions}
	_, err := p.Apply(t.Context(), stepContext(t, params, nil), &sdktest.Recorder{})
	if err == nil || !strings.Contains(err.Error(), "waiting for an operator: "+instructions) {
		t.Errorf("Apply without confirmation: %v, want the instructions", err)
	}
	rec := &sdktest.Recorder{}
	res, err := p.Apply(t.Context(), stepContext(t, params, confirmed), rec)
	if err != nil {
		t.Fatal(err)
	}
	if res.GetOutputs()["confirmed_by"] != "alice" || !strings.Contains(rec.String(), "confirmed by alice") {
		t.Errorf("Apply = %v, log %q", res, rec)
	}
	sc := stepContext(t, params, confirmed)
	sc.DeadlineUnixMs = time.Now().Add(-time.Second).UnixMilli()
	if _, err := p.Apply(t.Context(), sc, &sdktest.Recorder{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Apply past its deadline: %v, want context.DeadlineExceeded", err)
	}
	v, err := p.Verify(t.Context(), stepContext(t, params, confirmed))
	if err != nil || !v.GetPassed() {
		t.Errorf("Verify = %v, %v", v, err)
	}
}

func TestExpiredDeadline(t *testing.T) {
	ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	_, err := New().Apply(ctx, stepContext(t, map[string]any{"instructions": instructions}, confirmed), &sdktest.Recorder{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Apply past its deadline: %v, want context.DeadlineExceeded", err)
	}
}
