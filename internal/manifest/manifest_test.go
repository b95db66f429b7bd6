package manifest

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestLoad(t *testing.T) {
	m, err := Load("testdata/release.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Manifest{
		APIVersion:  "cairn/v1",
		Kind:        "Release",
		Name:        "webshop",
		Version:     "1.4.0-rc.1",
		Description: "the web shop",
		Components: []Component{
			{Name: "site", Kind: "application", Path: "site.tar.gz", SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Line: 7},
			{Name: "docs", Kind: "documentation", Path: "docs/notes.txt", Line: 11},
		},
		Steps: []Step{
			{List: "steps", Index: 0, Name: "unpack", Plugin: "archive", Line: 13, Timeout: 2 * time.Minute,
				Params:         map[string]any{"artifact": "site", "dest": "/srv/webshop", "mode": int64(0o755)},
				NeedsArtifacts: []string{"site"}},
			{List: "steps", Index: 1, Name: "marker", Plugin: "exec", Line: 21, Timeout: DefaultStepTimeout, ContinueOnError: true,
				Params: map[string]any{
					"argv":       []any{"/usr/bin/touch", "/tmp/x"},
					"env":        map[string]any{"LANG": "C"},
					"exit_codes": []any{int64(0), int64(1)},
					"ratio":      0.5,
					"check":      true,
					"nothing":    nil,
				}},
		},
		Verify: []Step{
			{List: "verify", Index: 0, Name: "homepage", Plugin: "httpcheck", Line: 32, Timeout: DefaultVerifyTimeout,
				Params: map[string]any{"url": "http://localhost:8080/"}},
		},
		Rollback: []Step{
			{List: "rollback", Index: 0, Name: "marker", Plugin: "exec", Line: 36, Timeout: DefaultStepTimeout,
				Params: map[string]any{"argv": []any{"/bin/rm", "-f", "/tmp/x"}}},
		},
		Approvals: Approvals{Required: DefaultApprovals},
		File:      "testdata/release.yaml",
		Dir:       "testdata",
	}
	if diff := cmp.Diff(want, m, cmpopts.IgnoreFields(Manifest{}, "Raw"), cmpopts.IgnoreUnexported(Step{})); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
	raw, _ := os.ReadFile("testdata/release.yaml")
	if string(m.Raw) != string(raw) {
		t.Error("Raw is not the file's bytes")
	}
	lines := map[string]int{"argv": 24, "argv[1]": 24, "env.LANG": 25, "env.NOPE": 25, "nope": 24, "": 24}
	for field, want := range lines {
		if got := m.Steps[1].ParamLine(field); got != want {
			t.Errorf("ParamLine(%q) = %d, want %d", field, got, want)
		}
	}
}

const head = "apiVersion: cairn/v1\nkind: Release\nname: w\nversion: 1.0.0\n"

