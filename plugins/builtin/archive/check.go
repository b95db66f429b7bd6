package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"unicode/utf8"
)

// Limits on names, as Linux has them.
const (
	maxName    = 4096
	maxElement = 255
	// maxDepth bounds the directories in a member's name: real trees are
	// a few dozen deep, and every level costs each later file operation
	// (os.Root walks them one by one), so a few thousand-deep names could
	// hold a step for minutes.
	maxDepth = 256
	maxLinks = 40 // symlinks followed while resolving one target
)

// entry is one member to extract, checked: its path is relative to the
// destination and stays inside it.
type entry struct {
	index int    // position in the archive, to find it again on the second pass
	name  string // as in the archive, for messages
	path  string // slash-separated, relative to dest, never "" or with ".."
	kind  kind
	perm  fs.FileMode // after the mode mask
	link  string      // symlink: target as in the archive; hard link: path of the linked file
	sha   string      // regular files and hard links: hex sha256 of the content
	size  int64
}

// layout is an archive's checked members, in archive order.
type layout struct {
	entries []*entry
	byPath  map[string]*entry // explicit members, and parent dirs as implicit kindDir entries (index -1)
	dest    *os.Root          // the destination as it is on disk; nil when it does not exist yet
	disk    map[string]fs.FileInfo
	links   map[string]string // targets of symlinks on disk, read so far
	// changed are the paths whose kind or link target the extraction
	// changes (see markChanged); memo holds the resolved symlinks of the
	// tree after extraction (see links.go).
	changed map[string]bool
	memo    map[string]*resolved
}

// unsafe returns the error refusing the member named name.
func unsafe(name, format string, a ...any) error {
	return fmt.Errorf("%w %q: %s", ErrUnsafeEntry, shorten(name), fmt.Sprintf(format, a...))
}

// shorten keeps messages readable for very long names. Messages quote
// names with %q, which escapes bytes that are not UTF-8.
func shorten(name string) string {
	if len(name) <= 120 {
		return name
	}
	cut := 100
	for cut > 96 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return fmt.Sprintf("%s...(%d bytes)", name[:cut], len(name))
}

