package archive

import (
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

// params are the step's parameters.
type params struct {
	// Artifact names the archive in the step's artifacts.
	Artifact string `json:"artifact"`
	// Dest is the absolute directory inside the root to extract into.
	Dest string `json:"dest"`
	// Format is tar, tar.gz or zip; empty means detect by magic bytes.
	Format string `json:"format"`
	// StripComponents drops that many leading path elements from every
	// name (after a leading "./"), like tar --strip-components.
	StripComponents int `json:"strip_components"`
	// ModeMask is ANDed with every entry's permission bits: an octal
	// string ("0755") or a number. The default 0777 drops setuid, setgid
	// and sticky bits.
	ModeMask *modeMask `json:"mode_mask"`
}

// modeMask accepts an octal string or a number.
type modeMask uint32

func (m *modeMask) UnmarshalJSON(b []byte) error {
	var n float64
	if err := json.Unmarshal(b, &n); err == nil {
		if n < 0 || n > 0o7777 || n != float64(uint32(n)) {
			return fmt.Errorf("mode_mask %v: want 0 to 07777", n)
		}
		*m = modeMask(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("mode_mask: want an octal string like \"0755\" or a number")
	}
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0o"), 8, 32)
	if err != nil || v > 0o7777 {
		return fmt.Errorf("mode_mask %q: want an octal string from \"0\" to \"07777\"", s)
	}
	*m = modeMask(v)
	return nil
}

const defaultModeMask = 0o777

func (p *params) mask() uint32 {
	if p.ModeMask == nil {
		return defaultModeMask
	}
	return uint32(*p.ModeMask)
}

// decode reads and checks the parameters.
func decode(sc *sdk.StepContext) (*params, []*sdk.FieldError) {
	var p params
	if errs := sdk.DecodeParams(sc, &p); len(errs) > 0 {
		return nil, errs
	}
	var errs []*sdk.FieldError
	add := func(field, format string, a ...any) { errs = append(errs, sdk.Errorf(field, format, a...)) }
	switch {
	case p.Artifact == "":
		add("artifact", "required: the name of the archive among the step's artifacts")
	case len(sc.GetArtifacts()) > 0 && sc.GetArtifacts()[p.Artifact] == "":
		add("artifact", "no artifact named %q", p.Artifact)
	}
	switch {
	case p.Dest == "":
		add("dest", "required: the absolute directory inside the root to extract into")
	case !strings.HasPrefix(p.Dest, "/"):
		add("dest", "%q is not absolute", p.Dest)
	case strings.ContainsRune(p.Dest, 0):
		add("dest", "contains a NUL byte")
	case hasDotDot(p.Dest):
		add("dest", "%q has a \"..\" element", p.Dest)
	}
	switch p.Format {
	case "", formatTar, formatTarGz, formatZip:
	default:
		add("format", "%q: want tar, tar.gz, zip or empty (detect)", p.Format)
	}
	if p.StripComponents < 0 {
		add("strip_components", "must not be negative")
	}
	if len(errs) > 0 {
		return nil, errs
	}
	p.Dest = path.Clean(p.Dest)
	return &p, nil
}

func hasDotDot(name string) bool {
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return true
		}
	}
	return false
}
