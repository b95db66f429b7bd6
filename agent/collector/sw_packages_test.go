package collector

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// TestDpkgMatchesDpkgQuery checks the status parser against dpkg-query
// itself, on the fixtures and on the real host's database: the installed
// packages (${db:Status-Status} = installed), their ${binary:Package}
// names and versions must be the same.
func TestDpkgMatchesDpkgQuery(t *testing.T) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Fatal("dpkg-query not found: install dpkg (.ci/run does)")
	}
	nativeOut, err := exec.Command("dpkg", "--print-architecture").Output()
	if err != nil {
		t.Fatalf("dpkg --print-architecture: %v", err)
	}
	native := strings.TrimSpace(string(nativeOut))

	tests := []struct {
		name string
		root string
	}{
		{"debian-a", swFixtureRoot(t, "debian-a")},
		{"debian-b", swFixtureRoot(t, "debian-b")},
		{"host", "/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			admindir := Env{Root: tc.root}.Path(dpkgAdminDir)
			if _, err := os.Stat(filepath.Join(admindir, "status")); err != nil {
				t.Fatalf("no dpkg database: %v", err)
			}
			cmd := exec.Command("dpkg-query", "--admindir="+admindir, "-W",
				"-f=${db:Status-Status}\t${binary:Package}\t${Package}\t${Architecture}\t${Version}\n")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("dpkg-query: %v: %s", err, stderr.String())
			}
			var wantBinary, wantPkgs []string
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				f := strings.Split(line, "\t")
				if len(f) != 5 {
					t.Fatalf("dpkg-query line %q", line)
				}
				if f[0] != "installed" {
					continue
				}
				wantBinary = append(wantBinary, f[1]+" "+f[4])
				wantPkgs = append(wantPkgs, "dpkg/"+f[2]+"/"+f[3]+" "+f[4])
			}

			pkgs, err := readDpkgDatabase(admindir)
			if err != nil {
				t.Fatalf("readDpkgDatabase: %v", err)
			}
			var gotBinary []string
			for _, p := range pkgs {
				if p.Installed() {
					gotBinary = append(gotBinary, p.binaryPackage(native)+" "+p.Version)
				}
			}
			sort.Strings(wantBinary)
			sort.Strings(gotBinary)
			if diff := cmp.Diff(wantBinary, gotBinary); diff != "" {
				t.Errorf("installed ${binary:Package} ${Version} (-dpkg-query +parser):\n%s", diff)
			}

			audit, _, err := swRun(t.Context(), Packages{}, Env{Root: tc.root})
			if err != nil {
				t.Fatalf("Packages.Collect: %v", err)
			}
			var gotPkgs []string
			for _, p := range audit.GetPackages().GetPackages() {
				if p.Manager == "dpkg" {
					gotPkgs = append(gotPkgs, p.Key+" "+p.Version)
				}
			}
			sort.Strings(wantPkgs)
			if diff := cmp.Diff(wantPkgs, gotPkgs); diff != "" {
				t.Errorf("package keys and versions (-dpkg-query +collector):\n%s", diff)
			}
			if len(gotPkgs) == 0 {
				t.Errorf("no installed packages")
			}
		})
	}
}

