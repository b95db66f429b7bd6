package api

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

var (
	// nameRE is the form of user and service names.
	nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	// labelKeyRE is the form of label keys, e.g. "env", "cairn.io/role".
	labelKeyRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$`)
)

func validateName(field, name string) error {
	if !nameRE.MatchString(name) {
		return invalid(field, "%q must be 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// validateLabels checks label keys and values. Values may be empty only
// when allowEmpty (LabelNode's "remove this label").
func validateLabels(field string, labels map[string]string, allowEmpty bool) error {
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		v := labels[k]
		if !labelKeyRE.MatchString(k) {
			return invalid(field, "label key %q must be 1-63 letters, digits, '.', '_', '/' or '-'", k)
		}
		if v == "" && !allowEmpty {
			return invalid(field, "label %q has an empty value", k)
		}
		if len(v) > 253 || strings.ContainsAny(v, ",=\n\r\t") {
			return invalid(field, "label %s: value %q must be at most 253 characters without ',', '=' or control characters", k, v)
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
