package dpkg

import (
	"bytes"
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

// stderrTail is how many of a command's last stderr lines go into its
// error.
const stderrTail = 5

// systemPath holds the directories dpkg needs on PATH: it refuses to run
// without ldconfig and start-stop-daemon (in /sbin, /usr/sbin), which a
// service manager's minimal environment may lack.
var systemPath = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// tool runs dpkg, dpkg-deb and dpkg-query for one root directory.
type tool struct {
	// root is the absolute root directory; "/" for the running host.
	root string
}

func newTool(root string) (tool, error) {
	if root == "" {
		root = "/"
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return tool{}, fmt.Errorf("root %s: %w", root, err)
	}
	return tool{root: abs}, nil
}

// sandbox reports whether the root is not the running host's own.
func (t tool) sandbox() bool { return t.root != "/" }

// adminDir is dpkg's database directory under the root.
func (t tool) adminDir() string { return filepath.Join(t.root, "var/lib/dpkg") }

// lockPath is the per-host lock file serializing Cairn's package
// operations.
func (t tool) lockPath() string { return filepath.Join(t.adminDir(), "cairn.lock") }

// hasDatabase reports whether the root has a dpkg status database.
func (t tool) hasDatabase() bool {
	_, err := os.Stat(filepath.Join(t.adminDir(), "status"))
	return err == nil
}

// initDatabase creates an empty dpkg database under a sandbox root
// (status, available, info/, updates/), as a fresh root needs before its
// first install. An existing database is left alone.
func (t tool) initDatabase() (bool, error) {
	if !t.sandbox() || t.hasDatabase() {
		return false, nil
	}
	admin := t.adminDir()
	for _, d := range []string{"info", "updates"} {
		if err := os.MkdirAll(filepath.Join(admin, d), 0o755); err != nil {
			return false, fmt.Errorf("create dpkg database: %w", err)
		}
	}
	for _, f := range []string{"available", "status"} { // status last: it marks the database as present
		p := filepath.Join(admin, f)
		fh, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return false, fmt.Errorf("create dpkg database: %w", err)
		}
		if err := fh.Close(); err != nil {
			return false, fmt.Errorf("create dpkg database: %w", err)
		}
	}
	return true, nil
}

// dpkgArgs prefixes args with the options that point dpkg at the root.
// --root=DIR sets both the installation directory (DIR) and the admin
// directory (DIR/var/lib/dpkg). Under a sandbox root, maintainer scripts
// run without chroot(2) (--force-script-chrootless, with DPKG_ROOT set by
// dpkg), because a sandbox is not a system a script can chroot into; and
// --force-not-root lets an unprivileged agent manage its own sandbox.
func (t tool) dpkgArgs(args ...string) []string {
	if !t.sandbox() {
		return args
	}
	return append([]string{"--root=" + t.root, "--force-script-chrootless", "--force-not-root"}, args...)
}

// dpkg runs dpkg with args against the root, relaying its output to r.
func (t tool) dpkg(ctx context.Context, r sdk.Reporter, args ...string) (string, error) {
	return run(ctx, r, "dpkg", t.dpkgArgs(args...)...)
}

// debInfo is a .deb's identity from its control data.
type debInfo struct {
	Package, Version, Arch string
}

// readDeb reads the Package, Version and Architecture fields of a .deb.
func readDeb(ctx context.Context, path string) (debInfo, error) {
	out, err := run(ctx, nil, "dpkg-deb", "--field", path, "Package", "Version", "Architecture")
	if err != nil {
		return debInfo{}, fmt.Errorf("%w: %w", ErrBadDeb, err)
	}
	var info debInfo
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Package":
			info.Package = v
		case "Version":
			info.Version = v
		case "Architecture":
			info.Arch = v
		}
	}
	if info.Package == "" || info.Version == "" || info.Arch == "" {
		return debInfo{}, fmt.Errorf("%s: %w: control data lacks Package, Version or Architecture", path, ErrBadDeb)
	}
	if !validName(info.Package) {
		return debInfo{}, fmt.Errorf("%s: %w: bad package name %q", path, ErrBadDeb, info.Package)
	}
	return info, nil
}

// checkDeb reads the whole .deb (its file listing needs the data member
// decompressed), so a truncated or corrupt package fails before dpkg
// touches the database.
func checkDeb(ctx context.Context, path string) error {
	if _, err := run(ctx, nil, "dpkg-deb", "--contents", path); err != nil {
		return fmt.Errorf("%w: %w", ErrBadDeb, err)
	}
	return nil
}

// pkgState is one package's entry in the dpkg database.
type pkgState struct {
	Want    string // install, hold, deinstall, purge, unknown
	Flag    string // ok, reinstreq
	Status  string // not-installed, config-files, half-installed, unpacked, half-configured, triggers-*, installed
	Version string
	Arch    string
}

// installed reports whether the package is fully installed.
func (s pkgState) installed() bool { return s.Status == "installed" }

// known reports whether dpkg knows anything of the package beyond
// "not installed".
func (s pkgState) known() bool { return s.Status != "" && s.Status != "not-installed" }

// unpacked reports whether any of the package's files are on disk
// (anything beyond not-installed and config-files), so remove has work.
func (s pkgState) unpacked() bool { return s.known() && s.Status != "config-files" }

// String describes the state for plans and messages.
func (s pkgState) String() string {
	switch {
	case s.installed():
		return s.Version
	case !s.known():
		return "not installed"
	default:
		return s.Version + ", " + s.Status
	}
}

