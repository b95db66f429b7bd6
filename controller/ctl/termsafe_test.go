package ctl

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// hostile are bytes and runes a terminal acts on: ESC, a CSI sequence,
// an OSC that retitles the window, BEL, a bare CR, a C1 CSI, bidi
// overrides and isolates.
var hostile = []string{"\x1b", "\a", "\r", "\u009b", "\u202e", "\u2066"}

// checkTerminalSafe fails when out holds any of hostile or invalid UTF-8.
// A CR is fine before a LF (CR LF), where it cannot overwrite a line.
func checkTerminalSafe(t *testing.T, what, out string) {
	t.Helper()
	for _, h := range hostile {
		if strings.Contains(strings.ReplaceAll(out, "\r\n", "\n"), h) {
			t.Errorf("%s holds %q raw:\n%s", what, h, out)
		}
	}
	if !utf8.ValidString(out) {
		t.Errorf("%s is not valid UTF-8:\n%q", what, out)
	}
}

// TestTerminalEscapes: what cairnctl prints from input (a manifest's keys
// and values, an audit's package names and hostname from an agent, an
// error quoting an argument) reaches the terminal with its control
// characters, bidi controls and invalid UTF-8 escaped; JSON output stays
// JSON with the same values.
func TestTerminalEscapes(t *testing.T) {
	dir := t.TempDir()
	esc := filepath.Join(dir, "esc.yaml")
	if err := os.WriteFile(esc, []byte(`apiVersion: cairn/v1
kind: Release
name: shop
version: 1.0.0
"evil\e[2J\e]0;pwned\a": 1
"bidi\u202eexe.txt": 2
"c1\u009b31m\r": 3
components:
  - {name: site, kind: application, path: "site\e[31m\u2066.tar.gz"}
expect:
  allow: ["packages/dpkg/x\u202e*"]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	badUTF8 := filepath.Join(dir, "bad-utf8.yaml")
	if err := os.WriteFile(badUTF8, []byte("apiVersion: cairn/v1\nkind: Release\nname: shop\xff\xfe\nversion: 1.0.0\n\"k\xc3\": 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	f := startFake(t)
	evil := newAudit(t, "web1\x1b]0;owned\a", ts(time.Hour), "evil\x1b[2J\u202egnp.exe=1.0", "ok=2.0")
	evilID := evil.GetHashes().GetDocument()
	f.audits[evilID] = evil

	tests := []struct {
		name string
		run  func() result
		// shown are escapes that must be in stdout or stderr.
		shown []string
	}{
		{"release validate", func() result { return runOffline(t, "release", "validate", "-f", esc) },
			[]string{`evil\x1b[2J\x1b]0;pwned\x07: unknown key`, `bidi\u202eexe.txt: unknown key`, `c1\u009b31m\r: unknown key`}},
		{"release validate, invalid UTF-8", func() result { return runOffline(t, "release", "validate", "-f", badUTF8) }, nil},
		{"release validate, a file named with escapes", func() result {
			return runOffline(t, "release", "validate", "-f", filepath.Join(dir, "no\x1b[2Jsuch\xff.yaml"))
		}, []string{`no\x1b[2Jsuch\xff.yaml`}},
		{"audit show", func() result { return f.run(t, nil, "", "audit", "show", evilID) },
			[]string{`evil\x1b[2J\u202egnp.exe`, `web1\x1b]0;owned\x07`}},
		{"audit show --summary", func() result { return f.run(t, nil, "", "audit", "show", evilID, "--summary") },
			[]string{`web1\x1b]0;owned\x07`}},
		{"audit diff", func() result { return f.run(t, nil, "", "audit", "diff", f.auditA, evilID) },
			[]string{`evil\x1b[2J\u202egnp.exe`}},
		{"an error quoting an argument", func() result { return f.run(t, nil, "", "audit", "show", "id\x1b[2J\u202e") },
			[]string{`id\x1b[2J\u202e`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.run()
			checkTerminalSafe(t, "stdout", r.stdout)
			checkTerminalSafe(t, "stderr", r.stderr)
			for _, s := range tt.shown {
				if !strings.Contains(r.stdout+r.stderr, s) {
					t.Errorf("output does not show %s:\nstdout:\n%s\nstderr:\n%s", s, r.stdout, r.stderr)
				}
			}
		})
	}

	t.Run("JSON stays JSON with the same values", func(t *testing.T) {
		r := runOffline(t, "release", "validate", "-f", esc, "-o", "json")
		checkTerminalSafe(t, "stdout", r.stdout)
		var v validation
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, r.stdout)
		}
		var fields []string
		for _, p := range v.Problems {
			fields = append(fields, p.Field)
		}
		for _, want := range []string{"evil\x1b[2J\x1b]0;pwned\a", "bidi\u202eexe.txt", "c1\u009b31m\r"} {
			if !strings.Contains(strings.Join(fields, "\n"), want) {
				t.Errorf("problem fields %q lack %q", fields, want)
			}
		}
	})
}
