package collector

import (
	"container/heap"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/cairn-ops/cairn/internal/readlimit"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

const (
	// DefaultMaxFiles bounds the files collector when Env.MaxFiles is 0.
	DefaultMaxFiles = 10000
	// DefaultMaxHashBytes bounds hashing when Env.MaxHashBytes is 0.
	DefaultMaxHashBytes = 256 << 20
)

// Files records the paths env.Track names: exact paths and patterns with
// path.Match (filepath.Glob) syntax, "*", "?" and "[...]" matching within
// one path element; "**" is not special. A tracked directory is recorded
// with everything beneath it. Paths are host paths ("/etc/ssh"), read
// under the root.
//
// Every access goes through an os.Root opened on the root directory, so
// no symlink is followed out of it: entries are Lstat'ed and recorded as
// symlinks with their target, never followed, and only regular files are
// hashed. A directory reached only through a symlink (or an absolute
// symlink, which os.Root refuses) is not descended into.
//
// A pattern with a ".." element is refused: Collect fails with an error
// wrapping ErrOutsideRoot, since the operator asked for something the
// collector will not read and a partial list would pass for the truth.
//
// At most MaxFiles entries are recorded — the first ones in path order —
// and regular files are hashed in path order until the next one would take
// the hashed bytes past MaxHashBytes; from there on files carry
// hash_skipped. Either cut sets truncated and is a warning that gives the
// numbers and the flag to raise.
//
// A tracked exact path that does not exist, or a pattern that matches
// nothing, is a warning: the section stays comparable, since the path's
// absence is what it records.
type Files struct{}

var _ Collector = Files{}

// Section implements Collector.
func (Files) Section() string { return "files" }

// Collect implements Collector.
func (Files) Collect(ctx context.Context, env Env, out *inventoryv1.Audit) error {
	maxFiles := env.MaxFiles
	if maxFiles <= 0 {
		maxFiles = DefaultMaxFiles
	}
	maxHash := env.MaxHashBytes
	if maxHash <= 0 {
		maxHash = DefaultMaxHashBytes
	}
	sec := &inventoryv1.Files{
		Patterns:     append([]string(nil), env.Track...),
		MaxFiles:     uint32(maxFiles),
		MaxHashBytes: uint64(maxHash),
	}

	patterns := make([]trackedPattern, 0, len(env.Track))
	for _, p := range env.Track {
		rel, err := trackPattern(p)
		if err != nil {
			return err
		}
		patterns = append(patterns, trackedPattern{track: p, rel: rel})
	}

	root, err := os.OpenRoot(env.Path("/"))
	if err != nil {
		return fmt.Errorf("open root: %w", err)
	}
	defer root.Close()

	sel := newSWPathSelector(maxFiles)
	if err := selectTracked(ctx, env, root, patterns, sel); err != nil {
		return err
	}
	rels := sel.sorted()
	if n := len(sel.dropped); n > 0 {
		sec.Truncated = true
		atLeast := ""
		if sel.skipped {
			atLeast = "at least " // subtrees past the cut were not walked
		}
		env.warnf("recorded %d of %s%d files: raise --max-files", len(rels), atLeast, len(rels)+n)
	}

	users := readIDNames(root, "etc/passwd")
	groups := readIDNames(root, "etc/group")
	budget := maxHash
	hashing := true
	notHashed := 0
	for _, rel := range rels {
		if err := ctx.Err(); err != nil {
			return err
		}
		f, err := describeFile(env, root, rel, users, groups)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed since it was listed
			}
			env.warn(err.Error())
			continue
		}
		if f.Type == "file" {
			if hashing && int64(f.Size) <= budget {
				sum, n, err := swHashFile(env, root, rel, int64(f.Size))
				if err != nil {
					env.warn(err.Error())
				} else {
					f.Sha256 = sum
				}
				budget -= n
			} else {
				hashing = false
				f.HashSkipped = true
				sec.Truncated = true
				notHashed++
			}
		}
		sec.Files = append(sec.Files, f)
	}
	if notHashed > 0 {
		env.warnf("hashed %s; %d %s not hashed: raise --max-hash-bytes",
			swByteSize(maxHash-budget), notHashed, swPlural(notHashed, "file", "files"))
	}
	out.Files = sec
	return nil
}

