package integration

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackageDocs checks that every Go package in the repository has
// exactly one package doc comment, in one of its non-test files.
func TestPackageDocs(t *testing.T) {
	root := repoRoot()
	dirs := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			dirs[filepath.Dir(path)] = append(dirs[filepath.Dir(path)], path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 5 {
		t.Fatalf("found only %d packages under %s; is the walk broken?", len(dirs), root)
	}
	fset := token.NewFileSet()
	for dir, files := range dirs {
		var withDoc []string
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			file, err := parser.ParseFile(fset, f, src, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if file.Doc != nil {
				withDoc = append(withDoc, filepath.Base(f))
			}
		}
		rel, _ := filepath.Rel(root, dir)
		switch len(withDoc) {
		case 1:
		case 0:
			t.Errorf("package %s has no package doc comment", rel)
		default:
			t.Errorf("package %s has %d package doc comments (%s); keep exactly one", rel, len(withDoc), strings.Join(withDoc, ", "))
		}
	}
}
