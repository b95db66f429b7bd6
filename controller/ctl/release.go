package ctl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairn-ops/cairn/internal/manifest"
	"github.com/cairn-ops/cairn/internal/readlimit"
	"github.com/cairn-ops/cairn/plugins/builtin"
	"github.com/cairn-ops/cairn/plugins/catalog"
	"github.com/cairn-ops/cairn/plugins/preflight"
)

func (a *app) newReleaseCommand() *cobra.Command {
	c := group("release", "Work with release packages: check, create, seal, test, approve, verify and report",
		`A release package is a versioned manifest of components (artifacts), steps,
acceptance checks, expected changes, rollback steps, known errors, notes,
an SLA and the sign-off it needs (see internal/manifest for the schema).

Its lifecycle: create (a draft, artifacts uploaded to the DML), seal
(frozen and signed), test record (a tester, not the author), approve or
reject (approvers, not the author or a tester). Only an approved release
can be rolled out.`,
		`  cairnctl release validate -f release.yaml
  cairnctl release create -f release.yaml
  cairnctl release seal webshop@1.0.0
  cairnctl release test record webshop@1.0.0 --result pass --note "staging green"
  cairnctl release approve webshop@1.0.0 --note "CHG-1042"
  cairnctl release verify webshop@1.0.0`,
		append([]*cobra.Command{a.newReleaseValidateCommand()}, a.releaseCommands()...)...,
	)
	c.Annotations = map[string]string{noConfig: ""} // help needs no controller
	return c
}

func (a *app) newReleaseValidateCommand() *cobra.Command {
	var file, artifacts, plugins string
	cmd := &cobra.Command{
		Use:   "validate -f FILE",
		Short: "Check a release manifest offline, with every problem by line and field",
		Long: `Validate checks a release manifest without a controller: the schema
(unknown keys, wrong types and values, duplicates, versions, durations,
patterns), that every local component file exists (and has its sha256),
that every step's plugin exists, and each step's parameters against its
plugin's own Validate. The built-in plugins run in this process: Validate
for every step, and Plan (dry run, on an empty temporary root, never Apply)
for the steps list, to collect the changes each step declares. Those are
merged into the manifest's expect section (the manifest wins; a
disagreement is a warning) and printed.

Plugins named only by a --plugins catalog are not run: their steps are
reported as not checked. exec's "unless" guard is never run: Plan gets the
step's parameters without it. A component given by digest is in the DML and
is not checked offline.

Exit status 0 when the manifest is valid, 2 when it is not (every problem
is listed, as FILE:LINE: FIELD: MESSAGE).`,
		Example: `  cairnctl release validate -f release.yaml
  cairnctl release validate -f release.yaml --artifacts build/out -o json
  cairnctl release validate -f release.yaml --plugins /etc/cairn/plugins`,
		Annotations: map[string]string{noConfig: ""},
		Args:        noArgs,
	}
	f := addFormat(cmd, formatText, formatText, formatJSON)
	cmd.Flags().StringVarP(&file, "file", "f", "", "the release manifest (required)")
	cmd.Flags().StringVar(&artifacts, "artifacts", "", "directory component paths are relative to (default: the manifest's)")
	cmd.Flags().StringVar(&plugins, "plugins", "", "plugin catalog directory (catalog.yaml) naming external plugins")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := f.check(); err != nil {
			return err
		}
		if file == "" {
			return usageErrorf("-f FILE is required: the release manifest to check")
		}
		var cat *catalog.Catalog
		if plugins != "" {
			var err error
			if cat, err = catalog.Load(plugins); err != nil {
				return usageError(err)
			}
		}
		data, err := manifest.ReadFile(file)
		if err != nil {
			return usageError(err)
		}
		v := validateManifest(cmd.Context(), data, file, artifacts, cat)
		if f.name == formatJSON {
			b, err := json.MarshalIndent(v, "", "  ")
			if err != nil {
				return fmt.Errorf("encode validation: %w", err)
			}
			if _, err := fmt.Fprintf(a.out, "%s\n", b); err != nil {
				return err
			}
		} else if err := v.print(a.out); err != nil {
			return err
		}
		if !v.Valid {
			return usageErrorf("%s: invalid release manifest: %d problem(s)", file, len(v.Problems))
		}
		return nil
	}
	return cmd
}

