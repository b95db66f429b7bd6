package compare

import (
	"path"
	"strings"

	"github.com/cairn-ops/cairn/internal/audit"
	"github.com/cairn-ops/cairn/internal/diff"
	"github.com/cairn-ops/cairn/internal/manifest"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// Sections the expectations are about.
const (
	sectionPackages = "packages"
	sectionFiles    = "files"
	sectionServices = "services"
)

// checker checks expectations against the after audit.
type checker struct {
	before, after *inventoryv1.Audit
	components    map[string]string
}

// unavailable says why section of the after audit cannot be read, ""
// when it can.
func (c checker) unavailable(section string) string {
	if audit.Comparable(c.after, section) {
		return ""
	}
	st := audit.Status(c.after, section)
	switch {
	case st == nil:
		return section + " not collected in the after audit"
	case st.GetMessage() != "":
		return section + " collector " + audit.StateName(st.GetState()) + " in the after audit: " + st.GetMessage()
	}
	return section + " collector " + audit.StateName(st.GetState()) + " in the after audit"
}

// unchanged says an expectation held without a change: "already" when
// the before audit shows the section and the diff nothing, else only
// that it holds (the before audit could not say).
func (c checker) unchanged(section string) string {
	if audit.Comparable(c.before, section) {
		return "already "
	}
	return ""
}

func newItem(section, key, expectation, declaredBy string) Item {
	return Item{Section: section, Key: key, Expectation: expectation, DeclaredBy: declaredBy}
}

func (it Item) with(class, what string) Item {
	it.Class, it.What = class, what
	return it
}

// packageName is the name of a package change: the item's name, else the
// middle of its "manager/name/arch" key.
func packageName(ch diff.Change) string {
	if n := ch.Item.Get("name"); n != "" {
		return n
	}
	parts := strings.Split(ch.Key, "/")
	if len(parts) == 3 {
		return parts[1]
	}
	return ch.Key
}

func (c checker) pkg(p manifest.PackageExpectation) expectation {
	words := "package " + p.Name + " " + p.State
	if p.Version != "" {
		words += " " + p.Version
	}
	it := newItem(sectionPackages, p.Name, words, p.DeclaredBy)
	e := expectation{describe: true, concerns: func(section string, ch diff.Change) bool {
		return section == sectionPackages && ch.Kind == "package" && packageName(ch) == p.Name
	}}
	if why := c.unavailable(sectionPackages); why != "" {
		e.item = it.with(Missing, "cannot check package "+p.Name+": "+why)
		return e
	}
	var found []*inventoryv1.Package
	for _, q := range c.after.GetPackages().GetPackages() {
		if q.GetName() == p.Name {
			found = append(found, q)
		}
	}
	versions := make([]string, len(found))
	for i, q := range found {
		versions[i] = q.GetVersion()
	}
	installed := "package " + p.Name + " " + strings.Join(versions, ", ") + " installed"

	if p.State == manifest.StateAbsent {
		if len(found) == 0 {
			e.item = it.with(Expected, "package "+p.Name+" "+c.unchanged(sectionPackages)+"absent")
			e.held = "package " + p.Name + " absent"
		} else {
			e.item = it.with(Missing, installed+", expected absent")
		}
		return e
	}
	if len(found) == 0 {
		want := "present"
		if p.Version != "" {
			want = p.Version
		}
		e.item = it.with(Missing, "package "+p.Name+" not installed, expected "+want)
		return e
	}
	if p.Version != "" {
		vc, err := manifest.ParseVersionConstraint(p.Version)
		if err != nil {
			e.item = it.with(Missing, "cannot check package "+p.Name+": "+err.Error())
			return e
		}
		for _, q := range found {
			if !vc.Matches(q.GetVersion()) {
				e.item = it.with(Missing, installed+", expected "+vc.String())
				return e
			}
		}
	}
	e.item = it.with(Expected, "package "+p.Name+" "+strings.Join(versions, ", ")+" "+c.unchanged(sectionPackages)+"present")
	e.held = installed
	return e
}

func (c checker) file(f manifest.FileExpectation) expectation {
	words := "file " + f.Path + " present"
	want := ""
	switch {
	case f.SHA256 != "":
		want = f.SHA256
		words += " sha256 " + short(f.SHA256)
	case f.Artifact != "":
		want = c.components[f.Artifact]
		words += " with the content of " + f.Artifact
	}
	it := newItem(sectionFiles, f.Path, words, f.DeclaredBy)
	e := expectation{describe: true, concerns: func(section string, ch diff.Change) bool {
		return section == sectionFiles && (ch.Key == f.Path || holdsPath(ch, f.Path))
	}}
	if why := c.unavailable(sectionFiles); why != "" {
		e.item = it.with(Missing, "cannot check file "+f.Path+": "+why)
		return e
	}
	files := c.after.GetFiles()
	var got *inventoryv1.File
	for _, x := range files.GetFiles() {
		if x.GetKey() == f.Path || x.GetPath() == f.Path {
			got = x
			break
		}
	}
	switch {
	case got == nil && !tracked(f.Path, files.GetPatterns()):
		e.item = it.with(Missing, "file "+f.Path+" not in the after audit: no tracked path covers it")
	case got == nil:
		e.item = it.with(Missing, "file "+f.Path+" absent")
	case got.GetType() != "" && got.GetType() != "file":
		e.item = it.with(Missing, "file "+f.Path+" is a "+got.GetType()+", expected a regular file")
	case f.Artifact != "" && want == "":
		e.item = it.with(Missing, "cannot check file "+f.Path+": the release has no component "+f.Artifact)
	case want != "" && got.GetSha256() == "":
		e.item = it.with(Missing, "file "+f.Path+" present but not hashed (the audit's hash budget ran out)")
	case want != "" && got.GetSha256() != want:
		e.item = it.with(Missing, "file "+f.Path+" has sha256 "+short(got.GetSha256())+", expected "+short(want))
	default:
		var with string
		if want != "" {
			with = " with sha256 " + short(want)
		}
		e.item = it.with(Expected, "file "+f.Path+" "+c.unchanged(sectionFiles)+"present"+with)
		e.held = "file " + f.Path + " present" + with
	}
	return e
}

// holdsPath reports whether ch is a directory above p that changed only
// because p was placed in it: the directory was added, or only its size
// changed. Anything else about the directory (its mode, its owner) is a
// change in its own right.
func holdsPath(ch diff.Change, p string) bool {
	if ch.Key == "" || !strings.HasPrefix(p, strings.TrimSuffix(ch.Key, "/")+"/") {
		return false
	}
	switch ch.Op {
	case diff.OpAdded:
		return ch.Item.Get("type") == "dir"
	case diff.OpChanged:
		for _, f := range ch.Fields {
			if f.Field != "size" {
				return false
			}
		}
		return len(ch.Fields) > 0
	}
	return false
}

// tracked reports whether the files collector, given patterns, records
// p: a pattern matches p or a directory above it.
func tracked(p string, patterns []string) bool {
	for q := p; ; q = path.Dir(q) {
		for _, pat := range patterns {
			if ok, _ := path.Match(pat, q); ok {
				return true
			}
		}
		if q == "/" || q == "." {
			return false
		}
	}
}

// short is a digest's first 12 hex digits, for words.
func short(digest string) string {
	if len(digest) > 12 {
		return digest[:12]
	}
	return digest
}

// isRunState reports whether a service state is a run state (active,
// inactive) rather than a unit-file state.
func isRunState(state string) bool {
	return state == "active" || state == "inactive"
}

func (c checker) service(s manifest.ServiceExpectation) expectation {
	it := newItem(sectionServices, s.Name, "service "+s.Name+" "+s.State, s.DeclaredBy)
	e := expectation{describe: true, concerns: func(section string, ch diff.Change) bool {
		return section == sectionServices && ch.Key == s.Name
	}}
	if why := c.unavailable(sectionServices); why != "" {
		e.item = it.with(Missing, "cannot check service "+s.Name+": "+why)
		return e
	}
	svcs := c.after.GetServices()
	var got *inventoryv1.Service
	for _, u := range svcs.GetUnits() {
		if u.GetKey() == s.Name || u.GetName() == s.Name {
			got = u
			break
		}
	}
	if got == nil {
		e.item = it.with(Missing, "service "+s.Name+" not installed, expected "+s.State)
		return e
	}
	state := got.GetUnitFileState()
	if isRunState(s.State) {
		if !svcs.GetActiveStateKnown() || got.GetActiveState() == "" {
			e.item = it.with(Missing, "service "+s.Name+" run state unknown (no running systemd was asked), expected "+s.State)
			return e
		}
		state = got.GetActiveState()
	}
	if state != s.State {
		if state == "" {
			state = "in an unknown state"
		}
		e.item = it.with(Missing, "service "+s.Name+" "+state+", expected "+s.State)
		return e
	}
	e.item = it.with(Expected, "service "+s.Name+" "+c.unchanged(sectionServices)+s.State)
	e.held = "service " + s.Name + " " + s.State
	return e
}
