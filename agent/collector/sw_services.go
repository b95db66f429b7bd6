package collector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/cairn-ops/cairn/internal/readlimit"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// Services lists systemd unit files under the root with their unit-file
// state, computed from the files and symlinks alone the way systemd 252's
// `systemctl --root=ROOT list-unit-files` does (src/shared/install.c):
//
//   - Unit files are searched in systemd's system search path, first match
//     wins: /etc/systemd/system.control, /run/systemd/system.control,
//     /run/systemd/transient, /run/systemd/generator.early,
//     /etc/systemd/system, /etc/systemd/system.attached,
//     /run/systemd/system, /run/systemd/system.attached,
//     /run/systemd/generator, /usr/local/lib/systemd/system,
//     /lib/systemd/system, /usr/lib/systemd/system,
//     /run/systemd/generator.late.
//   - masked: the unit file is a symlink to /dev/null or empty
//     (masked-runtime under /run).
//   - alias: the name is a symlink to a unit file of another name.
//   - generated / transient: the file is in a generator / transient dir.
//   - enabled: a symlink named after the unit, one of its Alias= names or
//     its DefaultInstance, or pointing at it, lies in a .wants/ or
//     .requires/ directory of /etc/systemd/system, or an Alias= symlink
//     lies in /etc/systemd/system itself (enabled-runtime for /run).
//   - linked: /etc/systemd/system holds a same-name symlink to a file
//     elsewhere (linked-runtime for /run).
//   - indirect: symlinks point at the unit under names that are not its
//     own (a template enabled only as a non-default instance), or its
//     [Install] section has Also= and nothing else.
//   - disabled: [Install] has WantedBy=, RequiredBy= or Alias= and nothing
//     links to the unit.
//   - static: no such [Install] rules (instances linked only from vendor
//     directories are static too).
//   - bad: the file cannot be loaded (dangling symlink, templated slice).
//
// Templates (foo@.service) are listed as themselves. [Install] settings in
// drop-ins (foo.service.d/*.conf) count, as in systemd.
//
// When none of /etc/systemd/system, /run/systemd/system,
// /lib/systemd/system and /usr/lib/systemd/system exists under the root,
// Collect fails with an error wrapping ErrNoSource: the root is no
// systemd host, or not a root file system at all.
//
// The active state is filled only for the running host with systemd as
// init (/run/systemd/system exists), from `systemctl list-units --all`;
// otherwise it stays empty and active_state_known is false.
type Services struct{}

var _ Collector = Services{}

// Section implements Collector.
func (Services) Section() string { return "services" }

// unitSearchPaths is systemd's system unit search path, highest
// precedence first.
var unitSearchPaths = []string{
	"/etc/systemd/system.control",
	"/run/systemd/system.control",
	"/run/systemd/transient",
	"/run/systemd/generator.early",
	"/etc/systemd/system",
	"/etc/systemd/system.attached",
	"/run/systemd/system",
	"/run/systemd/system.attached",
	"/run/systemd/generator",
	"/usr/local/lib/systemd/system",
	"/lib/systemd/system",
	"/usr/lib/systemd/system",
	"/run/systemd/generator.late",
}

const persistentConfig = "/etc/systemd/system"

// unitDirsRequired are the unit directories of which at least one exists
// on every systemd host.
var unitDirsRequired = []string{
	"/etc/systemd/system",
	"/run/systemd/system",
	"/lib/systemd/system",
	"/usr/lib/systemd/system",
}

var unitTypes = []string{"service", "mount", "swap", "socket", "target", "device",
	"automount", "timer", "path", "slice", "scope"}

