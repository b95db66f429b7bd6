package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/plugins/sdk"
	"github.com/cairn-ops/cairn/plugins/sdk/sdktest"
)

// sandbox is a temporary root with a sibling "outside" directory and a
// cache directory, all under one base so that a walk of the base sees any
// escape.
type sandbox struct {
	base, root, outside, cache string
}

func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	base := t.TempDir()
	s := &sandbox{base: base, root: filepath.Join(base, "root"), outside: filepath.Join(base, "outside"), cache: filepath.Join(base, "cache")}
	for _, d := range []string{s.root + "/etc", s.outside, s.cache} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(s.root+"/etc/passwd", []byte("root:x:0:0::/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *sandbox) context(t *testing.T, archive string, params map[string]any) *sdk.StepContext {
	t.Helper()
	abs, err := filepath.Abs(archive)
	if err != nil {
		t.Fatal(err)
	}
	p := map[string]any{"artifact": "app", "dest": "/srv/app"}
	for k, v := range params {
		p[k] = v
	}
	st, err := sdk.ParamsOf(p)
	if err != nil {
		t.Fatal(err)
	}
	return &sdk.StepContext{RootDir: s.root, Params: st, Artifacts: map[string]string{"app": abs},
		IdempotencyKey: "rel-1/step-1", CacheDir: s.cache, Step: "unpack"}
}

func snapshot(t *testing.T, dir string) sdktest.Tree {
	t.Helper()
	tree, err := sdktest.Snapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

type nopReporter struct{}

func (nopReporter) Log(string, string)       {}
func (nopReporter) Progress(float64, string) {}

// badEntries names, per malicious archive (without its extension), the
// member its refusal must name.
var badEntries = map[string]string{
	"dotdot":             "../cairn-escape-dotdot",
	"dotdot-deep":        "a/b/../../../cairn-escape-deep",
	"absolute":           "/tmp/cairn-escape-absolute",
	"symlink-etc":        "etc",
	"symlink-relative":   "d/up",
	"symlink-chain":      "d/y",
	"write-through-link": "lnk/cairn-through-link",
	"dot-file":           ".",
	"long-name":          strings.Repeat(strings.Repeat("a", 200)+"/"+strings.Repeat("b", 200)+"/", 11) + "cairn-long",
	"long-element":       strings.Repeat("e", 300),
	"backslash":          `..\..\cairn-escape-backslash`,
	"hardlink-etc":       "passwd",
	"hardlink-outside":   "h",
	"hardlink-missing":   "h",
	"device":             "cairn-null",
	"block-device":       "cairn-sda",
	"fifo":               "cairn-fifo",
	"empty-name":         "",
	"duplicate-link":     "f",
}

// TestMaliciousCorpus: every archive in testdata/malicious is refused
// whole, naming its bad member, and nothing appears or changes anywhere
// outside the destination — nor inside it.
func TestMaliciousCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/malicious/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	for _, file := range files {
		base := filepath.Base(file)
		stem := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(base, ".gz"), ".tar"), ".zip")
		bad, ok := badEntries[stem]
		if !ok {
			t.Errorf("%s: no expected bad entry in badEntries", file)
			continue
		}
		for _, destExists := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/dest_exists=%v", base, destExists), func(t *testing.T) {
				s := newSandbox(t)
				if destExists {
					if err := os.MkdirAll(s.root+"/srv/app/sub", 0o755); err != nil {
						t.Fatal(err)
					}
				}
				before := snapshot(t, s.base)
				sc := s.context(t, file, nil)
				p := New()
				_, planErr := p.Plan(t.Context(), sc)
				_, applyErr := p.Apply(t.Context(), sc, nopReporter{})
				v, verifyErr := p.Verify(t.Context(), sc)
				for name, err := range map[string]error{"Plan": planErr, "Apply": applyErr, "Verify": verifyErr} {
					if !errors.Is(err, ErrUnsafeEntry) {
						t.Errorf("%s: %v; want ErrUnsafeEntry", name, err)
						continue
					}
					if want := fmt.Sprintf("%q", shorten(bad)); !strings.Contains(err.Error(), want) {
						t.Errorf("%s: %v; want it to name %s", name, err, want)
					}
				}
				if v.GetPassed() {
					t.Error("Verify passed")
				}
				if diff := cmp.Diff(before, snapshot(t, s.base)); diff != "" {
					t.Errorf("the sandbox changed (-before +after):\n%s", diff)
				}
				for _, p := range []string{"/tmp/cairn-escape-absolute", "/etc/cairn-escape-symlink", "/cairn-escape-chain"} {
					if _, err := os.Lstat(p); err == nil {
						t.Errorf("%s exists on the host", p)
					}
				}
			})
		}
	}
}

