package limits_test

import (
	"strings"
	"testing"

	"github.com/cairn-ops/cairn/internal/limits"
)

func TestTextCheck(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit limits.Text
		value string
		// says is a part of the error; "" means no error.
		says string
	}{
		{"name ok", limits.ReleaseName, "webshop", ""},
		{"name at the limit", limits.ReleaseName, strings.Repeat("a", 63), ""},
		{"name too long", limits.ReleaseName, strings.Repeat("a", 64), "is 64 bytes long; the limit is 63 bytes"},
		{"name 40 KB", limits.ReleaseName, strings.Repeat("a", 40<<10), "is 40960 bytes long"},
		{"name with a slash", limits.ReleaseName, "web/shop", "use letters, digits"},
		{"name empty", limits.ReleaseName, "", "use letters"},
		{"version", limits.ReleaseVersion, "2.4.0-rc.1+build.7", ""},
		{"version 100 KB", limits.ReleaseVersion, "1.0.0-" + strings.Repeat("a", 100<<10), "the limit is 128 bytes"},
		{"user upper case", limits.UserName, "Alice", "lowercase"},
		{"package with +", limits.PackageName, "libstdc++6", ""},
		{"unit with @", limits.UnitName, "getty@tty1.service", ""},
		{"label value with comma", limits.LabelValue, "a,b", `holds ','`},
		{"label value with newline", limits.LabelValue, "a\nb", "control character (U+000A"},
		{"note with lines", limits.Note, "line one\nline two\ttab", ""},
		{"note with a bell", limits.Note, "ding\a", "control character (U+0007 at byte 4)"},
		{"note too long", limits.Note, strings.Repeat("x", 4<<10+1), "the limit is 4096 bytes"},
		{"not UTF-8", limits.Note, "\xff", "not UTF-8"},
		{"node ref with space", limits.NodeRef, "web 1", `holds ' '`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.limit.Check(tc.value)
			switch {
			case tc.says == "" && err != nil:
				t.Errorf("Check: %v, want nil", err)
			case tc.says != "" && (err == nil || !strings.Contains(err.Error(), tc.says)):
				t.Errorf("Check: %v, want an error saying %q", err, tc.says)
			case err != nil && len(err.Error()) > 200:
				t.Errorf("message is %d bytes long; a long value must not be quoted whole", len(err.Error()))
			}
		})
	}
}

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"short", `"short"`},
		{strings.Repeat("a", 50), `"` + strings.Repeat("a", 40) + `"...`},
		// A cut never splits a character: é is two bytes at 39-40.
		{strings.Repeat("a", 39) + "é" + strings.Repeat("b", 10), `"` + strings.Repeat("a", 39) + `"...`},
	} {
		if got := limits.Quote(tc.in); got != tc.want {
			t.Errorf("Quote(%.20q...) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