// Collect implements Collector.
func (Services) Collect(ctx context.Context, env Env, out *inventoryv1.Audit) error {
	if err := swCheckRoot(env); err != nil {
		return err
	}
	if !slices.ContainsFunc(unitDirsRequired, func(d string) bool { return swExists(env.Path(d)) }) {
		return noSource("no systemd unit directories under %s", env.Path("/"))
	}
	s := &unitScanner{env: env, cache: make(map[string]*installInfo)}
	first := make(map[string]string) // unit name → search dir it was found in
	var names []string
	for _, dir := range unitSearchPaths {
		entries, err := os.ReadDir(env.Path(dir))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
				env.warnf("list unit directory: %v", err)
			}
			continue
		}
		for _, e := range entries {
			n := e.Name()
			if _, ok := first[n]; ok || !validUnitName(n) {
				continue
			}
			if t := e.Type(); !t.IsRegular() && t&fs.ModeSymlink == 0 {
				continue
			}
			first[n] = dir
			names = append(names, n)
		}
	}
	sort.Strings(names)

	sec := &inventoryv1.Services{}
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		sec.Units = append(sec.Units, &inventoryv1.Service{
			Key:           n,
			Name:          n,
			Type:          n[strings.LastIndexByte(n, '.')+1:],
			UnitFileState: s.state(n),
			Path:          path.Join(first[n], n),
		})
	}

	if env.IsHost() && swIsDir(env.Path("/run/systemd/system")) {
		active, err := activeStates(ctx)
		if err != nil {
			env.warn(err.Error())
		} else {
			sec.ActiveStateKnown = true
			for _, u := range sec.Units {
				if st, ok := active[u.Name]; ok {
					u.ActiveState = st
				} else if !unitIsTemplate(u.Name) {
					u.ActiveState = "inactive"
				}
			}
		}
	}
	out.Services = sec
	return nil
}

func swIsDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// activeStates asks the running systemd for the active state of every
// loaded unit.
func activeStates(ctx context.Context) (map[string]string, error) {
	cmd := exec.CommandContext(ctx, "systemctl", "list-units", "--all", "--no-legend", "--plain", "--full", "--no-pager")
	stdout := readlimit.NewOutput("output of systemctl list-units", maxToolOutputBytes)
	stderr := readlimit.NewOutput("errors of systemctl list-units", maxToolErrBytes)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		return nil, toolError("systemctl list-units", err, stdout, stderr)
	}
	return parseListUnits(stdout.Bytes()), nil
}

// parseListUnits parses `systemctl list-units --plain --no-legend`:
// UNIT LOAD ACTIVE SUB DESCRIPTION, with a leading status mark on some
// versions.
func parseListUnits(b []byte) map[string]string {
	states := make(map[string]string)
	sc := readlimit.NewLines(bytes.NewReader(b), "systemctl list-units", maxLineBytes)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 && (f[0] == "●" || f[0] == "*") {
			f = f[1:]
		}
		if len(f) >= 3 {
			states[f[0]] = f[2]
		}
	}
	return states
}

// installInfo is what systemd's install logic knows of a unit file.
type installInfo struct {
	name            string
	path            string // host path of the unit file, after following symlinks
	masked          bool
	aliases         []string
	wantedBy        []string
	requiredBy      []string
	also            []string
	defaultInstance string
}

func (i *installInfo) hasRules() bool {
	return len(i.aliases) > 0 || len(i.wantedBy) > 0 || len(i.requiredBy) > 0
}

type unitScanner struct {
	env   Env
	cache map[string]*installInfo
	dirs  map[string][]unitDirEntry      // host dir → its entries
	names map[string]map[string]struct{} // host dir → its entry names
}

// inDir reports whether the host directory dir has an entry called name.
func (s *unitScanner) inDir(dir, name string) bool {
	set, ok := s.names[dir]
	if !ok {
		entries := s.readDir(dir)
		set = make(map[string]struct{}, len(entries))
		for _, e := range entries {
			set[e.name] = struct{}{}
		}
		if s.names == nil {
			s.names = make(map[string]map[string]struct{})
		}
		s.names[dir] = set
	}
	_, ok = set[name]
	return ok
}

// unitDirEntry is a directory entry of a unit directory, with the
// symlink's raw target.
type unitDirEntry struct {
	name   string
	isDir  bool
	target string // "" unless a symlink
	isLink bool
}