// scan reads the whole archive, checks every member and computes file
// digests, without writing anything. dest is the destination on disk
// (nil when it does not exist): members must not write through its
// symlinks either.
func scan(ctx context.Context, file string, p *params, dest *os.Root) (*layout, error) {
	l := &layout{byPath: map[string]*entry{}, dest: dest, disk: map[string]fs.FileInfo{}, links: map[string]string{}}
	lim := p.limits()
	index := -1
	err := walk(ctx, file, p.Format, newBudget(lim), func(raw *rawEntry, content io.Reader) error {
		index++
		e, err := l.check(raw, p)
		if err == nil {
			// The directories a member's name needs are made too: they
			// count against max_entries with the members, or a few deep
			// names would make millions of directories.
			n := int64(len(l.byPath))
			if e != nil && l.byPath[e.path] == nil {
				n++
			}
			if n > lim.entries {
				return fmt.Errorf("%w: with member %q the archive makes more than %d paths, counting the directories its names need (max_entries); raise the step's max_entries parameter to extract it", ErrLimit, shorten(raw.name), lim.entries)
			}
		}
		if errors.Is(err, ErrUnsafeEntry) {
			// A member written through a symlink, say, is refused; when an
			// earlier symlink already leads outside, that is the reason
			// to name.
			if lerr := l.checkArchiveLinks(); lerr != nil {
				return lerr
			}
		}
		if err != nil || e == nil {
			return err
		}
		e.index = index
		if e.kind == kindFile {
			h := sha256.New()
			n, err := io.Copy(h, content)
			if err != nil {
				return fmt.Errorf("read member %q: %w", shorten(raw.name), err)
			}
			e.sha, e.size = hex.EncodeToString(h.Sum(nil)), n
		}
		if e.kind == kindHardlink {
			t := l.byPath[e.link]
			e.sha, e.size, e.perm = t.sha, t.size, t.perm
		}
		l.entries = append(l.entries, e)
		l.byPath[e.path] = e
		return nil
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// check refuses unsafe members and returns the member to extract, or nil
// for one that is skipped (the destination itself, or stripped away).
func (l *layout) check(raw *rawEntry, p *params) (*entry, error) {
	if raw.kind == kindOther {
		return nil, unsafe(raw.name, "is a %s; only files, directories and links are extracted", raw.typeName)
	}
	rel, err := cleanName(raw.name, p.StripComponents)
	if err != nil {
		return nil, unsafe(raw.name, "%v", err)
	}
	if raw.kind == kindSymlink || raw.kind == kindHardlink {
		if err := checkText(raw.link, "target"); err != nil {
			return nil, unsafe(raw.name, "%s %v", raw.kind, err)
		}
	}
	if rel == "" {
		if raw.kind != kindDir && strings.Trim(raw.name, "./") == "" {
			return nil, unsafe(raw.name, "a %s cannot replace the destination directory", raw.kind)
		}
		return nil, nil // the destination itself, or stripped away
	}
	e := &entry{name: raw.name, path: rel, kind: raw.kind, perm: raw.perm & fs.FileMode(p.mask()&0o777)}
	if m := p.mask(); m&0o4000 != 0 {
		e.perm |= raw.perm & fs.ModeSetuid
	}
	if m := p.mask(); m&0o2000 != 0 {
		e.perm |= raw.perm & fs.ModeSetgid
	}
	if m := p.mask(); m&0o1000 != 0 {
		e.perm |= raw.perm & fs.ModeSticky
	}

	// Every parent must be a directory, made by the archive or on disk:
	// never a symlink (no writing through links) nor a file. A parent the
	// layout knows had its own parents checked when it was added (they
	// are all directories of the layout), so the walk up stops at the
	// nearest one: a member costs its depth, not its depth squared, and
	// the keys are slices of rel.
	var unknown []string // innermost first
	for dir := parent(rel); dir != ""; dir = parent(dir) {
		if prev, ok := l.byPath[dir]; ok {
			if prev.kind != kindDir {
				return nil, unsafe(raw.name, "would be written through the %s %q", prev.kind, prev.path)
			}
			break
		}
		unknown = append(unknown, dir)
	}
	onDisk := l.dest != nil
	for i := len(unknown) - 1; i >= 0; i-- {
		dir := unknown[i]
		if onDisk { // below a missing directory nothing is on disk
			fi := l.lstat(dir)
			if fi != nil && !fi.IsDir() {
				return nil, unsafe(raw.name, "would be written through %q, which is not a directory on disk (%s)", dir, fi.Mode().Type())
			}
			onDisk = fi != nil
		}
		l.byPath[dir] = &entry{index: -1, name: raw.name, path: dir, kind: kindDir, perm: 0o755}
	}

	if prev, ok := l.byPath[rel]; ok {
		if prev.kind != kindDir || raw.kind != kindDir {
			return nil, unsafe(raw.name, "names %q a second time", rel)
		}
		if prev.index >= 0 {
			return nil, nil // a repeated directory
		}
	}
	if fi := l.lstat(rel); fi != nil {
		if raw.kind == kindDir && !fi.IsDir() {
			return nil, unsafe(raw.name, "is a directory in the archive but %s on disk", fi.Mode().Type())
		}
		if raw.kind != kindDir && fi.IsDir() {
			return nil, unsafe(raw.name, "is a %s in the archive but a directory on disk", raw.kind)
		}
	}

	switch raw.kind {
	case kindSymlink:
		// Here only what the target says by itself; where it leads in the
		// tree after extraction is checked once the whole archive is
		// known (checkArchiveLinks).
		t := raw.link
		switch {
		case t == "":
			return nil, unsafe(raw.name, "symlink with an empty target")
		case strings.HasPrefix(t, "/"):
			return nil, unsafe(raw.name, "symlink to the absolute path %q", shorten(t))
		case strings.ContainsRune(t, '\\'):
			return nil, unsafe(raw.name, "symlink target %q contains a backslash", shorten(t))
		}
		if err := lexicallyInside(strings.Count(rel, "/"), t); err != nil {
			return nil, unsafe(raw.name, "symlink to %q: %v", shorten(t), err)
		}
		e.link = t
	case kindHardlink:
		target, err := cleanName(raw.link, p.StripComponents)
		if err != nil {
			return nil, unsafe(raw.name, "hard link to %q: %v", shorten(raw.link), err)
		}
		t, ok := l.byPath[target]
		if target == "" || !ok || t.index < 0 || (t.kind != kindFile && t.kind != kindHardlink) {
			return nil, unsafe(raw.name, "hard link to %q, which is not a file earlier in the archive", shorten(raw.link))
		}
		if t.kind == kindHardlink {
			target = t.link
		}
		e.link = target
	}
	return e, nil
}

// cleanName turns an archive member's name into a path relative to the
// destination, dropping "." and empty elements and strip leading
// elements. It returns "" for a name that is the destination itself or
// stripped away.
func cleanName(name string, strip int) (string, error) {
	if err := checkText(name, "name"); err != nil {
		return "", err
	}
	switch {
	case name == "":
		return "", errors.New("empty name")
	case strings.ContainsRune(name, '\\'):
		return "", errors.New("name contains a backslash (a Windows path separator)")
	case strings.HasPrefix(name, "/"):
		return "", errors.New("absolute name")
	case len(name) >= 2 && name[1] == ':' && (name[0]|0x20 >= 'a' && name[0]|0x20 <= 'z'):
		return "", errors.New("name starts with a Windows drive letter")
	}
	var kept []string
	for _, el := range strings.Split(name, "/") {
		switch {
		case el == "..":
			return "", errors.New(`name has a ".." element`)
		case len(el) > maxElement:
			return "", fmt.Errorf("name has an element %d bytes long (limit %d)", len(el), maxElement)
		case el == "" || el == ".":
			continue
		}
		kept = append(kept, el)
		if len(kept) > maxDepth {
			return "", fmt.Errorf("name is more than %d directories deep", maxDepth)
		}
	}
	if len(kept) <= strip {
		return "", nil
	}
	return strings.Join(kept[strip:], "/"), nil
}

// checkText refuses a name or link target that is too long, holds a NUL
// byte or is not UTF-8 (names from old Windows zips and Latin-1 tars):
// the kernel would take it, but no message, output or record could carry
// it, and its meaning depends on an encoding the archive does not state.
func checkText(s, what string) error {
	switch {
	case len(s) > maxName:
		return fmt.Errorf("%s is %d bytes long (limit %d)", what, len(s), maxName)
	case strings.ContainsRune(s, 0):
		return fmt.Errorf("%s contains a NUL byte", what)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s %q is not valid UTF-8", what, shorten(s))
	}
	return nil
}

// lexicallyInside refuses a symlink target that leaves the destination
// on paper, from a directory depth elements below it: the cheap first
// check, made while reading.
func lexicallyInside(depth int, target string) error {
	for _, el := range strings.Split(target, "/") {
		switch el {
		case "", ".":
		case "..":
			if depth--; depth < 0 {
				return errors.New("leaves the destination")
			}
		default:
			depth++
		}
	}
	return nil
}

// lstat returns what is at p inside the destination on disk, or nil.
func (l *layout) lstat(p string) fs.FileInfo {
	if l.dest == nil {
		return nil
	}
	if fi, ok := l.disk[p]; ok {
		return fi
	}
	fi, err := l.dest.Lstat(p)
	if err != nil {
		fi = nil
	}
	l.disk[p] = fi
	return fi
}
