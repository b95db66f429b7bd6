package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Archive formats.
const (
	formatTar   = "tar"
	formatTarGz = "tar.gz"
	formatZip   = "zip"
)

// kind is what an entry makes.
type kind int

const (
	kindDir kind = iota
	kindFile
	kindSymlink
	kindHardlink
	kindOther // device, FIFO, anything else: never extracted
)

func (k kind) String() string {
	return [...]string{"directory", "file", "symlink", "hard link", "special file"}[k]
}

// rawEntry is one archive member as the archive states it.
type rawEntry struct {
	name     string // as in the archive
	kind     kind
	typeName string // for kindOther: what it is
	perm     fs.FileMode
	link     string // symlink target or hard link target, as in the archive
}

// detect returns the archive's format from its first bytes.
func detect(f *os.File) (string, error) {
	buf := make([]byte, 512)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read %s: %w", f.Name(), err)
	}
	buf = buf[:n]
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", fmt.Errorf("seek %s: %w", f.Name(), err)
	}
	switch {
	case bytes.HasPrefix(buf, []byte{0x1f, 0x8b}):
		return formatTarGz, nil
	case bytes.HasPrefix(buf, []byte("PK\x03\x04")), bytes.HasPrefix(buf, []byte("PK\x05\x06")):
		return formatZip, nil
	case len(buf) >= 262 && bytes.Equal(buf[257:262], []byte("ustar")):
		return formatTar, nil
	}
	return "", fmt.Errorf("%s: %w (want tar, tar.gz or zip; set format to override)", f.Name(), ErrFormat)
}

// walk calls fn for every member of the archive at file in order, with a
// reader of its content for files (zip stores a symlink's target as its
// content; walk reads it into the rawEntry). want is the format from the
// parameters, or empty to detect it. The content readers count what they
// give against b, and fail with ErrLimit past a limit; walk counts the
// members against b too.
func walk(ctx context.Context, file, want string, b *budget, fn func(e *rawEntry, content io.Reader) error) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("open archive: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat archive: %w", err)
	}
	b.archiveSize = st.Size()
	format := want
	if format == "" {
		if format, err = detect(f); err != nil {
			return err
		}
	}
	switch format {
	case formatTar:
		return walkTar(ctx, f, b, fn)
	case formatTarGz:
		zr, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("%w: gzip: %v", ErrFormat, err)
		}
		defer zr.Close()
		// The tar stream inside is bounded too: headers and padding are
		// not content, but a bomb can be made of them.
		return walkTar(ctx, &capped{r: zr, left: b.lim.bytes + tarOverhead, lim: b.lim.bytes}, b, fn)
	case formatZip:
		return walkZip(ctx, f, st.Size(), b, fn)
	}
	return fmt.Errorf("%w %q", ErrFormat, format)
}

// tarOverhead is how much more than max_bytes the tar stream inside a
// tar.gz may hold: headers, long names and padding.
const tarOverhead = 64 << 20

// capped fails once more than left bytes have been read through it.
type capped struct {
	r    io.Reader
	left int64
	lim  int64
}

func (c *capped) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, fmt.Errorf("%w: the tar stream inside the gzip is larger than max_bytes (%d) plus %d bytes of headers; raise the step's max_bytes parameter to extract it", ErrLimit, c.lim, tarOverhead)
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// tarStream is the byte stream under a tar.Reader. It remembers whether
// the stream ended before a read had all it asked for: the tar reader
// reports io.EOF both after the end-of-archive marker and when the stream
// ends at (or inside the padding before) a block boundary, and only this
// tells them apart. The tar reader asks for exactly what it needs (whole
// blocks, a member's remaining bytes), so a whole archive never runs
// short.
type tarStream struct {
	r     io.Reader
	short bool
}

func (s *tarStream) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n < len(p) && errors.Is(err, io.EOF) {
		s.short = true
	}
	return n, err
}

