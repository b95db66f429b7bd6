package dpkg

import (
	"regexp"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

// Actions.
const (
	actionInstall = "install"
	actionRemove  = "remove"
	actionPurge   = "purge"
)

// params are the step's parameters.
type params struct {
	// Action is install, remove or purge.
	Action string `json:"action"`
	// Artifact names the .deb in the step context's artifacts (install).
	Artifact string `json:"artifact"`
	// Package is the package to remove or purge; for install, optionally
	// the name the .deb must carry.
	Package string `json:"package"`
}

var paramSpecs = []*sdk.ParamSpec{
	{Name: "action", Type: "string", Required: true, Description: "install, remove or purge"},
	{Name: "artifact", Type: "string", Description: "install: the name of the .deb among the step's artifacts"},
	{Name: "package", Type: "string", Description: "remove, purge: the package name; install: optional, the name the .deb must carry"},
}

// packageName is what dpkg accepts as a package name, optionally
// qualified by an architecture. It never starts with "-", so a name is
// never read as an option.
var packageName = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$`)

func validName(s string) bool { return packageName.MatchString(s) }

// decode decodes and checks the step's parameters.
func decode(sc *sdk.StepContext) (params, []*sdk.FieldError) {
	var p params
	errs := sdk.FieldErrors(sdk.DecodeParams(sc, &p))
	switch p.Action {
	case "":
		errs.Add("action", "is required (install, remove or purge)")
	case actionInstall:
		if p.Artifact == "" {
			errs.Add("artifact", "is required for install")
		}
	case actionRemove, actionPurge:
		if p.Package == "" {
			errs.Add("package", "is required for %s", p.Action)
		}
		if p.Artifact != "" {
			errs.Add("artifact", "is only used by install")
		}
	default:
		errs.Add("action", "must be install, remove or purge, not %q", p.Action)
	}
	if p.Package != "" && !validName(p.Package) {
		errs.Add("package", "%q is not a valid package name", p.Package)
	}
	return p, errs
}

// mustDecode decodes the parameters for a call other than Validate.
func mustDecode(sc *sdk.StepContext) (params, error) {
	p, errs := decode(sc)
	return p, sdk.ParamsError(errs)
}
