package manifest

import (
	"fmt"
	"math"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cairn-ops/cairn/internal/audit"
	"github.com/cairn-ops/cairn/internal/bytesize"
	"github.com/cairn-ops/cairn/internal/limits"
	"github.com/cairn-ops/cairn/internal/pkgversion"
)

// DefaultApprovals is how many distinct approvers a release needs when
// its manifest does not say.
const DefaultApprovals = 1

// States an expectation or a known error can name.
const (
	StatePresent = "present"
	StateAbsent  = "absent"
)

var (
	packageStates = []string{StatePresent, StateAbsent}
	// serviceFileStates are unit-file states; serviceActiveStates are
	// run states. A service may have one expectation of each.
	serviceFileStates   = []string{"enabled", "disabled", "masked"}
	serviceActiveStates = []string{"active", "inactive"}
	knownErrorStatuses  = []string{"open", "resolved", "workaround"}
)

// Expect is the changes a release declares: what the before/after audits
// of each node are compared with. Anything observed that no entry and no
// Allow pattern covers is unexpected.
type Expect struct {
	Packages []PackageExpectation `json:"packages,omitempty"`
	Files    []FileExpectation    `json:"files,omitempty"`
	Services []ServiceExpectation `json:"services,omitempty"`
	Hardware []HardwareFact       `json:"hardware,omitempty"`
	// Allow are glob patterns (path.Match) over "section/key", such as
	// "packages/dpkg/libfoo*", for incidental changes.
	Allow []string `json:"allow,omitempty"`
	// Untrack are tracked paths the release stops tracking. Every audit
	// of a node collects the node's tracked set (the paths earlier
	// releases' file expectations and accepted audits tracked); a node
	// the release passes on drops these from it, from the release's
	// post-audit on. An entry removes the tracked path or pattern written
	// the same way. A path cannot be both expected and untracked.
	Untrack []string `json:"untrack,omitempty"`
}

// PackageExpectation says a package is present (optionally at a
// version) or absent after the release.
type PackageExpectation struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Version is the constraint as written ("2.4.0", ">= 2.4.0"); empty
	// means any version.
	Version string `json:"version,omitempty"`
	// DeclaredBy names the step whose plugin declared it ("steps[0]
	// (install)"); empty when the manifest states it.
	DeclaredBy string `json:"declared_by,omitempty"`
	Line       int    `json:"-"`
}

// FileExpectation says a file (an absolute path inside the node's root)
// is present, with the content SHA256 or the content of the component
// Artifact when either is given.
type FileExpectation struct {
	Path       string `json:"path"`
	SHA256     string `json:"sha256,omitempty"`
	Artifact   string `json:"artifact,omitempty"`
	DeclaredBy string `json:"declared_by,omitempty"`
	Line       int    `json:"-"`
}

// ServiceExpectation says a systemd unit is in a state: enabled,
// disabled or masked (its unit file), active or inactive (running).
type ServiceExpectation struct {
	Name       string `json:"name"`
	State      string `json:"state"`
	DeclaredBy string `json:"declared_by,omitempty"`
	Line       int    `json:"-"`
}

// HardwareFact is a condition on a node's hardware: a size or count
// compared with Op (>=, <=, ==), or a model that is present or absent.
type HardwareFact struct {
	Fact  string `json:"fact"`
	Op    string `json:"op"`
	Value string `json:"value,omitempty"`
	Line  int    `json:"-"`
}

// Hardware facts and what their values are.
const (
	factSize   = "size"   // a byte count: 16GiB, 17179869184
	factCount  = "count"  // a whole number
	factString = "string" // matched by present or absent
)

// hardwareFacts is the facts expect and signatures can name. New facts
// are new entries.
var hardwareFacts = map[string]string{
	"memory.total_bytes": factSize,
	"cpu.count":          factCount,
	"disk.count":         factCount,
	"disk.model":         factString,
	"nic.model":          factString,
	"gpu.model":          factString,
}

// Ops by kind of fact.
var (
	numericOps  = []string{">=", "<=", "=="}
	presenceOps = []string{StatePresent, StateAbsent}
)

