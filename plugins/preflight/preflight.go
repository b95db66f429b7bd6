// Package preflight checks a release manifest's steps against the
// built-in plugins without applying anything: each entry's parameters go
// through its plugin's Validate, and each entry of the steps list is
// planned (dry run) on an empty temporary root, collecting the changes the
// plugins declare so they can be merged into the manifest's expect.
// cairnctl uses it offline (release validate, release create) and the
// controller at CreateRelease, so both judge a manifest the same way.
package preflight

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cairn-ops/cairn/internal/manifest"
	"github.com/cairn-ops/cairn/plugins/builtin"
	"github.com/cairn-ops/cairn/plugins/sdk"
)

// Problem is one problem placed in the manifest file.
type Problem struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Step is what was found for one manifest entry.
type Step struct {
	Step    string   `json:"step"`
	Plugin  string   `json:"plugin"`
	Status  string   `json:"status"`
	Actions []string `json:"actions,omitempty"`
}

// Step statuses.
const (
	StatusOK         = "ok"
	StatusInvalid    = "invalid"
	StatusUnknown    = "unknown plugin"
	StatusNotChecked = "external plugin: not checked"
)

// Options says what the checks may use.
type Options struct {
	// Paths maps component names to local files given to the plugins as
	// artifacts (for Plan: a dpkg step reads its package's control data).
	Paths map[string]string
	// External reports plugins known outside the built-ins (an agent's
	// catalog): they are not checked. Nil: none is known.
	External func(name string) bool
	// Unknown words the problem for an unknown plugin; nil uses a default.
	Unknown func(name string) string
}

// Result is everything the checks found.
type Result struct {
	Problems []Problem
	Warnings []string
	Steps    []Step
	// Declared are the changes the steps' plans declare.
	Declared []manifest.Declared
}

// Check validates every entry of m with its plugin and plans the steps
// list. It never fails: everything it finds is in the result.
func Check(ctx context.Context, m *manifest.Manifest, opts Options) *Result {
	r := &Result{}
	registry := builtin.Registry()
	root, err := os.MkdirTemp("", "cairn-preflight-root-")
	if err != nil {
		r.Warnings = append(r.Warnings, fmt.Sprintf("plugins were not run: %v", err))
		return r
	}
	defer os.RemoveAll(root)
	for _, list := range m.Lists() {
		for i := range list {
			st := &list[i]
			sc := Step{Step: fmt.Sprintf("%s[%d] (%s)", st.List, st.Index, st.Name), Plugin: st.Plugin, Status: StatusOK}
			newPlugin, ok := registry[st.Plugin]
			if !ok {
				if opts.External != nil && opts.External(st.Plugin) {
					sc.Status = StatusNotChecked
				} else {
					sc.Status = StatusUnknown
					r.Problems = append(r.Problems, Problem{File: m.File, Line: st.Line, Field: fmt.Sprintf("%s[%d].plugin", st.List, st.Index),
						Message: unknownMessage(st.Plugin, opts.Unknown)})
				}
				r.Steps = append(r.Steps, sc)
				continue
			}
			for _, c := range r.checkStep(ctx, m, st, newPlugin(), root, opts.Paths, &sc) {
				r.Declared = append(r.Declared, manifest.Declared{Step: sc.Step, Change: c})
			}
			r.Steps = append(r.Steps, sc)
		}
	}
	return r
}

func unknownMessage(name string, custom func(string) string) string {
	if custom != nil {
		return custom(name)
	}
	return fmt.Sprintf("unknown plugin %q: the built-in plugins are %s", name, strings.Join(builtin.Names(), ", "))
}

func (v *Result) checkStep(ctx context.Context, m *manifest.Manifest, st *manifest.Step, p sdk.Plugin, root string, paths map[string]string, sc *Step) []*sdk.Change {
	ctx, cancel := context.WithTimeout(ctx, st.Timeout)
	defer cancel()
	deadline := time.Now().Add(st.Timeout)
	sctx, err := validateContext(st, st.Params, root, paths, deadline)
	if err != nil {
		sc.Status = StatusInvalid
		v.Problems = append(v.Problems, Problem{File: m.File, Line: st.ParamLine(""), Field: fmt.Sprintf("%s[%d].params", st.List, st.Index), Message: err.Error()})
		return nil
	}
	ferrs, err := p.Validate(ctx, sctx)
	if err != nil {
		sc.Status = StatusInvalid
		v.Problems = append(v.Problems, Problem{File: m.File, Line: st.Line, Field: fmt.Sprintf("%s[%d]", st.List, st.Index), Message: "validate: " + err.Error()})
		return nil
	}
	var found []Problem
	for _, fe := range ferrs {
		sc.Status = StatusInvalid
		found = append(found, Problem{File: m.File, Line: st.ParamLine(fe.GetField()),
			Field: strings.TrimSuffix(fmt.Sprintf("%s[%d].params.%s", st.List, st.Index, fe.GetField()), "."), Message: fe.GetMessage()})
	}
	// A step's problems in the order of its lines.
	slices.SortStableFunc(found, func(a, b Problem) int { return a.Line - b.Line })
	v.Problems = append(v.Problems, found...)
	if len(ferrs) > 0 || st.List != manifest.ListSteps {
		return nil
	}
	if st.Plugin == "exec" && st.Params["unless"] != nil {
		// exec's Plan runs the guard command: never on this machine.
		params := maps.Clone(st.Params)
		delete(params, "unless")
		if sctx, err = validateContext(st, params, root, paths, deadline); err != nil {
			return nil // cannot fail: a subset of what converted above
		}
	}
	plan, err := p.Plan(ctx, sctx)
	if err != nil {
		v.Warnings = append(v.Warnings, fmt.Sprintf("%s: plan on an empty root failed, so its declared changes are not in expect: %s",
			sc.Step, strings.ReplaceAll(err.Error(), root, "ROOT")))
		return nil
	}
	for _, a := range plan.GetActions() {
		sc.Actions = append(sc.Actions, strings.ReplaceAll(a, root, "ROOT"))
	}
	return plan.GetChanges()
}

// validateContext is the StepContext of a dry run on an empty root.
func validateContext(st *manifest.Step, params map[string]any, root string, paths map[string]string, deadline time.Time) (*sdk.StepContext, error) {
	ps, err := sdk.ParamsOf(params)
	if err != nil {
		return nil, err
	}
	arts := map[string]string{}
	for name, p := range paths {
		if len(st.NeedsArtifacts) == 0 || slices.Contains(st.NeedsArtifacts, name) {
			arts[name] = p
		}
	}
	return &sdk.StepContext{
		RootDir:        root,
		Params:         ps,
		Artifacts:      arts,
		IdempotencyKey: "validate/" + st.List + "/" + st.Name,
		DryRun:         true,
		CacheDir:       filepath.Join(root, ".cairn-cache"),
		Step:           st.Name,
		DeadlineUnixMs: deadline.UnixMilli(),
	}, nil
}
