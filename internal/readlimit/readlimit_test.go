package readlimit

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// tree makes a directory with a small file, a file of exactly 1 KiB, a
// sparse file of 1 KiB and one byte, a named pipe, a subdirectory and
// symlinks to /dev/zero and to the pipe.
func tree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("small", []byte("hello\n"))
	write("exact", bytes.Repeat([]byte("x"), 1024))
	f, err := os.Create(filepath.Join(dir, "big"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1025); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"zero": "/dev/zero", "to-fifo": "fifo", "to-small": "small"} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// outcome is what a read came to: the bytes read, or which error.
func outcome(data []byte, err error) string {
	switch {
	case errors.Is(err, ErrTooLarge):
		return "too large: " + err.Error()
	case errors.Is(err, ErrNotRegular):
		return "not regular: " + err.Error()
	case err != nil:
		return "error: " + err.Error()
	default:
		return "read " + string(bytes.ReplaceAll(data, bytes.Repeat([]byte("x"), 1024), []byte("x*1024")))
	}
}

func TestFile(t *testing.T) {
	dir := tree(t)
	tests := []struct {
		name, file string
		want       string
	}{
		{"small", "small", "read hello\n"},
		{"exactly the limit", "exact", "read x*1024"},
		{"one byte over", "big", "too large: thing DIR/big: larger than 1 KiB (limit)"},
		{"symlink to a regular file", "to-small", "read hello\n"},
		{"named pipe, without blocking", "fifo", "not regular: thing DIR/fifo: not a regular file (a named pipe)"},
		{"symlink to a named pipe", "to-fifo", "not regular: thing DIR/to-fifo: not a regular file (a named pipe)"},
		{"symlink to /dev/zero", "zero", "not regular: thing DIR/zero: not a regular file (a character device)"},
		{"directory", "sub", "not regular: thing DIR/sub: not a regular file (a directory)"},
		{"missing", "nope", "error: read thing: open DIR/nope: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.ReplaceAll(outcome(File(filepath.Join(dir, tt.file), "thing", 1024)), dir, "DIR")
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("File(%s) (-want +got):\n%s", tt.file, diff)
			}
		})
	}
}

// TestFileRefusesPastTheLimitUnread: a regular file whose size is past
// the limit is refused from its size, without reading (and holding) limit+1 bytes.
func TestFileRefusesPastTheLimitUnread(t *testing.T) {
	const limit = 64 << 20
	path := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, limit+1); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for name, read := range map[string]func() ([]byte, error){
		"File":     func() ([]byte, error) { return File(path, "thing", limit) },
		"RootFile": func() ([]byte, error) { return RootFile(root, "big", "thing", limit) },
		"Stream":   func() ([]byte, error) { return Stream(path, "thing", limit) },
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := read()
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: %v, want ErrTooLarge", name, err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > limit/4 {
			t.Errorf("%s allocated %d bytes to refuse a file past its %d-byte limit", name, n, limit)
		}
	}
}

func TestStream(t *testing.T) {
	dir := tree(t)
	tests := []struct {
		name, file string
		want       string
	}{
		{"regular file", "small", "read hello\n"},
		{"endless device", "/dev/zero", "too large: manifest /dev/zero: larger than 1 KiB (limit)"},
		{"symlink to an endless device", "zero", "too large: manifest DIR/zero: larger than 1 KiB (limit)"},
		{"directory", "sub", "not regular: manifest DIR/sub: not a regular file (a directory)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.file
			if !filepath.IsAbs(path) {
				path = filepath.Join(dir, path)
			}
			got := strings.ReplaceAll(outcome(Stream(path, "manifest", 1024)), dir, "DIR")
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Stream(%s) (-want +got):\n%s", tt.file, diff)
			}
		})
	}
}

