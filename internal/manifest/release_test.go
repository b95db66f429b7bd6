package manifest

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	pluginv1 "github.com/cairn-ops/cairn/proto/plugin/v1"
)

func TestLoadFull(t *testing.T) {
	m, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if m.Service != "shop" || m.Components[1].Digest != sum || m.Components[1].Path != "" {
		t.Errorf("service or components: %+v %+v", m.Service, m.Components)
	}
	wantExpect := Expect{
		Packages: []PackageExpectation{
			{Name: "webshop-assets", State: "present", Version: ">= 2.4.0", Line: 34},
			{Name: "legacy-shop", State: "absent", Line: 35},
		},
		Files: []FileExpectation{
			{Path: "/etc/webshop/shop.conf", SHA256: sum, Line: 37},
			{Path: "/usr/share/doc/webshop/operator.md", Artifact: "manual", Line: 38},
		},
		Services: []ServiceExpectation{
			{Name: "webshop.service", State: "enabled", Line: 40},
			{Name: "webshop.service", State: "active", Line: 41},
		},
		Hardware: []HardwareFact{
			{Fact: "memory.total_bytes", Op: ">=", Value: "16GiB", Line: 43},
			{Fact: "cpu.count", Op: ">=", Value: "4", Line: 44},
			{Fact: "disk.model", Op: "present", Value: "Samsung SSD 980", Line: 45},
		},
		Allow: []string{"packages/libwebshop*", "files/var/cache/webshop/*"},
	}
	if diff := cmp.Diff(wantExpect, m.Expect); diff != "" {
		t.Errorf("Expect (-want +got):\n%s", diff)
	}
	wantKE := []KnownError{
		{ID: "KE-1", Summary: "first request after start is slow", Symptom: "the homepage takes 3 s once after a restart",
			Workaround: "none needed; it warms its cache", Status: "workaround", Line: 50},
		{ID: "KE-2", Summary: "crashes on old kernels' NICs", Status: "open", Line: 55, Signature: &Signature{
			Packages: []PackageExpectation{{Name: "linux-image-amd64", State: "present", Version: "< 6.1", Line: 59}},
			Hardware: []HardwareFact{{Fact: "nic.model", Op: "present", Value: "RTL8111", Line: 60}},
		}},
	}
	if diff := cmp.Diff(wantKE, m.KnownErrors); diff != "" {
		t.Errorf("KnownErrors (-want +got):\n%s", diff)
	}
	if m.Notes != "# Web shop 2.4.0\n\n* new checkout page\n" {
		t.Errorf("Notes = %q", m.Notes)
	}
	if want := (SLA{MaxNodeDuration: 10 * time.Minute, MaxRolloutDuration: 2 * time.Hour, MinSuccessRate: 0.95}); m.SLA != want {
		t.Errorf("SLA = %+v, want %+v", m.SLA, want)
	}
	if m.Approvals.Required != 2 {
		t.Errorf("Approvals = %+v", m.Approvals)
	}
}

