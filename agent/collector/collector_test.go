package collector

import (
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// TestEmptyRoot runs every registered collector on an empty directory,
// which is what `cairn-agent audit --root DIR` with a wrong DIR reads. A
// collector that cannot find its source must fail, naming the path it
// looked for, so that a diff reports the section as not comparable instead
// of "everything removed".
func TestEmptyRoot(t *testing.T) {
	tests := map[string]struct {
		wantErr   bool
		wantWarns bool
	}{
		"cpu":      {wantErr: true},
		"memory":   {wantErr: true},
		"block":    {wantErr: true},
		"network":  {wantErr: true},
		"pci":      {wantErr: true},
		"gpu":      {wantErr: true},
		"dmi":      {wantErr: true},
		"os":       {wantErr: true},
		"packages": {wantErr: true},
		"services": {wantErr: true},
		// Nothing tracked: nothing to read, an honest empty section.
		"files": {},
		// No /proc at all: nothing says the kernel has no module support.
		"kernel_modules": {wantErr: true},
		// Volatile facts are not compared; each missing one is a warning.
		"volatile": {wantWarns: true},
	}
	reg := Registry()
	if diff := cmp.Diff(Names(), sortedKeys(tests)); diff != "" {
		t.Fatalf("expectations do not cover the registry (-registry +table):\n%s", diff)
	}
	root := t.TempDir()
	for name, c := range reg {
		t.Run(name, func(t *testing.T) {
			tc := tests[name]
			out, warns, err := swRun(t.Context(), c, Env{Root: root})
			for _, w := range warns {
				if strings.ContainsAny(w, "\r\n") {
					t.Errorf("multi-line warning %q", w)
				}
			}
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("err = %v, want none", err)
				}
				if (len(warns) > 0) != tc.wantWarns {
					t.Errorf("warnings %q, want some: %v", warns, tc.wantWarns)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; section %v", out)
			}
			msg := err.Error()
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("multi-line error %q", msg)
			}
			if errors.Is(err, errors.ErrUnsupported) {
				return // hardware collectors off Linux
			}
			if !errors.Is(err, ErrNoSource) && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("err = %v, want ErrNoSource or fs.ErrNotExist", err)
			}
			if !strings.Contains(msg, root) {
				t.Errorf("err = %q does not name the path under %s", msg, root)
			}
			if !proto.Equal(out, &inventoryv1.Audit{}) {
				t.Errorf("section set despite the error: %v", out)
			}
		})
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestOneLine(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"single line", "read x: permission denied", "read x: permission denied"},
		{"errors.Join", "os-release: open a: no such file\nopen b: no such file", "os-release: open a: no such file; open b: no such file"},
		{"tool stderr, blank lines, CRLF", "rpm: exit status 1: error: a\r\n\n  error: b\n", "rpm: exit status 1: error: a; error: b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := oneLine(tc.in); got != tc.want {
				t.Errorf("oneLine(%q) = %q, want %q", tc.in, got, tc.want)
			}
			var warns []string
			Env{Warn: func(m string) { warns = append(warns, m) }}.warn(tc.in)
			if diff := cmp.Diff([]string{tc.want}, warns); diff != "" {
				t.Errorf("Env.warn (-want +got):\n%s", diff)
			}
		})
	}
}
