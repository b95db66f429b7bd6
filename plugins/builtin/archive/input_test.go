package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/plugins/sdk/sdktest"
)

// refused runs Plan and Apply on the archive data and checks both fail
// with want, naming what in valid UTF-8, and that nothing changed in the
// sandbox.
func refused(t *testing.T, name string, data []byte, params map[string]any, want error, what ...string) {
	t.Helper()
	s := newSandbox(t)
	sc := s.context(t, writeArchive(t, name, data), params)
	before := snapshot(t, s.base)
	_, planErr := New().Plan(t.Context(), sc)
	_, applyErr := New().Apply(t.Context(), sc, nopReporter{})
	for method, err := range map[string]error{"Plan": planErr, "Apply": applyErr} {
		if !errors.Is(err, want) {
			t.Errorf("%s: %v; want %v", method, err, want)
			continue
		}
		if !utf8.ValidString(err.Error()) {
			t.Errorf("%s: the error is not valid UTF-8: %q", method, err.Error())
		}
		for _, w := range what {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v; want it to say %s", method, err, w)
			}
		}
	}
	if diff := cmp.Diff(before, snapshot(t, s.base)); diff != "" {
		t.Errorf("the sandbox changed (-before +after):\n%s", diff)
	}
}

// TestInvalidUTF8: names and link targets that are not UTF-8 are refused
// before anything is written, the message escaping the bad bytes.
func TestInvalidUTF8(t *testing.T) {
	latin1 := "caf\xe9.txt"
	tests := []struct {
		name    string
		archive string
		data    func(t *testing.T) []byte
		what    string
	}{
		{"tar name", "a.tar", func(t *testing.T) []byte { return tarOf(t, file("ok", "x"), file(latin1, "x")) }, `"caf\xe9.txt"`},
		{"tar dir name", "a.tar", func(t *testing.T) []byte { return tarOf(t, folder("d\xff/"), file("d\xff/f", "x")) }, `"d\xff/"`},
		{"tar symlink target", "a.tar", func(t *testing.T) []byte { return tarOf(t, file("ok", "x"), link("l", latin1)) }, `"l"`},
		{"tar hard link target", "a.tar", func(t *testing.T) []byte {
			return tarOf(t, file(latin1, "x"), member{name: "h", typ: tar.TypeLink, body: latin1})
		}, `"caf\xe9.txt"`},
		{"zip name", "a.zip", func(t *testing.T) []byte { return zipOf(t, file("ok", "x"), file(latin1, "x")) }, `"caf\xe9.txt"`},
		{"zip symlink target", "a.zip", func(t *testing.T) []byte { return zipOf(t, link("l", "\x80")) }, `"l"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refused(t, tt.archive, tt.data(t), nil, ErrUnsafeEntry, tt.what, "UTF-8")
		})
	}
}

// sparseTar returns a tar holding one old-GNU sparse file of logical size
// size whose only data is its last byte: a few KiB that read as size
// bytes.
func sparseTar(t *testing.T, name string, size int64) []byte {
	t.Helper()
	var blk [512]byte
	copy(blk[0:], name)
	copy(blk[100:], "0000644\x00")
	copy(blk[108:], "0000000\x00")
	copy(blk[116:], "0000000\x00")
	copy(blk[124:], fmt.Sprintf("%011o\x00", 1)) // one byte of data
	copy(blk[136:], fmt.Sprintf("%011o\x00", testTime.Unix()))
	blk[156] = tar.TypeGNUSparse
	copy(blk[257:], "ustar  \x00")
	copy(blk[386:], fmt.Sprintf("%011o\x00", size-1)) // sparse[0].offset
	copy(blk[398:], fmt.Sprintf("%011o\x00", 1))      // sparse[0].numbytes
	copy(blk[483:], fmt.Sprintf("%011o\x00", size))   // realsize
	copy(blk[148:], "        ")
	sum := 0
	for _, b := range blk {
		sum += int(b)
	}
	copy(blk[148:], fmt.Sprintf("%06o\x00 ", sum))
	var buf bytes.Buffer
	buf.Write(blk[:])
	data := [512]byte{'z'}
	buf.Write(data[:])
	buf.Write(make([]byte, 1024))
	return buf.Bytes()
}

// zerosZip returns a zip holding one file of n zero bytes, deflated.
func zerosZip(t *testing.T, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "zeros", Method: zip.Deflate, Modified: testTime}
	h.SetMode(0o644)
	w, err := zw.CreateHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(make([]byte, n))
	zw.Close()
	return buf.Bytes()
}

func manyFiles(n, size int) []member {
	var ms []member
	for i := range n {
		ms = append(ms, file(fmt.Sprintf("f%05d", i), strings.Repeat("x", size)))
	}
	return ms
}

// TestLimits: archives that expand past max_bytes, max_entries or
// max_ratio are refused in the check pass, while reading, before
// anything is written; the message names the limit, the value and the
// parameter that raises it.
func TestLimits(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name    string
		archive string
		data    func(t *testing.T) []byte
		params  map[string]any
		what    []string
	}{
		{"sparse tar past the ratio", "a.tar", func(t *testing.T) []byte { return sparseTar(t, "sparse", 64*mib) }, nil,
			[]string{`"sparse"`, "max_ratio", "200"}},
		{"sparse tar past max_bytes", "a.tar", func(t *testing.T) []byte { return sparseTar(t, "sparse", 64*mib) },
			map[string]any{"max_bytes": 8 * mib, "max_ratio": 1e9}, []string{`"sparse"`, "max_bytes", strconv.Itoa(8 * mib)}},
		{"zip bomb", "a.zip", func(t *testing.T) []byte { return zerosZip(t, 64*mib) }, nil, []string{`"zeros"`, "max_ratio"}},
		{"tar.gz bomb", "a.tar.gz", func(t *testing.T) []byte {
			return gzipOf(t, tarOf(t, file("zeros", string(make([]byte, 64*mib)))))
		}, nil, []string{`"zeros"`, "max_ratio"}},
		{"bytes", "a.tar", func(t *testing.T) []byte { return tarOf(t, manyFiles(3, 1024)...) },
			map[string]any{"max_bytes": 2048}, []string{`"f00002"`, "max_bytes", "2048"}},
		{"entries", "a.tar", func(t *testing.T) []byte { return tarOf(t, manyFiles(20, 1)...) },
			map[string]any{"max_entries": 10}, []string{"max_entries", "10"}},
		{"zip entries, counted before the central directory is read", "a.zip", func(t *testing.T) []byte { return zipOf(t, manyFiles(20, 1)...) },
			map[string]any{"max_entries": 10}, []string{"declares 20 members", "max_entries", "10"}},
		{"directories the names need", "a.tar", func(t *testing.T) []byte { return tarOf(t, file("a/b/c/d/e/f/g/h/i/j/k", "x")) },
			map[string]any{"max_entries": 10}, []string{`"a/b/c/d/e/f/g/h/i/j/k"`, "max_entries", "10", "directories"}},
		{"deep names", "a.tar.gz", func(t *testing.T) []byte {
			// 450 members of 250 directories each: 112,500 directories.
			deep := strings.Repeat("d/", 249)
			var ms []member
			for i := range 450 {
				ms = append(ms, file(fmt.Sprintf("%03d/%sf", i, deep), "x"))
			}
			return gzipOf(t, tarOf(t, ms...))
		}, nil, []string{"max_entries", "100000", "directories"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refused(t, tt.archive, tt.data(t), tt.params, ErrLimit, tt.what...)
		})
	}
}

// TestTooDeep: a name more than 256 directories deep is refused, naming
// the member: every level costs every later file operation.
func TestTooDeep(t *testing.T) {
	deep := strings.Repeat("d/", 300) + "f"
	refused(t, "a.tar", tarOf(t, file(deep, "x")), nil, ErrUnsafeEntry, "more than 256 directories deep")
}

// TestDeepNamesCostTheirDepth: checking a member costs memory in
// proportion to its depth, not its depth squared: 3,000 members in one
// directory 250 levels deep are checked with a few dozen MiB allocated.
func TestDeepNamesCostTheirDepth(t *testing.T) {
	deep := strings.Repeat("d/", 250)
	var ms []member
	for i := range 3000 {
		ms = append(ms, file(fmt.Sprintf("%s%04d", deep, i), "x"))
	}
	s := newSandbox(t)
	sc := s.context(t, writeArchive(t, "a.tar.gz", gzipOf(t, tarOf(t, ms...))), nil)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := New().Plan(t.Context(), sc); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 256<<20 {
		t.Errorf("Plan allocated %d MiB for 3,000 members 250 levels deep; want at most 256", got>>20)
	}
}

// TestLimitsRaised: the same archives pass with the limits raised.
func TestLimitsRaised(t *testing.T) {
	s := newSandbox(t)
	sc := s.context(t, writeArchive(t, "a.tar", sparseTar(t, "sparse", 8<<20)), map[string]any{"max_ratio": 1e6})
	if _, err := New().Apply(t.Context(), sc, nopReporter{}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	fi, err := os.Stat(s.root + "/srv/app/sparse")
	if err != nil || fi.Size() != 8<<20 {
		t.Errorf("sparse file: %v, %v", fi, err)
	}
}

// TestWindowsZipModes: a zip made on Windows carries no Unix modes; its
// files get 0644 and its directories 0755, not 0666 and 0777. Sticky bits
// are kept by the default mask, setuid and setgid dropped.
func TestWindowsZipModes(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range []struct {
		name  string
		attrs uint32
	}{{"dir/", 0x10}, {"dir/file.txt", 0x20}, {"readme.txt", 0x00}} {
		h := &zip.FileHeader{Name: m.name, Method: zip.Deflate, Modified: testTime, CreatorVersion: 0 << 8, ExternalAttrs: m.attrs}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(m.name, "/") {
			w.Write([]byte("x"))
		}
	}
	zw.Close()
	unix := []member{
		{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		{name: "tmp/suid", typ: tar.TypeReg, mode: 0o4755, body: "x"},
		{name: "tmp/sgid", typ: tar.TypeReg, mode: 0o2755, body: "x"},
	}
	tests := []struct {
		name, archive string
		data          []byte
		want          sdktest.Tree
	}{
		{"windows", "a.zip", buf.Bytes(), sdktest.Tree{
			"dir":          {Mode: "drwxr-xr-x"},
			"dir/file.txt": {Mode: "-rw-r--r--", SHA256: sha("x")},
			"readme.txt":   {Mode: "-rw-r--r--", SHA256: sha("x")},
		}},
		{"unix zip sticky", "a.zip", zipOf(t, unix...), sdktest.Tree{
			"tmp":      {Mode: "dtrwxrwxrwx"},
			"tmp/suid": {Mode: "-rwxr-xr-x", SHA256: sha("x")},
			"tmp/sgid": {Mode: "-rwxr-xr-x", SHA256: sha("x")},
		}},
		{"tar sticky", "a.tar", tarOf(t, unix...), sdktest.Tree{
			"tmp":      {Mode: "dtrwxrwxrwx"},
			"tmp/suid": {Mode: "-rwxr-xr-x", SHA256: sha("x")},
			"tmp/sgid": {Mode: "-rwxr-xr-x", SHA256: sha("x")},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSandbox(t)
			if _, err := New().Apply(t.Context(), s.context(t, writeArchive(t, tt.archive, tt.data), nil), nopReporter{}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, snapshot(t, s.root+"/srv/app")); diff != "" {
				t.Errorf("modes (-want +got):\n%s", diff)
			}
		})
	}
	_ = fs.ModeSticky
}

// TestTruncatedTar: a tar that ends anywhere before its end-of-archive
// marker (two zero blocks) is refused, naming the last member read.
func TestTruncatedTar(t *testing.T) {
	full := tarOf(t, file("a", strings.Repeat("a", 100)), file("b", strings.Repeat("b", 700)))
	// a: header 0, data 512-612, padding to 1024; b: header 1024, data
	// 1536-2236, padding to 2560; end blocks 2560-3584.
	if len(full) != 3584 {
		t.Fatalf("the tar is %d bytes; the offsets below assume 3584", len(full))
	}
	tests := []struct {
		name string
		at   int
		last string
	}{
		{"inside the second header", 1100, `"a"`},
		{"at the second header", 1024, `"a"`},
		{"inside data", 2000, `"b"`},
		{"at the padding", 2236, `"b"`},
		{"inside the padding", 2400, `"b"`},
		{"no end blocks", 2560, `"b"`},
		{"inside the first end block", 2800, `"b"`},
		{"one end block", 3072, `"b"`},
		{"inside the second end block", 3300, `"b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refused(t, "a.tar", full[:tt.at], nil, ErrFormat, tt.last, "truncated")
		})
		t.Run(tt.name+"/gzip", func(t *testing.T) {
			refused(t, "a.tar.gz", gzipOf(t, full[:tt.at]), nil, ErrFormat, tt.last, "truncated")
		})
	}
	t.Run("whole", func(t *testing.T) {
		s := newSandbox(t)
		if _, err := New().Apply(t.Context(), s.context(t, writeArchive(t, "a.tar", full), nil), nopReporter{}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestFreeSpace: an extraction that would leave less than the margin free
// on the destination's filesystem is refused before anything is written;
// the real statfs answers for a real directory.
func TestFreeSpace(t *testing.T) {
	if free, _, ok := statfsFree(t.TempDir()); !ok || free <= 0 {
		t.Fatalf("statfsFree(a temporary directory) = %d, %v", free, ok)
	}
	saved := freeSpace
	t.Cleanup(func() { freeSpace = saved })
	freeSpace = func(dir string) (int64, uint64, bool) {
		free, dev, ok := saved(dir)
		if free > 0 {
			free = freeSpaceMargin + 1000 // room for 1000 bytes
		}
		return free, dev, ok
	}
	s := newSandbox(t)
	before := snapshot(t, s.base)
	_, err := New().Apply(t.Context(), s.context(t, writeArchive(t, "a.tar", tarOf(t, manyFiles(3, 400)...)), nil), nopReporter{})
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "writing 1200 bytes") {
		t.Errorf("Apply of 1200 bytes with 1000 free: %v; want ErrNoSpace", err)
	}
	if diff := cmp.Diff(before, snapshot(t, s.base)); diff != "" {
		t.Errorf("the sandbox changed (-before +after):\n%s", diff)
	}
	if _, err := New().Apply(t.Context(), s.context(t, writeArchive(t, "a.tar", tarOf(t, manyFiles(2, 400)...)), nil), nopReporter{}); err != nil {
		t.Errorf("Apply of 800 bytes with 1000 free: %v", err)
	}
}

// TestValidateLimits: the limit parameters take whole positive numbers.
func TestValidateLimits(t *testing.T) {
	tests := []struct {
		params map[string]any
		fields []string
	}{
		{map[string]any{"max_bytes": 1 << 40, "max_entries": 1e6, "max_ratio": 1000.5}, nil},
		{map[string]any{"max_bytes": 0}, []string{"max_bytes"}},
		{map[string]any{"max_entries": 2.5}, []string{"max_entries"}},
		{map[string]any{"max_ratio": -1}, []string{"max_ratio"}},
		{map[string]any{"max_bytes": "big"}, []string{"max_bytes"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.params), func(t *testing.T) {
			s := newSandbox(t)
			errs, err := New().Validate(t.Context(), s.context(t, "testdata/good/app.tar", tt.params))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.GetField())
			}
			if diff := cmp.Diff(tt.fields, got); diff != "" {
				t.Errorf("fields (-want +got):\n%s\n%v", diff, errs)
			}
		})
	}
}