// TestParseUntrack: expect.untrack lists the tracked paths and patterns
// a release stops tracking, as written; they are part of the canonical
// manifest (the release digest covers them).
func TestParseUntrack(t *testing.T) {
	m, err := Parse([]byte(head+"expect:\n  files: [{path: /etc/new.conf}]\n  untrack: [/etc/old.conf, '/var/lib/shop/*.state']\n"), "release.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"/etc/old.conf", "/var/lib/shop/*.state"}, m.Expect.Untrack); diff != "" {
		t.Errorf("Untrack (-want +got):\n%s", diff)
	}
	c, err := m.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(c), `"untrack":["/etc/old.conf","/var/lib/shop/*.state"]`) {
		t.Errorf("canonical manifest lacks expect.untrack: %s", c)
	}
}

func TestVersionConstraint(t *testing.T) {
	tests := []struct {
		constraint, version string
		want                bool
	}{
		{"2.4.0", "2.4.0", true},
		{"2.4.0", "2.4.0-1", false},
		{"== 2.4.0", "2.4.0", true},
		{">= 2.4.0", "2.10.0", true},
		{">= 2.4.0", "2.4.0~rc1", false}, // ~ sorts before the release
		{"< 6.1", "6.0.12-1", true},
		{"> 1:0.9", "2.0", false}, // the epoch wins
		{"!= 1.0", "1.0", false},
		{"<=1.0", "1.0", true},
	}
	for _, tt := range tests {
		c, err := ParseVersionConstraint(tt.constraint)
		if err != nil {
			t.Fatalf("ParseVersionConstraint(%q): %v", tt.constraint, err)
		}
		if got := c.Matches(tt.version); got != tt.want {
			t.Errorf("%q matches %q = %v, want %v", tt.constraint, tt.version, got, tt.want)
		}
	}
	for _, bad := range []string{"", ">=", "v1", "=> 1.0", "1.0 2.0", "1:x"} {
		if _, err := ParseVersionConstraint(bad); err == nil {
			t.Errorf("ParseVersionConstraint(%q) accepted", bad)
		}
	}
}

func TestCanonical(t *testing.T) {
	m, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	// The same content written differently: flow style, keys reordered,
	// defaults spelt out, comments, another file name.
	raw, _ := os.ReadFile("testdata/full.yaml")
	other := strings.Replace(string(raw), "approvals:\n  required: 2\n", "approvals: {required: 2} # two people\n", 1)
	other = strings.Replace(other, "apiVersion: cairn/v1\nkind: Release\n", "kind: Release\napiVersion: cairn/v1\n", 1)
	other = strings.Replace(other, "    status: open\n", "", 1) // the default
	if other == string(raw) {
		t.Fatal("rewrites did not apply")
	}
	m2, err := Parse([]byte(other), "elsewhere/release.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got2, err := m2.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(got2) {
		t.Errorf("same content, different canonical forms:\n%s\n%s", got, got2)
	}
	var doc map[string]any
	if err := json.Unmarshal(got, &doc); err != nil {
		t.Fatal(err)
	}
	step := doc["steps"].([]any)[0].(map[string]any)
	if step["timeout"] != "10m0s" || step["params"].(map[string]any)["action"] != "install" {
		t.Errorf("step encodes as %v", step)
	}
	if sla := doc["sla"].(map[string]any); sla["max_node_duration"] != "10m0s" || sla["min_success_rate"] != 0.95 {
		t.Errorf("sla encodes as %v", sla)
	}
	for _, leak := range []string{"full.yaml", `"Line"`, `"line"`, "testdata"} {
		if strings.Contains(string(got), leak) {
			t.Errorf("canonical form contains %s: %s", leak, got)
		}
	}
	// A change of content changes it.
	m2.Steps[0].Params["action"] = "purge"
	got3, _ := m2.Canonical()
	if string(got3) == string(got) {
		t.Error("a changed parameter did not change the canonical form")
	}
}

func TestMergeDeclared(t *testing.T) {
	base := &Manifest{
		Components: []Component{{Name: "conf", Kind: "application", Path: "shop.conf", SHA256: sum}},
		Expect: Expect{
			Packages: []PackageExpectation{
				{Name: "legacy", State: "absent"},
				{Name: "shop", State: "present", Version: ">= 2.4.0"},
			},
			Files:    []FileExpectation{{Path: "/etc/shop.conf", Artifact: "conf"}},
			Services: []ServiceExpectation{{Name: "shop.service", State: "enabled"}},
			Allow:    []string{"packages/lib*"},
			Untrack:  []string{"/etc/shop-legacy.conf"},
		},
	}
	other := strings.Repeat("a", 64)
	pkg := func(name, state, version string) *pluginv1.Change {
		return &pluginv1.Change{Kind: "package", Name: name, State: state, Version: version}
	}
	tests := []struct {
		name     string
		declared []Declared
		want     Expect
		warnings []string
	}{
		{name: "nothing declared", want: base.Expect},
		{
			name:     "a dpkg install adds its package",
			declared: []Declared{{Step: "steps[0] (install)", Change: pkg("webshop-assets", "present", "1.0.0")}},
			want: Expect{
				Packages: append(append([]PackageExpectation{}, base.Expect.Packages...),
					PackageExpectation{Name: "webshop-assets", State: "present", Version: "1.0.0", DeclaredBy: "steps[0] (install)"}),
				Files: base.Expect.Files, Services: base.Expect.Services, Allow: base.Expect.Allow, Untrack: base.Expect.Untrack,
			},
		},
		{
			name: "the manifest wins, with warnings where they disagree",
			declared: []Declared{
				{Step: "steps[0] (a)", Change: pkg("legacy", "present", "1.0")},
				{Step: "steps[1] (b)", Change: pkg("shop", "present", "2.3.9")},
				{Step: "steps[2] (c)", Change: pkg("shop", "present", "2.5.0")},
				{Step: "steps[3] (d)", Change: &pluginv1.Change{Kind: "file", Name: "/etc/shop.conf", State: "present", Sha256: other}},
				{Step: "steps[4] (e)", Change: &pluginv1.Change{Kind: "service", Name: "shop.service", State: "masked"}},
			},
			want: base.Expect,
			warnings: []string{
				"steps[0] (a): declares package legacy present at 1.0, the manifest expects it absent; keeping the manifest's",
				"steps[1] (b): declares package shop at 2.3.9, the manifest expects version >= 2.4.0; keeping the manifest's",
				"steps[3] (d): declares file /etc/shop.conf with sha256 " + other + ", the manifest expects the content of component conf; keeping the manifest's",
				"steps[4] (e): declares service shop.service masked, the manifest expects it enabled; keeping the manifest's",
			},
		},
		{
			name: "agreeing declarations add nothing and warn nothing",
			declared: []Declared{
				{Step: "steps[0] (a)", Change: pkg("legacy", "absent", "")},
				{Step: "steps[1] (b)", Change: &pluginv1.Change{Kind: "file", Name: "/etc/shop.conf", State: "present", Sha256: sum}},
				{Step: "steps[2] (c)", Change: &pluginv1.Change{Kind: "service", Name: "shop.service", State: "enabled"}},
			},
			want: base.Expect,
		},
		{
			name: "files, services and a later step winning",
			declared: []Declared{
				{Step: "steps[0] (unpack)", Change: &pluginv1.Change{Kind: "file", Name: "/srv/shop/index.html", State: "present", Sha256: other}},
				{Step: "steps[1] (marker)", Change: &pluginv1.Change{Kind: "file", Name: "/srv/shop/.done", State: "present"}},
				{Step: "steps[2] (start)", Change: &pluginv1.Change{Kind: "service", Name: "shop.service", State: "active"}},
				{Step: "steps[3] (stop)", Change: &pluginv1.Change{Kind: "service", Name: "shop.service", State: "inactive"}},
			},
			want: Expect{
				Packages: base.Expect.Packages,
				Files: append(append([]FileExpectation{}, base.Expect.Files...),
					FileExpectation{Path: "/srv/shop/index.html", SHA256: other, DeclaredBy: "steps[0] (unpack)"},
					FileExpectation{Path: "/srv/shop/.done", DeclaredBy: "steps[1] (marker)"}),
				Services: append(append([]ServiceExpectation{}, base.Expect.Services...),
					ServiceExpectation{Name: "shop.service", State: "inactive", DeclaredBy: "steps[3] (stop)"}),
				Allow:   base.Expect.Allow,
				Untrack: base.Expect.Untrack,
			},
		},
		{
			name: "a declared file the release stops tracking is reported, not merged",
			declared: []Declared{
				{Step: "steps[0] (old)", Change: &pluginv1.Change{Kind: "file", Name: "/etc/shop-legacy.conf", State: "present"}},
			},
			want: base.Expect,
			warnings: []string{
				"steps[0] (old): declares file /etc/shop-legacy.conf, which expect.untrack stops tracking; not merged",
			},
		},
		{
			name: "what expect cannot state is reported, not merged",
			declared: []Declared{
				{Step: "steps[0] (a)", Change: &pluginv1.Change{Kind: "service", Name: "x.service", State: "unmasked"}},
				{Step: "steps[1] (b)", Change: &pluginv1.Change{Kind: "user", Name: "shop"}},
				{Step: "steps[2] (c)", Change: pkg("x", "half-installed", "")},
			},
			want: base.Expect,
			warnings: []string{
				`steps[0] (a): declares service x.service "unmasked", which expect cannot state; not merged`,
				`steps[1] (b): declares a change of kind "user", which expect cannot state; not merged`,
				`steps[2] (c): declares package x "half-installed", which expect cannot state; not merged`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := json.Marshal(base)
			got := MergeDeclared(base, tt.declared)
			if diff := cmp.Diff(tt.want, got.Expect); diff != "" {
				t.Errorf("Expect (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.warnings, got.Warnings); diff != "" {
				t.Errorf("Warnings (-want +got):\n%s", diff)
			}
			if after, _ := json.Marshal(base); string(after) != string(before) {
				t.Error("MergeDeclared modified the manifest")
			}
		})
	}
}
