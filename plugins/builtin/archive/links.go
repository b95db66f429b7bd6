package archive

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"syscall"
)

// Where symlinks lead is judged on the tree as it will be after the
// extraction: the archive's members over what is on disk under the
// destination. A symlink is resolved the way the kernel resolves it:
// element by element, following every symlink on the way from the
// directory it reached, and applying ".." only to a directory the tree
// really has there. On paper "p/.." cancels; in the kernel it is the
// parent of wherever p leads, so two links that each stay inside can
// together lead out (one pointing through p, the other making p a link).
//
// Two checks use it. Every symlink of the archive must lead inside the
// destination, and must not go up ("..") from a path that is missing or
// not a directory (the kernel fails there today, but would follow
// whatever a later release puts there). And every symlink already on
// disk under the destination whose way goes through a path the archive
// makes or changes must still lead inside: links made by a step must not
// turn the links already there into ways out (an older release's, or
// another tool's).
//
// Resolutions are cached by symlink path, so each symlink is resolved
// once however many others lead through it: the checks are linear in
// the archive's symlinks plus those on disk.

// maxDiskScan bounds the entries under the destination read to find its
// symlinks.
const maxDiskScan = 2_000_000

// nodeKind is what a path is in the tree after extraction.
type nodeKind int

const (
	nodeMissing nodeKind = iota
	nodeDir
	nodeFile // anything that is neither a directory nor a symlink
	nodeLink
)

// resolved is where a symlink leads in the tree after extraction.
type resolved struct {
	path  string   // relative to the destination, "" for itself
	state nodeKind // what is there: a directory, or missing or a file where the way ends
	// touched is the first path the extraction changes that the way went
	// through, "" for none, "?" when it is not known (too many links).
	touched string
	err     error // the way leads out, loops, or goes up from a non-directory
}

var (
	errLoop    = fmt.Errorf("more than %d levels of symlinks, or a loop", maxLinks)
	inProgress = &resolved{}
)

// node returns what p is after extraction, and its target for a symlink.
func (l *layout) node(p string) (nodeKind, string) {
	if e, ok := l.byPath[p]; ok {
		switch e.kind {
		case kindDir:
			return nodeDir, ""
		case kindSymlink:
			return nodeLink, e.link
		}
		return nodeFile, ""
	}
	fi := l.lstat(p)
	switch {
	case fi == nil:
		return nodeMissing, ""
	case fi.IsDir():
		return nodeDir, ""
	case fi.Mode()&fs.ModeSymlink != 0:
		return nodeLink, l.readlink(p)
	}
	return nodeFile, ""
}

// readlink returns the target of the symlink at p on disk; "/" (leading
// out) when it cannot be read.
func (l *layout) readlink(p string) string {
	if t, ok := l.links[p]; ok {
		return t
	}
	t, err := l.dest.Readlink(p)
	if err != nil {
		t = "/"
	}
	l.links[p] = t
	return t
}

// resolveLink returns where the symlink at p, in the directory dir (a
// real directory after extraction), with the given target, leads.
func (l *layout) resolveLink(p, dir, target string, depth int) resolved {
	if l.memo == nil {
		l.memo = map[string]*resolved{}
	}
	if r, ok := l.memo[p]; ok {
		if r == inProgress {
			return resolved{err: errLoop}
		}
		return *r
	}
	if depth > maxLinks {
		return resolved{err: errLoop, touched: "?"}
	}
	var r resolved
	if strings.HasPrefix(target, "/") {
		r = resolved{err: fmt.Errorf("leaves the destination through the symlink %q to the absolute path %q", p, shorten(target))}
	} else {
		l.memo[p] = inProgress
		r = l.walkTarget(dir, target, depth)
	}
	l.memo[p] = &r
	return r
}

