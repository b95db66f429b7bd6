package archive

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

// FuzzCheckLinks builds a tree of directories, files and symlinks from
// its input, part of it on disk under the destination before the step
// and part of it in a tar archive, and extracts the archive. Whenever the
// check accepts the archive, the kernel must agree: after extraction no
// symlink anywhere under the root may resolve (or, dangling, let a write
// through it land) outside the root. A rollback must then restore the
// root as it was.
//
// The input is text, one entry a line: "<where><kind> <path> [<target>]"
// where <where> is d (on disk) or a (in the archive), <kind> is d
// (directory), f (file) or l (symlink to <target>). Paths are made of
// short lowercase names; targets may also hold "." and "..".
func FuzzCheckLinks(f *testing.F) {
	for _, seed := range []string{
		// The escape of two links that each pass on their own.
		"ad d/e\nal d/e/a p/../../etc/hostname\nal d/e/p ../..\n",
		// The same across two releases: the first on disk already.
		"dd d/e\ndl d/e/a p/../../etc/hostname\nal d/e/p ../..\n",
		"dl a q/../../../../../../../../etc\nad q\n",
		"dd x/y/z\ndl x/y/p z\ndl x/y/a p/../../../../etc/f\nal x/y/p .\n",
		"dd v/b\ndl c v\ndl b c/b\nad w/b\naf w/b/r\nal c w\n",
		"ad l\nad e\nal l/up ../e\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		disk, arch, ok := parseTree(spec)
		if !ok {
			return
		}
		base := t.TempDir()
		base, err := filepath.EvalSymlinks(base)
		if err != nil {
			t.Fatal(err)
		}
		root := filepath.Join(base, "root")
		dest := filepath.Join(root, "d")
		for _, d := range []string{dest, filepath.Join(root, "o"), filepath.Join(base, "etc")} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for _, m := range disk {
			p := filepath.Join(dest, m.name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			switch m.typ {
			case 'd':
				os.Mkdir(p, 0o755)
			case 'f':
				os.WriteFile(p, []byte("x"), 0o644)
			case 'l':
				os.Symlink(m.body, p)
			}
		}
		if where := escapes(t, root); where != "" {
			return // the disk was unsafe before the step: not the archive's doing
		}
		var ms []member
		for _, m := range arch {
			switch m.typ {
			case 'd':
				ms = append(ms, folder(m.name+"/"))
			case 'f':
				ms = append(ms, file(m.name, "y"))
			case 'l':
				ms = append(ms, link(m.name, m.body))
			}
		}
		params, err := sdk.ParamsOf(map[string]any{"artifact": "a", "dest": "/d"})
		if err != nil {
			t.Fatal(err)
		}
		sc := &sdk.StepContext{RootDir: root, Params: params, Artifacts: map[string]string{"a": writeArchive(t, "a.tar", tarOf(t, ms...))},
			IdempotencyKey: "k", StateDir: filepath.Join(base, "state"), Step: "s"}
		before := snapshot(t, root)
		res, err := New().Apply(t.Context(), sc, nopReporter{})
		if err != nil {
			if os.Getenv("FUZZ_DEBUG") != "" {
				t.Logf("refused: %v", err)
			}
			return // refused (or failed and undone)
		}
		if where := escapes(t, root); where != "" {
			t.Fatalf("the check accepted an archive after which %s\ndisk: %q\narchive: %q", where, disk, arch)
		}
		if _, err := New().Rollback(t.Context(), sc, res.GetRollbackRecord()); err != nil {
			t.Fatalf("Rollback: %v", err)
		}
		if diff := diffTrees(before, snapshot(t, root)); diff != "" {
			t.Fatalf("Rollback did not restore the root (-before +after):\n%s", diff)
		}
	})
}

var (
	fuzzPath   = regexp.MustCompile(`^[a-z]{1,2}(/[a-z]{1,2}){0,3}$`)
	fuzzTarget = regexp.MustCompile(`^[a-z./]{1,64}$`)
)

// fuzzEntry is one line of FuzzCheckLinks's input.
type fuzzEntry struct {
	typ        byte
	name, body string
}

func parseTree(spec string) (disk, arch []fuzzEntry, ok bool) {
	lines := strings.Split(spec, "\n")
	if len(lines) > 16 {
		return nil, nil, false
	}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) < 2 || len(f[0]) != 2 || !fuzzPath.MatchString(f[1]) {
			continue
		}
		e := fuzzEntry{typ: f[0][1], name: f[1]}
		switch e.typ {
		case 'd', 'f':
		case 'l':
			if len(f) < 3 || !fuzzTarget.MatchString(f[2]) {
				continue
			}
			e.body = f[2]
		default:
			continue
		}
		switch f[0][0] {
		case 'd':
			disk = append(disk, e)
		case 'a':
			arch = append(arch, e)
		}
	}
	return disk, arch, len(arch) > 0
}

// escapes asks the kernel where every symlink under root leads, and
// describes the first that leads outside root ("" when none does).
func escapes(t *testing.T, root string) string {
	t.Helper()
	var found string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || found != "" || d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		if where, ok := kernelWhere(p, 0); ok && where != root && !strings.HasPrefix(where, root+"/") {
			target, _ := os.Readlink(p)
			found = fmt.Sprintf("the symlink %s (to %q) leads to %s", strings.TrimPrefix(p, root), target, where)
		}
		return nil
	})
	return found
}

// kernelWhere returns the path the kernel reaches through p: the file it
// names, or, for a dangling symlink, where creating a file through it
// would land. It reports false when the kernel resolves it nowhere
// (ENOENT on the way, ENOTDIR, ELOOP).
func kernelWhere(p string, depth int) (string, bool) {
	if depth > 40 {
		return "", false
	}
	if real, err := procPath(p, 0); err == nil {
		return real, true
	}
	i := strings.LastIndex(p, "/")
	dir, name := p[:i+1], p[i+1:]
	if name == "" || name == "." || name == ".." {
		return "", false
	}
	real, err := procPath(dir, unix.O_DIRECTORY)
	if err != nil {
		return "", false
	}
	next := real + "/" + name
	fi, err := os.Lstat(next)
	if err != nil {
		return next, true // missing: O_CREAT would make it here
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		return next, true
	}
	target, err := os.Readlink(next)
	if err != nil {
		return "", false
	}
	if strings.HasPrefix(target, "/") {
		return kernelWhere(target, depth+1)
	}
	return kernelWhere(real+"/"+target, depth+1)
}

// procPath opens p with O_PATH (following symlinks) and returns the path
// the kernel resolved it to.
func procPath(p string, flags int) (string, error) {
	fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC|flags, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	return os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
}
