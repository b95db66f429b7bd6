package stamp

import (
	"testing"
	"time"
)

func TestFormatSortsAndParses(t *testing.T) {
	a := time.Date(2026, 12, 7, 13, 3, 12, 5, time.FixedZone("CET", 3600))
	b := a.Add(time.Nanosecond * 995)
	sa, sb := Format(a), Format(b)
	if want := "2026-12-07T12:03:12.000000005Z"; sa != want {
		t.Errorf("Format = %q, want %q", sa, want)
	}
	if !(sa < sb) {
		t.Errorf("stamps %q and %q do not sort in time order", sa, sb)
	}
	back, err := Parse(sa)
	if err != nil || !back.Equal(a) {
		t.Errorf("Parse(%q) = %v, %v; want %v", sa, back, err, a)
	}
}

func TestHuman(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	tests := []struct {
		name, in string
		loc      *time.Location
		want     string
	}{
		{"stamp in a zone", "2026-12-07T13:03:12.987654321Z", cet, "2026-12-07 14:03:12 CET"},
		{"offset time", "2026-12-07T14:03:12+01:00", time.UTC, "2026-12-07 13:03:12 UTC"},
		{"no zone given is UTC", "2026-12-07T13:03:12Z", nil, "2026-12-07 13:03:12 UTC"},
		{"zone without a name", "2026-12-07T13:03:12Z", time.FixedZone("", 3*3600), "2026-12-07 16:03:12 +0300"},
		{"empty", "", cet, ""},
		{"not a time is shown as it is", "yesterday", cet, "yesterday"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Human(tt.in, tt.loc); got != tt.want {
				t.Errorf("Human(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestOptional(t *testing.T) {
	if got := Optional(time.Time{}); got != "" {
		t.Errorf("Optional(zero) = %q, want empty", got)
	}
	at := time.Date(2026, 12, 7, 13, 3, 12, 0, time.FixedZone("CET", 3600))
	if got, want := Optional(at), "2026-12-07T12:03:12.000000000Z"; got != want {
		t.Errorf("Optional = %q, want %q", got, want)
	}
}