// readDir lists the host directory dir under the root once per Collect:
// every unit's state looks at the same .wants/ and .requires/ links.
func (s *unitScanner) readDir(dir string) []unitDirEntry {
	if entries, ok := s.dirs[dir]; ok {
		return entries
	}
	des, _ := os.ReadDir(s.env.Path(dir))
	entries := make([]unitDirEntry, 0, len(des))
	for _, e := range des {
		u := unitDirEntry{name: e.Name(), isDir: e.IsDir(), isLink: e.Type()&fs.ModeSymlink != 0}
		if u.isLink {
			t, err := os.Readlink(s.env.Path(path.Join(dir, e.Name())))
			if err != nil {
				continue
			}
			u.target = t
		}
		entries = append(entries, u)
	}
	if s.dirs == nil {
		s.dirs = make(map[string][]unitDirEntry)
	}
	s.dirs[dir] = entries
	return entries
}

// errBadUnit marks a unit file systemd would fail to load.
var errBadUnit = errors.New("bad unit file")

// state returns the unit-file state of the unit called name.
func (s *unitScanner) state(name string) string {
	info, err := s.discover(name, 0)
	if err != nil {
		return "bad"
	}
	if info.masked {
		if isRuntimePath(info.path) {
			return "masked-runtime"
		}
		return "masked"
	}
	if name != path.Base(info.path) && !unitIsInstance(info.name) {
		return "alias"
	}
	if isGeneratorPath(info.path) {
		return "generated"
	}
	if strings.HasPrefix(info.path, "/run/systemd/transient/") {
		return "transient"
	}
	if st, ok := s.findSymlinksInScope(info, true); ok {
		return st
	}
	if _, ok := s.findSymlinksInScope(info, false); ok {
		return "indirect"
	}
	switch {
	case info.hasRules():
		return "disabled"
	case len(info.also) > 0:
		return "indirect"
	}
	return "static"
}

// discover finds the unit file for name in the search path and follows
// symlinks the way install_info_traverse does.
func (s *unitScanner) discover(name string, depth int) (*installInfo, error) {
	if depth > 8 {
		return nil, fmt.Errorf("%s: too many levels of symlinks: %w", name, errBadUnit)
	}
	if i, ok := s.cache[name]; ok && depth == 0 {
		return i, nil
	}
	if t := unitType(name); (t == "slice" || t == "scope") && strings.Contains(name, "@") {
		return nil, fmt.Errorf("%s: unit type %s cannot be templated: %w", name, t, errBadUnit)
	}
	p := ""
	for _, dir := range unitSearchPaths {
		if s.inDir(dir, name) {
			p = path.Join(dir, name)
			break
		}
	}
	if p == "" && unitIsInstance(name) {
		return s.discover(unitTemplateOf(name), depth+1)
	}
	if p == "" {
		return nil, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	info, err := s.load(name, p, depth)
	if err != nil {
		return nil, err
	}
	if !info.masked && info.name == name { // an alias brings its own drop-ins
		s.applyDropIns(info)
	}
	if depth == 0 {
		s.cache[name] = info
	}
	return info, nil
}

// load reads the unit file at host path p for the unit called name.
func (s *unitScanner) load(name, p string, depth int) (*installInfo, error) {
	if depth > 8 {
		return nil, fmt.Errorf("%s: too many levels of symlinks: %w", name, errBadUnit)
	}
	fi, err := os.Lstat(s.env.Path(p))
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%s: not a regular file: %w", p, errBadUnit)
		}
		info := &installInfo{name: name, path: p}
		if fi.Size() == 0 {
			info.masked = true
			return info, nil
		}
		b, err := readHostFile(s.env, p, maxConfigBytes)
		if err != nil {
			return nil, err
		}
		parseInstallSection(b, info)
		return info, nil
	}
	target, err := os.Readlink(s.env.Path(p))
	if err != nil {
		return nil, err
	}
	if !path.IsAbs(target) {
		target = path.Join(path.Dir(p), target)
	}
	target = path.Clean(target)
	if target == "/dev/null" {
		return &installInfo{name: name, path: p, masked: true}, nil
	}
	bn := path.Base(target)
	if !inSearchPath(path.Dir(target)) || bn == name || (unitIsInstance(name) && bn == unitTemplateOf(name)) {
		// A linked unit, a same-name link into another search directory,
		// or an instance linked to its template: follow it, keeping the name.
		return s.load(name, target, depth+1)
	}
	// An alias: the unit is whatever the target's name resolves to.
	if !validUnitName(bn) || unitType(bn) != unitType(name) {
		return nil, fmt.Errorf("%s: alias to %s: %w", p, bn, errBadUnit)
	}
	return s.discover(bn, depth+1)
}

