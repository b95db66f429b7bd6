package ctl

import (
	"fmt"
	"strings"
)

// parsePairs parses k=v arguments (flag values split at commas, or
// positional arguments) into a map. A key is required and may not repeat;
// an empty value is an error unless allowEmpty (node label uses "k=" to
// remove a label).
func parsePairs(what string, args []string, allowEmpty bool) (map[string]string, error) {
	if len(args) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(args))
	for _, arg := range args {
		k, v, ok := strings.Cut(arg, "=")
		k = strings.TrimSpace(k)
		switch {
		case !ok || k == "":
			return nil, usageErrorf("%s %q: %w, e.g. env=prod", what, arg, ErrBadPair)
		case strings.ContainsAny(k, " \t,"):
			return nil, usageErrorf("%s %q: the key %q has a space or comma: %w", what, arg, k, ErrBadPair)
		case v == "" && !allowEmpty:
			return nil, usageErrorf("%s %q: the value is empty: %w", what, arg, ErrBadPair)
		}
		if _, dup := m[k]; dup {
			return nil, usageErrorf("%s: key %q given twice", what, k)
		}
		m[k] = v
	}
	return m, nil
}

// splitPairs splits comma-separated k=v lists given as flag values
// ("env=prod,role=web") into single pairs.
func splitPairs(values []string) []string {
	var out []string
	for _, v := range values {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// describePairs is the help text of a k=v flag.
func describePairs(what string) string {
	return fmt.Sprintf("%s as k=v, comma-separated or repeated", what)
}
