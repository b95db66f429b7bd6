package collector

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// swUnitEdgeRoot builds a unit tree with the cases the fixtures do not
// carry: runtime enablement, linked units, empty-file masks, masks
// without a unit file, dangling aliases, templated slices, instance links
// at the top level, drop-ins, .requires links and relative links.
func swUnitEdgeRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	file := func(rel, content string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, rel string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	const svc = "[Service]\nExecStart=/bin/true\n"
	lib, etc, run := "lib/systemd/system/", "etc/systemd/system/", "run/systemd/system/"
	file(lib+"rt.service", svc+"[Install]\nWantedBy=multi-user.target\n")
	link("/lib/systemd/system/rt.service", run+"multi-user.target.wants/rt.service")
	file("opt/app/app.service", svc+"[Install]\nWantedBy=multi-user.target\n")
	link("/opt/app/app.service", etc+"app.service")
	file(lib+"empty.service", "")
	link("/dev/null", etc+"nofile.service")
	link("/dev/null", run+"rtmask.service")
	file(lib+"rtmask.service", svc)
	link("/lib/systemd/system/missing.service", etc+"dangling.service")
	file(lib+"bad@.slice", "[Install]\nWantedBy=multi-user.target\n")
	file(lib+"tpl@.service", svc+"[Install]\nWantedBy=multi-user.target\nDefaultInstance=one\n")
	link("/lib/systemd/system/tpl@.service", etc+"multi-user.target.wants/tpl@one.service")
	link("/lib/systemd/system/tpl@.service", etc+"tpl@two.service")
	file(lib+"req.service", svc+"[Install]\nRequiredBy=multi-user.target\n")
	link("../../../lib/systemd/system/req.service", etc+"multi-user.target.requires/req.service")
	file(lib+"dropin.service", svc+"[Install]\nWantedBy=multi-user.target\n")
	file(etc+"dropin.service.d/override.conf", "[Install]\nWantedBy=\n")
	file(lib+"reset.service", svc+"[Install]\nWantedBy=multi-user.target\nWantedBy=\n")
	file(lib+"cont.service", svc+"[Install]\nWantedBy=a.target \\\n  b.target\n")
	file(lib+"vendor.service", svc)
	link("/lib/systemd/system/vendor.service", lib+"multi-user.target.wants/vendor.service")
	file(lib+"multi-user.target", "[Unit]\nDescription=Multi-User\n")
	file(lib+"notaunit.conf", "x")
	file(lib+"Invalid!.service", svc)
	file("usr/local/lib/systemd/system/local.timer", "[Timer]\nOnCalendar=daily\n[Install]\nWantedBy=timers.target\n")
	file("run/systemd/transient/session.scope", "[Scope]\n")
	file("run/systemd/generator.late/late.service", svc)
	return root
}

// swSystemctlStates runs `systemctl --root=ROOT list-unit-files` and
// returns unit name → state.
func swSystemctlStates(t *testing.T, root string) map[string]string {
	t.Helper()
	cmd := exec.Command("systemctl", "--root="+root, "list-unit-files", "--no-pager", "--no-legend")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("systemctl --root=%s list-unit-files: %v: %s", root, err, stderr.String())
	}
	states := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			states[f[0]] = f[1]
		}
	}
	return states
}

// TestServicesMatchSystemctl compares the unit-file states with what
// systemctl computes for the same tree: the fixtures, a tree of edge
// cases and the machine's own root.
func TestServicesMatchSystemctl(t *testing.T) {
	if _, err := exec.LookPath("systemctl"); err != nil {
		t.Fatal("systemctl not found: install systemd (.ci/run does)")
	}
	tests := []struct {
		name string
		root string
	}{
		{"debian-a", swFixtureRoot(t, "debian-a")},
		{"debian-b", swFixtureRoot(t, "debian-b")},
		{"edge cases", swUnitEdgeRoot(t)},
		{"host", "/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(tc.root, "lib/systemd/system")); err != nil {
				t.Fatalf("no unit files: %v", err)
			}
			want := swSystemctlStates(t, tc.root)
			out, _, err := swRun(t.Context(), Services{}, Env{Root: tc.root})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, u := range out.GetServices().GetUnits() {
				got[u.Name] = u.UnitFileState
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("unit-file states (-systemctl +collector):\n%s", diff)
			}
		})
	}
}

// TestServicesChange checks the one service debian-b disables.
func TestServicesChange(t *testing.T) {
	states := func(root string) map[string]string {
		out, _, err := swRun(t.Context(), Services{}, Env{Root: root})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, u := range out.GetServices().GetUnits() {
			m[u.Name] = u.UnitFileState
		}
		return m
	}
	a, b := states(swFixtureRoot(t, "debian-a")), states(swFixtureRoot(t, "debian-b"))
	changed := map[string]string{}
	for k, v := range b {
		if a[k] != v {
			changed[k] = a[k] + " → " + v
		}
	}
	if diff := cmp.Diff(map[string]string{"cron.service": "enabled → disabled"}, changed); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseInstallSection(t *testing.T) {
	tests := []struct {
		name string
		unit string
		in   string
		want installInfo
	}{
		{
			name: "all keys",
			unit: "a@.service",
			in:   "[Unit]\nWantedBy=ignored.target\n[Install]\nWantedBy=multi-user.target graphical.target\nRequiredBy=x.target\nAlias=b@.service\nAlso=c.socket\nDefaultInstance=one\n",
			want: installInfo{name: "a@.service", wantedBy: []string{"multi-user.target", "graphical.target"},
				requiredBy: []string{"x.target"}, aliases: []string{"b@.service"}, also: []string{"c.socket"}, defaultInstance: "one"},
		},
		{
			name: "empty assignment resets, comments, continuation",
			unit: "a.service",
			in:   "[Install]\n# WantedBy=no.target\n; Alias=no.service\nWantedBy=x.target\nWantedBy=\nWantedBy=y.target \\\n z.target\n",
			want: installInfo{name: "a.service", wantedBy: []string{"y.target", "z.target"}},
		},
		{
			name: "Alias ignored for mounts",
			unit: "srv.mount",
			in:   "[Install]\nAlias=other.mount\nWantedBy=local-fs.target\n",
			want: installInfo{name: "srv.mount", wantedBy: []string{"local-fs.target"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := installInfo{name: tc.unit}
			parseInstallSection([]byte(tc.in), &got)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(installInfo{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidUnitName(t *testing.T) {
	tests := map[string]bool{
		"ssh.service":         true,
		"getty@.service":      true,
		"getty@tty1.service":  true,
		"dev-sda1.device":     true,
		"a.b.c.target":        true,
		"x.target.wants":      false,
		"@.service":           false,
		"foo.conf":            false,
		"Invalid!.service":    false,
		".service":            false,
		"foo@bar@baz.service": true,
	}
	for name, want := range tests {
		if got := validUnitName(name); got != want {
			t.Errorf("validUnitName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestParseListUnits(t *testing.T) {
	in := "ssh.service loaded active running OpenBSD Secure Shell server\n" +
		"● nginx.service loaded failed failed A high performance web server\n" +
		"getty@tty1.service loaded active running Getty on tty1\n"
	want := map[string]string{"ssh.service": "active", "nginx.service": "failed", "getty@tty1.service": "active"}
	if diff := cmp.Diff(want, parseListUnits([]byte(in))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