// trackPattern turns a tracked host path or pattern into a pattern
// relative to the root, for io/fs. It refuses ".." elements and malformed
// patterns.
func trackPattern(p string) (string, error) {
	for _, elem := range strings.Split(p, "/") {
		if elem == ".." {
			return "", fmt.Errorf("track %q: %w", p, ErrOutsideRoot)
		}
	}
	if _, err := path.Match(p, ""); err != nil {
		return "", fmt.Errorf("track %q: %w", p, err)
	}
	rel := strings.TrimPrefix(path.Clean("/"+p), "/")
	if rel == "" {
		rel = "."
	}
	return rel, nil
}

// trackedPattern is one entry of Env.Track and its pattern relative to
// the root.
type trackedPattern struct {
	track string // as the operator wrote it
	rel   string // for io/fs, from trackPattern
}

// selectTracked feeds every path the patterns name, and everything under
// tracked directories, to sel. An exact path that cannot be found and a
// pattern without a match are warnings.
func selectTracked(ctx context.Context, env Env, root *os.Root, patterns []trackedPattern, sel *swPathSelector) error {
	fsys := root.FS()
	for _, tp := range patterns {
		pat := tp.rel
		var matches []string
		if swHasMeta(pat) {
			m, err := fs.Glob(fsys, pat)
			if err != nil {
				return fmt.Errorf("glob %q: %w", tp.track, err)
			}
			if len(m) == 0 {
				env.warnf("track %q: no match", tp.track)
			}
			matches = m
		} else if _, err := root.Lstat(pat); err == nil {
			matches = []string{pat}
		} else {
			env.warnf("track %s: lstat %s: %v", tp.track, env.Path(swHostPath(pat)), pathErrCause(err))
		}
		for _, m := range matches {
			fi, err := root.Lstat(m)
			if err != nil {
				continue
			}
			if !fi.IsDir() {
				sel.add(m)
				continue
			}
			err = fs.WalkDir(fsys, m, func(p string, d fs.DirEntry, err error) error {
				if cerr := ctx.Err(); cerr != nil {
					return cerr
				}
				if err != nil {
					// A directory that cannot be listed is still recorded
					// itself; what is beneath it is missing.
					env.warnf("list %s: %v", env.Path(swHostPath(p)), pathErrCause(err))
					return nil
				}
				if !sel.add(p) && d.IsDir() {
					sel.skipped = true
					return fs.SkipDir // everything below sorts after the cut
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("walk %s: %w", env.Path(swHostPath(m)), err)
			}
		}
	}
	return nil
}

func swHasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// describeFile Lstats rel (never following a final symlink).
func describeFile(env Env, root *os.Root, rel string, users, groups map[uint32]string) (*inventoryv1.File, error) {
	fi, err := root.Lstat(rel)
	if err != nil {
		return nil, fmt.Errorf("lstat %s: %w", env.Path(swHostPath(rel)), pathErrCause(err))
	}
	p := swHostPath(rel)
	f := &inventoryv1.File{Key: p, Path: p, Mode: swModeString(fi.Mode())}
	switch {
	case fi.Mode().IsRegular():
		f.Type, f.Size = "file", uint64(fi.Size())
	case fi.IsDir():
		f.Type = "dir"
	case fi.Mode()&fs.ModeSymlink != 0:
		f.Type, f.Size = "symlink", uint64(fi.Size())
		if f.LinkTarget, err = root.Readlink(rel); err != nil {
			return nil, fmt.Errorf("readlink %s: %w", env.Path(p), pathErrCause(err))
		}
	default:
		f.Type = "other"
	}
	if uid, gid, ok := swFileOwner(fi); ok {
		f.Uid, f.Gid = uid, gid
		f.Owner, f.Group = users[uid], groups[gid]
	}
	return f, nil
}

// hostPath turns a root-relative fs path back into the host path.
func swHostPath(rel string) string {
	if rel == "." {
		return "/"
	}
	return "/" + rel
}

// fileModeString is the permission bits in octal with setuid (4000),
// setgid (2000) and sticky (1000), e.g. "0644", "4755".
func swModeString(m fs.FileMode) string {
	bits := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return fmt.Sprintf("%04o", bits)
}

// hashFile returns the sha256 of the first size bytes of rel and how many
// bytes were read.
func swHashFile(env Env, root *os.Root, rel string, size int64) (string, int64, error) {
	f, err := readlimit.OpenRoot(root, rel)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", env.Path(swHostPath(rel)), pathErrCause(err))
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, size))
	if err != nil {
		return "", n, fmt.Errorf("hash %s: %w", env.Path(swHostPath(rel)), pathErrCause(err))
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// readIDNames reads a passwd- or group-format file under the root into an
// id → name map; a missing or unreadable file gives an empty map and the
// names stay empty.
func readIDNames(root *os.Root, rel string) map[uint32]string {
	names := make(map[uint32]string)
	b, err := readlimit.RootFile(root, rel, "", maxAccountsBytes)
	if err != nil {
		return names
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 3 || f[0] == "" || strings.HasPrefix(f[0], "#") {
			continue
		}
		id, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			continue
		}
		if _, dup := names[uint32(id)]; !dup {
			names[uint32(id)] = f[0] // the first entry wins, as getpwuid
		}
	}
	return names
}

// swByteSize formats n bytes for a message: "27 bytes", "256 MiB",
// "1.5 GiB".
func swByteSize(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d %s", n, swPlural(int(n), "byte", "bytes"))
	}
	v, unit := float64(n), ""
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		v, unit = v/1024, u
		if v < 1024 {
			break
		}
	}
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d %s", int64(v), unit)
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}

