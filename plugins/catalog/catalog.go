// Package catalog reads the plugin catalog: the external plugin binaries
// an agent may start, each with the sha256 it must have. The agent's
// plugin host (agent/pluginhost) starts the binaries it lists; cairnctl
// reads it to know which plugin names a manifest may use besides the
// built-ins ('release validate --plugins DIR').
package catalog

import (
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/cairn-ops/cairn/internal/digest"
	"github.com/cairn-ops/cairn/internal/readlimit"
)

// FileName is the name of the catalog inside the catalog directory.
const FileName = "catalog.yaml"

// Catalog is the agent's list of external plugins: binaries in one
// directory, each with the sha256 it must have. Its file looks like
//
//	plugins:
//	  - name: motd
//	    file: cairn-plugin-motd
//	    sha256: 3b0c…(64 hex digits)
//
// A file is a path relative to the catalog directory and may not leave it.
type Catalog struct {
	// Dir is the catalog directory, as given to Load.
	Dir     string
	entries []Entry
}

// Entry is one external plugin in the catalog.
type Entry struct {
	// Name is what steps call the plugin by.
	Name string
	// File is the binary's path as written in the catalog (relative).
	File string
	// Path is File joined to the catalog directory.
	Path string
	// SHA256 is the binary's expected sha256, lowercase hex.
	SHA256 string
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// MaxBytes bounds catalog.yaml: a name, a file and a sha256 per plugin.
const MaxBytes = 1 << 20

// Load reads DIR/catalog.yaml. Errors name the file and line.
func Load(dir string) (*Catalog, error) {
	path := filepath.Join(dir, FileName)
	data, err := readlimit.File(path, "plugin catalog", MaxBytes)
	if err != nil {
		return nil, err
	}
	entries, err := parseCatalog(data, path)
	if err != nil {
		return nil, err
	}
	for i := range entries {
		entries[i].Path = filepath.Join(dir, entries[i].File)
	}
	return &Catalog{Dir: dir, entries: entries}, nil
}

// Entries returns the catalog's plugins in file order.
func (c *Catalog) Entries() []Entry {
	if c == nil {
		return nil
	}
	return slices.Clone(c.entries)
}

// Lookup returns the entry called name.
func (c *Catalog) Lookup(name string) (Entry, bool) {
	if c == nil {
		return Entry{}, false
	}
	for _, e := range c.entries {
		if e.Name == name {
			return e, true
		}
	}
	return Entry{}, false
}

// parseCatalog decodes a catalog document; filename is used in errors.
func parseCatalog(data []byte, filename string) ([]Entry, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(filename, err)
	}
	errAt := func(n *yaml.Node, format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s", filename, n.Line, fmt.Sprintf(format, args...))
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil // empty file: no external plugins
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, errAt(top, "want a mapping with a plugins list")
	}
	var list *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		switch k.Value {
		case "plugins":
			list = v
		default:
			return nil, errAt(k, "unknown field %q (want plugins)", k.Value)
		}
	}
	if list == nil || list.Tag == "!!null" {
		return nil, nil
	}
	if list.Kind != yaml.SequenceNode {
		return nil, errAt(list, "plugins: want a list of {name, file, sha256}")
	}
	var entries []Entry
	seen := map[string]int{}
	for i, item := range list.Content {
		where := fmt.Sprintf("plugins[%d]", i)
		if item.Kind != yaml.MappingNode {
			return nil, errAt(item, "%s: want a mapping with name, file and sha256", where)
		}
		var e Entry
		for j := 0; j+1 < len(item.Content); j += 2 {
			k, v := item.Content[j], item.Content[j+1]
			if v.Kind != yaml.ScalarNode {
				return nil, errAt(v, "%s.%s: want a string", where, k.Value)
			}
			switch k.Value {
			case "name":
				e.Name = v.Value
				if !nameRE.MatchString(v.Value) {
					return nil, errAt(v, "%s.name: %q is not a plugin name (lowercase letters, digits, '.', '_', '-')", where, v.Value)
				}
			case "file":
				e.File = v.Value
				if err := checkFile(v.Value); err != nil {
					return nil, errAt(v, "%s.file: %v", where, err)
				}
			case "sha256":
				e.SHA256 = strings.ToLower(v.Value)
				if b, err := hex.DecodeString(e.SHA256); err != nil || len(b) != 32 {
					return nil, errAt(v, "%s.sha256: %q is not 64 hex digits", where, v.Value)
				}
			default:
				return nil, errAt(k, "%s: unknown field %q (want name, file, sha256)", where, k.Value)
			}
		}
		for _, f := range []struct{ name, val string }{{"name", e.Name}, {"file", e.File}, {"sha256", e.SHA256}} {
			if f.val == "" {
				return nil, errAt(item, "%s: %s is required", where, f.name)
			}
		}
		if line, dup := seen[e.Name]; dup {
			return nil, errAt(item, "%s: plugin %q is already listed on line %d", where, e.Name, line)
		}
		seen[e.Name] = item.Line
		entries = append(entries, e)
	}
	return entries, nil
}

// checkFile refuses catalog file paths that leave the catalog directory.
func checkFile(file string) error {
	if filepath.IsAbs(file) {
		return fmt.Errorf("%q is absolute; want a path inside the catalog directory", file)
	}
	if !filepath.IsLocal(file) {
		return fmt.Errorf("%q leaves the catalog directory", file)
	}
	return nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError turns "yaml: line 3: …" into "FILE:3: …".
func yamlError(filename string, err error) error {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("%s:%s: %s", filename, m[1], m[2])
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return fmt.Errorf("%s: %s", filename, strings.Join(te.Errors, "; "))
	}
	return fmt.Errorf("%s: %w", filename, err)
}

// Verify checks that the entry's binary is there and has the catalog's
// sha256, without starting it. A mismatch is ErrChecksum.
func (e Entry) Verify() error {
	got, err := digest.File(e.Path)
	if err != nil {
		return fmt.Errorf("plugin %s: %w", e.Name, err)
	}
	if got != e.SHA256 {
		return fmt.Errorf("plugin %s: sha256 of %s is %s, catalog says %s: %w", e.Name, e.Path, got, e.SHA256, ErrChecksum)
	}
	return nil
}
