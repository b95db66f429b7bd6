package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/plugins/sdk/sdktest"
)

// crashFixture is a root and a manifest whose steps change the root (a
// file replaced, a package installed, a large file and its directories
// created, an archive of 400 files extracted over a site it partly
// replaces) and whose last step fails, so that every run ends in a
// rollback.
type crashFixture struct {
	manifest  string
	artifacts string
	original  sdktest.Tree
}

// dpkgFiles is what dpkg keeps about packages; it changes on any run
// (status-old, available), so trees compare without it and the package
// is checked with dpkg-query.
var dpkgFiles = []string{"var/lib/dpkg", "var/log", "var/cache"}

func newCrashFixture(t *testing.T) *crashFixture {
	t.Helper()
	arts := t.TempDir()
	big := make([]byte, 16<<20)
	rand.Read(big)
	if err := os.WriteFile(filepath.Join(arts, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	deb, err := os.ReadFile(filepath.Join(artifactsDir(t), "cairn-itest-app_1.0.0_all.deb"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(arts, "app.deb"), deb, 0o644); err != nil {
		t.Fatal(err)
	}
	writeSiteArchive(t, filepath.Join(arts, "site.tar.gz"), 400)
	m := writeManifest(t, `components:
  - {name: app, kind: application, path: app.deb}
  - {name: big, kind: utility, path: big.bin}
  - {name: site, kind: application, path: site.tar.gz}
steps:
  - {name: conf, plugin: file, params: {path: /etc/hostname, content: "renamed\n"}}
  - {name: pkg, plugin: dpkg, params: {action: install, artifact: app}, needs_artifacts: [app]}
  - {name: big, plugin: file, params: {path: /srv/data/blobs/big.bin, artifact: big}, needs_artifacts: [big]}
  - {name: site, plugin: archive, params: {artifact: site, dest: /srv/www}, needs_artifacts: [site]}
  - {name: more, plugin: file, params: {path: /etc/cairn-crash.conf, content: "x = 1\n"}}
  - {name: boom, plugin: file, params: {path: /etc/hostname/not-a-dir, content: "never\n"}}
`)
	return &crashFixture{manifest: m, artifacts: arts}
}

// root makes a fresh Debian-like root and remembers how it looked. The
// site is there already in part: the archive replaces every fifth page
// (so its rollback restores backups) and a symlink.
func (f *crashFixture) root(t *testing.T) string {
	t.Helper()
	root := composeRoot(t, swFixture)
	for i := 0; i < 400; i += 5 {
		p := filepath.Join(root, fmt.Sprintf("srv/www/site/d%02d/page%03d.html", i%20, i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(fmt.Sprintf("old page %d\n", i)), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("d00", filepath.Join(root, "srv/www/site/current")); err != nil {
		t.Fatal(err)
	}
	tree, err := sdktest.Snapshot(root, dpkgFiles...)
	if err != nil {
		t.Fatal(err)
	}
	f.original = tree
	return root
}

// check says whether root is as it was before any run: the same tree,
// the package not installed, no temporary file left anywhere.
func (f *crashFixture) check(t *testing.T, root, when string) {
	t.Helper()
	got, err := sdktest.Snapshot(root, dpkgFiles...)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(f.original, got); diff != "" {
		t.Errorf("%s: the root is not as it was before (-before +after):\n%s", when, diff)
	}
	out, _ := exec.Command("dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W", "-f=${Status}", "cairn-itest-app").CombinedOutput()
	if strings.Contains(string(out), " installed") {
		t.Errorf("%s: cairn-itest-app is still %s", when, out)
	}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && (strings.Contains(d.Name(), ".cairn-tmp") || strings.HasPrefix(d.Name(), ".cairn-archive-")) {
			t.Errorf("%s: temporary file %s left behind", when, p)
		}
		return nil
	})
}

// TestApplyKilledAnywhereUndoesEverything kills the agent with SIGKILL at
// points spread over a whole run, then applies again: every attempt ends
// with the failing last step and the rollback, and the root is exactly
// as it was, whether the kill came before, inside or after a step's
// change, or between the change and the journal's record of it.
func TestApplyKilledAnywhereUndoesEverything(t *testing.T) {
	f := newCrashFixture(t)

	// A run without a kill, to time the window and check the baseline.
	root, data := f.root(t), t.TempDir()
	began := time.Now()
	r := agent(t, "apply", "-f", f.manifest, "--artifacts", f.artifacts, "--root", root, "--data-dir", data)
	whole := time.Since(began)
	if r.code != 1 || !strings.Contains(r.stderr, "(rolled back)") {
		t.Fatalf("apply: exit %d, want 1 and rolled back\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	f.check(t, root, "after a run without a kill")

	const trials = 12
	for i := range trials {
		delay := whole * time.Duration(i) / trials
		t.Run(fmt.Sprintf("kill_after_%s", delay.Round(time.Millisecond)), func(t *testing.T) {
			root, data := f.root(t), t.TempDir()
			cmd, out := startApply(t, "-f", f.manifest, "--artifacts", f.artifacts, "--root", root, "--data-dir", data)
			time.Sleep(delay)
			crash(t, cmd)
			r := agent(t, "apply", "-f", f.manifest, "--artifacts", f.artifacts, "--root", root, "--data-dir", data)
			if r.code != 1 || !strings.Contains(r.stderr, "(rolled back)") {
				t.Fatalf("apply after the kill: exit %d, want 1 and rolled back\nfirst run:\n%s\nsecond run:\n%s\n%s",
					r.code, out, r.stdout, r.stderr)
			}
			f.check(t, root, "after the kill and a second apply")
			if t.Failed() {
				t.Logf("first run:\n%s\nsecond run:\n%s\n%s", bytes.TrimSpace(out.Bytes()), r.stdout, r.stderr)
			}
		})
	}
}

// writeSiteArchive writes a tar.gz of n small files in nested
// directories, and a symlink site/current to d01.
func writeSiteArchive(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	for i := range n {
		body := fmt.Sprintf("page %d\n", i)
		h := &tar.Header{Name: fmt.Sprintf("site/d%02d/page%03d.html", i%20, i), Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "site/current", Linkname: "d01", Typeflag: tar.TypeSymlink}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []io.Closer{tw, zw, f} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