func swPlural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// pathSelector keeps the n smallest distinct paths it is given, and the
// others it was given, to count them.
type swPathSelector struct {
	n       int
	seen    map[string]struct{}
	h       swMaxHeap
	dropped map[string]struct{} // paths given but not kept
	skipped bool                // a subtree past the cut was not walked
}

func newSWPathSelector(n int) *swPathSelector {
	return &swPathSelector{n: n, seen: make(map[string]struct{}), dropped: make(map[string]struct{})}
}

// add offers p and reports whether p or anything sorting after p's
// directory prefix can still be kept (false lets a walk skip a subtree).
func (s *swPathSelector) add(p string) bool {
	if _, ok := s.seen[p]; ok {
		return true
	}
	if len(s.h) < s.n {
		s.seen[p] = struct{}{}
		heap.Push(&s.h, p)
		return true
	}
	if p >= s.h[0] {
		// p, and everything under it ("p/..."), sorts after the kept maximum.
		s.dropped[p] = struct{}{}
		return false
	}
	s.dropped[s.h[0]] = struct{}{}
	delete(s.seen, s.h[0])
	s.h[0] = p
	heap.Fix(&s.h, 0)
	s.seen[p] = struct{}{}
	return true
}

func (s *swPathSelector) sorted() []string {
	out := append([]string(nil), s.h...)
	sort.Slice(out, func(i, j int) bool { return swHostPath(out[i]) < swHostPath(out[j]) })
	return out
}

// swMaxHeap is a max-heap of strings.
type swMaxHeap []string

func (h swMaxHeap) Len() int           { return len(h) }
func (h swMaxHeap) Less(i, j int) bool { return h[i] > h[j] }
func (h swMaxHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *swMaxHeap) Push(x any)        { *h = append(*h, x.(string)) }
func (h *swMaxHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
