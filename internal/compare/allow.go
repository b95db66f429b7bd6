package compare

import (
	"path"
	"strings"

	"github.com/cairn-ops/cairn/internal/diff"
)

// allowed reports whether an allow pattern covers change ch of section.
// An item change is covered when a pattern matches any of its names
// (subjects); a change of fields directly on the section when every
// field is matched as "section/field".
func allowed(patterns []string, section string, ch diff.Change) bool {
	if len(patterns) == 0 {
		return false
	}
	if ch.Kind == "" {
		if len(ch.Fields) == 0 {
			return false
		}
		for _, f := range ch.Fields {
			if !matchAny(patterns, subject(section, f.Field)) {
				return false
			}
		}
		return true
	}
	for _, s := range subjects(section, ch) {
		if matchAny(patterns, s) {
			return true
		}
	}
	return false
}

// subjects are the "section/key" names of an item change an allow
// pattern may match.
func subjects(section string, ch diff.Change) []string {
	names := []string{ch.Key}
	if ch.Kind == "package" {
		parts := strings.Split(ch.Key, "/")
		if len(parts) == 3 {
			names = append(names, parts[0]+"/"+parts[1])
		}
		names = append(names, packageName(ch))
	}
	names = append(names, ch.OldKey, ch.Match, ch.Item.Get("name"), ch.Item.Get("slot"))
	var out []string
	for _, n := range names {
		if n != "" {
			out = append(out, subject(section, n))
		}
	}
	return out
}

// subject is "section/key" with the key's leading slash dropped, so
// "files/etc/x" names the file /etc/x.
func subject(section, key string) string {
	return section + "/" + strings.TrimPrefix(key, "/")
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}
