package rollout

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

const (
	minutesPerDay  = 24 * 60
	minutesPerWeek = 7 * minutesPerDay
)

// Window is a weekly maintenance window: the times nodes may start
// their deployment. It is read in the wall-clock time of the times it is
// asked about, so the caller picks the time zone (the controller's).
type Window struct {
	spec  string
	spans []span
}

// span is one opening: from start (minutes since Monday 00:00) for
// length minutes, wrapping around the end of the week.
type span struct {
	start, length int
}

// ParseWindow reads a window:
//
//	Sat 22:00-Sun 04:00     one opening a week, from one day and time to another
//	Mon-Fri 22:00-06:00     every night from Monday to Friday (into the next morning)
//	Sun 01:00-05:00         one day
//	daily 22:00-04:00       every day
//
// Day names are English, three letters or whole, in any case.
func ParseWindow(s string) (*Window, error) {
	norm := dashes.ReplaceAllString(strings.TrimSpace(s), "-")
	fields := strings.Fields(norm)
	bad := func(format string, args ...any) error {
		return fmt.Errorf("window %q: %s", s, fmt.Sprintf(format, args...))
	}
	w := &Window{spec: s}
	switch len(fields) {
	case 3: // Sat 22:00-Sun 04:00
		from, err := weekday(fields[0])
		if err != nil {
			return nil, bad("%v", err)
		}
		startText, toText, ok := strings.Cut(fields[1], "-")
		if !ok {
			return nil, bad("%s", windowForms)
		}
		start, err := clock(startText)
		if err != nil {
			return nil, bad("%v", err)
		}
		to, err := weekday(toText)
		if err != nil {
			return nil, bad("%v", err)
		}
		end, err := clock(fields[2])
		if err != nil {
			return nil, bad("%v", err)
		}
		a, b := from*minutesPerDay+start, to*minutesPerDay+end
		length := ((b-a)%minutesPerWeek + minutesPerWeek) % minutesPerWeek
		if length == 0 {
			return nil, bad("it opens and closes at the same time")
		}
		w.spans = []span{{start: a, length: length}}
	case 2: // Mon-Fri 22:00-06:00, Sun 01:00-05:00, daily 22:00-04:00
		days, err := weekdays(fields[0])
		if err != nil {
			return nil, bad("%v", err)
		}
		startText, endText, ok := strings.Cut(fields[1], "-")
		if !ok {
			return nil, bad("%s", windowForms)
		}
		start, err := clock(startText)
		if err != nil {
			return nil, bad("%v", err)
		}
		end, err := clock(endText)
		if err != nil {
			return nil, bad("%v", err)
		}
		length := ((end-start)%minutesPerDay + minutesPerDay) % minutesPerDay
		if length == 0 {
			return nil, bad("it opens and closes at the same time")
		}
		for _, d := range days {
			w.spans = append(w.spans, span{start: d*minutesPerDay + start, length: length})
		}
	default:
		return nil, bad("%s", windowForms)
	}
	return w, nil
}

const windowForms = "write 'DAY HH:MM-DAY HH:MM' (Sat 22:00-Sun 04:00), 'DAY-DAY HH:MM-HH:MM' (Mon-Fri 22:00-06:00), 'DAY HH:MM-HH:MM' or 'daily HH:MM-HH:MM'"

var (
	dashes    = regexp.MustCompile(`\s*-\s*`)
	clockForm = regexp.MustCompile(`^(\d{1,2}):(\d{2})$`)
	dayNames  = map[string]int{
		"mon": 0, "monday": 0, "tue": 1, "tues": 1, "tuesday": 1, "wed": 2, "wednesday": 2,
		"thu": 3, "thur": 3, "thurs": 3, "thursday": 3, "fri": 4, "friday": 4,
		"sat": 5, "saturday": 5, "sun": 6, "sunday": 6,
	}
)

// weekday reads a day name; Monday is 0.
func weekday(s string) (int, error) {
	d, ok := dayNames[strings.ToLower(s)]
	if !ok {
		return 0, fmt.Errorf("%q is not a day (use Mon, Tue, Wed, Thu, Fri, Sat or Sun)", s)
	}
	return d, nil
}

// weekdays reads "daily", one day, or a range of days ("Mon-Fri", also
// across the weekend: "Fri-Mon").
func weekdays(s string) ([]int, error) {
	if strings.EqualFold(s, "daily") {
		return []int{0, 1, 2, 3, 4, 5, 6}, nil
	}
	fromText, toText, isRange := strings.Cut(s, "-")
	from, err := weekday(fromText)
	if err != nil {
		return nil, err
	}
	if !isRange {
		return []int{from}, nil
	}
	to, err := weekday(toText)
	if err != nil {
		return nil, err
	}
	var days []int
	for d := from; ; d = (d + 1) % 7 {
		days = append(days, d)
		if d == to {
			return days, nil
		}
	}
}

// clock reads HH:MM as minutes since midnight.
func clock(s string) (int, error) {
	m := clockForm.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a time of day (HH:MM, e.g. 22:00)", s)
	}
	h, _ := strconv.Atoi(m[1])
	mi, _ := strconv.Atoi(m[2])
	if h > 23 || mi > 59 {
		return 0, fmt.Errorf("%q is not a time of day (00:00 to 23:59)", s)
	}
	return h*60 + mi, nil
}

// String returns the window as written.
func (w *Window) String() string { return w.spec }

// minuteOfWeek is t's minutes since Monday 00:00 on its wall clock.
func minuteOfWeek(t time.Time) int {
	day := (int(t.Weekday()) + 6) % 7
	return day*minutesPerDay + t.Hour()*60 + t.Minute()
}

// Open reports whether the window is open at t (read in t's location).
// A nil window is always open.
func (w *Window) Open(t time.Time) bool {
	if w == nil {
		return true
	}
	m := minuteOfWeek(t)
	for _, s := range w.spans {
		if ((m-s.start)%minutesPerWeek+minutesPerWeek)%minutesPerWeek < s.length {
			return true
		}
	}
	return false
}

// Next returns when the window is next open at or after t: t itself
// when it is open, else the start of the next opening in t's location.
func (w *Window) Next(t time.Time) time.Time {
	if w.Open(t) {
		return t
	}
	today := (int(t.Weekday()) + 6) % 7
	var best time.Time
	for _, s := range w.spans {
		day, at := s.start/minutesPerDay, s.start%minutesPerDay
		for off := 0; off <= 7; off++ {
			if (today+off)%7 != day {
				continue
			}
			c := time.Date(t.Year(), t.Month(), t.Day()+off, at/60, at%60, 0, 0, t.Location())
			if !c.After(t) {
				continue
			}
			if best.IsZero() || c.Before(best) {
				best = c
			}
			break
		}
	}
	return best
}
