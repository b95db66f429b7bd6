package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/plugins/sdk"
	"github.com/cairn-ops/cairn/plugins/sdk/sdktest"
)

// stepContext returns a StepContext for root with params.
func stepContext(t *testing.T, root string, params map[string]any) *sdk.StepContext {
	t.Helper()
	ps, err := sdk.ParamsOf(params)
	if err != nil {
		t.Fatal(err)
	}
	return &sdk.StepContext{RootDir: root, Params: ps, Step: "motd", IdempotencyKey: "test-1"}
}

// conformance lists the roots the harness runs on: an empty one (Apply
// creates /etc) and one with a previous /etc/motd (Rollback restores it).
var conformance = []struct {
	name  string
	setup func(t *testing.T, root string)
}{
	{"empty_root", func(*testing.T, string) {}},
	{"previous_motd", func(t *testing.T, root string) {
		if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "etc/motd"), []byte("old\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}},
}

func cases(setup func(*testing.T, string)) sdktest.Cases {
	return sdktest.Cases{
		Context: func(t *testing.T) *sdk.StepContext {
			root := t.TempDir()
			setup(t, root)
			return stepContext(t, root, map[string]any{"message": "Welcome to Cairn", "mode": "0640"})
		},
		Invalid: []sdktest.Invalid{
			{Name: "relative_path", Params: map[string]any{"message": "hi", "path": "etc/motd"}, Field: "path"},
			{Name: "root_as_path", Params: map[string]any{"message": "hi", "path": "/"}, Field: "path"},
			{Name: "bad_mode", Params: map[string]any{"message": "hi", "mode": "rw-r--r--"}, Field: "mode"},
			{Name: "mode_too_big", Params: map[string]any{"message": "hi", "mode": "07777"}, Field: "mode"},
			{Name: "message_not_string", Params: map[string]any{"message": 42}, Field: "message"},
			{Name: "unknown_param", Params: map[string]any{"message": "hi", "owner": "root"}, Field: "owner"},
		},
	}
}

func TestConformance(t *testing.T) {
	for _, c := range conformance {
		t.Run(c.name, func(t *testing.T) { sdktest.Run(t, New(), cases(c.setup)) })
	}
}

func TestConformanceBinary(t *testing.T) {
	bin := sdktest.Build(t, "github.com/cairn-ops/cairn/plugins/examples/cairn-plugin-motd")
	for _, c := range conformance {
		t.Run(c.name, func(t *testing.T) { sdktest.RunBinary(t, bin, cases(c.setup)) })
	}
}

func TestApply(t *testing.T) {
	tests := []struct {
		name        string
		params      map[string]any
		before      map[string]string // relative path → content (mode 0644)
		wantChanged bool
		wantFile    string
		wantContent string
		wantMode    os.FileMode
	}{
		{
			name:        "creates with defaults",
			params:      map[string]any{"message": "hello"},
			wantChanged: true,
			wantFile:    "etc/motd",
			wantContent: "hello\n",
			wantMode:    0o644,
		},
		{
			name:        "keeps a final newline",
			params:      map[string]any{"message": "two\nlines\n", "path": "/srv/motd.txt", "mode": "600"},
			wantChanged: true,
			wantFile:    "srv/motd.txt",
			wantContent: "two\nlines\n",
			wantMode:    0o600,
		},
		{
			name:        "replaces other content",
			params:      map[string]any{"message": "new"},
			before:      map[string]string{"etc/motd": "old\n"},
			wantChanged: true,
			wantFile:    "etc/motd",
			wantContent: "new\n",
			wantMode:    0o644,
		},
		{
			name:        "unchanged when up to date",
			params:      map[string]any{"message": "same"},
			before:      map[string]string{"etc/motd": "same\n"},
			wantChanged: false,
			wantFile:    "etc/motd",
			wantContent: "same\n",
			wantMode:    0o644,
		},
		{
			name:        "path cleaned and kept under the root",
			params:      map[string]any{"message": "x", "path": "/../../etc/./motd"},
			wantChanged: true,
			wantFile:    "etc/motd",
			wantContent: "x\n",
			wantMode:    0o644,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for rel, content := range tt.before {
				p := filepath.Join(root, rel)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			res, err := New().Apply(t.Context(), stepContext(t, root, tt.params), &sdktest.Recorder{})
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if res.GetChanged() != tt.wantChanged {
				t.Errorf("changed = %v, want %v", res.GetChanged(), tt.wantChanged)
			}
			p := filepath.Join(root, tt.wantFile)
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantContent, string(data)); diff != "" {
				t.Errorf("content (-want +got):\n%s", diff)
			}
			info, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode().Perm() != tt.wantMode {
				t.Errorf("mode = %04o, want %04o", info.Mode().Perm(), tt.wantMode)
			}
			left, err := filepath.Glob(filepath.Join(filepath.Dir(p), ".*.tmp-*"))
			if err != nil || len(left) > 0 {
				t.Errorf("temporary files left behind: %v %v", left, err)
			}
		})
	}
}

func TestApplyRefusesSymlinkEscape(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "etc")); err != nil {
		t.Fatal(err)
	}
	_, err := New().Apply(t.Context(), stepContext(t, root, map[string]any{"message": "x"}), &sdktest.Recorder{})
	if err == nil {
		t.Fatal("Apply through a symlink leaving the root succeeded")
	}
	if entries, _ := os.ReadDir(outside); len(entries) > 0 {
		t.Errorf("Apply wrote outside the root: %v", entries)
	}
}

func TestPlanDeclaresFileChange(t *testing.T) {
	root := t.TempDir()
	plan, err := New().Plan(t.Context(), stepContext(t, root, map[string]any{"message": "hello"}))
	if err != nil {
		t.Fatal(err)
	}
	want := &sdk.Plan{
		Actions:     []string{"create /etc/motd (6 bytes, mode 0644)"},
		WouldChange: true,
		Changes: []*sdk.Change{{
			Kind:   sdk.ChangeFile,
			Name:   "/etc/motd",
			State:  "present",
			Sha256: "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03", // sha256("hello\n")
		}},
	}
	if diff := cmp.Diff(want, plan, protocmp.Transform()); diff != "" {
		t.Errorf("Plan (-want +got):\n%s", diff)
	}
}