const sum = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // "line: field: message" prefixes
	}{
		{"empty", "", []string{"0: empty file"}},
		{"component path leaving the directory", head + "components:\n  - {name: secret, kind: documentation, path: ../../outside-secret.txt}\n", []string{
			`6: components[0].path: component secret: "../../outside-secret.txt" leaves the manifest's directory`}},
		{"over the size limit", head + "notes: \"" + strings.Repeat("x", MaxBytes) + "\"\n", []string{"0: release manifest: larger than 1 MiB (limit)"}},
		{"not a mapping", "- a\n- b\n", []string{"1: a manifest is a mapping"}},
		{"syntax", "name: [\n", []string{"1: did not find expected node content"}},
		{"missing everything", "description: x\n", []string{
			"1: apiVersion: required", "1: kind: required", "1: name: required", "1: version: required"}},
		{"wrong api and kind", "apiVersion: cairn/v2\nkind: Rollout\nname: w\nversion: 1.0.0\n", []string{
			`1: apiVersion: "cairn/v2" is not supported`, `2: kind: "Rollout" is not supported`}},
		{"bad version", "apiVersion: cairn/v1\nkind: Release\nname: w\nversion: 1.0\n", []string{
			"4: version: must be a string (quote it"}},
		{"not semver", "apiVersion: cairn/v1\nkind: Release\nname: w\nversion: v1.0.0\n", []string{
			`4: version: "v1.0.0" is not a semantic version`}},
		{"unknown top-level key", head + "step: []\n", []string{`5: step: unknown key; known keys:`}},
		{"unknown key with a hint", head + "Steps: []\n", []string{`5: Steps: unknown key (did you mean "steps"?)`}},
		{"duplicate key", head + "name: x\n", []string{"5: name: given more than once"}},
		{"step problems", head + "steps:\n  - name: a\n    plugin: exec\n  - name: a\n    timeout: soon\n    extra: 1\n", []string{
			"8: steps[1].plugin: required",
			"8: steps[1].name: \"a\" is already the name of steps[0]",
			"9: steps[1].timeout: \"soon\" is not a duration",
			"10: steps[1].extra: unknown key"}},
		{"same name in two lists is fine, bad timeout", head + "steps:\n  - {name: a, plugin: exec}\nverify:\n  - {name: a, plugin: exec, timeout: -1s}\n", []string{
			"8: verify[0].timeout: must be positive"}},
		{"step list not a list", head + "steps: {name: a}\n", []string{"5: steps: must be a list"}},
		{"step not a mapping", head + "steps: [a]\n", []string{"5: steps[0]: must be a mapping"}},
		{"params not a mapping", head + "steps:\n  - {name: a, plugin: exec, params: [1]}\n", []string{"6: steps[0].params: must be a mapping"}},
		{"bad names", head + "steps:\n  - {name: 'a=b', plugin: 'ex ec'}\n", []string{
			`6: steps[0].name: "a=b": use letters`, `6: steps[0].plugin: "ex ec": use letters`}},
		{"alias in params", head + "steps:\n  - name: a\n    plugin: exec\n    params: {x: &v 1, y: *v}\n", []string{
			"8: steps[0].params.y: YAML aliases"}},
		{"continue_on_error not bool", head + "steps:\n  - {name: a, plugin: exec, continue_on_error: yes}\n", []string{
			"6: steps[0].continue_on_error: must be true or false"}},
		{"components", head + "components:\n  - {name: a, kind: app, path: /abs, sha256: ABC}\n  - {name: a}\n", []string{
			`6: components[0].kind: "app" is not a component kind`,
			"6: components[0].path: must be relative",
			"6: components[0].sha256: must be 64 lowercase hex digits",
			"7: components[1].kind: required",
			"7: components[1].path: required",
			`7: components[1].name: "a" is already the name of components[0]`}},
		{"needs unknown artifact", head + "steps:\n  - {name: a, plugin: exec, needs_artifacts: [nope]}\n", []string{
			`6: steps[0].needs_artifacts[0]: no component named "nope"`}},
		{"two documents", head + "---\nname: x\n", []string{"5: more than one YAML document"}},
		{"component path and digest", head + "components:\n  - {name: a, kind: utility, path: a, digest: " + sum + "}\n  - {name: b, kind: utility, digest: " + sum + ", sha256: " + sum + "}\n  - {name: c, kind: utility, digest: abc}\n", []string{
			"6: components[0].digest: give path (a local file) or digest",
			"7: components[1].sha256: goes with path",
			"8: components[2].digest: must be the artifact's sha256"}},
		{"service", head + "service: 'a b'\n", []string{`5: service: "a b": use lowercase letters`}},
		{"expect packages", head + "expect:\n  packages:\n    - {name: a, state: gone}\n    - {name: b, version: 'v1.0'}\n    - {name: c, version: '>= 2.4.0', state: absent}\n    - {name: b}\n    - {name: d, version: '~> 1'}\n    - {version: '1.0'}\n", []string{
			`7: expect.packages[0].state: "gone": use one of present, absent`,
			`8: expect.packages[1].version: "v1.0" is not a package version`,
			"9: expect.packages[2].version: an absent package has no version",
			`10: expect.packages[3].name: "b" is already in expect.packages[1]`,
			`11: expect.packages[4].version: "~> 1" is not a version or a comparison`,
			"12: expect.packages[5].name: required"}},
		{"expect files", head + "expect:\n  files:\n    - {path: etc/x}\n    - {path: /x, sha256: " + sum + ", artifact: a}\n    - {path: /x}\n    - {path: /y, artifact: nope}\n", []string{
			`7: expect.files[0].path: "etc/x": must be an absolute, clean path`,
			"8: expect.files[1].artifact: give sha256 or artifact, not both",
			`8: expect.files[1].artifact: no component named "a"`,
			`9: expect.files[2].path: "/x" is already expected by expect.files[1]`,
			`10: expect.files[3].artifact: no component named "nope"`}},
		{"expect services", head + "expect:\n  services:\n    - {name: a, state: running}\n    - {name: b, state: enabled}\n    - {name: b, state: active}\n    - {name: b, state: masked}\n", []string{
			`7: expect.services[0].state: "running": use one of enabled, disabled, masked, active, inactive`,
			`10: expect.services[3]: expect.services[1] already expects a unit-file state for "b"`}},
		{"expect hardware", head + "expect:\n  hardware:\n    - {fact: memory.total_bytes, op: '>=', value: lots}\n    - {fact: memory.total_bytes, op: present}\n    - {fact: disk.model, op: '>='}\n    - {fact: disk.serial, op: present, value: x}\n    - {fact: cpu.count, op: '==', value: four}\n    - {fact: disk.model, op: absent}\n", []string{
			`7: expect.hardware[0].value: "lots" is not a size`,
			`8: expect.hardware[1].op: "present": memory.total_bytes takes >=, <=, ==`,
			`9: expect.hardware[2].op: ">=": disk.model takes present or absent`,
			`10: expect.hardware[3].fact: "disk.serial" is not a hardware fact`,
			`11: expect.hardware[4].value: "four" is not a whole number`,
			"12: expect.hardware[5].value: required: the model"}},
		{"expect allow", head + "expect:\n  allow: ['packages/[a', 'packages', 'pkgs/x*', 'volatile/x', '*/x']\n  extra: 1\n", []string{
			`6: expect.allow[0]: "packages/[a" is not a valid glob pattern`,
			`6: expect.allow[1]: "packages": write section/key`,
			`6: expect.allow[2]: "pkgs/x*": no audit section "pkgs"`,
			`6: expect.allow[3]: "volatile/x": no audit section "volatile"`,
			"7: expect.extra: unknown key"}},
		{"expect untrack", head + "expect:\n  files: [{path: /etc/a.conf}]\n  untrack:\n    - etc/x\n    - /etc/../x\n    - '/etc/[x'\n    - /etc/a.conf\n    - /etc/b.conf\n    - /etc/b.conf\n    - 7\n    - /" + strings.Repeat("u", 4096) + "\n", []string{
			`8: expect.untrack[0]: "etc/x": must be an absolute, clean path or pattern`,
			`9: expect.untrack[1]: "/etc/../x": must be an absolute, clean path or pattern`,
			`10: expect.untrack[2]: "/etc/[x" is not a valid glob pattern`,
			`11: expect.untrack[3]: "/etc/a.conf" is expected by expect.files[0]: a release cannot expect a change to a path it stops tracking`,
			`13: expect.untrack[5]: "/etc/b.conf" is already in expect.untrack[4]`,
			`14: expect.untrack[6]: must be a string (quote it: "7")`,
			`15: expect.untrack[7]: "/uuuu`}},
		{"expect untrack not a list", head + "expect:\n  untrack: /etc/x\n", []string{"6: expect.untrack: must be a list"}},
		{"known errors", head + "known_errors:\n  - {id: KE-1, summary: s, status: fixed}\n  - {id: KE-1, summary: t}\n  - {summary: u, signature: {packages: [{name: a, state: absent}], hardware: [{fact: x, op: present}]}}\n", []string{
			`6: known_errors[0].status: "fixed": use one of open, resolved, workaround`,
			`7: known_errors[1].id: "KE-1" is already the id of known_errors[0]`,
			"8: known_errors[2].signature.packages[0].state: unknown key",
			`8: known_errors[2].signature.hardware[0].fact: "x" is not a hardware fact`,
			"8: known_errors[2].id: required"}},
		{"sla", head + "sla:\n  max_node_duration: soon\n  max_rollout_duration: -1h\n  min_success_rate: 1.5\n", []string{
			`6: sla.max_node_duration: "soon" is not a duration`,
			"7: sla.max_rollout_duration: must be positive",
			`8: sla.min_success_rate: "1.5": must be a fraction`}},
		{"sla percentage", head + "sla: {min_success_rate: '120%'}\n", []string{`5: sla.min_success_rate: "120%": must be a fraction`}},
		{"sla rate not a percentage", head + "sla: {min_success_rate: most}\n", []string{`5: sla.min_success_rate: must be a fraction`}},
		{"approvals", head + "approvals: {required: 0}\n", []string{"5: approvals.required: must be a whole number of distinct approvers, at least 1"}},
		{"approvals not a number", head + "approvals: {required: two}\nnotes: [x]\n", []string{
			"5: approvals.required: must be a whole number", "6: notes: must be a string"}},
		// Limits (internal/limits): names that become store keys are
		// bounded, so a manifest that validates is never refused by the
		// controller's store.
		{"name 40 KB", "apiVersion: cairn/v1\nkind: Release\nname: " + strings.Repeat("a", 40<<10) + "\nversion: 1.0.0\n", []string{
			`3: name: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"... is 40960 bytes long; the limit is 63 bytes`}},
		{"version 100 KB", "apiVersion: cairn/v1\nkind: Release\nname: w\nversion: 1.0.0-" + strings.Repeat("a", 100<<10) + "\n", []string{
			`4: version: "1.0.0-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"... is 102406 bytes long; the limit is 128 bytes`}},
		{"long names", head + "components:\n  - {name: " + strings.Repeat("c", 64) + ", kind: utility, path: a}\nsteps:\n  - {name: " + strings.Repeat("s", 64) + ", plugin: " + strings.Repeat("p", 64) + "}\nknown_errors:\n  - {id: " + strings.Repeat("k", 64) + ", summary: s}\n", []string{
			"6: components[0].name: " + `"cccccccccccccccccccccccccccccccccccccccc"... is 64 bytes long; the limit is 63 bytes`,
			"8: steps[0].name: ", "8: steps[0].plugin: ", "10: known_errors[0].id: "}},
		{"long texts", head + "description: " + strings.Repeat("d", 4097) + "\nnotes: " + strings.Repeat("n", 256<<10+1) + "\nknown_errors:\n  - {id: KE-1, summary: " + strings.Repeat("s", 1025) + ", workaround: " + strings.Repeat("w", 16<<10+1) + "}\n", []string{
			"5: description: ", "6: notes: ", "8: known_errors[0].summary: ", "8: known_errors[0].workaround: "}},
		{"control character in a summary", head + "known_errors:\n  - {id: KE-1, summary: \"a\\x07b\"}\n", []string{
			"6: known_errors[0].summary: \"a\\ab\" holds a control character (U+0007 at byte 1)"}},
		{"service in upper case", head + "service: Shop\n", []string{`5: service: "Shop": use lowercase letters`}},
		{"expect names and paths", head + "expect:\n  packages: [{name: " + strings.Repeat("p", 256) + "}]\n  files: [{path: /" + strings.Repeat("f", 4096) + "}]\n  services: [{name: " + strings.Repeat("u", 256) + ", state: active}]\n  allow: ['packages/" + strings.Repeat("a", 1024) + "']\n", []string{
			"6: expect.packages[0].name: ", "7: expect.files[0].path: ", "8: expect.services[0].name: ", "9: expect.allow[0]: "}},
		// Counts and durations: approvals.required was stored as a
		// uint32, so 4294967296 approvals needed none.
		{"approvals beyond uint32", head + "approvals: {required: 4294967296}\n", []string{
			"5: approvals.required: 4294967296: at most 16 distinct approvers"}},
		{"approvals above the limit", head + "approvals: {required: 17}\n", []string{"5: approvals.required: 17: at most 16"}},
		{"long durations", head + "steps:\n  - {name: a, plugin: exec, timeout: 169h}\nsla: {max_node_duration: 8761h, max_rollout_duration: 2562047h}\n", []string{
			"6: steps[0].timeout: 169h0m0s is longer than the limit of 168h0m0s",
			"7: sla.max_node_duration: 8761h0m0s is longer than the limit of 8760h0m0s",
			"7: sla.max_rollout_duration: 2562047h0m0s is longer than"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "release.yaml")
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse: err = %v, want ErrInvalid", err)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse: err is %T, want *Error", err)
			}
			var got []string
			for _, p := range e.Problems {
				s := strconv.Itoa(p.Line) + ": " + p.Field + ": " + p.Message
				if p.Field == "" {
					s = strconv.Itoa(p.Line) + ": " + p.Message
				}
				got = append(got, s)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("problems:\n%s\nwant %d:\n%s", strings.Join(got, "\n"), len(tt.want), strings.Join(tt.want, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("problem %d = %q, want prefix %q", i, got[i], tt.want[i])
				}
			}
			if !strings.Contains(err.Error(), "\n  release.yaml:") && !strings.Contains(err.Error(), "release.yaml: ") {
				t.Errorf("Error() does not name the file: %s", err)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	_, err := Parse([]byte(head+"steps:\n  - name: a\n"), "release.yaml")
	want := "release.yaml: 1 problem(s) in release manifest:\n  release.yaml:6: steps[0].plugin: required"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}

// FuzzParse checks that Parse never panics and that whatever it accepts
// is consistent. Crashers found are kept in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	seed, err := os.ReadFile("testdata/release.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	full, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(full)
	f.Add([]byte(head + "steps:\n  - {name: a, plugin: exec, params: {x: &v [1, 2], y: *v}}\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not match ErrInvalid: %v", err)
			}
			return
		}
		if m.APIVersion != APIVersion || m.Kind != KindRelease || m.Name == "" || !semver.MatchString(m.Version) {
			t.Fatalf("accepted a manifest missing required fields: %+v", m)
		}
		for _, list := range m.Lists() {
			seen := map[string]bool{}
			for _, s := range list {
				if s.Name == "" || s.Plugin == "" || s.Timeout <= 0 || seen[s.Name] {
					t.Fatalf("accepted a bad step: %+v", s)
				}
				seen[s.Name] = true
			}
		}
		if m.Approvals.Required < 1 || m.SLA.MinSuccessRate < 0 || m.SLA.MinSuccessRate > 1 {
			t.Fatalf("accepted bad approvals or SLA: %+v %+v", m.Approvals, m.SLA)
		}
		for _, c := range m.Components {
			if (c.Path == "") == (c.Digest == "") {
				t.Fatalf("accepted a component without exactly one of path and digest: %+v", c)
			}
		}
		if _, err := m.Canonical(); err != nil {
			t.Fatalf("Canonical: %v", err)
		}
	})
}
