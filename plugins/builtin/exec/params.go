package exec

import (
	"path"
	"strings"
	"time"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

// params are the step parameters as written in the manifest.
type params struct {
	Argv            []string          `json:"argv"`
	Env             map[string]string `json:"env"`
	Dir             string            `json:"dir"`
	Timeout         string            `json:"timeout"`
	AcceptExitCodes []int             `json:"accept_exit_codes"`
	Creates         string            `json:"creates"`
	Unless          []string          `json:"unless"`
	RollbackArgv    []string          `json:"rollback_argv"`
}

// config is params checked and resolved against the step context.
type config struct {
	params
	root    string        // sc.RootDir
	timeout time.Duration // 0: none beyond the step's deadline
	accept  map[int]bool
}

// load decodes and checks the parameters.
func load(sc *sdk.StepContext) (*config, []*sdk.FieldError) {
	var p params
	errs := sdk.FieldErrors(sdk.DecodeParams(sc, &p))
	bad := errs.Add
	c := &config{params: p, root: sc.GetRootDir(), accept: map[int]bool{}}
	if c.root == "" {
		c.root = "/"
	}
	checkArgv := func(field string, argv []string, required bool) {
		switch {
		case len(argv) == 0 && required:
			bad(field, "required: the program and its arguments, as a list")
		case len(argv) > 0 && argv[0] == "":
			bad(field+"[0]", "the program name is empty")
		}
	}
	checkArgv("argv", p.Argv, true)
	checkArgv("unless", p.Unless, false)
	checkArgv("rollback_argv", p.RollbackArgv, false)
	checkPath := func(field, v string) {
		if v == "" {
			return
		}
		if !path.IsAbs(v) {
			bad(field, "must be an absolute path inside the root, like /srv/app")
		} else if hasDotDot(v) {
			bad(field, "must not contain ..")
		}
	}
	checkPath("dir", p.Dir)
	checkPath("creates", p.Creates)
	for k := range p.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			bad("env."+k, "not a valid environment variable name")
		}
	}
	if p.Timeout != "" {
		d, err := time.ParseDuration(p.Timeout)
		if err != nil || d <= 0 {
			bad("timeout", "want a positive duration like 30s or 5m, got %q", p.Timeout)
		}
		c.timeout = d
	}
	for _, code := range p.AcceptExitCodes {
		if code < 0 || code > 255 {
			bad("accept_exit_codes", "exit code %d is outside 0..255", code)
		}
		c.accept[code] = true
	}
	if len(c.accept) == 0 {
		c.accept[0] = true
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

func hasDotDot(p string) bool {
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return true
		}
	}
	return false
}