// validation is what release validate found.
type validation struct {
	File    string `json:"file"`
	Release string `json:"release,omitempty"`
	Valid   bool   `json:"valid"`
	// Problems make the manifest invalid.
	Problems   []fileProblem    `json:"problems,omitempty"`
	Components []componentCheck `json:"components,omitempty"`
	Steps      []stepCheck      `json:"steps,omitempty"`
	// Expect is the manifest's expect section with the steps' declared
	// changes merged in; nil when the manifest did not parse.
	Expect *manifest.Expect `json:"expect,omitempty"`
	// Warnings do not make the manifest invalid.
	Warnings []string `json:"warnings,omitempty"`
}

// fileProblem is one problem placed in the file.
type fileProblem = preflight.Problem

type componentCheck struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Source string `json:"source"`
	Status string `json:"status"`
}

type stepCheck = preflight.Step

// validateManifest checks data (the manifest read from file). It never
// fails: everything it finds is in the result.
func validateManifest(ctx context.Context, data []byte, file, artifactsDir string, cat *catalog.Catalog) *validation {
	v := &validation{File: file}
	m, err := manifest.Parse(data, file)
	if err != nil {
		var e *manifest.Error
		if !errors.As(err, &e) {
			v.Problems = append(v.Problems, fileProblem{File: file, Message: err.Error()})
			return v
		}
		for _, p := range e.Problems {
			v.Problems = append(v.Problems, fileProblem{File: file, Line: p.Line, Field: p.Field, Message: p.Message})
		}
		v.Warnings = append(v.Warnings, "plugins were not run: fix the schema problems first")
		return v
	}
	v.Release = m.Name + "@" + m.Version
	paths := v.checkComponents(m, artifactsDir)
	declared := v.checkSteps(ctx, m, paths, cat)
	merged := manifest.MergeDeclared(m, declared)
	v.Expect = &merged.Expect
	v.Warnings = append(v.Warnings, merged.Warnings...)
	v.Valid = len(v.Problems) == 0
	return v
}

// checkComponents resolves the local components and checks their sha256;
// it returns the local paths of those it found.
func (v *validation) checkComponents(m *manifest.Manifest, artifactsDir string) map[string]string {
	dir := artifactsDir
	if dir == "" {
		dir = m.Dir
	}
	paths := map[string]string{}
	for i, c := range m.Components {
		cc := componentCheck{Name: c.Name, Kind: c.Kind}
		if c.Digest != "" {
			cc.Source, cc.Status = "digest "+c.Digest, "in the DML: not checked offline"
			v.Components = append(v.Components, cc)
			continue
		}
		cc.Source = c.Path
		shown := filepath.Join(dir, c.Path)
		path, err := m.LocalPath(c, artifactsDir)
		status := ""
		switch {
		case errors.Is(err, os.ErrNotExist):
			err = fmt.Errorf("%s does not exist (component paths are relative to the manifest's directory or --artifacts)", shown)
		case err == nil:
			status, err = checkArtifact(path, shown, c.SHA256)
		}
		if err != nil {
			cc.Status = "missing or bad"
			v.Problems = append(v.Problems, fileProblem{File: m.File, Line: c.Line, Field: fmt.Sprintf("components[%d].path", i), Message: "component " + c.Name + ": " + err.Error()})
		} else {
			cc.Status = status
			paths[c.Name] = path
		}
		v.Components = append(v.Components, cc)
	}
	return paths
}

// checkArtifact checks the regular file at path against its sha256 (want,
// if given); messages call it shown.
func checkArtifact(path, shown, want string) (string, error) {
	f, err := readlimit.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if want == "" {
		return "ok (no sha256 given)", nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", shown, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return "", fmt.Errorf("sha256 of %s is %s, the manifest says %s", shown, got, want)
	}
	return "ok (sha256 matches)", nil
}

// checkSteps runs the plugins' checks (plugins/preflight) and records
// what they found; it returns the changes the plans declare.
func (v *validation) checkSteps(ctx context.Context, m *manifest.Manifest, paths map[string]string, cat *catalog.Catalog) []manifest.Declared {
	r := preflight.Check(ctx, m, preflight.Options{
		Paths: paths,
		External: func(name string) bool {
			_, ok := cat.Lookup(name)
			return ok
		},
		Unknown: func(name string) string { return unknownPlugin(name, cat) },
	})
	v.Problems = append(v.Problems, r.Problems...)
	v.Warnings = append(v.Warnings, r.Warnings...)
	v.Steps = append(v.Steps, r.Steps...)
	return r.Declared
}

