package rollout

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// day returns a time in the week of Monday 2026-03-02, in UTC.
func day(t *testing.T, weekday time.Weekday, hhmm string) time.Time {
	t.Helper()
	monday := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	if monday.Weekday() != time.Monday {
		t.Fatalf("%s is a %s", monday, monday.Weekday())
	}
	clock, err := time.Parse("15:04", hhmm)
	if err != nil {
		t.Fatal(err)
	}
	offset := (int(weekday) + 6) % 7
	return monday.AddDate(0, 0, offset).Add(time.Duration(clock.Hour())*time.Hour + time.Duration(clock.Minute())*time.Minute)
}

func TestWindow(t *testing.T) {
	type at struct {
		day  time.Weekday
		time string
		open bool
		// next is when it opens next (the week after for next: true).
		nextDay  time.Weekday
		nextTime string
		nextWeek bool
	}
	tests := []struct {
		window string
		at     []at
	}{
		{window: "Sat 22:00-Sun 04:00", at: []at{
			{day: time.Saturday, time: "21:59", nextDay: time.Saturday, nextTime: "22:00"},
			{day: time.Saturday, time: "22:00", open: true},
			{day: time.Sunday, time: "03:59", open: true},
			{day: time.Sunday, time: "04:00", nextDay: time.Saturday, nextTime: "22:00", nextWeek: true},
			{day: time.Wednesday, time: "12:00", nextDay: time.Saturday, nextTime: "22:00"},
		}},
		{window: "Mon-Fri 22:00-06:00", at: []at{
			{day: time.Monday, time: "21:00", nextDay: time.Monday, nextTime: "22:00"},
			{day: time.Friday, time: "23:00", open: true},
			{day: time.Saturday, time: "05:59", open: true}, // Friday's night
			{day: time.Saturday, time: "07:00", nextDay: time.Monday, nextTime: "22:00", nextWeek: true},
			{day: time.Sunday, time: "23:00", nextDay: time.Monday, nextTime: "22:00", nextWeek: true},
			{day: time.Tuesday, time: "03:00", open: true}, // Monday's night
		}},
		{window: "daily 22:00-04:00", at: []at{
			{day: time.Tuesday, time: "02:00", open: true},
			{day: time.Tuesday, time: "12:00", nextDay: time.Tuesday, nextTime: "22:00"},
		}},
		{window: "sunday 01:00 - 05:00", at: []at{
			{day: time.Sunday, time: "04:59", open: true},
			{day: time.Sunday, time: "05:00", nextDay: time.Sunday, nextTime: "01:00", nextWeek: true},
		}},
		{window: "Fri-Mon 20:00-23:00", at: []at{
			{day: time.Sunday, time: "21:00", open: true},
			{day: time.Monday, time: "22:59", open: true},
			{day: time.Tuesday, time: "21:00", nextDay: time.Friday, nextTime: "20:00"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.window, func(t *testing.T) {
			w, err := ParseWindow(tt.window)
			if err != nil {
				t.Fatalf("ParseWindow: %v", err)
			}
			for _, a := range tt.at {
				now := day(t, a.day, a.time)
				want := now
				if !a.open {
					want = day(t, a.nextDay, a.nextTime)
					if a.nextWeek {
						want = want.AddDate(0, 0, 7)
					}
				}
				got := struct {
					Open bool
					Next time.Time
				}{w.Open(now), w.Next(now)}
				wantGot := struct {
					Open bool
					Next time.Time
				}{a.open, want}
				if diff := cmp.Diff(wantGot, got); diff != "" {
					t.Errorf("at %s %s (-want +got):\n%s", a.day, a.time, diff)
				}
			}
		})
	}
}

func TestWindowInLocation(t *testing.T) {
	w, err := ParseWindow("Sat 22:00-Sun 04:00")
	if err != nil {
		t.Fatal(err)
	}
	// Saturday 21:30 UTC is Saturday 23:30 at UTC+2: open there only.
	utc := day(t, time.Saturday, "21:30")
	east := utc.In(time.FixedZone("UTC+2", 2*60*60))
	if w.Open(utc) || !w.Open(east) {
		t.Errorf("Open at %s = %v (want false), at %s = %v (want true)", utc, w.Open(utc), east, w.Open(east))
	}
}

func TestParseWindowErrors(t *testing.T) {
	tests := []struct {
		window string
		says   string
	}{
		{"Sax 22:00-Sun 04:00", `"Sax" is not a day`},
		{"Sat 22-Sun 04:00", `"22" is not a time of day`},
		{"Sat 25:00-Sun 04:00", `"25:00" is not a time of day`},
		{"Sat 22:00-Sat 22:00", "opens and closes at the same time"},
		{"daily 22:00-22:00", "opens and closes at the same time"},
		{"Mon-Fry 01:00-02:00", `"Fry" is not a day`},
		{"whenever", "write 'DAY HH:MM-DAY HH:MM'"},
		{"Sat 22:00 Sun 04:00", "write 'DAY HH:MM-DAY HH:MM'"},
	}
	for _, tt := range tests {
		t.Run(tt.window, func(t *testing.T) {
			_, err := ParseWindow(tt.window)
			if err == nil {
				t.Fatal("ParseWindow succeeded")
			}
			if !strings.Contains(err.Error(), tt.says) || !strings.Contains(err.Error(), tt.window) {
				t.Errorf("error %q does not name the window and say %q", err, tt.says)
			}
		})
	}
}