// walkTarget follows target from the directory dir.
func (l *layout) walkTarget(dir, target string, depth int) resolved {
	cur, state, touched := dir, nodeDir, ""
	fail := func(err error) resolved { return resolved{touched: touched, err: err} }
	for _, el := range strings.Split(target, "/") {
		switch el {
		case "", ".":
			continue
		case "..":
			switch {
			case state != nodeDir:
				return fail(fmt.Errorf("goes up from %q, which is not a directory after extraction", cur))
			case cur == "":
				return fail(errors.New("leaves the destination"))
			}
			cur = parent(cur)
			continue
		}
		next := join(cur, el)
		if state != nodeDir {
			cur = next // under something missing: missing too
			continue
		}
		if touched == "" && l.changed[next] {
			touched = next
		}
		kind, t := l.node(next)
		if kind != nodeLink {
			cur, state = next, kind
			continue
		}
		r := l.resolveLink(next, cur, t, depth+1)
		if touched == "" {
			touched = r.touched
		}
		if r.err != nil {
			return fail(r.err)
		}
		cur, state = r.path, r.state
	}
	return resolved{path: cur, state: state, touched: touched}
}

func parent(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// checkArchiveLinks refuses, in archive order, the first symlink of the
// archive that does not lead inside the destination after extraction.
func (l *layout) checkArchiveLinks() error {
	for _, e := range l.entries {
		if e.kind != kindSymlink {
			continue
		}
		if r := l.resolveLink(e.path, parent(e.path), e.link, 0); r.err != nil {
			return unsafe(e.name, "symlink to %q: %v", shorten(e.link), r.err)
		}
	}
	return nil
}

// markChanged records the paths whose kind or link target the extraction
// changes: members it creates (and their missing parents) and members
// that replace a symlink or are replaced by one. A file replaced by a
// file changes no way through it.
func (l *layout) markChanged(acts []action) {
	l.changed = map[string]bool{}
	for i, e := range l.entries {
		switch acts[i] {
		case create:
			l.changed[e.path] = true
		case replace:
			if fi := l.lstat(e.path); e.kind == kindSymlink || fi == nil || fi.Mode()&fs.ModeSymlink != 0 {
				l.changed[e.path] = true
			}
		default:
			continue
		}
		for p := parent(e.path); p != ""; p = parent(p) {
			if l.lstat(p) != nil || l.changed[p] {
				break
			}
			l.changed[p] = true
		}
	}
	l.memo = nil // resolutions made before knew nothing of changes
}

// checkDiskLinks refuses the archive when a symlink already on disk
// under the destination, whose way goes through a path the extraction
// changes, would lead outside the destination afterwards. It reads every
// directory under the destination (not those of other filesystems
// mounted below it).
func (l *layout) checkDiskLinks() error {
	if len(l.changed) == 0 || l.dest == nil {
		return nil
	}
	top, err := l.dest.Lstat(".")
	if err != nil {
		return fmt.Errorf("stat destination: %w", err)
	}
	dev := deviceOf(top)
	seen := 0
	dirs := []string{""}
	for len(dirs) > 0 {
		dir := dirs[len(dirs)-1]
		dirs = dirs[:len(dirs)-1]
		name := dir
		if name == "" {
			name = "."
		}
		f, err := l.dest.Open(name)
		if err != nil {
			return fmt.Errorf("read directory %q under the destination: %w", name, err)
		}
		for {
			ents, err := f.ReadDir(1024)
			for _, d := range ents {
				if seen++; seen > maxDiskScan {
					f.Close()
					return fmt.Errorf("the destination holds more than %d entries: too many to check that the archive's changes leave its symlinks inside", maxDiskScan)
				}
				p := join(dir, d.Name())
				switch {
				case d.IsDir():
					if fi, err := d.Info(); err == nil && deviceOf(fi) == dev {
						dirs = append(dirs, p)
					}
				case d.Type()&fs.ModeSymlink != 0:
					if _, replaced := l.byPath[p]; replaced {
						continue
					}
					t := l.readlink(p)
					r := l.resolveLink(p, dir, t, 0)
					if r.err == nil || r.touched == "" {
						continue // inside, or not through anything the archive changes
					}
					f.Close()
					if r.touched == "?" {
						return fmt.Errorf("%w: the symlink %q on disk (to %q) would nest more than %d symlinks deep", ErrUnsafeEntry, p, shorten(t), maxLinks)
					}
					by := l.byPath[r.touched]
					return unsafe(by.name, "would make the symlink %q already on disk (to %q) lead outside the destination: it goes through %q, then %v", p, shorten(t), r.touched, r.err)
				}
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				f.Close()
				return fmt.Errorf("read directory %q under the destination: %w", name, err)
			}
		}
		f.Close()
	}
	return nil
}

func deviceOf(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev)
	}
	return 0
}