// walkTar reads a tar stream. The stream must end with the end-of-archive
// marker, two zero blocks: every tar writer makes them, and without them
// an archive cut short at a member's end (or after one zero block, which
// cannot be told from a member whose data ends in zeros) would lose its
// later members silently.
func walkTar(ctx context.Context, r io.Reader, b *budget, fn func(*rawEntry, io.Reader) error) error {
	ts := &tarStream{r: r}
	tr := tar.NewReader(ts)
	last := ""
	truncated := func(err error) error {
		where := "at its start"
		if last != "" {
			where = fmt.Sprintf("after member %q", last)
		}
		if errors.Is(err, ErrLimit) || errors.Is(err, ErrFormat) {
			return err
		}
		if err == nil || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: tar truncated %s: the archive ends before its end-of-archive marker", ErrFormat, where)
		}
		return fmt.Errorf("%w: tar %s: %v", ErrFormat, where, err)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if ts.short {
				return truncated(nil)
			}
			return nil
		}
		// ErrInsecurePath (GODEBUG=tarinsecurepath=0) comes with a valid
		// header; the names are checked here anyway.
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			return truncated(err)
		}
		if err := b.entry(); err != nil {
			return err
		}
		e := &rawEntry{name: h.Name, perm: fs.FileMode(h.Mode) & fs.ModePerm, link: h.Linkname}
		if h.Mode&0o4000 != 0 {
			e.perm |= fs.ModeSetuid
		}
		if h.Mode&0o2000 != 0 {
			e.perm |= fs.ModeSetgid
		}
		if h.Mode&0o1000 != 0 {
			e.perm |= fs.ModeSticky
		}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
			e.kind = kindFile
		case tar.TypeDir:
			e.kind = kindDir
		case tar.TypeSymlink:
			e.kind = kindSymlink
		case tar.TypeLink:
			e.kind = kindHardlink
		case tar.TypeXGlobalHeader:
			continue
		case tar.TypeChar:
			e.kind, e.typeName = kindOther, "character device"
		case tar.TypeBlock:
			e.kind, e.typeName = kindOther, "block device"
		case tar.TypeFifo:
			e.kind, e.typeName = kindOther, "FIFO"
		default:
			e.kind, e.typeName = kindOther, fmt.Sprintf("tar type %q", h.Typeflag)
		}
		last = h.Name
		content := &counted{r: tr, b: b, name: h.Name, onErr: func(err error) error {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%w: tar truncated inside member %q", ErrFormat, shorten(h.Name))
			}
			return err
		}}
		if err := fn(e, content); err != nil {
			return err
		}
	}
}

// counted counts what is read through it against a budget: a member's
// content, in its logical size (the zeros of a sparse tar member count).
type counted struct {
	r     io.Reader
	b     *budget
	name  string
	err   error
	onErr func(error) error
}

func (c *counted) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	// Never read far past a limit: at most one byte beyond what is left.
	if left := c.b.left(); left >= 0 && int64(len(p)) > left+1 {
		p = p[:left+1]
	}
	n, err := c.r.Read(p)
	if n > 0 {
		if lerr := c.b.add(c.name, int64(n)); lerr != nil {
			c.err = lerr
			return 0, lerr
		}
	}
	if err != nil && !errors.Is(err, io.EOF) && c.onErr != nil {
		err = c.onErr(err)
	}
	return n, err
}