func TestPackagesCollector(t *testing.T) {
	pkg := func(manager, name, version, arch string) *inventoryv1.Package {
		return &inventoryv1.Package{Key: manager + "/" + name + "/" + arch, Manager: manager, Name: name, Version: version, Architecture: arch}
	}
	tests := []struct {
		name string
		root string
		want *inventoryv1.Packages
	}{
		{
			name: "apk",
			root: swFixtureRoot(t, "alpine"),
			want: &inventoryv1.Packages{
				Managers: []string{"apk"},
				Packages: []*inventoryv1.Package{
					pkg("apk", "alpine-baselayout-data", "3.4.3-r2", "x86_64"),
					pkg("apk", "busybox", "1.36.1-r15", "x86_64"),
					pkg("apk", "musl", "1.2.4-r2", "x86_64"),
				},
			},
		},
		{
			name: "empty dpkg database",
			root: swWriteTree(t, map[string]string{"var/lib/dpkg/status": ""}),
			want: &inventoryv1.Packages{Managers: []string{"dpkg"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, warns, err := swRun(t.Context(), Packages{}, Env{Root: tc.root})
			if err != nil {
				t.Fatal(err)
			}
			if len(warns) > 0 {
				t.Errorf("warnings: %v", warns)
			}
			if diff := cmp.Diff(tc.want, out.GetPackages(), protocmp.Transform()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestPackagesChange checks what debian-b changes against debian-a: one
// package upgraded, one added.
func TestPackagesChange(t *testing.T) {
	versions := func(root string) map[string]string {
		out, _, err := swRun(t.Context(), Packages{}, Env{Root: root})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, p := range out.GetPackages().GetPackages() {
			m[p.Key] = p.Version
		}
		return m
	}
	a, b := versions(swFixtureRoot(t, "debian-a")), versions(swFixtureRoot(t, "debian-b"))
	changed := map[string][2]string{}
	for k, v := range b {
		if a[k] != v {
			changed[k] = [2]string{a[k], v}
		}
	}
	for k, v := range a {
		if _, ok := b[k]; !ok {
			changed[k] = [2]string{v, ""}
		}
	}
	want := map[string][2]string{
		"dpkg/openssh-server/amd64": {"1:9.2p1-2+deb12u2", "1:9.2p1-2+deb12u3"},
		"dpkg/jq/amd64":             {"", "1.6-2.1"},
	}
	if diff := cmp.Diff(want, changed); diff != "" {
		t.Errorf("debian-a → debian-b (-want +got):\n%s", diff)
	}
}

// TestPackagesNoDatabase: a root without any package database is an
// error, never an empty list that would read as "all packages removed".
func TestPackagesNoDatabase(t *testing.T) {
	root := swWriteTree(t, map[string]string{"var/lib/dpkg/available": "", "etc/hostname": "x\n"})
	out, _, err := swRun(t.Context(), Packages{}, Env{Root: root})
	if !errors.Is(err, ErrNoSource) {
		t.Fatalf("err = %v, want ErrNoSource", err)
	}
	want := "no package database under " + root + " (looked for dpkg, rpm, apk)"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("err = %q, want it to say %q", err, want)
	}
	if out.GetPackages() != nil {
		t.Error("section set despite the error")
	}
}

func TestPackagesMalformedStatus(t *testing.T) {
	root := swFixtureRoot(t, "dpkg-malformed")
	_, _, err := swRun(t.Context(), Packages{}, Env{Root: root})
	if err == nil {
		t.Fatal("no error for a malformed status file")
	}
	if !errors.Is(err, ErrMalformedDatabase) {
		t.Errorf("error %v does not wrap ErrMalformedDatabase", err)
	}
	file := filepath.Join(root, "var/lib/dpkg/status")
	for _, want := range []string{file, "line 8"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// TestPackagesRPMWithoutBinary: an rpm database with no rpm binary on PATH
// is a warning, and rpm is not claimed as a manager.
func TestPackagesRPMWithoutBinary(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "var/lib/rpm"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", t.TempDir())
	out, warns, err := swRun(t.Context(), Packages{}, Env{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "rpm") {
		t.Errorf("warnings %q, want one about rpm", warns)
	}
	if diff := cmp.Diff(&inventoryv1.Packages{}, out.GetPackages(), protocmp.Transform()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseRPMOutput(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []rpmPackage
		wantErr bool
	}{
		{
			name: "epoch and none",
			in:   "bash\t(none)\t5.2.15\t3.fc38\tx86_64\nshadow-utils\t2\t4.13\t6.fc38\tx86_64\n",
			want: []rpmPackage{{"bash", "5.2.15-3.fc38", "x86_64"}, {"shadow-utils", "2:4.13-6.fc38", "x86_64"}},
		},
		{
			name: "gpg-pubkey skipped",
			in:   "gpg-pubkey\t(none)\teb10b464\t6202d9c6\t(none)\ntzdata\t(none)\t2023c\t1.fc38\tnoarch\n",
			want: []rpmPackage{{"tzdata", "2023c-1.fc38", "noarch"}},
		},
		{name: "short line", in: "bash\t5.2\n", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRPMOutput([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(rpmPackage{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseDpkgStatus(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []dpkgPackage
	}{
		{
			name: "continuation lines and folded fields",
			in: "Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n" +
				"Description: x\n more\n .\n end\nConffiles:\n /etc/a 123\n\n",
			want: []dpkgPackage{{Name: "a", Version: "1", Arch: "amd64", Want: "install", Flag: "ok", Status: "installed"}},
		},
		{
			name: "case-insensitive field names, extra whitespace, CRLF, upper-case name",
			in:   "package:  Foo_Bar \r\nSTATUS:  hold  ok  installed \r\narchitecture: all\r\nversion:   2:1.0-1 \r\n\r\n",
			want: []dpkgPackage{{Name: "foo_bar", Version: "2:1.0-1", Arch: "all", Want: "hold", Flag: "ok", Status: "installed"}},
		},
		{
			name: "blank lines between and around stanzas, no final newline",
			in:   "\n\n  \nPackage: a\nStatus: purge ok not-installed\n\n\n\nPackage: b\nStatus: deinstall ok config-files\nVersion: 3",
			want: []dpkgPackage{
				{Name: "a", Want: "purge", Flag: "ok", Status: "not-installed"},
				{Name: "b", Version: "3", Want: "deinstall", Flag: "ok", Status: "config-files"},
			},
		},
		{
			name: "no Status means not installed",
			in:   "Package: a\nVersion: 1\n",
			want: []dpkgPackage{{Name: "a", Version: "1", Want: "unknown", Flag: "ok", Status: "not-installed"}},
		},
		{
			name: "multi-arch same",
			in:   "Package: libc6\nStatus: install ok installed\nArchitecture: i386\nMulti-Arch: same\nVersion: 2.36\n",
			want: []dpkgPackage{{Name: "libc6", Version: "2.36", Arch: "i386", MultiArch: "same", Want: "install", Flag: "ok", Status: "installed"}},
		},
		{name: "empty", in: "", want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []dpkgPackage
			err := parseDpkgStatus(strings.NewReader(tc.in), "status", func(p dpkgPackage) error {
				got = append(got, p)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseDpkgStatusErrors(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantLine string
	}{
		{"line without colon", "Package: a\nStatus: install ok installed\nbogus\n", "line 3"},
		{"continuation before any field", " cont\nPackage: a\n", "line 1"},
		{"no Package", "Package: a\n\nStatus: install ok installed\nVersion: 1\n\n", "no Package field"},
		{"bad status word", "Package: a\nStatus: install ok bogus\nVersion: 1\n\n", "invalid Status"},
		{"two-word status", "Package: a\nStatus: install ok\n\n", "not three words"},
		{"installed without version", "Package: a\nStatus: install ok installed\n\n", "has no Version"},
		{"duplicate field", "Package: a\nVersion: 1\nversion: 2\n", "line 3"},
		{"version with space", "Package: a\nVersion: 1 2\n", "line 2"},
		{"same package twice", "Package: a\nArchitecture: amd64\n\nPackage: a\nArchitecture: amd64\n", "listed twice"},
		{"empty field name", "Package: a\n: x\n", "line 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := parseDpkgStatus(strings.NewReader(tc.in), "/x/status", func(dpkgPackage) error { return nil })
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrMalformedDatabase) {
				t.Errorf("%v does not wrap ErrMalformedDatabase", err)
			}
			for _, want := range []string{"/x/status", tc.wantLine} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestReadDpkgDatabaseUpdates(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, s string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, rel), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("status", "Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\n")
	write("updates/0010", "Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 3\n\n")
	write("updates/0002", "Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2\n\n")
	write("updates/tmp.i", "garbage")
	got, err := readDpkgDatabase(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []dpkgPackage{{Name: "a", Version: "3", Arch: "amd64", Want: "install", Flag: "ok", Status: "installed"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// FuzzParseDpkgStatus checks that no input panics the parser and that
// what it accepts is consistent: a name on every stanza, a version on
// every installed package, and errors that wrap ErrMalformedDatabase.
func FuzzParseDpkgStatus(f *testing.F) {
	for _, root := range []string{"debian-a", "debian-b", "dpkg-malformed"} {
		b, err := os.ReadFile(filepath.Join("testdata", "sw", root, "var/lib/dpkg/status"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		err := parseDpkgStatus(bytes.NewReader(b), "status", func(p dpkgPackage) error {
			n++
			if p.Name == "" {
				t.Errorf("stanza without name accepted")
			}
			if p.Installed() && p.Version == "" {
				t.Errorf("installed package %q without version accepted", p.Name)
			}
			if strings.ContainsAny(p.Name+p.Version+p.Arch, "\n") {
				t.Errorf("newline in a value: %+v", p)
			}
			return nil
		})
		if err != nil && !errors.Is(err, ErrMalformedDatabase) && !strings.Contains(err.Error(), "token too long") {
			t.Errorf("error %v does not wrap ErrMalformedDatabase", err)
		}
	})
}

// swGenerateStatus returns a dpkg status file of n installed packages
// with realistic stanzas.
func swGenerateStatus(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "Package: package-%05d\nStatus: install ok installed\nPriority: optional\nSection: libs\n"+
			"Installed-Size: %d\nMaintainer: Someone <someone@example.org>\nArchitecture: amd64\nMulti-Arch: same\n"+
			"Source: source-%d\nVersion: 1:%d.%d-%d+deb12u1\nDepends: libc6 (>= 2.34), zlib1g (>= 1:1.2.0)\n"+
			"Conffiles:\n /etc/package-%05d.conf 0123456789abcdef0123456789abcdef\n"+
			"Description: generated package %d\n A long description line that goes on for a while to look real.\n .\n More.\n\n",
			i, i*7, i, i%10, i%100, i%7, i, i)
	}
	return b.Bytes()
}

func BenchmarkParseDpkgStatus(b *testing.B) {
	data := swGenerateStatus(5000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		err := parseDpkgStatus(bytes.NewReader(data), "status", func(p dpkgPackage) error {
			if p.Installed() {
				n++
			}
			return nil
		})
		if err != nil || n != 5000 {
			b.Fatalf("parse: %d packages, %v", n, err)
		}
	}
}
