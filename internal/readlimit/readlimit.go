package readlimit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/cairn-ops/cairn/internal/bytesize"
)

// LimitError is the error for input past its limit. It matches ErrTooLarge.
type LimitError struct {
	// Name names the input: what it is and, for a file, its path
	// ("release manifest /dev/zero").
	Name  string
	Limit int64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s: larger than %s (limit)", e.Name, bytesize.Format(uint64(e.Limit)))
}

// Is makes errors.Is(err, ErrTooLarge) true.
func (e *LimitError) Is(target error) bool { return target == ErrTooLarge }

// File reads the regular file at path, at most limit bytes. what says what
// the file is ("release manifest"); errors start with it. With what empty
// they name the path alone, as the file system's do. A named pipe, a
// device, a socket or a directory is refused with ErrNotRegular without
// being read (nor, for a pipe or a device, opened). A file whose size is
// past the limit is refused before it is read.
func File(path, what string, limit int64) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, named(what, err)
	}
	defer f.Close()
	return readFile(f, strings.TrimSpace(what+" "+path), limit)
}

// readFile is Read of an open regular file, refusing one already past
// the limit without reading it (Read would read limit+1 bytes to find
// out). A file that grows after the check still stops at the limit.
func readFile(f *os.File, name string, limit int64) ([]byte, error) {
	if fi, err := f.Stat(); err == nil && limit > 0 && fi.Size() > limit {
		return nil, &LimitError{Name: name, Limit: limit}
	}
	return Read(f, name, limit)
}

// Stream reads the file at path, at most limit bytes, like File, but also
// when it is a pipe, a named pipe, a terminal or another character device:
// for inputs given as /dev/stdin or a process substitution <(...). Only a
// directory is refused (ErrNotRegular). Opening a named pipe waits for its
// writer, as a reader of a process substitution must.
func Stream(path, what string, limit int64) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, named(what, asOpen(err))
	}
	if fi.IsDir() {
		return nil, named(what, notRegular(path, fi))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, named(what, err)
	}
	defer f.Close()
	if !fi.Mode().IsRegular() {
		return Read(f, what+" "+path, limit)
	}
	return readFile(f, what+" "+path, limit)
}

// RootFile reads the regular file name inside root, at most limit bytes,
// as File does; os.Root keeps the read, symlinks included, inside root.
// Errors name the file as root's directory joined with name.
func RootFile(root *os.Root, name, what string, limit int64) ([]byte, error) {
	f, err := OpenRoot(root, name)
	if err != nil {
		return nil, named(what, err)
	}
	defer f.Close()
	return readFile(f, strings.TrimSpace(what+" "+f.Name()), limit)
}

// named puts what in front of an error opening a file: "read what: open
// PATH: ..." for the file system's errors, "what PATH: not a regular
// file (...)" for ours.
func named(what string, err error) error {
	if what == "" {
		return err
	}
	if errors.Is(err, ErrNotRegular) {
		return fmt.Errorf("%s %w", what, err)
	}
	return fmt.Errorf("read %s: %w", what, err)
}

// asOpen makes the error of the stat before an open read like the open's
// ("open PATH: no such file or directory"), which is what people know.
func asOpen(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fs.PathError{Op: "open", Path: pe.Path, Err: pe.Err}
	}
	return err
}

// Read reads r to its end, at most limit bytes. name names the input in
// the error ("response body of GET http://x/"). More than limit bytes is a
// *LimitError; r is read at most limit+1 bytes.
func Read(r io.Reader, name string, limit int64) ([]byte, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("%s: read limit %d: want a positive limit", name, limit)
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, &LimitError{Name: name, Limit: limit}
	}
	return data, nil
}

// NewReader returns a reader of r that fails with a *LimitError naming
// name once more than limit bytes are read, for input decoded as it
// streams (a scanner, a decoder). Up to limit bytes pass unchanged.
func NewReader(r io.Reader, name string, limit int64) io.Reader {
	return &reader{r: r, name: name, left: limit, limit: limit}
}

type reader struct {
	r     io.Reader
	name  string
	left  int64 // bytes still allowed
	limit int64
	err   error
}

func (l *reader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	if int64(n) > l.left {
		l.err = &LimitError{Name: l.name, Limit: l.limit}
		n = int(l.left)
		l.left = 0
		return n, l.err
	}
	l.left -= int64(n)
	return n, err
}

// Lines reads lines, each at most a given length, like bufio.Scanner
// (whose own 64 KiB limit fails with a bare "token too long"); a longer
// line stops the scan and Err names the input, the line and the limit.
type Lines struct {
	sc      *bufio.Scanner
	name    string
	maxLine int
	line    int
}

// NewLines returns a line reader of r. name names r in errors; maxLine is
// the longest line accepted, without its newline.
func NewLines(r io.Reader, name string, maxLine int) *Lines {
	rec := &recorder{r: r}
	sc := bufio.NewScanner(rec)
	sc.Buffer(make([]byte, 0, min(maxLine+1, 64<<10)), maxLine+1)
	// bufio.Scanner hands out the bytes after the last newline as a line
	// also when reading stopped on an error (r past its limit, say): a
	// cut line would read as a whole one. Stop with the error instead.
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		if atEOF && rec.err != nil && len(data) > 0 && bytes.IndexByte(data, '\n') < 0 {
			return 0, nil, rec.err
		}
		return bufio.ScanLines(data, atEOF)
	})
	return &Lines{sc: sc, name: name, maxLine: maxLine}
}

// recorder keeps the error that ended reading r, unless it is io.EOF.
type recorder struct {
	r   io.Reader
	err error
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		r.err = err
	}
	return n, err
}

// Scan advances to the next line; false at the end or on an error.
func (l *Lines) Scan() bool {
	if !l.sc.Scan() {
		return false
	}
	l.line++
	return true
}

// Text is the current line without its newline (and carriage return).
func (l *Lines) Text() string { return l.sc.Text() }

// Bytes is Text without the copy; valid until the next Scan.
func (l *Lines) Bytes() []byte { return l.sc.Bytes() }

// Line is the current line's number, from 1.
func (l *Lines) Line() int { return l.line }

// Err is the error that ended the scan, nil at a clean end. A line over
// the limit is a *LimitError naming the line.
func (l *Lines) Err() error {
	err := l.sc.Err()
	if errors.Is(err, bufio.ErrTooLong) {
		return &LimitError{Name: fmt.Sprintf("%s: line %d", l.name, l.line+1), Limit: int64(l.maxLine)}
	}
	return err
}

// notRegular is the error for a file that is not a regular file.
func notRegular(path string, fi fs.FileInfo) error {
	return fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, describe(fi.Mode()))
}

func describe(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	default:
		return "not a plain file: " + m.Type().String()
	}
}
