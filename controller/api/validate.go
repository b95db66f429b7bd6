package api

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cairn-ops/cairn/internal/limits"
)

// checkText checks a string a caller supplies against its limit
// (internal/limits): an ErrInvalid naming field otherwise. Every string
// that is stored, becomes a store key or is looked up goes through it or
// a check built on it.
func checkText(field string, l limits.Text, v string) error {
	if err := l.Check(v); err != nil {
		return invalid(field, "%v", err)
	}
	return nil
}

// checkOptional is checkText for a field that may be empty.
func checkOptional(field string, l limits.Text, v string) error {
	if v == "" {
		return nil
	}
	return checkText(field, l, v)
}

// checkSeconds turns a count of seconds a caller gives into a duration
// of at most max, comparing before it multiplies so that no value
// overflows time.Duration (2^63-1 seconds once wrapped around into a TTL
// that had already expired). Negative values are refused; maxText names
// the maximum in the message.
func checkSeconds(field string, secs int64, max time.Duration, maxText string) (time.Duration, error) {
	switch {
	case secs < 0:
		return 0, invalid(field, "%d seconds: must not be negative", secs)
	case secs > int64(max/time.Second):
		return 0, invalid(field, "%d seconds is longer than the maximum of %s", secs, maxText)
	}
	return time.Duration(secs) * time.Second, nil
}

// checkList checks the number of entries of a list field and each entry.
func checkList(field string, l limits.Text, vs []string) error {
	if len(vs) > limits.ListEntries {
		return invalid(field, "%d entries; the limit is %d", len(vs), limits.ListEntries)
	}
	for i, v := range vs {
		if err := checkText(fmt.Sprintf("%s[%d]", field, i), l, v); err != nil {
			return err
		}
	}
	return nil
}

// validateLabels checks label keys and values. Values may be empty only
// when allowEmpty (LabelNode's "remove this label").
func validateLabels(field string, labels map[string]string, allowEmpty bool) error {
	if len(labels) > limits.Labels {
		return invalid(field, "%d labels; the limit is %d", len(labels), limits.Labels)
	}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		v := labels[k]
		if err := limits.LabelKey.Check(k); err != nil {
			return invalid(field, "label key %v", err)
		}
		if v == "" {
			if !allowEmpty {
				return invalid(field, "label %q has an empty value", k)
			}
			continue
		}
		if err := limits.LabelValue.Check(v); err != nil {
			return invalid(field, "label %s: value %v", k, err)
		}
	}
	return nil
}

// formatLabels writes labels as "k=v,k=v" in key order.
func formatLabels(labels map[string]string) string {
	parts := make([]string, 0, len(labels))
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		parts = append(parts, fmt.Sprintf("%s=%s", k, labels[k]))
	}
	return strings.Join(parts, ",")
}
