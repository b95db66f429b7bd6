package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
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
// reader of its content for files and symlinks (zip stores a symlink's
// target as its content). want is the format from the parameters, or
// empty to detect it.
func walk(ctx context.Context, file, want string, fn func(e *rawEntry, content io.Reader) error) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("open archive: %w", err)
	}
	defer f.Close()
	format := want
	if format == "" {
		if format, err = detect(f); err != nil {
			return err
		}
	}
	switch format {
	case formatTar:
		return walkTar(ctx, f, fn)
	case formatTarGz:
		zr, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("%s: %w: gzip: %v", file, ErrFormat, err)
		}
		defer zr.Close()
		return walkTar(ctx, zr, fn)
	case formatZip:
		st, err := f.Stat()
		if err != nil {
			return fmt.Errorf("stat archive: %w", err)
		}
		return walkZip(ctx, f, st.Size(), fn)
	}
	return fmt.Errorf("%s: %w %q", file, ErrFormat, format)
}

func walkTar(ctx context.Context, r io.Reader, fn func(*rawEntry, io.Reader) error) error {
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		// ErrInsecurePath (GODEBUG=tarinsecurepath=0) comes with a valid
		// header; the names are checked here anyway.
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			return fmt.Errorf("read tar: %w", err)
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
		if err := fn(e, tr); err != nil {
			return err
		}
	}
}

func walkZip(ctx context.Context, r io.ReaderAt, size int64, fn func(*rawEntry, io.Reader) error) error {
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return fmt.Errorf("%w: zip: %v", ErrFormat, err)
	}
	for _, zf := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		mode := zf.Mode()
		e := &rawEntry{name: zf.Name, perm: mode & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)}
		switch {
		case mode&fs.ModeSymlink != 0:
			e.kind = kindSymlink
		case mode.IsDir():
			e.kind = kindDir
		case mode.IsRegular():
			e.kind = kindFile
		default:
			e.kind, e.typeName = kindOther, "special file ("+mode.Type().String()+")"
		}
		if e.kind != kindFile && e.kind != kindSymlink {
			if err := fn(e, nil); err != nil {
				return err
			}
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			return fmt.Errorf("zip entry %q: %w", zf.Name, err)
		}
		if e.kind == kindSymlink {
			target, err := io.ReadAll(io.LimitReader(rc, 4097))
			rc.Close()
			if err != nil {
				return fmt.Errorf("zip entry %q: %w", zf.Name, err)
			}
			e.link = string(target)
			if err := fn(e, nil); err != nil {
				return err
			}
			continue
		}
		err = fn(e, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
