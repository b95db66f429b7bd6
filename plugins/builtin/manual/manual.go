// Package manual is the built-in step plugin for work only a person can
// do — installing a disk, patching a cable — which a release still has to
// track.
//
// Its Description says needs_confirmation, so the host asks an operator
// (a prompt or --confirm in local apply; the controller during rollouts)
// and passes the answer in StepContext.confirmation. Plan shows the
// instructions. Apply without a confirmation fails with
// ErrAwaitingConfirmation and the instructions; with one it records who
// confirmed, their note and when, as the step's outputs and evidence.
// It says it is not idempotent, so a step interrupted by a crash goes to
// an operator rather than being redone; there is nothing it can undo by
// itself.
package manual

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

// Name is the plugin's name in manifests and the builtin registry.
const Name = "manual"

const version = "1.0.0"

// Plugin waits for an operator's confirmation.
type Plugin struct{}

var _ sdk.Plugin = (*Plugin)(nil)

// New returns the manual plugin.
func New() sdk.Plugin { return &Plugin{} }

type params struct {
	Instructions string `json:"instructions"`
}

func load(sc *sdk.StepContext) (*params, []*sdk.FieldError) {
	var p params
	errs := sdk.FieldErrors(sdk.DecodeParams(sc, &p))
	if strings.TrimSpace(p.Instructions) == "" {
		errs.Add("instructions", "is required: what the operator must do")
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return &p, nil
}

func mustLoad(sc *sdk.StepContext) (*params, error) {
	p, errs := load(sc)
	if len(errs) > 0 {
		return nil, sdk.ParamsError(errs)
	}
	return p, nil
}

// confirmation returns the step's confirmation, nil when there is none.
func confirmation(sc *sdk.StepContext) *sdk.Confirmation {
	c := sc.GetConfirmation()
	if strings.TrimSpace(c.GetBy()) == "" {
		return nil
	}
	return c
}

// Describe implements sdk.Plugin.
func (*Plugin) Describe(context.Context) (*sdk.Description, error) {
	return &sdk.Description{
		Name:    Name,
		Version: version,
		// Not idempotent: a manual action (fitting a disk, say) cut off
		// half-way must go to an operator, never be assumed safe to redo.
		Idempotent:        false,
		NeedsConfirmation: true,
		Summary:           "Wait for an operator to do something by hand and confirm it; records who confirmed and their note.",
		Params: []*sdk.ParamSpec{
			{Name: "instructions", Type: "string", Required: true, Description: "what the operator must do before confirming"},
		},
	}, nil
}

// Validate implements sdk.Plugin.
func (*Plugin) Validate(_ context.Context, sc *sdk.StepContext) ([]*sdk.FieldError, error) {
	_, errs := load(sc)
	return errs, nil
}

// Plan implements sdk.Plugin: it shows the instructions.
func (*Plugin) Plan(_ context.Context, sc *sdk.StepContext) (*sdk.Plan, error) {
	p, err := mustLoad(sc)
	if err != nil {
		return nil, err
	}
	if c := confirmation(sc); c != nil {
		return &sdk.Plan{
			Actions:     []string{"would record the confirmation by " + c.GetBy() + " of: " + p.Instructions},
			WouldChange: true,
		}, nil
	}
	return &sdk.Plan{
		Actions:     []string{"operator must confirm: " + p.Instructions},
		WouldChange: true,
	}, nil
}

// Apply implements sdk.Plugin.
func (*Plugin) Apply(ctx context.Context, sc *sdk.StepContext, r sdk.Reporter) (*sdk.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("step %q: %w", sc.GetStep(), err)
	}
	p, err := mustLoad(sc)
	if err != nil {
		return nil, err
	}
	c := confirmation(sc)
	if c == nil {
		return nil, fmt.Errorf("%w: %s", ErrAwaitingConfirmation, p.Instructions)
	}
	at := c.GetAt()
	if at == "" {
		at = time.Now().UTC().Format(time.RFC3339)
	}
	r.Log(sdk.LevelInfo, fmt.Sprintf("confirmed by %s at %s: %s", c.GetBy(), at, c.GetNote()))
	rec, err := json.Marshal(map[string]string{"by": c.GetBy(), "note": c.GetNote(), "at": at})
	if err != nil {
		return nil, fmt.Errorf("encode rollback record: %w", err)
	}
	return &sdk.Result{
		Changed: true,
		Outputs: map[string]string{
			"confirmed_by": c.GetBy(),
			"note":         c.GetNote(),
			"confirmed_at": at,
			"instructions": p.Instructions,
		},
		RollbackRecord: rec,
	}, nil
}

// Verify implements sdk.Plugin: it passes when an operator confirmed.
func (*Plugin) Verify(_ context.Context, sc *sdk.StepContext) (*sdk.Verification, error) {
	p, err := mustLoad(sc)
	if err != nil {
		return nil, err
	}
	c := confirmation(sc)
	if c == nil {
		return &sdk.Verification{Evidence: "not confirmed: " + p.Instructions}, nil
	}
	ev := "confirmed by " + c.GetBy()
	if c.GetAt() != "" {
		ev += " at " + c.GetAt()
	}
	if c.GetNote() != "" {
		ev += ": " + c.GetNote()
	}
	return &sdk.Verification{Passed: true, Evidence: ev}, nil
}

// Rollback implements sdk.Plugin: manual work cannot be undone by the
// plugin; the message says so, with the instructions to reverse by hand.
func (*Plugin) Rollback(_ context.Context, sc *sdk.StepContext, _ []byte) (*sdk.RollbackResult, error) {
	msg := "nothing to undo automatically: this was a manual step"
	if p, errs := load(sc); len(errs) == 0 {
		msg += " (" + p.Instructions + "); reverse it by hand if needed"
	}
	return &sdk.RollbackResult{Message: msg}, nil
}