// TestStreamPipe: a named pipe (what a process substitution is) is read
// once its writer opens it.
func TestStreamPipe(t *testing.T) {
	dir := tree(t)
	fifo := filepath.Join(dir, "fifo")
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		f.WriteString("from a pipe\n")
		f.Close()
	}()
	got := outcome(Stream(fifo, "manifest", 1024))
	if diff := cmp.Diff("read from a pipe\n", got); diff != "" {
		t.Errorf("Stream(fifo) (-want +got):\n%s", diff)
	}
}

func TestRootFile(t *testing.T) {
	dir := tree(t)
	if err := os.Symlink("../../etc/passwd", filepath.Join(dir, "sub", "escape")); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	tests := []struct {
		name, file string
		want       string
	}{
		{"regular file", "small", "read hello\n"},
		{"one byte over", "big", "too large: status DIR/big: larger than 1 KiB (limit)"},
		{"symlink to /dev/zero", "zero", "error: read status: open zero: path escapes from parent"},
		{"named pipe", "fifo", "not regular: status DIR/fifo: not a regular file (a named pipe)"},
		{"symlink out of the root", "sub/escape", "error: read status: open sub/escape: path escapes from parent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.ReplaceAll(outcome(RootFile(root, tt.file, "status", 1024)), dir, "DIR")
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("RootFile(%s) (-want +got):\n%s", tt.file, diff)
			}
		})
	}
}

func TestRead(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string
	}{
		{"under", "abc", "read abc"},
		{"at the limit", "abcd", "read abcd"},
		{"over", "abcde", "too large: standard input: larger than 4 B (limit)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := outcome(Read(strings.NewReader(tt.input), "standard input", 4))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Read (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewReader(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string
	}{
		{"under", "abc", "read abc"},
		{"at the limit", "abcd", "read abcd"},
		{"over", "abcdefgh", "too large: body: larger than 4 B (limit)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := outcome(io.ReadAll(NewReader(iotestOneByte{strings.NewReader(tt.input)}, "body", 4)))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("NewReader (-want +got):\n%s", diff)
			}
		})
	}
}

// iotestOneByte reads one byte at a time, to cross the limit mid-read.
type iotestOneByte struct{ r io.Reader }

func (o iotestOneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

func TestLines(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []string
		err   string
		limit int64 // on the input as a whole; 0 for none
	}{
		{"short lines", "a\nbb\r\nccc", []string{"1:a", "2:bb", "3:ccc"}, "", 0},
		{"a line at the limit", "abcd\nx\n", []string{"1:abcd", "2:x"}, "", 0},
		{"a line over the limit", "a\nabcdef\nx\n", []string{"1:a"}, "status: line 2: larger than 4 B (limit)", 0},
		{"endless zeros", strings.Repeat("\x00", 100), nil, "status: line 1: larger than 4 B (limit)", 0},
		{"input cut by its limit", "a\nb\nccc", []string{"1:a", "2:b"}, "input: larger than 6 B (limit)", 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r io.Reader = strings.NewReader(tt.input)
			if tt.limit > 0 {
				r = NewReader(r, "input", tt.limit)
			}
			l := NewLines(r, "status", 4)
			var got []string
			for l.Scan() {
				got = append(got, strings.Join([]string{string(rune('0' + l.Line())), l.Text()}, ":"))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
			var errText string
			if err := l.Err(); err != nil {
				errText = err.Error()
				if !errors.Is(err, ErrTooLarge) {
					t.Errorf("Err() = %v, want ErrTooLarge", err)
				}
			}
			if diff := cmp.Diff(tt.err, errText); diff != "" {
				t.Errorf("Err (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOutput: a command writing past the limit is stopped, and Err names
// the output and the limit.
func TestOutput(t *testing.T) {
	for _, tt := range []struct {
		name  string
		input string
		want  string
	}{
		{"under", "abc", "read abc"},
		{"over", "abcdefgh", "too large: output of x: larger than 4 B (limit)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := NewOutput("output of x", 4)
			_, err := io.Copy(o, iotestOneByte{strings.NewReader(tt.input)})
			if err == nil {
				err = o.Err()
			}
			if diff := cmp.Diff(tt.want, outcome(o.Bytes(), err)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