func walkZip(ctx context.Context, r io.ReaderAt, size int64, b *budget, fn func(*rawEntry, io.Reader) error) error {
	// The central directory's own count comes first: zip.NewReader reads
	// every entry of it into memory before max_entries could be checked.
	if n, ok := zipEntryCount(r, size); ok && n > uint64(b.lim.entries) {
		return fmt.Errorf("%w: the zip declares %d members, more than %d (max_entries); raise the step's max_entries parameter to extract it", ErrLimit, n, b.lim.entries)
	}
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return fmt.Errorf("%w: zip: %v", ErrFormat, err)
	}
	if int64(len(zr.File)) > b.lim.entries {
		return fmt.Errorf("%w: the zip has %d members, more than %d (max_entries); raise the step's max_entries parameter to extract it", ErrLimit, len(zr.File), b.lim.entries)
	}
	for _, zf := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := b.entry(); err != nil {
			return err
		}
		e := &rawEntry{name: zf.Name}
		mode := zf.Mode()
		switch {
		case !zipHasUnixMode(zf):
			// Made on Windows (or by a tool that keeps no modes): the
			// entry is a directory or a file, with the usual modes rather
			// than the 0777 and 0666 archive/zip reports.
			e.kind, e.perm = kindFile, 0o644
			if mode.IsDir() {
				e.kind, e.perm = kindDir, 0o755
			}
		case mode&fs.ModeSymlink != 0:
			e.kind = kindSymlink
		case mode.IsDir():
			e.kind = kindDir
		case mode.IsRegular():
			e.kind = kindFile
		default:
			e.kind, e.typeName = kindOther, "special file ("+mode.Type().String()+")"
		}
		if e.perm == 0 {
			e.perm = mode & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		}
		if e.kind != kindFile && e.kind != kindSymlink {
			if err := fn(e, nil); err != nil {
				return err
			}
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			return fmt.Errorf("%w: zip member %q: %v", ErrFormat, shorten(zf.Name), err)
		}
		if e.kind == kindSymlink {
			target, err := io.ReadAll(io.LimitReader(rc, maxName+1))
			rc.Close()
			if err != nil {
				return fmt.Errorf("%w: zip member %q: %v", ErrFormat, shorten(zf.Name), err)
			}
			e.link = string(target)
			if err := fn(e, nil); err != nil {
				return err
			}
			continue
		}
		err = fn(e, &counted{r: rc, b: b, name: zf.Name, onErr: func(err error) error {
			return fmt.Errorf("%w: zip member %q: %v", ErrFormat, shorten(zf.Name), err)
		}})
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// zipHasUnixMode reports whether a zip entry carries Unix permissions:
// made on Unix or macOS, with mode bits in the external attributes.
func zipHasUnixMode(zf *zip.File) bool {
	const creatorUnix, creatorMacOSX = 3, 19
	creator := zf.CreatorVersion >> 8
	return (creator == creatorUnix || creator == creatorMacOSX) && zf.ExternalAttrs>>16 != 0
}

// zipEntryCount reads the number of entries a zip's end of central
// directory record declares (zip64 too), without reading the central
// directory. ok is false when the record cannot be found; zip.NewReader
// then says what is wrong.
func zipEntryCount(r io.ReaderAt, size int64) (uint64, bool) {
	const eocdLen, maxComment = 22, 65535
	tail := int64(eocdLen + maxComment)
	if tail > size {
		tail = size
	}
	buf := make([]byte, tail)
	if _, err := r.ReadAt(buf, size-tail); err != nil && !errors.Is(err, io.EOF) {
		return 0, false
	}
	i := bytes.LastIndex(buf, []byte("PK\x05\x06"))
	if i < 0 || len(buf)-i < eocdLen {
		return 0, false
	}
	n := uint64(binary.LittleEndian.Uint16(buf[i+10:]))
	if n != 0xffff {
		return n, true
	}
	// zip64: the locator (20 bytes) sits right before the record and
	// points at the zip64 end of central directory, whose count is at 32.
	loc := size - tail + int64(i) - 20
	if loc < 0 {
		return 0, false
	}
	l := make([]byte, 20)
	if _, err := r.ReadAt(l, loc); err != nil || !bytes.Equal(l[:4], []byte("PK\x06\x07")) {
		return 0, false
	}
	off := int64(binary.LittleEndian.Uint64(l[8:]))
	rec := make([]byte, 40)
	if off < 0 || off+40 > size {
		return 0, false
	}
	if _, err := r.ReadAt(rec, off); err != nil || !bytes.Equal(rec[:4], []byte("PK\x06\x06")) {
		return 0, false
	}
	return binary.LittleEndian.Uint64(rec[32:]), true
}
