package release

import (
	"context"
	"fmt"
	"strings"

	"github.com/cairn-ops/cairn/internal/manifest"
	"github.com/cairn-ops/cairn/plugins/builtin"
	"github.com/cairn-ops/cairn/plugins/sdk"
)

// CheckPlugins checks every step, verify and rollback entry of m against
// its plugin: the plugin must be one the agents have built in, and its
// Validate must accept the parameters (run in this process: validation
// only, nothing is applied). Every problem is reported with its file and
// line, wrapped in ErrInvalid. Plugins outside the built-in set are
// refused: the controller cannot check what it does not know.
func CheckPlugins(ctx context.Context, m *manifest.Manifest) error {
	reg := builtin.Registry()
	var problems []string
	for _, list := range [][]manifest.Step{m.Steps, m.Verify, m.Rollback} {
		for i := range list {
			st := &list[i]
			where := fmt.Sprintf("%s:%d: %s[%d] (%s)", m.File, st.Line, st.List, st.Index, st.Name)
			newPlugin, ok := reg[st.Plugin]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: unknown plugin %q (built in: %s)", where, st.Plugin, strings.Join(builtin.Names(), ", ")))
				continue
			}
			params, err := sdk.ParamsOf(st.Params)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: params: %v", where, err))
				continue
			}
			errs, err := newPlugin().Validate(ctx, &sdk.StepContext{RootDir: "/", Params: params, Step: st.Name})
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: validate: %v", where, err))
				continue
			}
			for _, fe := range errs {
				problems = append(problems, fmt.Sprintf("%s:%d: %s[%d].params.%s: %s", m.File, st.ParamLine(fe.GetField()), st.List, st.Index, fe.GetField(), fe.GetMessage()))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "\n"))
	}
	return nil
}