// TestInvalidUTF8OverTheWire: over the real plugin process boundary the
// refusal of a Latin-1 name arrives as the plugin's error, not as a gRPC
// marshalling failure.
func TestInvalidUTF8OverTheWire(t *testing.T) {
	client := sdktest.Start(t, sdktest.Build(t, "./testdata/plugin"))
	s := newSandbox(t)
	before := snapshot(t, s.base)
	sc := s.context(t, writeArchive(t, "a.tar", tarOf(t, file("ok", "x"), file("caf\xe9", "x"))), nil)
	sc.StateDir = t.TempDir()
	_, err := client.Apply(t.Context(), sc, &sdktest.Recorder{})
	if err == nil || !strings.Contains(err.Error(), `"caf\xe9"`) || strings.Contains(err.Error(), "marshal") {
		t.Errorf("Apply: %v; want the refusal naming \"caf\\xe9\"", err)
	}
	if diff := cmp.Diff(before, snapshot(t, s.base)); diff != "" {
		t.Errorf("the sandbox changed (-before +after):\n%s", diff)
	}
}

// TestRestoreLinkNotUTF8: a symlink on disk whose target is not UTF-8,
// replaced by the archive, comes back byte for byte on rollback.
func TestRestoreLinkNotUTF8(t *testing.T) {
	s := newSandbox(t)
	os.MkdirAll(s.root+"/srv/app", 0o755)
	if err := os.Symlink("caf\xe9", s.root+"/srv/app/l"); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, s.base)
	sc := s.context(t, writeArchive(t, "a.tar", tarOf(t, link("l", "other"))), nil)
	sc.StateDir = t.TempDir()
	res, err := New().Apply(t.Context(), sc, nopReporter{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New().Rollback(t.Context(), sc, res.GetRollbackRecord()); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.Readlink(s.root + "/srv/app/l"); got != "caf\xe9" {
		t.Errorf("restored link to %q", got)
	}
	if diff := cmp.Diff(before, snapshot(t, s.base)); diff != "" {
		t.Errorf("(-before +after):\n%s", diff)
	}
}
