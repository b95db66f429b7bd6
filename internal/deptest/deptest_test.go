package deptest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// module is the module path the rules' paths are relative to.
const module = "github.com/cairn-ops/cairn"

// rule says what the packages under one of from may depend on (in this
// module): nothing under deny, or, with allow, nothing outside allow.
// Paths are relative to the module; "agent" means agent and everything
// under it.
type rule struct {
	from  []string
	deny  []string
	allow []string
	why   string
}

var rules = []rule{
	{from: []string{"agent"}, deny: []string{"controller"}, why: "the agent never imports the controller"},
	{from: []string{"controller"}, deny: []string{"agent"}, why: "the controller never imports the agent"},
	{from: []string{"internal"}, allow: []string{"internal", "proto"}, why: "internal/ imports only internal/ and proto/"},
	{from: []string{"plugins/sdk"}, allow: []string{"plugins/sdk", "proto"}, why: "plugin authors outside this module import plugins/sdk: it imports only proto/"},
	{from: []string{"controller/cmd/cairnctl"}, deny: []string{"agent"}, why: "cairnctl does not contain the agent"},
}

// pkg is what 'go list -json' says of one package.
type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func TestLayers(t *testing.T) {
	pkgs, err := list()
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found only %d packages of %s; is the listing broken?", len(pkgs), module)
	}
	for _, p := range check(pkgs, rules) {
		t.Error(p)
	}
}

// list returns the module's packages by module-relative path (the
// module's root package, if any, is "."), each with its imports and
// dependencies in the module, also module-relative.
func list() (map[string]*pkg, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,Deps", module+"/...")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go list: %w\n%s", err, stderr.String())
	}
	pkgs := map[string]*pkg{}
	dec := json.NewDecoder(&stdout)
	for {
		var p pkg
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			return pkgs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode go list output: %w", err)
		}
		p.ImportPath, _ = rel(p.ImportPath)
		p.Imports, p.Deps = own(p.Imports), own(p.Deps)
		pkgs[p.ImportPath] = &p
	}
}

// rel makes path module-relative; ok is false for a package of another
// module or the standard library.
func rel(path string) (string, bool) {
	if path == module {
		return ".", true
	}
	r, ok := strings.CutPrefix(path, module+"/")
	return r, ok
}

// own keeps the module's packages of paths, module-relative.
func own(paths []string) []string {
	var out []string
	for _, p := range paths {
		if r, ok := rel(p); ok {
			out = append(out, r)
		}
	}
	return out
}

// under reports whether path is one of prefixes or below one.
func under(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// check returns one line per package and dependency a rule forbids,
// with the chain of imports that brings it in. A package that has the
// dependency only through packages the same rule covers is left out:
// those are reported, and fixing them fixes it.
func check(pkgs map[string]*pkg, rules []rule) []string {
	var out []string
	names := make([]string, 0, len(pkgs))
	for name := range pkgs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, r := range rules {
		for _, name := range names {
			if !under(name, r.from) {
				continue
			}
			for _, dep := range pkgs[name].Deps {
				bad := under(dep, r.deny) || (r.allow != nil && !under(dep, r.allow))
				if !bad {
					continue
				}
				if via, ok := entry(pkgs, pkgs[name], dep, r.from); ok {
					out = append(out, fmt.Sprintf("%s depends on %s (%s): %s", name, dep, strings.Join(append([]string{name}, chain(pkgs, via, dep)...), " → "), r.why))
				}
			}
		}
	}
	return out
}

// entry returns the import of p that brings dep in from outside scope
// (dep itself, or a package outside scope that depends on it); ok is
// false when p has dep only through packages inside scope.
func entry(pkgs map[string]*pkg, p *pkg, dep string, scope []string) (via string, ok bool) {
	for _, imp := range p.Imports {
		if imp == dep {
			return imp, true
		}
		if q, known := pkgs[imp]; known && !under(imp, scope) && slices.Contains(q.Deps, dep) {
			return imp, true
		}
	}
	return "", false
}

// chain is the shortest chain of imports from one package to another.
func chain(pkgs map[string]*pkg, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == to {
			var path []string
			for p := to; p != ""; p = prev[p] {
				path = append(path, p)
			}
			slices.Reverse(path)
			return path
		}
		p, ok := pkgs[cur]
		if !ok {
			continue
		}
		for _, next := range p.Imports {
			if _, seen := prev[next]; !seen {
				prev[next] = cur
				queue = append(queue, next)
			}
		}
	}
	return []string{from, "…", to}
}

