package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cairn-ops/cairn/internal/limits"
	"github.com/cairn-ops/cairn/internal/readlimit"
)

// The values of apiVersion and kind this package reads.
const (
	APIVersion  = "cairn/v1"
	KindRelease = "Release"
)

// Default time limits per step when a step gives no timeout.
const (
	DefaultStepTimeout   = 10 * time.Minute
	DefaultVerifyTimeout = time.Minute
)

// Names of the step lists, as used in errors, the journal and reports.
const (
	ListSteps    = "steps"
	ListVerify   = "verify"
	ListRollback = "rollback"
)

// Component kinds (ITIL release component types).
var componentKinds = []string{
	"application", "off-the-shelf", "utility", "system-software", "hardware-spec", "documentation",
}

// Manifest is a parsed, valid release manifest. The JSON names are the
// YAML keys; Canonical encodes it.
type Manifest struct {
	APIVersion  string `json:"apiVersion"`
	Kind        string `json:"kind"`
	Name        string `json:"name"`
	Version     string `json:"version"`
	Description string `json:"description,omitempty"`
	// Service names the Service CI the release changes.
	Service    string      `json:"service,omitempty"`
	Components []Component `json:"components,omitempty"`
	Steps      []Step      `json:"steps,omitempty"`
	Verify     []Step      `json:"verify,omitempty"`
	Rollback   []Step      `json:"rollback,omitempty"`
	// Expect is the changes the release declares, as written; plugins'
	// declared changes are added by MergeDeclared.
	Expect      Expect       `json:"expect"`
	KnownErrors []KnownError `json:"known_errors,omitempty"`
	// Notes are the release notes, Markdown.
	Notes     string    `json:"notes,omitempty"`
	SLA       SLA       `json:"sla"`
	Approvals Approvals `json:"approvals"`

	// File is the name Parse was given (the path, for Load); Dir is the
	// directory component paths are relative to.
	File string `json:"-"`
	Dir  string `json:"-"`
	// Raw is the manifest's bytes as read, for digests.
	Raw []byte `json:"-"`
}

// Component is one artifact of the release: a local file (Path, for
// create and apply) or an artifact already in the DML (Digest). Exactly
// one of the two is set.
type Component struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Path is relative to the manifest's directory (or the artifacts
	// directory the agent is given).
	Path string `json:"path,omitempty"`
	// SHA256 is the expected hex digest of Path; empty means not checked.
	SHA256 string `json:"sha256,omitempty"`
	// Digest is the sha256 (lowercase hex) of an artifact in the DML.
	Digest string `json:"digest,omitempty"`
	Line   int    `json:"-"`
}

// Step is one entry of steps, verify or rollback.
type Step struct {
	// List is ListSteps, ListVerify or ListRollback; Index the position in it.
	List  string `json:"-"`
	Index int    `json:"-"`
	Name  string `json:"name"`
	// Plugin names the step plugin that runs it.
	Plugin string `json:"plugin"`
	// Params are JSON-compatible values: string, int64, float64, bool,
	// nil, []any and map[string]any.
	Params map[string]any `json:"params,omitempty"`
	// Timeout is encoded in JSON as a Go duration string ("2m0s").
	Timeout time.Duration `json:"-"`
	// NeedsArtifacts names the components whose paths the step receives;
	// empty means all of them.
	NeedsArtifacts  []string `json:"needs_artifacts,omitempty"`
	ContinueOnError bool     `json:"continue_on_error,omitempty"`
	// Line is where the step starts in the file.
	Line int `json:"-"`

	paramLines map[string]int
}