// KnownError is a known error of the release with its workaround
// (ITIL's known error record), shown in notes and reports.
type KnownError struct {
	ID         string `json:"id"`
	Summary    string `json:"summary"`
	Symptom    string `json:"symptom,omitempty"`
	Workaround string `json:"workaround,omitempty"`
	// Status is open (the default), resolved or workaround.
	Status string `json:"status"`
	// Signature, when set, matches the nodes the error affects by their
	// inventory.
	Signature *Signature `json:"signature,omitempty"`
	Line      int        `json:"-"`
}

// Signature matches a node's inventory: every package (at the version
// constraint, when given) and every hardware fact must hold.
type Signature struct {
	Packages []PackageExpectation `json:"packages,omitempty"`
	Hardware []HardwareFact       `json:"hardware,omitempty"`
}

// SLA is the release's deployment targets; a zero field is no target.
type SLA struct {
	MaxNodeDuration    time.Duration `json:"-"`
	MaxRolloutDuration time.Duration `json:"-"`
	// MinSuccessRate is between 0 and 1 ("95%" reads as 0.95).
	MinSuccessRate float64 `json:"min_success_rate,omitempty"`
}

// Approvals is how sign-off works for the release.
type Approvals struct {
	// Required is how many distinct approvers must approve (at least 1).
	Required int `json:"required"`
}

// VersionConstraint is a parsed package version expectation: Op is one
// of =, !=, >=, <=, >, <, compared with Debian ordering (pkgversion).
type VersionConstraint struct {
	Op      string
	Version string
}

var (
	constraintRE = regexp.MustCompile(`^(==|=|!=|>=|<=|>|<)?\s*(\S+)$`)
	// debVersion is [epoch:]upstream[-revision] with dpkg's characters.
	debVersion = regexp.MustCompile(`^(\d+:)?[0-9][A-Za-z0-9.+~-]*$`)
)

// ParseVersionConstraint reads "2.4.0", "= 2.4.0" or ">= 2.4.0".
func ParseVersionConstraint(s string) (VersionConstraint, error) {
	m := constraintRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return VersionConstraint{}, fmt.Errorf("%s is not a version or a comparison (e.g. 2.4.0, \">= 2.4.0\")", limits.Quote(s))
	}
	op := m[1]
	if op == "" || op == "==" {
		op = "="
	}
	if !debVersion.MatchString(m[2]) {
		return VersionConstraint{}, fmt.Errorf("%s is not a package version ([epoch:]version[-revision], starting with a digit)", limits.Quote(m[2]))
	}
	return VersionConstraint{Op: op, Version: m[2]}, nil
}

// Matches reports whether version v satisfies the constraint.
func (c VersionConstraint) Matches(v string) bool {
	r := pkgversion.Compare(v, c.Version)
	switch c.Op {
	case "=":
		return r == 0
	case "!=":
		return r != 0
	case ">=":
		return r >= 0
	case "<=":
		return r <= 0
	case ">":
		return r > 0
	case "<":
		return r < 0
	}
	return false
}

func (c VersionConstraint) String() string {
	return c.Op + " " + c.Version
}