// TestGood extracts good archives and checks the tree, modes and links,
// idempotence, Verify and Rollback.
func TestGood(t *testing.T) {
	want := sdktest.Tree{
		"README":            {Mode: "-rw-r--r--", SHA256: sha("read me\n")},
		"bin":               {Mode: "drwxr-xr-x"},
		"bin/run":           {Mode: "-rwxr-xr-x", SHA256: sha("#!/bin/sh\necho run\n")},
		"current":           {Mode: "Lrwxrwxrwx", Link: "bin/run"},
		"etc":               {Mode: "drwxr-xr-x"},
		"etc/secret.conf":   {Mode: "-rw-------", SHA256: sha("token=1\n")},
		"lib":               {Mode: "drwxr-xr-x"},
		"lib/deep":          {Mode: "drwxr-xr-x"},
		"lib/deep/data.txt": {Mode: "-rw-r--r--", SHA256: sha("data\n")},
		"lib/up":            {Mode: "Lrwxrwxrwx", Link: "../etc"},
	}
	withLink := sdktest.Tree{"README.link": {Mode: "-rw-r--r--", SHA256: sha("read me\n")}}
	for k, v := range want {
		withLink[k] = v
	}
	tests := []struct {
		file   string
		params map[string]any
		want   sdktest.Tree
	}{
		{"app.tar", map[string]any{"strip_components": 1}, withLink},
		{"app.tar.gz", map[string]any{"strip_components": 1, "format": "tar.gz"}, withLink},
		{"app.zip", map[string]any{"strip_components": 1}, want},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			s := newSandbox(t)
			before := snapshot(t, s.base)
			sc := s.context(t, "testdata/good/"+tt.file, tt.params)
			p := New()
			plan, err := p.Plan(t.Context(), sc)
			if err != nil {
				t.Fatal(err)
			}
			if !plan.GetWouldChange() || len(plan.GetChanges()) == 0 {
				t.Errorf("Plan: %v", plan)
			}
			res, err := p.Apply(t.Context(), sc, nopReporter{})
			if err != nil {
				t.Fatal(err)
			}
			if !res.GetChanged() {
				t.Error("Apply: changed=false")
			}
			if diff := cmp.Diff(tt.want, snapshot(t, s.root+"/srv/app")); diff != "" {
				t.Errorf("extracted tree (-want +got):\n%s", diff)
			}
			again, err := p.Apply(t.Context(), sc, nopReporter{})
			if err != nil || again.GetChanged() {
				t.Errorf("second Apply: changed=%v, %v", again.GetChanged(), err)
			}
			if v, err := p.Verify(t.Context(), sc); err != nil || !v.GetPassed() {
				t.Errorf("Verify: %v, %v", v, err)
			}
			if err := os.WriteFile(s.root+"/srv/app/README", []byte("edited"), 0o644); err != nil {
				t.Fatal(err)
			}
			if v, err := p.Verify(t.Context(), sc); err != nil || v.GetPassed() || !strings.Contains(v.GetEvidence(), "/srv/app/README differs") {
				t.Errorf("Verify after an edit: %v, %v", v, err)
			}
			if _, err := p.Rollback(t.Context(), sc, res.GetRollbackRecord()); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(before, snapshot(t, s.base)); diff != "" {
				t.Errorf("Rollback left (-before +after):\n%s", diff)
			}
		})
	}
}

// TestReplaceAndRollback: Apply over existing files keeps their previous
// content under the cache dir, and Rollback restores it.
func TestReplaceAndRollback(t *testing.T) {
	s := newSandbox(t)
	p := New()
	first, err := p.Apply(t.Context(), s.context(t, "testdata/good/app.tar", map[string]any{"strip_components": 1}), nopReporter{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.root+"/srv/app/keep.txt", []byte("mine"), 0o640); err != nil {
		t.Fatal(err)
	}
	mid := snapshot(t, s.root)
	sc := s.context(t, "testdata/good/app2.tar", map[string]any{"strip_components": 1})
	sc.IdempotencyKey = "rel-2"
	res, err := p.Apply(t.Context(), sc, nopReporter{})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(s.root + "/srv/app/README")
	if string(got) != "read me, version 2\n" {
		t.Errorf("README = %q", got)
	}
	if _, err := os.Stat(filepath.Join(s.cache, "rel-2")); err != nil {
		t.Errorf("no backup under the cache dir: %v", err)
	}
	if _, err := p.Rollback(t.Context(), sc, res.GetRollbackRecord()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(mid, snapshot(t, s.root)); diff != "" {
		t.Errorf("Rollback of the second Apply (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(s.cache, "rel-2")); !os.IsNotExist(err) {
		t.Errorf("backup dir left after rollback: %v", err)
	}
	if _, err := p.Rollback(t.Context(), s.context(t, "testdata/good/app.tar", nil), first.GetRollbackRecord()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.root + "/srv/app/keep.txt"); err != nil {
		t.Errorf("Rollback removed a file it did not create: %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]any
		fields []string
	}{
		{"ok", map[string]any{"mode_mask": "0755"}, nil},
		{"mask number", map[string]any{"mode_mask": 493}, nil},
		{"relative dest", map[string]any{"dest": "srv"}, []string{"dest"}},
		{"dotdot dest", map[string]any{"dest": "/srv/../etc"}, []string{"dest"}},
		{"bad format", map[string]any{"format": "rar"}, []string{"format"}},
		{"negative strip", map[string]any{"strip_components": -1}, []string{"strip_components"}},
		{"unknown artifact", map[string]any{"artifact": "nope"}, []string{"artifact"}},
		{"unknown param", map[string]any{"owner": "root"}, []string{"owner"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
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

func TestExpiredDeadline(t *testing.T) {
	s := newSandbox(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := New().Apply(ctx, s.context(t, "testdata/good/app.tar", nil), nopReporter{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Apply: %v; want context.Canceled", err)
	}
}

func conformance(t *testing.T) sdktest.Cases {
	return sdktest.Cases{
		Context: func(t *testing.T) *sdk.StepContext {
			s := newSandbox(t)
			return s.context(t, "testdata/good/app.tar.gz", map[string]any{"strip_components": 1})
		},
		Invalid: []sdktest.Invalid{
			{Name: "relative dest", Params: map[string]any{"artifact": "app", "dest": "srv"}, Field: "dest"},
			{Name: "bad format", Params: map[string]any{"artifact": "app", "dest": "/srv", "format": "rar"}, Field: "format"},
		},
	}
}

func TestConformance(t *testing.T) {
	sdktest.Run(t, New(), conformance(t))
}

// TestConformanceProcess runs the same checks over the real plugin
// process boundary.
func TestConformanceProcess(t *testing.T) {
	sdktest.RunBinary(t, sdktest.Build(t, "./testdata/plugin"), conformance(t))
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