// ParamLine returns the line of the parameter at the dotted path field
// ("argv", "env.PATH"), or of the nearest enclosing parameter, or of the
// step, so a plugin's field error can point into the file.
func (s *Step) ParamLine(field string) int {
	for f := field; f != ""; {
		if l, ok := s.paramLines[f]; ok {
			return l
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	if l, ok := s.paramLines[""]; ok {
		return l
	}
	return s.Line
}

// Ref is how messages name the step: "steps[2] (install)".
func (s *Step) Ref() string {
	return fmt.Sprintf("%s[%d] (%s)", s.List, s.Index, s.Name)
}

// Lists returns the three step lists in the order a deployment runs
// them: steps, verify, rollback.
func (m *Manifest) Lists() [][]Step {
	return [][]Step{m.Steps, m.Verify, m.Rollback}
}

// Problem is one schema violation.
type Problem struct {
	Line    int
	Field   string
	Message string
}

// Error lists every problem found in one manifest. It matches ErrInvalid.
type Error struct {
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problem(s) in release manifest:", e.File, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(e.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
		if p.Field != "" {
			b.WriteString(p.Field)
			b.WriteString(": ")
		}
		b.WriteString(p.Message)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// MaxBytes is the largest manifest ReadFile reads and Parse accepts
// (limits.ManifestBytes). Real manifests are a few KiB with their notes;
// the limit keeps a manifest, its canonical JSON and its expect section
// together inside one 4 MiB gRPC message (CreateRelease, a release
// record, an agent's deploy command).
const MaxBytes = limits.ManifestBytes

// ReadFile reads the manifest file at path, at most MaxBytes. path may be
// /dev/stdin or a process substitution (<(...)): manifests are often
// generated by a template tool and piped in.
func ReadFile(path string) ([]byte, error) {
	return readlimit.Stream(path, "release manifest", MaxBytes)
}

// Load reads and parses the manifest at path.
func Load(path string) (*Manifest, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// Parse parses and validates a manifest. filename is used in messages and
// its directory becomes Manifest.Dir. The error is an *Error listing every
// problem, or nil.
func Parse(data []byte, filename string) (*Manifest, error) {
	p := &parser{}
	if len(data) > MaxBytes {
		p.add(0, "", (&readlimit.LimitError{Name: "release manifest", Limit: MaxBytes}).Error())
		return nil, p.err(filename)
	}
	m := &Manifest{File: filename, Dir: filepath.Dir(filename), Raw: bytes.Clone(data)}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		line := 0
		msg := err.Error()
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = strings.TrimSpace(yamlLine.ReplaceAllString(msg, ""))
		}
		if errors.Is(err, io.EOF) {
			msg = "empty file"
		}
		p.add(line, "", msg)
		return nil, p.err(filename)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		p.add(extra.Line, "", "more than one YAML document; a manifest is one document")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		p.add(root.Line, "", "a manifest is a mapping (apiVersion, kind, name, ...)")
		return nil, p.err(filename)
	}
	m.Approvals.Required = DefaultApprovals
	mapping(p, root, "", topLevel, m)
	p.required(root, "", m.APIVersion != "", "apiVersion")
	p.required(root, "", m.Kind != "", "kind")
	p.required(root, "", m.Name != "", "name")
	p.required(root, "", m.Version != "", "version")
	p.checkReferences(m)
	if len(p.problems) > 0 {
		return nil, p.err(filename)
	}
	return m, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): ?`)

// field decodes one key of a mapping into the value being built.
type field[T any] func(p *parser, n *yaml.Node, path string, into T)

// topLevel is the manifest's keys. New sections are new entries.
var topLevel = map[string]field[*Manifest]{
	"apiVersion": func(p *parser, n *yaml.Node, path string, m *Manifest) {
		if p.str(n, path, &m.APIVersion) && m.APIVersion != APIVersion {
			p.add(n.Line, path, fmt.Sprintf("%s is not supported; use %q", limits.Quote(m.APIVersion), APIVersion))
		}
	},
	"kind": func(p *parser, n *yaml.Node, path string, m *Manifest) {
		if p.str(n, path, &m.Kind) && m.Kind != KindRelease {
			p.add(n.Line, path, fmt.Sprintf("%s is not supported; use %q", limits.Quote(m.Kind), KindRelease))
		}
	},
	"name": func(p *parser, n *yaml.Node, path string, m *Manifest) {
		if p.str(n, path, &m.Name) {
			p.limit(n, path, limits.ReleaseName, m.Name)
		}
	},
	"version": func(p *parser, n *yaml.Node, path string, m *Manifest) {
		if p.str(n, path, &m.Version) && p.limit(n, path, limits.ReleaseVersion, m.Version) && !semver.MatchString(m.Version) {
			p.add(n.Line, path, fmt.Sprintf("%q is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.4.0)", m.Version))
		}
	},
	"description": func(p *parser, n *yaml.Node, path string, m *Manifest) {
		if p.str(n, path, &m.Description) {
			p.limit(n, path, limits.Note, m.Description)
		}
	},
	"components": func(p *parser, n *yaml.Node, path string, m *Manifest) {
		p.sequence(n, path, func(i int, item *yaml.Node, ipath string) {
			c := Component{Line: item.Line}
			if mapping(p, item, ipath, componentFields, &c) {
				p.required(item, ipath, c.Name != "", "name")
				p.required(item, ipath, c.Kind != "", "kind")
				p.component(item, ipath, &c)
			}
			m.Components = append(m.Components, c)
		})
	},
	"service": func(p *parser, n *yaml.Node, path string, m *Manifest) {
		if p.str(n, path, &m.Service) {
			p.limit(n, path, limits.ServiceName, m.Service)
		}
	},
	"expect": func(p *parser, n *yaml.Node, path string, m *Manifest) {
		mapping(p, n, path, expectFields, &m.Expect)
	},
	"known_errors": func(p *parser, n *yaml.Node, path string, m *Manifest) {
		m.KnownErrors = p.knownErrors(n, path)
	},
	"notes": func(p *parser, n *yaml.Node, path string, m *Manifest) {
		if p.str(n, path, &m.Notes) {
			p.limit(n, path, limits.ReleaseNotes, m.Notes)
		}
	},
	"sla": func(p *parser, n *yaml.Node, path string, m *Manifest) {
		mapping(p, n, path, slaFields, &m.SLA)
	},
	"approvals": func(p *parser, n *yaml.Node, path string, m *Manifest) {
		mapping(p, n, path, approvalFields, &m.Approvals)
	},
	ListSteps: func(p *parser, n *yaml.Node, path string, m *Manifest) {
		m.Steps = p.steps(n, path, ListSteps, DefaultStepTimeout)
	},
	ListVerify: func(p *parser, n *yaml.Node, path string, m *Manifest) {
		m.Verify = p.steps(n, path, ListVerify, DefaultVerifyTimeout)
	},
	ListRollback: func(p *parser, n *yaml.Node, path string, m *Manifest) {
		m.Rollback = p.steps(n, path, ListRollback, DefaultStepTimeout)
	},
}

var componentFields = map[string]field[*Component]{
	"name": func(p *parser, n *yaml.Node, path string, c *Component) {
		if p.str(n, path, &c.Name) {
			p.limit(n, path, limits.ComponentName, c.Name)
		}
	},
	"kind": func(p *parser, n *yaml.Node, path string, c *Component) {
		if p.str(n, path, &c.Kind) && !contains(componentKinds, c.Kind) {
			p.add(n.Line, path, fmt.Sprintf("%s is not a component kind; use one of %s", limits.Quote(c.Kind), strings.Join(componentKinds, ", ")))
		}
	},
	"path": func(p *parser, n *yaml.Node, path string, c *Component) {
		if !p.str(n, path, &c.Path) {
			return
		}
		switch {
		case c.Path == "":
			p.add(n.Line, path, "must not be empty")
		case !p.limit(n, path, limits.Path, c.Path):
		case filepath.IsAbs(c.Path):
			p.add(n.Line, path, "must be relative to the manifest's directory (or the --artifacts directory)")
		}
	},
	"sha256": func(p *parser, n *yaml.Node, path string, c *Component) {
		if p.str(n, path, &c.SHA256) && !sha256Hex.MatchString(c.SHA256) {
			p.add(n.Line, path, "must be 64 lowercase hex digits")
		}
	},
	"digest": func(p *parser, n *yaml.Node, path string, c *Component) {
		if p.str(n, path, &c.Digest) && !sha256Hex.MatchString(c.Digest) {
			p.add(n.Line, path, "must be the artifact's sha256: 64 lowercase hex digits")
		}
	},
}

// component checks that exactly one of path and digest is given, and
// sha256 only with path.
func (p *parser) component(n *yaml.Node, path string, c *Component) {
	hasPath, hasDigest, hasSum := hasKey(n, "path"), hasKey(n, "digest"), hasKey(n, "sha256")
	switch {
	case hasPath && hasDigest:
		p.add(n.Line, path+".digest", "give path (a local file) or digest (an artifact in the DML), not both")
	case !hasPath && !hasDigest:
		p.add(n.Line, path+".path", "required (or digest: the sha256 of an artifact already in the DML)")
	case hasDigest && hasSum:
		p.add(n.Line, path+".sha256", "goes with path; digest already names the content")
	}
	if c.Path != "" && !filepath.IsAbs(c.Path) && !filepath.IsLocal(c.Path) {
		line := n.Line
		if v := valueOf(n, "path"); v != nil {
			line = v.Line
		}
		p.add(line, path+".path", fmt.Sprintf("component %s: %q leaves the manifest's directory: %v", c.Name, c.Path, errOutsideHint))
	}
}

// errOutsideHint says what a component path may be.
var errOutsideHint = errors.New("a component's file must be inside the manifest's directory (or the --artifacts directory), because it is uploaded to the DML for every auditor to read")

// valueOf returns the value of key in the mapping n, or nil.
func valueOf(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// hasKey reports whether the mapping n has key.
func hasKey(n *yaml.Node, key string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

var stepFields = map[string]field[*Step]{
	"name": func(p *parser, n *yaml.Node, path string, s *Step) {
		if p.str(n, path, &s.Name) {
			p.limit(n, path, limits.StepName, s.Name)
		}
	},
	"plugin": func(p *parser, n *yaml.Node, path string, s *Step) {
		if p.str(n, path, &s.Plugin) {
			p.limit(n, path, limits.PluginName, s.Plugin)
		}
	},
	"params": func(p *parser, n *yaml.Node, path string, s *Step) {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return
		}
		if n.Kind != yaml.MappingNode {
			p.add(n.Line, path, "must be a mapping of parameter names to values")
			return
		}
		s.paramLines = map[string]int{"": n.Line}
		v, ok := p.value(n, path, "", s.paramLines, 0)
		if ok {
			s.Params, _ = v.(map[string]any)
		}
	},
	"timeout": func(p *parser, n *yaml.Node, path string, s *Step) {
		p.duration(n, path, &s.Timeout, limits.StepTimeout)
	},
	"needs_artifacts": func(p *parser, n *yaml.Node, path string, s *Step) {
		p.sequence(n, path, func(_ int, item *yaml.Node, ipath string) {
			var v string
			if p.str(item, ipath, &v) && p.limit(item, ipath, limits.ComponentName, v) {
				s.NeedsArtifacts = append(s.NeedsArtifacts, v)
			}
		})
	},
	"continue_on_error": func(p *parser, n *yaml.Node, path string, s *Step) {
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			p.add(n.Line, path, "must be true or false")
			return
		}
		s.ContinueOnError = n.Value == "true" || n.Value == "True" || n.Value == "TRUE"
	},
}

var (
	// semver is semver.org's regular expression.
	semver    = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)
	sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// maxDepth bounds the nesting of params, so a hostile file cannot
// exhaust the stack.
const maxDepth = 64

type parser struct {
	problems []Problem
	// untrack are the expect.untrack entries read, for checkReferences.
	untrack []untrackEntry
}

func (p *parser) add(line int, field, msg string) {
	p.problems = append(p.problems, Problem{Line: line, Field: field, Message: msg})
}

func (p *parser) err(file string) error {
	sort.SliceStable(p.problems, func(i, j int) bool { return p.problems[i].Line < p.problems[j].Line })
	return &Error{File: file, Problems: p.problems}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// mapping decodes a mapping node through fields, reporting unknown and
// repeated keys. It reports false when n is not a mapping.
func mapping[T any](p *parser, n *yaml.Node, path string, fields map[string]field[T], into T) bool {
	if n.Kind != yaml.MappingNode {
		what := "a mapping"
		if path == "" {
			what = "a mapping (apiVersion, kind, name, ...)"
		}
		p.add(n.Line, path, "must be "+what)
		return false
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := k.Value
		kpath := join(path, key)
		if k.Kind != yaml.ScalarNode {
			p.add(k.Line, path, "keys must be plain names")
			continue
		}
		f, ok := fields[key]
		if !ok {
			p.add(k.Line, kpath, "unknown key"+suggest(key, fields))
			continue
		}
		if seen[key] {
			p.add(k.Line, kpath, "given more than once")
			continue
		}
		seen[key] = true
		f(p, v, kpath, into)
	}
	return true
}

func suggest[T any](key string, fields map[string]field[T]) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		if strings.EqualFold(k, key) || strings.EqualFold(strings.ReplaceAll(k, "_", ""), strings.ReplaceAll(key, "_", "")) {
			return fmt.Sprintf(" (did you mean %q?)", k)
		}
		names = append(names, k)
	}
	sort.Strings(names)
	return "; known keys: " + strings.Join(names, ", ")
}

func (p *parser) required(n *yaml.Node, path string, ok bool, key string) {
	if !ok {
		// Report only when the key is absent; a present but bad value
		// was reported where it was read.
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return
			}
		}
		p.add(n.Line, join(path, key), "required")
	}
}

// str reads a scalar string. Numbers and booleans are refused: a
// version 1.10 written unquoted would otherwise read as 1.1.
func (p *parser) str(n *yaml.Node, path string, into *string) bool {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		hint := ""
		if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float" || n.Tag == "!!bool") {
			hint = fmt.Sprintf(" (quote it: %s)", limits.Quote(n.Value))
		}
		p.add(n.Line, path, "must be a string"+hint)
		return false
	}
	*into = n.Value
	return true
}

// limit checks v against l, reporting a violation at n; it reports
// whether v fits.
func (p *parser) limit(n *yaml.Node, path string, l limits.Text, v string) bool {
	if err := l.Check(v); err != nil {
		p.add(n.Line, path, err.Error())
		return false
	}
	return true
}

func (p *parser) sequence(n *yaml.Node, path string, each func(i int, item *yaml.Node, ipath string)) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.SequenceNode {
		p.add(n.Line, path, "must be a list")
		return
	}
	for i, item := range n.Content {
		each(i, item, fmt.Sprintf("%s[%d]", path, i))
	}
}

func (p *parser) steps(n *yaml.Node, path, list string, timeout time.Duration) []Step {
	var steps []Step
	names := map[string]int{}
	p.sequence(n, path, func(i int, item *yaml.Node, ipath string) {
		s := Step{List: list, Index: i, Line: item.Line, Timeout: timeout}
		if mapping(p, item, ipath, stepFields, &s) {
			p.required(item, ipath, s.Name != "", "name")
			p.required(item, ipath, s.Plugin != "", "plugin")
		}
		if s.Name != "" {
			if prev, ok := names[s.Name]; ok {
				p.add(item.Line, ipath+".name", fmt.Sprintf("%q is already the name of %s[%d]; names are unique within %s", s.Name, list, prev, list))
			} else {
				names[s.Name] = i
			}
		}
		steps = append(steps, s)
	})
	return steps
}

// value converts a parameter node to JSON-compatible Go values, recording
// each key's line under its dotted path.
func (p *parser) value(n *yaml.Node, path, ppath string, lines map[string]int, depth int) (any, bool) {
	if depth > maxDepth {
		p.add(n.Line, path, fmt.Sprintf("nested deeper than %d levels", maxDepth))
		return nil, false
	}
	switch n.Kind {
	case yaml.AliasNode:
		p.add(n.Line, path, "YAML aliases (*name) are not supported in params; write the value out")
		return nil, false
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		ok := true
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || (k.Tag != "!!str" && k.Tag != "!!int" && k.Tag != "!!bool" && k.Tag != "!!float") {
				p.add(k.Line, path, "parameter names must be plain strings")
				ok = false
				continue
			}
			if k.Tag == "!!str" && k.Value == "<<" {
				p.add(k.Line, path, "YAML merge keys (<<) are not supported in params")
				ok = false
				continue
			}
			if _, dup := out[k.Value]; dup {
				p.add(k.Line, join(path, k.Value), "given more than once")
				ok = false
				continue
			}
			kp := join(ppath, k.Value)
			lines[kp] = k.Line
			val, vok := p.value(v, join(path, k.Value), kp, lines, depth+1)
			ok = ok && vok
			out[k.Value] = val
		}
		return out, ok
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		ok := true
		for i, item := range n.Content {
			ip := fmt.Sprintf("%s[%d]", ppath, i)
			lines[ip] = item.Line
			val, vok := p.value(item, fmt.Sprintf("%s[%d]", path, i), ip, lines, depth+1)
			ok = ok && vok
			out = append(out, val)
		}
		return out, ok
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, true
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				p.add(n.Line, path, err.Error())
				return nil, false
			}
			return b, true
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil {
				p.add(n.Line, path, fmt.Sprintf("%s is out of range for an integer", n.Value))
				return nil, false
			}
			return i, true
		case "!!float":
			var f float64
			if err := n.Decode(&f); err != nil {
				p.add(n.Line, path, fmt.Sprintf("%s is not a number", n.Value))
				return nil, false
			}
			return f, true
		default:
			// Strings, and timestamps and binary kept as written.
			return n.Value, true
		}
	}
	p.add(n.Line, path, "unsupported YAML value")
	return nil, false
}

// checkReferences checks what spans sections: component names are unique,
// the artifacts steps ask for exist, and no path is both expected and
// untracked.
func (p *parser) checkReferences(m *Manifest) {
	comps := map[string]int{}
	for i, c := range m.Components {
		if c.Name == "" {
			continue
		}
		if prev, ok := comps[c.Name]; ok {
			p.add(c.Line, fmt.Sprintf("components[%d].name", i), fmt.Sprintf("%q is already the name of components[%d]", c.Name, prev))
			continue
		}
		comps[c.Name] = i
	}
	for i, f := range m.Expect.Files {
		if f.Artifact == "" {
			continue
		}
		if _, ok := comps[f.Artifact]; !ok {
			p.add(f.Line, fmt.Sprintf("expect.files[%d].artifact", i), fmt.Sprintf("no component named %q", f.Artifact))
		}
	}
	for _, u := range p.untrack {
		for i, f := range m.Expect.Files {
			if f.Path == u.path {
				p.add(u.line, u.field, fmt.Sprintf("%q is expected by expect.files[%d]: a release cannot expect a change to a path it stops tracking (its post-audit no longer records it)", u.path, i))
			}
		}
	}
	for _, list := range m.Lists() {
		for _, s := range list {
			for j, a := range s.NeedsArtifacts {
				if _, ok := comps[a]; !ok {
					p.add(s.Line, fmt.Sprintf("%s[%d].needs_artifacts[%d]", s.List, s.Index, j), fmt.Sprintf("no component named %q", a))
				}
			}
		}
	}
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}