var expectFields = map[string]field[*Expect]{
	"packages": func(p *parser, n *yaml.Node, path string, e *Expect) {
		e.Packages = p.packages(n, path, true)
	},
	"files": func(p *parser, n *yaml.Node, path string, e *Expect) {
		seen := map[string]int{}
		p.sequence(n, path, func(i int, item *yaml.Node, ipath string) {
			f := FileExpectation{Line: item.Line}
			if !mapping(p, item, ipath, fileFields, &f) {
				e.Files = append(e.Files, f) // keeps indexes in messages right
				return
			}
			p.required(item, ipath, f.Path != "", "path")
			if hasKey(item, "sha256") && hasKey(item, "artifact") {
				p.add(item.Line, ipath+".artifact", "give sha256 or artifact, not both")
			}
			if f.Path != "" {
				if prev, ok := seen[f.Path]; ok {
					p.add(item.Line, ipath+".path", fmt.Sprintf("%q is already expected by %s[%d]", f.Path, path, prev))
				} else {
					seen[f.Path] = i
				}
			}
			e.Files = append(e.Files, f)
		})
	},
	"services": func(p *parser, n *yaml.Node, path string, e *Expect) {
		seen := map[string]int{}
		p.sequence(n, path, func(i int, item *yaml.Node, ipath string) {
			s := ServiceExpectation{Line: item.Line}
			if !mapping(p, item, ipath, serviceFields, &s) {
				return
			}
			p.required(item, ipath, s.Name != "", "name")
			p.required(item, ipath, s.State != "", "state")
			if s.Name != "" && s.State != "" {
				k := s.Name + "\x00" + serviceDimension(s.State)
				if prev, ok := seen[k]; ok {
					p.add(item.Line, ipath, fmt.Sprintf("%s[%d] already expects a %s state for %q", path, prev, serviceDimension(s.State), s.Name))
				} else {
					seen[k] = i
				}
			}
			e.Services = append(e.Services, s)
		})
	},
	"hardware": func(p *parser, n *yaml.Node, path string, e *Expect) {
		e.Hardware = p.hardware(n, path)
	},
	"allow": func(p *parser, n *yaml.Node, path string, e *Expect) {
		p.strings(n, path, limits.Pattern, checkAllow, func(_ int, _ *yaml.Node, _, v string) {
			e.Allow = append(e.Allow, v)
		})
	},
	"untrack": func(p *parser, n *yaml.Node, path string, e *Expect) {
		seen := map[string]int{}
		p.strings(n, path, limits.Path, checkTrackedPath, func(i int, item *yaml.Node, ipath, v string) {
			if prev, ok := seen[v]; ok {
				p.add(item.Line, ipath, fmt.Sprintf("%q is already in %s[%d]", v, path, prev))
				return
			}
			seen[v] = i
			e.Untrack = append(e.Untrack, v)
			p.untrack = append(p.untrack, untrackEntry{path: v, field: ipath, line: item.Line})
		})
	},
}

// strings reads a list of strings, each within l and passing check
// (which returns what is wrong, or ""), and gives each valid one to add.
func (p *parser) strings(n *yaml.Node, path string, l limits.Text, check func(string) string, add func(i int, item *yaml.Node, ipath, v string)) {
	p.sequence(n, path, func(i int, item *yaml.Node, ipath string) {
		var v string
		if !p.str(item, ipath, &v) || !p.limit(item, ipath, l, v) {
			return
		}
		if msg := check(v); msg != "" {
			p.add(item.Line, ipath, msg)
			return
		}
		add(i, item, ipath, v)
	})
}

// untrackEntry is an expect.untrack entry and where it is, for the
// checks that span expect's keys.
type untrackEntry struct {
	path, field string
	line        int
}

// checkTrackedPath returns what is wrong with a path or pattern the
// files collector tracks (expect.untrack), or "".
func checkTrackedPath(v string) string {
	if !strings.HasPrefix(v, "/") || v != pathClean(v) {
		return fmt.Sprintf("%q: must be an absolute, clean path or pattern inside the node's root (e.g. /etc/shop.conf)", v)
	}
	if _, err := path.Match(v, ""); err != nil {
		return fmt.Sprintf("%q is not a valid glob pattern: %v", v, err)
	}
	return ""
}

// serviceDimension is "unit-file" or "run", the two independent states of
// a unit.
func serviceDimension(state string) string {
	if contains(serviceActiveStates, state) {
		return "run"
	}
	return "unit-file"
}

