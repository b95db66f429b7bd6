package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

// fakeHost starts in-process plugins by name; the real process boundary
// is covered by test/integration.
type fakeHost struct {
	plugins map[string]*fakePlugin
	// builtin are real plugins, run in this process.
	builtin map[string]sdk.Plugin
}

func (h *fakeHost) Start(_ context.Context, name string) (Instance, error) {
	if p, ok := h.builtin[name]; ok {
		return Instance{Plugin: p, Close: func() {}}, nil
	}
	p, ok := h.plugins[name]
	if !ok {
		return Instance{}, fmt.Errorf("plugin %q: unknown plugin", name)
	}
	return Instance{Plugin: p, Close: func() {}}, nil
}

// fakePlugin records its calls. Its parameters steer it: fail (Apply
// fails), hang (Apply, after its write if any, calls hanging and waits
// for its context to end), bad (Validate refuses the
// field named), pass (Verify's verdict, default true), write (Apply
// writes content, default "new", to that path under the root, and
// Rollback puts back what was there).
type fakePlugin struct {
	name       string
	idempotent bool
	confirm    bool
	// hanging, when set, is called when Apply starts to hang.
	hanging func()

	mu    sync.Mutex
	calls []string
}

var _ sdk.Plugin = (*fakePlugin)(nil)

func (p *fakePlugin) record(call string, sc *sdk.StepContext) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, call+" "+sc.GetStep())
}

func (p *fakePlugin) Calls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.calls...)
}

func (p *fakePlugin) Describe(context.Context) (*sdk.Description, error) {
	return &sdk.Description{Name: p.name, Version: "1.0.0", Idempotent: p.idempotent, NeedsConfirmation: p.confirm, Summary: "do " + p.name}, nil
}

func (p *fakePlugin) Validate(_ context.Context, sc *sdk.StepContext) ([]*sdk.FieldError, error) {
	if f, ok := sdk.Params(sc)["bad"].(string); ok {
		return []*sdk.FieldError{sdk.Errorf(f, "is wrong")}, nil
	}
	return nil, nil
}

func (p *fakePlugin) Plan(_ context.Context, sc *sdk.StepContext) (*sdk.Plan, error) {
	p.record("plan", sc)
	return &sdk.Plan{Actions: []string{"would " + sc.GetStep()}, WouldChange: true,
		Changes: []*sdk.Change{{Kind: sdk.ChangeFile, Name: "/" + sc.GetStep(), State: "present"}}}, nil
}

func (p *fakePlugin) Apply(ctx context.Context, sc *sdk.StepContext, r sdk.Reporter) (*sdk.Result, error) {
	p.record("apply", sc)
	params := sdk.Params(sc)
	r.Log(sdk.LevelInfo, "applying "+sc.GetStep())
	if params["fail"] == true {
		return nil, errors.New("boom")
	}
	record := []byte("undo " + sc.GetStep())
	if rel, ok := params["write"].(string); ok {
		var err error
		if record, err = writeFile(sc, rel, params["content"]); err != nil {
			return nil, err
		}
		if params["fail_after_write"] == true {
			return nil, errors.New("failed after writing " + rel)
		}
	}
	if params["hang"] == true {
		if p.hanging != nil {
			p.hanging()
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	out := map[string]string{"key": sc.GetIdempotencyKey()}
	if c := sc.GetConfirmation(); c != nil {
		out["confirmed_by"] = c.GetBy()
	}
	for name, path := range sc.GetArtifacts() {
		out["artifact_"+name] = path
	}
	return &sdk.Result{Changed: params["unchanged"] != true, Outputs: out, RollbackRecord: record,
		Changes: []*sdk.Change{{Kind: sdk.ChangeFile, Name: "/" + sc.GetStep(), State: "present"}}}, nil
}

func (p *fakePlugin) Verify(_ context.Context, sc *sdk.StepContext) (*sdk.Verification, error) {
	p.record("verify", sc)
	passed := sdk.Params(sc)["pass"] != false
	return &sdk.Verification{Passed: passed, Evidence: fmt.Sprintf("checked %s: %v", sc.GetStep(), passed)}, nil
}

func (p *fakePlugin) Rollback(_ context.Context, sc *sdk.StepContext, record []byte) (*sdk.RollbackResult, error) {
	if len(record) == 0 {
		var saved json.RawMessage
		if found, err := sdk.LoadUndo(sc, &saved); err != nil || !found {
			p.record("rollback(no record)", sc)
			return &sdk.RollbackResult{Message: "nothing to undo"}, err
		}
		record = saved
	}
	defer sdk.ClearUndo(sc)
	var w written
	if json.Unmarshal(record, &w) == nil && w.Path != "" {
		p.record("rollback(restore "+w.Path+")", sc)
		if err := w.restore(); err != nil {
			return nil, err
		}
		return &sdk.RollbackResult{Changed: true, Message: "restored " + w.Path}, nil
	}
	p.record("rollback("+string(record)+")", sc)
	return &sdk.RollbackResult{Changed: true, Message: "undid " + sc.GetStep()}, nil
}

// written is the rollback record of a write: the file and what it held.
type written struct {
	Path    string `json:"path"`
	Existed bool   `json:"existed"`
	Old     string `json:"old,omitempty"`
}

// writeFile writes content (default "new") to rel under the step's root
// and returns the rollback record, saved as the step's undo record first.
func writeFile(sc *sdk.StepContext, rel string, content any) ([]byte, error) {
	path := filepath.Join(sc.GetRootDir(), rel)
	w := written{Path: path}
	if old, err := os.ReadFile(path); err == nil {
		w.Existed, w.Old = true, string(old)
	}
	record, err := json.Marshal(w)
	if err != nil {
		return nil, err
	}
	if err := sdk.SaveUndo(sc, json.RawMessage(record)); err != nil {
		return nil, err
	}
	text, ok := content.(string)
	if !ok {
		text = "new"
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return nil, err
	}
	return json.Marshal(w)
}

func (w written) restore() error {
	if w.Existed {
		return os.WriteFile(w.Path, []byte(w.Old), 0o644)
	}
	return os.Remove(w.Path)
}