func unknownPlugin(name string, cat *catalog.Catalog) string {
	msg := fmt.Sprintf("unknown plugin %q: the built-in plugins are %s", name, strings.Join(builtin.Names(), ", "))
	if cat == nil {
		return msg + " (external plugins: give their catalog with --plugins DIR)"
	}
	var ext []string
	for _, e := range cat.Entries() {
		ext = append(ext, e.Name)
	}
	if len(ext) == 0 {
		return msg + "; the catalog in " + cat.Dir + " names none"
	}
	return msg + "; the catalog in " + cat.Dir + " has " + strings.Join(ext, ", ")
}

// print writes the validation for people.
func (v *validation) print(w io.Writer) error {
	var b strings.Builder
	if v.Release != "" {
		fmt.Fprintf(&b, "%s: release %s\n", v.File, v.Release)
	}
	if len(v.Components) > 0 {
		b.WriteString("\ncomponents:\n")
		t := newTable(&b)
		for _, c := range v.Components {
			t.row("  "+c.Name, c.Kind, c.Source, c.Status)
		}
		t.flush()
	}
	if len(v.Steps) > 0 {
		b.WriteString("\nsteps:\n")
		t := newTable(&b)
		for _, s := range v.Steps {
			t.row("  "+s.Step, s.Plugin, s.Status)
		}
		t.flush()
		for _, s := range v.Steps {
			for _, a := range s.Actions {
				fmt.Fprintf(&b, "  %s: %s\n", s.Step, a)
			}
		}
	}
	if v.Expect != nil {
		b.WriteString("\nexpect (the manifest's, and what the steps declare):\n")
		printExpect(&b, v.Expect)
	}
	if len(v.Warnings) > 0 {
		b.WriteString("\nwarnings:\n")
		for _, w := range v.Warnings {
			b.WriteString("  " + w + "\n")
		}
	}
	if len(v.Problems) > 0 {
		b.WriteString("\nproblems:\n")
		for _, p := range v.Problems {
			b.WriteString("  " + p.String() + "\n")
		}
		fmt.Fprintf(&b, "\n%s is invalid: %d problem(s)\n", v.File, len(v.Problems))
	} else {
		fmt.Fprintf(&b, "\n%s is valid\n", v.File)
	}
	_, err := io.WriteString(w, strings.TrimPrefix(b.String(), "\n"))
	return err
}

func printExpect(b *strings.Builder, e *manifest.Expect) {
	by := func(s string) string {
		if s == "" {
			return "manifest"
		}
		return "declared by " + s
	}
	section := func(name string, n int) bool {
		if n == 0 {
			return false
		}
		b.WriteString("  " + name + ":\n")
		return true
	}
	if section("packages", len(e.Packages)) {
		t := newTable(b)
		for _, p := range e.Packages {
			t.row("    "+p.Name, p.State, p.Version, by(p.DeclaredBy))
		}
		t.flush()
	}
	if section("files", len(e.Files)) {
		t := newTable(b)
		for _, f := range e.Files {
			content := "any content"
			switch {
			case f.SHA256 != "":
				content = "sha256 " + f.SHA256
			case f.Artifact != "":
				content = "content of " + f.Artifact
			}
			t.row("    "+f.Path, content, by(f.DeclaredBy))
		}
		t.flush()
	}
	if section("services", len(e.Services)) {
		t := newTable(b)
		for _, s := range e.Services {
			t.row("    "+s.Name, s.State, by(s.DeclaredBy))
		}
		t.flush()
	}
	if section("hardware", len(e.Hardware)) {
		for _, h := range e.Hardware {
			fmt.Fprintf(b, "    %s %s %s\n", h.Fact, h.Op, h.Value)
		}
	}
	if section("allow", len(e.Allow)) {
		for _, a := range e.Allow {
			b.WriteString("    " + a + "\n")
		}
	}
	if len(e.Packages)+len(e.Files)+len(e.Services)+len(e.Hardware)+len(e.Allow) == 0 {
		b.WriteString("  nothing\n")
	}
}