// checkAllow returns what is wrong with an allow pattern, or "".
func checkAllow(v string) string {
	if _, err := path.Match(v, ""); err != nil {
		return fmt.Sprintf("%q is not a valid glob pattern: %v", v, err)
	}
	section, key, ok := strings.Cut(v, "/")
	if !ok || section == "" || key == "" {
		return fmt.Sprintf("%q: write section/key, e.g. packages/dpkg/libfoo*", v)
	}
	if !strings.ContainsAny(section, `*?[\`) {
		if s, ok := audit.SectionByName(section); !ok || s.Volatile {
			var names []string
			for _, s := range audit.Sections {
				if !s.Volatile {
					names = append(names, s.Name)
				}
			}
			return fmt.Sprintf("%q: no audit section %q; sections are %s", v, section, strings.Join(names, ", "))
		}
	}
	return ""
}

// packages reads a list of package expectations; withState allows the
// state key (expect has it, signatures do not).
func (p *parser) packages(n *yaml.Node, path string, withState bool) []PackageExpectation {
	var out []PackageExpectation
	seen := map[string]int{}
	fields := packageFields
	if !withState {
		fields = signaturePackageFields
	}
	p.sequence(n, path, func(i int, item *yaml.Node, ipath string) {
		pe := PackageExpectation{Line: item.Line, State: StatePresent}
		if !mapping(p, item, ipath, fields, &pe) {
			return
		}
		p.required(item, ipath, pe.Name != "", "name")
		if pe.State == StateAbsent && pe.Version != "" {
			p.add(item.Line, ipath+".version", "an absent package has no version")
		}
		if pe.Name != "" {
			if prev, ok := seen[pe.Name]; ok {
				p.add(item.Line, ipath+".name", fmt.Sprintf("%q is already in %s[%d]", pe.Name, path, prev))
			} else {
				seen[pe.Name] = i
			}
		}
		out = append(out, pe)
	})
	return out
}

var packageFields = map[string]field[*PackageExpectation]{
	"name": func(p *parser, n *yaml.Node, path string, pe *PackageExpectation) {
		if p.str(n, path, &pe.Name) {
			p.limit(n, path, limits.PackageName, pe.Name)
		}
	},
	"state": func(p *parser, n *yaml.Node, path string, pe *PackageExpectation) {
		p.enum(n, path, &pe.State, packageStates)
	},
	"version": packageVersion,
}

var signaturePackageFields = map[string]field[*PackageExpectation]{
	"name":    packageFields["name"],
	"version": packageVersion,
}

func packageVersion(p *parser, n *yaml.Node, path string, pe *PackageExpectation) {
	if !p.str(n, path, &pe.Version) || !p.limit(n, path, limits.PackageVersion, pe.Version) {
		return
	}
	if _, err := ParseVersionConstraint(pe.Version); err != nil {
		p.add(n.Line, path, err.Error())
	}
}

var fileFields = map[string]field[*FileExpectation]{
	"path": func(p *parser, n *yaml.Node, path string, f *FileExpectation) {
		if !p.str(n, path, &f.Path) || !p.limit(n, path, limits.Path, f.Path) {
			return
		}
		if !strings.HasPrefix(f.Path, "/") || f.Path != pathClean(f.Path) {
			p.add(n.Line, path, fmt.Sprintf("%q: must be an absolute, clean path inside the node's root (e.g. /etc/shop.conf)", f.Path))
		}
	},
	"sha256": func(p *parser, n *yaml.Node, path string, f *FileExpectation) {
		if p.str(n, path, &f.SHA256) && !sha256Hex.MatchString(f.SHA256) {
			p.add(n.Line, path, "must be 64 lowercase hex digits")
		}
	},
	"artifact": func(p *parser, n *yaml.Node, path string, f *FileExpectation) {
		if p.str(n, path, &f.Artifact) {
			p.limit(n, path, limits.ComponentName, f.Artifact)
		}
	},
}

func pathClean(s string) string { return path.Clean(s) }

var serviceFields = map[string]field[*ServiceExpectation]{
	"name": func(p *parser, n *yaml.Node, path string, s *ServiceExpectation) {
		if p.str(n, path, &s.Name) {
			p.limit(n, path, limits.UnitName, s.Name)
		}
	},
	"state": func(p *parser, n *yaml.Node, path string, s *ServiceExpectation) {
		p.enum(n, path, &s.State, append(append([]string{}, serviceFileStates...), serviceActiveStates...))
	},
}

func (p *parser) hardware(n *yaml.Node, path string) []HardwareFact {
	var out []HardwareFact
	p.sequence(n, path, func(_ int, item *yaml.Node, ipath string) {
		h := HardwareFact{Line: item.Line}
		if !mapping(p, item, ipath, hardwareFields, &h) {
			return
		}
		p.required(item, ipath, h.Fact != "", "fact")
		p.required(item, ipath, h.Op != "", "op")
		kind, ok := hardwareFacts[h.Fact]
		if !ok || h.Op == "" {
			out = append(out, h)
			return
		}
		valueLine := item.Line
		for i := 0; i+1 < len(item.Content); i += 2 {
			if item.Content[i].Value == "value" {
				valueLine = item.Content[i+1].Line
			}
		}
		switch kind {
		case factSize, factCount:
			if !contains(numericOps, h.Op) {
				p.add(item.Line, ipath+".op", fmt.Sprintf("%s: %s takes %s", limits.Quote(h.Op), h.Fact, strings.Join(numericOps, ", ")))
				break
			}
			if !hasKey(item, "value") {
				p.add(item.Line, ipath+".value", "required")
				break
			}
			if kind == factSize {
				if _, err := bytesize.Parse(h.Value); err != nil {
					p.add(valueLine, ipath+".value", fmt.Sprintf("%s is not a size (e.g. 16GiB, 512MiB)", limits.Quote(h.Value)))
				}
			} else if _, err := strconv.ParseUint(h.Value, 10, 64); err != nil {
				p.add(valueLine, ipath+".value", fmt.Sprintf("%s is not a whole number", limits.Quote(h.Value)))
			}
		case factString:
			if !contains(presenceOps, h.Op) {
				p.add(item.Line, ipath+".op", fmt.Sprintf("%s: %s takes present or absent", limits.Quote(h.Op), h.Fact))
				break
			}
			if h.Value == "" {
				p.add(item.Line, ipath+".value", "required: the model to look for")
			}
		}
		out = append(out, h)
	})
	return out
}

var hardwareFields = map[string]field[*HardwareFact]{
	"fact": func(p *parser, n *yaml.Node, path string, h *HardwareFact) {
		if !p.str(n, path, &h.Fact) {
			return
		}
		if _, ok := hardwareFacts[h.Fact]; !ok {
			p.add(n.Line, path, fmt.Sprintf("%s is not a hardware fact; use one of %s", limits.Quote(h.Fact), strings.Join(sortedKeys(hardwareFacts), ", ")))
		}
	},
	"op": func(p *parser, n *yaml.Node, path string, h *HardwareFact) {
		p.str(n, path, &h.Op)
	},
	"value": func(p *parser, n *yaml.Node, path string, h *HardwareFact) {
		// Numbers are fine here (a count, a size in bytes).
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!int") {
			p.add(n.Line, path, "must be a string or a number")
			return
		}
		if p.limit(n, path, limits.Word, n.Value) {
			h.Value = n.Value
		}
	},
}

func (p *parser) knownErrors(n *yaml.Node, path string) []KnownError {
	var out []KnownError
	ids := map[string]int{}
	p.sequence(n, path, func(i int, item *yaml.Node, ipath string) {
		k := KnownError{Line: item.Line, Status: "open"}
		if !mapping(p, item, ipath, knownErrorFields, &k) {
			return
		}
		p.required(item, ipath, k.ID != "", "id")
		p.required(item, ipath, k.Summary != "", "summary")
		if k.ID != "" {
			if prev, ok := ids[k.ID]; ok {
				p.add(item.Line, ipath+".id", fmt.Sprintf("%q is already the id of %s[%d]", k.ID, path, prev))
			} else {
				ids[k.ID] = i
			}
		}
		out = append(out, k)
	})
	return out
}

var knownErrorFields = map[string]field[*KnownError]{
	"id": func(p *parser, n *yaml.Node, path string, k *KnownError) {
		if p.str(n, path, &k.ID) {
			p.limit(n, path, limits.KnownErrorID, k.ID)
		}
	},
	"summary": func(p *parser, n *yaml.Node, path string, k *KnownError) {
		if p.str(n, path, &k.Summary) {
			p.limit(n, path, limits.Summary, k.Summary)
		}
	},
	"symptom": func(p *parser, n *yaml.Node, path string, k *KnownError) {
		if p.str(n, path, &k.Symptom) {
			p.limit(n, path, limits.LongText, k.Symptom)
		}
	},
	"workaround": func(p *parser, n *yaml.Node, path string, k *KnownError) {
		if p.str(n, path, &k.Workaround) {
			p.limit(n, path, limits.LongText, k.Workaround)
		}
	},
	"status": func(p *parser, n *yaml.Node, path string, k *KnownError) {
		p.enum(n, path, &k.Status, knownErrorStatuses)
	},
	"signature": func(p *parser, n *yaml.Node, path string, k *KnownError) {
		k.Signature = &Signature{}
		mapping(p, n, path, signatureFields, k.Signature)
	},
}

var signatureFields = map[string]field[*Signature]{
	"packages": func(p *parser, n *yaml.Node, path string, s *Signature) {
		s.Packages = p.packages(n, path, false)
	},
	"hardware": func(p *parser, n *yaml.Node, path string, s *Signature) {
		s.Hardware = p.hardware(n, path)
	},
}

var slaFields = map[string]field[*SLA]{
	"max_node_duration": func(p *parser, n *yaml.Node, path string, s *SLA) {
		p.duration(n, path, &s.MaxNodeDuration, limits.SLADuration)
	},
	"max_rollout_duration": func(p *parser, n *yaml.Node, path string, s *SLA) {
		p.duration(n, path, &s.MaxRolloutDuration, limits.SLADuration)
	},
	"min_success_rate": func(p *parser, n *yaml.Node, path string, s *SLA) {
		const msg = "must be a fraction between 0 and 1 (0.95) or a percentage (\"95%\")"
		if n.Kind != yaml.ScalarNode {
			p.add(n.Line, path, msg)
			return
		}
		var v float64
		var err error
		switch n.Tag {
		case "!!int", "!!float":
			v, err = strconv.ParseFloat(n.Value, 64)
		case "!!str":
			num, ok := strings.CutSuffix(strings.TrimSpace(n.Value), "%")
			if !ok {
				p.add(n.Line, path, msg)
				return
			}
			v, err = strconv.ParseFloat(strings.TrimSpace(num), 64)
			v /= 100
		default:
			p.add(n.Line, path, msg)
			return
		}
		if err != nil || math.IsNaN(v) || v < 0 || v > 1 {
			p.add(n.Line, path, fmt.Sprintf("%s: %s", limits.Quote(n.Value), msg))
			return
		}
		s.MinSuccessRate = v
	},
}

var approvalFields = map[string]field[*Approvals]{
	"required": func(p *parser, n *yaml.Node, path string, a *Approvals) {
		v, err := strconv.Atoi(n.Value)
		switch {
		case n.Kind != yaml.ScalarNode || n.Tag != "!!int" || err != nil || v < 1:
			p.add(n.Line, path, "must be a whole number of distinct approvers, at least 1")
		case v > limits.Approvals:
			// The controller stores it as a uint32: an unbounded value
			// could wrap around to a small one.
			p.add(n.Line, path, fmt.Sprintf("%s: at most %d distinct approvers", n.Value, limits.Approvals))
		default:
			a.Required = v
		}
	},
}

// duration reads a positive Go duration ("30m", "1h30m") of at most
// limit.
func (p *parser) duration(n *yaml.Node, path string, into *time.Duration, limit time.Duration) {
	var v string
	if !p.str(n, path, &v) {
		return
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		p.add(n.Line, path, fmt.Sprintf("%s is not a duration (e.g. 90s, 5m, 1h30m)", limits.Quote(v)))
	case d <= 0:
		p.add(n.Line, path, "must be positive")
	case d > limit:
		p.add(n.Line, path, fmt.Sprintf("%s is longer than the limit of %s", d, limit))
	default:
		*into = d
	}
}

// enum reads a string that must be one of allowed.
func (p *parser) enum(n *yaml.Node, path string, into *string, allowed []string) {
	var v string
	if !p.str(n, path, &v) {
		return
	}
	if !contains(allowed, v) {
		p.add(n.Line, path, fmt.Sprintf("%s: use one of %s", limits.Quote(v), strings.Join(allowed, ", ")))
		return
	}
	*into = v
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
