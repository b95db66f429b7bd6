package manifest

import (
	"fmt"

	pluginv1 "github.com/cairn-ops/cairn/proto/plugin/v1"
)

// Declared is one change a step's plugin declared in its Plan.
type Declared struct {
	// Step names the step ("steps[0] (install)", Step.Ref).
	Step   string
	Change *pluginv1.Change
}

// Merged is the manifest's expect section with the plugins' declared
// changes added.
type Merged struct {
	Expect Expect `json:"expect"`
	// Warnings are declared changes that disagree with what the manifest
	// states (the manifest wins) or that expect cannot state.
	Warnings []string `json:"warnings,omitempty"`
}

// Change kinds plugins declare (the sdk's ChangePackage, ChangeFile,
// ChangeService).
const (
	changePackage = "package"
	changeFile    = "file"
	changeService = "service"
)

// MergeDeclared adds to m's expect section what the plugins declared,
// in order: a package present (at its version) or absent, a file with its
// sha256, a service in a state. An item the manifest already states an
// expectation for keeps the manifest's; when the two disagree (the
// manifest says absent, a step installs it) the result carries a warning.
// Of two steps declaring the same item, the later one's declaration is
// kept: it is the state the steps leave. MergeDeclared does not modify m.
func MergeDeclared(m *Manifest, declared []Declared) Merged {
	e := m.Expect
	out := Merged{Expect: Expect{
		Packages: append([]PackageExpectation(nil), e.Packages...),
		Files:    append([]FileExpectation(nil), e.Files...),
		Services: append([]ServiceExpectation(nil), e.Services...),
		Hardware: append([]HardwareFact(nil), e.Hardware...),
		Allow:    append([]string(nil), e.Allow...),
		Untrack:  append([]string(nil), e.Untrack...),
	}}
	warn := func(d Declared, format string, args ...any) {
		out.Warnings = append(out.Warnings, d.Step+": "+fmt.Sprintf(format, args...))
	}
	for _, d := range declared {
		c := d.Change
		switch c.GetKind() {
		case changePackage:
			mergePackage(&out, d, warn)
		case changeFile:
			mergeFile(&out, m, d, warn)
		case changeService:
			mergeService(&out, d, warn)
		default:
			warn(d, "declares a change of kind %q, which expect cannot state; not merged", c.GetKind())
		}
	}
	return out
}

type warnFunc func(d Declared, format string, args ...any)

func mergePackage(out *Merged, d Declared, warn warnFunc) {
	c := d.Change
	if c.GetState() != StatePresent && c.GetState() != StateAbsent {
		warn(d, "declares package %s %q, which expect cannot state; not merged", c.GetName(), c.GetState())
		return
	}
	want := PackageExpectation{Name: c.GetName(), State: c.GetState(), DeclaredBy: d.Step}
	if c.GetState() == StatePresent && c.GetVersion() != "" {
		want.Version = c.GetVersion()
	}
	for i, pe := range out.Expect.Packages {
		if pe.Name != want.Name {
			continue
		}
		if pe.DeclaredBy != "" { // an earlier step's: the later one wins
			out.Expect.Packages[i] = want
			return
		}
		switch {
		case pe.State != want.State:
			warn(d, "declares package %s %s, the manifest expects it %s; keeping the manifest's", want.Name, describePackage(want), pe.State)
		case pe.Version != "" && want.Version != "":
			vc, err := ParseVersionConstraint(pe.Version)
			if err == nil && !vc.Matches(want.Version) {
				warn(d, "declares package %s at %s, the manifest expects version %s; keeping the manifest's", want.Name, want.Version, vc)
			}
		}
		return
	}
	out.Expect.Packages = append(out.Expect.Packages, want)
}

func describePackage(pe PackageExpectation) string {
	if pe.Version != "" {
		return pe.State + " at " + pe.Version
	}
	return pe.State
}

func mergeFile(out *Merged, m *Manifest, d Declared, warn warnFunc) {
	c := d.Change
	if c.GetState() != "" && c.GetState() != StatePresent {
		warn(d, "declares file %s %q, which expect cannot state; not merged", c.GetName(), c.GetState())
		return
	}
	want := FileExpectation{Path: c.GetName(), SHA256: c.GetSha256(), DeclaredBy: d.Step}
	if contains(out.Expect.Untrack, want.Path) {
		warn(d, "declares file %s, which expect.untrack stops tracking; not merged", want.Path)
		return
	}
	for i, f := range out.Expect.Files {
		if f.Path != want.Path {
			continue
		}
		if f.DeclaredBy != "" {
			out.Expect.Files[i] = want
			return
		}
		stated, what := f.SHA256, "sha256 "+f.SHA256
		if f.Artifact != "" {
			stated, what = componentDigest(m, f.Artifact), "the content of component "+f.Artifact
		}
		if stated != "" && want.SHA256 != "" && stated != want.SHA256 {
			warn(d, "declares file %s with sha256 %s, the manifest expects %s; keeping the manifest's", want.Path, want.SHA256, what)
		}
		return
	}
	out.Expect.Files = append(out.Expect.Files, want)
}

// componentDigest is the sha256 the manifest gives for a component, or "".
func componentDigest(m *Manifest, name string) string {
	for _, c := range m.Components {
		if c.Name == name {
			if c.Digest != "" {
				return c.Digest
			}
			return c.SHA256
		}
	}
	return ""
}

func mergeService(out *Merged, d Declared, warn warnFunc) {
	c := d.Change
	if !contains(serviceFileStates, c.GetState()) && !contains(serviceActiveStates, c.GetState()) {
		warn(d, "declares service %s %q, which expect cannot state; not merged", c.GetName(), c.GetState())
		return
	}
	want := ServiceExpectation{Name: c.GetName(), State: c.GetState(), DeclaredBy: d.Step}
	dim := serviceDimension(want.State)
	for i, s := range out.Expect.Services {
		if s.Name != want.Name || serviceDimension(s.State) != dim {
			continue
		}
		if s.DeclaredBy != "" {
			out.Expect.Services[i] = want
			return
		}
		if s.State != want.State {
			warn(d, "declares service %s %s, the manifest expects it %s; keeping the manifest's", want.Name, want.State, s.State)
		}
		return
	}
	out.Expect.Services = append(out.Expect.Services, want)
}