// applyDropIns parses the [Install] settings of the unit's drop-ins:
// *.conf files in "<name>.d/" of every search directory, then in
// "<template>.d/" for an instance; a file name found in several
// directories is taken from the first, and files apply in name order.
func (s *unitScanner) applyDropIns(info *installInfo) {
	dirs := []string{info.name + ".d"}
	if unitIsInstance(info.name) {
		dirs = append(dirs, unitTemplateOf(info.name)+".d")
	}
	files := make(map[string]string) // base name → host path
	for _, d := range dirs {
		for _, sp := range unitSearchPaths {
			if !s.inDir(sp, d) {
				continue
			}
			for _, e := range s.readDir(path.Join(sp, d)) {
				if _, ok := files[e.name]; ok || !strings.HasSuffix(e.name, ".conf") || e.isDir {
					continue
				}
				files[e.name] = path.Join(sp, d, e.name)
			}
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if b, err := readHostFile(s.env, files[n], maxConfigBytes); err == nil {
			parseInstallSection(b, info)
		} else if unreadable(err) {
			s.env.warn(err.Error())
		}
	}
}

// findSymlinksInScope is install.c's find_symlinks_in_scope.
func (s *unitScanner) findSymlinksInScope(info *installInfo, matchName bool) (string, bool) {
	var sameNameConfig, sameNameRuntime, enabledRuntime, enabledAtAll, ignoreSameName bool
	for _, dir := range unitSearchPaths {
		found, sameName := s.findSymlinks(dir, info, matchName, ignoreSameName)
		switch {
		case found && dir == persistentConfig:
			return "enabled", true
		case found && isRuntimePath(dir):
			enabledRuntime = true
		case found:
			enabledAtAll = true
		case sameName && dir == persistentConfig:
			sameNameConfig = true
		case sameName && isRuntimePath(dir):
			sameNameRuntime = true
		}
		if !ignoreSameName && strings.HasPrefix(info.path, dir+"/") {
			ignoreSameName = true
		}
	}
	switch {
	case enabledRuntime:
		return "enabled-runtime", true
	case enabledAtAll && unitIsInstance(info.name):
		return "static", true
	case sameNameConfig:
		return "linked", true
	case sameNameRuntime:
		return "linked-runtime", true
	}
	return "", false
}

// findSymlinks looks in configDir's .wants/ and .requires/ directories,
// then in configDir itself, for symlinks naming or pointing at the unit.
func (s *unitScanner) findSymlinks(configDir string, info *installInfo, matchName, ignoreSameName bool) (found, sameName bool) {
	for _, e := range s.readDir(configDir) {
		n := e.name
		if !e.isDir || (!strings.HasSuffix(n, ".wants") && !strings.HasSuffix(n, ".requires")) {
			continue
		}
		f, sn := s.findSymlinksInDir(path.Join(configDir, n), configDir, info, matchName, ignoreSameName)
		sameName = sameName || sn
		if f {
			return true, sameName
		}
	}
	f, sn := s.findSymlinksInDir(configDir, configDir, info, matchName, ignoreSameName)
	return f, sameName || sn
}

func (s *unitScanner) findSymlinksInDir(dir, configDir string, info *installInfo, matchName, ignoreSameName bool) (found, sameName bool) {
	for _, e := range s.readDir(dir) {
		if !e.isLink {
			continue
		}
		foundPath := !ignoreSameName && e.name == info.name
		foundDest := path.Base(e.target) == info.name
		if foundPath && foundDest && dir == configDir {
			sameName = true
			continue
		}
		if !foundPath && !foundDest {
			continue
		}
		if !matchName || isSymlinkWithKnownName(info, e.name) {
			return true, sameName
		}
	}
	return false, sameName
}

func isSymlinkWithKnownName(info *installInfo, name string) bool {
	if name == info.name {
		return true
	}
	for _, a := range info.aliases {
		if a == name {
			return true
		}
	}
	if info.defaultInstance != "" && unitIsTemplate(info.name) {
		at := strings.IndexByte(info.name, '@')
		if info.name[:at+1]+info.defaultInstance+info.name[at+1:] == name {
			return true
		}
	}
	return false
}

func inSearchPath(dir string) bool {
	for _, d := range unitSearchPaths {
		if d == dir {
			return true
		}
	}
	return false
}

func isRuntimePath(p string) bool { return strings.HasPrefix(p, "/run/") }

func isGeneratorPath(p string) bool {
	for _, d := range []string{"/run/systemd/generator.early/", "/run/systemd/generator/", "/run/systemd/generator.late/"} {
		if strings.HasPrefix(p, d) {
			return true
		}
	}
	return false
}

// parseInstallSection fills info's [Install] settings from a unit file.
// Lines ending in a backslash continue; '#' and ';' start comments; an
// empty assignment resets a list, as in systemd.
func parseInstallSection(b []byte, info *installInfo) {
	inInstall := false
	var pending string
	for _, raw := range strings.Split(string(b), "\n") {
		line := strings.TrimSpace(raw)
		if pending != "" {
			line = pending + " " + line
			pending = ""
		}
		if strings.HasSuffix(line, `\`) {
			pending = strings.TrimSuffix(line, `\`)
			continue
		}
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			inInstall = line == "[Install]"
			continue
		}
		if !inInstall {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		var list *[]string
		switch key {
		case "Alias":
			if t := unitType(info.name); t == "device" || t == "mount" || t == "swap" || t == "automount" {
				continue // systemd ignores Alias= for these types
			}
			list = &info.aliases
		case "WantedBy":
			list = &info.wantedBy
		case "RequiredBy":
			list = &info.requiredBy
		case "Also":
			list = &info.also
		case "DefaultInstance":
			info.defaultInstance = value
			continue
		default:
			continue
		}
		words := unitWords(value)
		if len(words) == 0 {
			*list = nil
			continue
		}
		*list = append(*list, words...)
	}
}

// unitWords splits a unit file value into words, honouring quotes.
func unitWords(v string) []string {
	var words []string
	for _, w := range strings.Fields(v) {
		if w = strings.Trim(w, `"'`); w != "" {
			words = append(words, w)
		}
	}
	return words
}

// validUnitName reports whether n is a valid unit name (plain, template or
// instance) with a known type suffix.
func validUnitName(n string) bool {
	if len(n) == 0 || len(n) > 255 {
		return false
	}
	dot := strings.LastIndexByte(n, '.')
	if dot <= 0 || !swContains(unitTypes, n[dot+1:]) {
		return false
	}
	prefix := n[:dot]
	at := strings.IndexByte(prefix, '@')
	if at == 0 {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := prefix[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == ':' || c == '-' || c == '_' || c == '.' || c == '\\':
		case c == '@' && at >= 0 && i >= at:
		default:
			return false
		}
	}
	return true
}

func unitType(n string) string { return n[strings.LastIndexByte(n, '.')+1:] }

func unitIsTemplate(n string) bool { return strings.Contains(n, "@.") && !unitIsInstance(n) }

func unitIsInstance(n string) bool {
	at := strings.IndexByte(n, '@')
	dot := strings.LastIndexByte(n, '.')
	return at > 0 && dot > at+1
}

// unitTemplateOf returns "foo@.service" for "foo@bar.service".
func unitTemplateOf(n string) string {
	at := strings.IndexByte(n, '@')
	dot := strings.LastIndexByte(n, '.')
	return n[:at+1] + n[dot:]
}