// TestCheck: each rule catches a forbidden dependency, direct or through
// another package, and says which import brings it in.
func TestCheck(t *testing.T) {
	graph := func(imports map[string][]string) map[string]*pkg {
		pkgs := map[string]*pkg{}
		for name, imps := range imports {
			pkgs[name] = &pkg{ImportPath: name, Imports: imps}
		}
		// Deps: everything reachable.
		for name := range pkgs {
			seen := map[string]bool{}
			stack := slices.Clone(imports[name])
			for len(stack) > 0 {
				n := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				if seen[n] {
					continue
				}
				seen[n] = true
				stack = append(stack, imports[n]...)
			}
			for d := range seen {
				pkgs[name].Deps = append(pkgs[name].Deps, d)
			}
			slices.Sort(pkgs[name].Deps)
		}
		return pkgs
	}
	tests := []struct {
		name    string
		imports map[string][]string
		want    []string
	}{
		{
			name: "clean",
			imports: map[string][]string{
				"agent/session": {"agent/journal", "internal/pki", "proto/agent/v1"},
				"agent/journal": nil, "internal/pki": nil, "proto/agent/v1": nil,
				"controller/cmd/cairnctl": {"controller/ctl"}, "controller/ctl": {"plugins/catalog", "internal/pki"},
				"plugins/catalog": {"internal/pki"}, "plugins/sdk": {"proto/plugin/v1"}, "plugins/sdk/sdktest": {"plugins/sdk"},
				"proto/plugin/v1": nil,
			},
		},
		{
			name:    "agent imports the controller",
			imports: map[string][]string{"agent/session": {"controller/store"}, "controller/store": nil},
			want:    []string{"agent/session depends on controller/store (agent/session → controller/store): the agent never imports the controller"},
		},
		{
			name: "cairnctl reaches the agent through a plugins package",
			imports: map[string][]string{
				"controller/cmd/cairnctl": {"controller/ctl"}, "controller/ctl": {"plugins/catalog"},
				"plugins/catalog": {"agent/pluginhost"}, "agent/pluginhost": nil,
			},
			want: []string{
				"controller/ctl depends on agent/pluginhost (controller/ctl → plugins/catalog → agent/pluginhost): the controller never imports the agent",
				"controller/cmd/cairnctl depends on agent/pluginhost (controller/cmd/cairnctl → controller/ctl → plugins/catalog → agent/pluginhost): cairnctl does not contain the agent",
			},
		},
		{
			name: "internal imports plugins, and other internal packages import it",
			imports: map[string][]string{
				"internal/preflight": {"plugins/builtin", "internal/manifest"}, "plugins/builtin": {"plugins/sdk"}, "plugins/sdk": nil,
				"internal/manifest": nil, "internal/release": {"internal/preflight"},
			},
			want: []string{
				"internal/preflight depends on plugins/builtin (internal/preflight → plugins/builtin): internal/ imports only internal/ and proto/",
				"internal/preflight depends on plugins/sdk (internal/preflight → plugins/builtin → plugins/sdk): internal/ imports only internal/ and proto/",
			},
		},
		{
			name:    "sdk imports internal",
			imports: map[string][]string{"plugins/sdk/sdktest": {"plugins/sdk", "internal/digest"}, "plugins/sdk": nil, "internal/digest": nil},
			want:    []string{"plugins/sdk/sdktest depends on internal/digest (plugins/sdk/sdktest → internal/digest): plugin authors outside this module import plugins/sdk: it imports only proto/"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, check(graph(tt.imports), rules)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}