// describe is the state as dpkg-query's ${Status} ${Version} shows it,
// for evidence.
func (s pkgState) describe() string {
	if !s.known() {
		return "not installed"
	}
	return strings.Join([]string{s.Want, s.Flag, s.Status, s.Version}, " ")
}

// query returns the state of package name (arch "" or "all" for any).
// A package dpkg does not know, or a root without a dpkg database, is
// not installed.
func (t tool) query(ctx context.Context, name, arch string) (pkgState, error) {
	if !t.hasDatabase() {
		return pkgState{Status: "not-installed"}, nil
	}
	out, err := run(ctx, nil, "dpkg-query", "--admindir="+t.adminDir(), "-W",
		"-f=${Status}\t${Version}\t${Architecture}\n", name)
	if err != nil {
		if strings.Contains(err.Error(), "no packages found matching") {
			return pkgState{Status: "not-installed"}, nil
		}
		return pkgState{}, err
	}
	var states []pkgState
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			continue
		}
		st := strings.Fields(f[0])
		if len(st) != 3 {
			continue
		}
		states = append(states, pkgState{Want: st[0], Flag: st[1], Status: st[2], Version: f[1], Arch: f[2]})
	}
	best := pkgState{Status: "not-installed"}
	for _, s := range states {
		if arch != "" && arch != "all" && s.Arch != arch && s.Arch != "all" {
			continue
		}
		if s.installed() {
			return s, nil
		}
		if !best.known() {
			best = s
		}
	}
	return best, nil
}

// recoverInterrupted runs `dpkg --configure -a` when `dpkg --audit`
// reports an interrupted state (half-configured, unpacked, half-installed
// or trigger-pending packages), logging it to r. It reports whether
// recovery ran.
func (t tool) recoverInterrupted(ctx context.Context, r sdk.Reporter) (bool, error) {
	if !t.hasDatabase() {
		return false, nil
	}
	out, err := run(ctx, nil, "dpkg", t.dpkgArgs("--audit")...)
	if err != nil {
		return false, err
	}
	if strings.TrimSpace(out) == "" {
		return false, nil
	}
	r.Log(sdk.LevelWarn, "dpkg reports an interrupted state; running dpkg --configure -a: "+oneLine(out))
	if _, err := t.dpkg(ctx, r, "--configure", "-a"); err != nil {
		return true, fmt.Errorf("recover interrupted dpkg state: %w", err)
	}
	if out, err := run(ctx, nil, "dpkg", t.dpkgArgs("--audit")...); err == nil && strings.TrimSpace(out) != "" {
		r.Log(sdk.LevelWarn, "dpkg still reports problems after recovery: "+oneLine(out))
	}
	return true, nil
}

// run runs name with args (no shell) and returns its stdout. Each output
// line goes to r when r is not nil: stdout as info, stderr as warn. A
// failure names the command and carries its last stderr lines.
func run(ctx context.Context, r sdk.Reporter, name string, args ...string) (string, error) {
	var (
		out  strings.Builder
		tail []string
		mu   sync.Mutex // the two writers run in exec's copying goroutines
	)
	report := func(level, line string) {
		if r != nil {
			r.Log(level, line)
		}
	}
	stdout := &lineWriter{fn: func(line string) {
		mu.Lock()
		defer mu.Unlock()
		out.WriteString(line)
		out.WriteByte('\n')
		report(sdk.LineLevel(line), line)
	}}
	stderr := &lineWriter{fn: func(line string) {
		if strings.TrimSpace(line) == "" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		tail = append(tail, line)
		if len(tail) > stderrTail {
			tail = tail[1:]
		}
		report(sdk.LineLevel(line), line)
	}}
	cmd := osexec.CommandContext(ctx, name, args...)
	cmd.Env = toolEnv()
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	// A daemon a maintainer script starts may keep dpkg's output open;
	// stop waiting for it shortly after dpkg itself has exited.
	cmd.WaitDelay = waitDelay
	err := cmd.Run()
	stdout.flush()
	stderr.flush()
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
		msg := fmt.Sprintf("%s: %v", commandLine(name, args), err)
		if len(tail) > 0 {
			msg += ": " + strings.Join(tail, "; ")
		}
		return out.String(), &commandError{msg: msg, err: err}
	}
	return out.String(), nil
}

// waitDelay bounds how long run waits for a command's output after the
// command exited.
const waitDelay = 5 * time.Second

// lineWriter calls fn for every complete line written to it; flush
// passes on a last line without a newline.
type lineWriter struct {
	buf []byte
	fn  func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.fn(strings.TrimRight(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.fn(strings.TrimRight(string(w.buf), "\r"))
		w.buf = nil
	}
}

// commandError is a failed command: its message names the command and
// its last stderr lines, and it unwraps to the exec error (or the
// context's error when the deadline killed the command).
type commandError struct {
	msg string
	err error
}

func (e *commandError) Error() string { return e.msg }
func (e *commandError) Unwrap() error { return e.err }

// toolEnv is the plugin's environment with the system directories on
// PATH, the C locale (dpkg's messages are matched) and no prompts.
func toolEnv() []string {
	var env []string
	path := ""
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "PATH":
			path = v
		case "LC_ALL", "LANGUAGE", "DEBIAN_FRONTEND":
		default:
			env = append(env, kv)
		}
	}
	dirs := filepath.SplitList(path)
	for _, d := range systemPath {
		if !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return append(env, "PATH="+strings.Join(dirs, string(os.PathListSeparator)), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
}

// commandLine renders argv for messages.
func commandLine(name string, args []string) string {
	return strings.Join(append([]string{name}, args...), " ")
}

// oneLine joins the non-blank lines of s with "; ".
func oneLine(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}
