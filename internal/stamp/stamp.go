// Package stamp is the one way the controller writes a time into a record,
// and the one way a report shows such a time to people.
//
// A stamp is RFC 3339 in UTC with a fixed nanosecond width
// ("2026-12-07T13:03:12.000000000Z"), so stamps sort as strings in time
// order; every record of the controller's store is stamped with Format. A
// report shows a stamp with Human: to the second, in a given time zone,
// with the zone's name ("2026-12-07 14:03:12 CET").
package stamp

import "time"

// Layout is the layout of a stamp.
const Layout = "2006-01-02T15:04:05.000000000Z"

// HumanLayout is the layout Human shows a time in.
const HumanLayout = "2006-01-02 15:04:05 MST"

// Format returns t as a stamp.
func Format(t time.Time) string {
	return t.UTC().Format(Layout)
}

// Optional is Format for a time that may not be set: "" for the zero time.
func Optional(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return Format(t)
}

// Parse reads a stamp, or any RFC 3339 time.
func Parse(s string) (time.Time, error) {
	return time.Parse(time.RFC3339Nano, s)
}

// Human shows the RFC 3339 time s to the second in loc, with the zone's
// abbreviation ("2026-12-07 14:03:12 CET"; a zone without one shows its
// offset, "+0300"). An empty s is empty; an s that does not parse is
// returned as it is, so nothing stored is hidden.
func Human(s string, loc *time.Location) string {
	if s == "" {
		return ""
	}
	t, err := Parse(s)
	if err != nil {
		return s
	}
	return HumanTime(t, loc)
}

// HumanTime shows t to the second in loc with the zone's abbreviation.
func HumanTime(t time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	return t.In(loc).Format(HumanLayout)
}
