package report

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/cairn-ops/cairn/internal/termsafe"
)

// TestDigestEveryFormat: every format carries the digest its content
// hashes to, where the format says, and is told apart by its first
// bytes.
func TestDigestEveryFormat(t *testing.T) {
	for _, format := range Formats {
		t.Run(format, func(t *testing.T) {
			out, _, digest, err := render(sampleInput(t), format)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Inspect(out)
			if err != nil {
				t.Fatal(err)
			}
			if f.Format != format || f.Digest != digest || f.Edited() {
				t.Errorf("Inspect = %+v, want format %s, digest %s, not edited", f, format, digest)
			}
			if bytes.Count(out, []byte(digest)) == 0 {
				t.Errorf("the %s report does not show its digest", format)
			}
		})
	}
}

// TestDigestCatchesEveryEdit: changing any one byte of a report, in any
// format, is caught: the content no longer hashes to the digest it
// carries, or the file no longer carries one.
func TestDigestCatchesEveryEdit(t *testing.T) {
	for _, format := range Formats {
		t.Run(format, func(t *testing.T) {
			out, _, _, err := render(sampleInput(t), format)
			if err != nil {
				t.Fatal(err)
			}
			// Every 31st byte, and the first and the last.
			for i := 0; i < len(out); i += min(31, max(1, len(out)-1-i)) {
				edited := bytes.Clone(out)
				edited[i] ^= 0x01
				f, err := Inspect(edited)
				switch {
				case errors.Is(err, ErrMalformed):
				case err != nil:
					t.Fatalf("byte %d changed: %v", i, err)
				case !f.Edited():
					t.Fatalf("byte %d (%q) changed, and the file still hashes to its digest", i, out[i])
				}
			}
		})
	}
}

// TestDigestRecomputed: an edited report whose digest was recomputed
// hashes to its digest again; only the record of what the controller
// issued tells it apart (TestConfirm).
func TestDigestRecomputed(t *testing.T) {
	out, _, digest, err := render(sampleInput(t), FormatHTML)
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(out, []byte("user:anna"), []byte("user:anne"), 1)
	forged := digestOf(edited, digest)
	edited = bytes.ReplaceAll(edited, []byte(digest), []byte(forged))
	f, err := Inspect(edited)
	if err != nil || f.Edited() || f.Digest != forged || f.Digest == digest {
		t.Errorf("Inspect = %+v, %v; want a file that hashes to its new digest %s", f, err, forged)
	}
}

func TestInspectMalformed(t *testing.T) {
	text, _, digest, err := render(sampleInput(t), FormatText)
	if err != nil {
		t.Fatal(err)
	}
	js, _, jsDigest, err := render(sampleInput(t), FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	line := "Report digest: " + digest + "\n"
	tests := []struct {
		name string
		file string
		msg  string
	}{
		{"empty", "", "the file is empty"},
		{"not a report", "hello\nworld", `not a rollout report in any of the formats [text json markdown html] (it starts "hello")`},
		{"no digest line", strings.Replace(string(text), line, "", 1), `the text report carries no digest (a line "Report digest: sha256:…")`},
		{"two digest lines", strings.Replace(string(text), line, line+line, 1), "the text report carries 2 digests, want one"},
		{"json without digest", `{"title": "Rollout report: x@1"}`, `the json report carries no digest (the top-level "digest")`},
		{"json digest not a digest", strings.Replace(string(js), jsDigest, "sha256:xyz", 1), `the json report's digest "sha256:xyz" is not sha256: and 64 hex digits`},
		{"json cut short", string(js[:len(js)/2]), "json report: unexpected end of JSON input"},
		{"html without its meta", "<!DOCTYPE html>\n<html></html>", "the html report carries no digest (<meta name=\"cairn-report-digest\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Inspect([]byte(tt.file))
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Inspect = %v, want ErrMalformed saying %q", err, tt.msg)
			}
		})
	}
}

// TestRenderedReportsAreTermsafe: a report carries what stored data
// holds, terminal escapes included; printing it through cairnctl
// (internal/termsafe) must leave every byte as it is, or the printed
// report would not hash to its digest.
func TestRenderedReportsAreTermsafe(t *testing.T) {
	in := hostile(sampleInput(t))
	node(in.Rollout, "web2").Error = "bidi \u202e and DEL \x7f and C1 \u009b"
	for _, format := range Formats {
		out, _, _, err := render(in, format)
		if err != nil {
			t.Fatal(err)
		}
		if got := termsafe.String(string(out)); got != string(out) {
			t.Errorf("the %s report changes when printed", format)
		}
		if f, err := Inspect(out); err != nil || f.Edited() {
			t.Errorf("the %s report: %+v, %v", format, f, err)
		}
	}
}
