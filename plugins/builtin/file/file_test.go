package file

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/plugins/sdk"
	"github.com/cairn-ops/cairn/plugins/sdk/sdktest"
)

const passwd = "root:x:0:0:root:/root:/bin/bash\napp:x:1001:1002::/srv/app:/usr/sbin/nologin\n"
const group = "root:x:0:\napp:x:1002:\nstaff:x:50:\n"

// newRoot returns a root with /etc/passwd and /etc/group.
func newRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	write(t, filepath.Join(root, "etc", "passwd"), passwd, 0o644)
	write(t, filepath.Join(root, "etc", "group"), group, 0o644)
	return root
}

func stepContext(t *testing.T, root string, params map[string]any) *sdk.StepContext {
	t.Helper()
	p, err := sdk.ParamsOf(params)
	if err != nil {
		t.Fatal(err)
	}
	return &sdk.StepContext{RootDir: root, Params: p, Step: "test", CacheDir: filepath.Join(root, "..", filepath.Base(root)+"-cache")}
}

func write(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]any
		want   []*sdk.FieldError
	}{
		{"ok", map[string]any{"path": "/etc/app.conf", "content": "x", "owner": "app", "group": "staff", "mode": "0600"}, nil},
		{"numeric owner", map[string]any{"path": "/etc/app.conf", "content": "", "owner": "4242", "group": "4242"}, nil},
		{"artifact", map[string]any{"path": "/etc/app.conf", "artifact": "conf"}, nil},
		{"no path", map[string]any{"content": "x"}, []*sdk.FieldError{{Field: "path", Message: "is required"}}},
		{"relative escape", map[string]any{"path": "../../etc/passwd", "content": "x"}, []*sdk.FieldError{{Field: "path", Message: "must be an absolute path inside the root, like /etc/app.conf"}}},
		{"absolute escape", map[string]any{"path": "/../../etc/passwd", "content": "x"}, []*sdk.FieldError{{Field: "path", Message: "must not contain .."}}},
		{"the root", map[string]any{"path": "/", "content": "x"}, []*sdk.FieldError{{Field: "path", Message: "must name a file, not the root"}}},
		{"both sources", map[string]any{"path": "/a", "content": "x", "artifact": "conf"}, []*sdk.FieldError{{Field: "content", Message: "give either content or artifact, not both"}}},
		{"no source", map[string]any{"path": "/a"}, []*sdk.FieldError{{Field: "content", Message: "give either content or artifact"}}},
		{"unknown artifact", map[string]any{"path": "/a", "artifact": "nope"}, []*sdk.FieldError{{Field: "artifact", Message: `"nope" is not among the step's artifacts (it has conf)`}}},
		{"bad mode", map[string]any{"path": "/a", "content": "", "mode": "rw-r--r--"}, []*sdk.FieldError{{Field: "mode", Message: `want octal permissions like "0644", got "rw-r--r--"`}}},
		{"mode too big", map[string]any{"path": "/a", "content": "", "mode": "17777"}, []*sdk.FieldError{{Field: "mode", Message: `want octal permissions like "0644", got "17777"`}}},
		{"unknown owner", map[string]any{"path": "/a", "content": "", "owner": "nobody"}, []*sdk.FieldError{{Field: "owner", Message: `no "nobody" in /etc/passwd under the root`}}},
		{"unknown group", map[string]any{"path": "/a", "content": "", "group": "wheel"}, []*sdk.FieldError{{Field: "group", Message: `no "wheel" in /etc/group under the root`}}},
		{"content not a string", map[string]any{"path": "/a", "content": 3}, []*sdk.FieldError{{Field: "content", Message: "must be a string, not number"}}},
	}
	root := newRoot(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := stepContext(t, root, tt.params)
			sc.Artifacts = map[string]string{"conf": filepath.Join(t.TempDir(), "conf")}
			got, err := New().Validate(t.Context(), sc)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("field errors (-want +got):\n%s", diff)
			}
		})
	}
}

// file is what a test expects at a path.
type file struct {
	Content  string
	Mode     os.FileMode
	UID, GID int
}

func read(t *testing.T, path string) *file {
	t.Helper()
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return &file{Content: string(b), Mode: fi.Mode(), UID: int(st.Uid), GID: int(st.Gid)}
}

func TestApplyAndRollback(t *testing.T) {
	me, mygid := os.Getuid(), os.Getgid()
	tests := []struct {
		name        string
		before      *file // at /etc/app/app.conf, nil for absent
		params      map[string]any
		root        bool // needs to run as root (chown)
		wantChanged bool
		want        *file
	}{
		{
			name:        "create with parents",
			params:      map[string]any{"path": "/etc/app/app.conf", "content": "port=80\n", "mode": "0640"},
			wantChanged: true,
			want:        &file{Content: "port=80\n", Mode: 0o640, UID: me, GID: mygid},
		},
		{
			name:        "replace content",
			before:      &file{Content: "port=8080\n", Mode: 0o600, UID: me, GID: mygid},
			params:      map[string]any{"path": "/etc/app/app.conf", "content": "port=80\n"},
			wantChanged: true,
			want:        &file{Content: "port=80\n", Mode: 0o644, UID: me, GID: mygid},
		},
		{
			name:        "mode only",
			before:      &file{Content: "port=80\n", Mode: 0o644, UID: me, GID: mygid},
			params:      map[string]any{"path": "/etc/app/app.conf", "content": "port=80\n", "mode": "4750"},
			wantChanged: true,
			want:        &file{Content: "port=80\n", Mode: 0o750 | os.ModeSetuid, UID: me, GID: mygid},
		},
		{
			name:        "up to date",
			before:      &file{Content: "port=80\n", Mode: 0o644, UID: me, GID: mygid},
			params:      map[string]any{"path": "/etc/app/app.conf", "content": "port=80\n"},
			wantChanged: false,
			want:        &file{Content: "port=80\n", Mode: 0o644, UID: me, GID: mygid},
		},
		{
			name:        "owner by name",
			before:      &file{Content: "port=80\n", Mode: 0o644, UID: me, GID: mygid},
			params:      map[string]any{"path": "/etc/app/app.conf", "content": "port=80\n", "owner": "app", "group": "staff"},
			root:        true,
			wantChanged: true,
			want:        &file{Content: "port=80\n", Mode: 0o644, UID: 1001, GID: 50},
		},
		{
			name:        "new file owned by number",
			params:      map[string]any{"path": "/etc/app/app.conf", "content": "x", "owner": "4242", "group": "app"},
			root:        true,
			wantChanged: true,
			want:        &file{Content: "x", Mode: 0o644, UID: 4242, GID: 1002},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() != 0 {
				t.Fatal("this case changes file owners: run the tests as root (CI does)")
			}
			root := newRoot(t)
			target := filepath.Join(root, "etc", "app", "app.conf")
			if tt.before != nil {
				write(t, target, tt.before.Content, tt.before.Mode)
			}
			sc := stepContext(t, root, tt.params)
			res, err := New().Apply(t.Context(), sc, &sdktest.Recorder{})
			if err != nil {
				t.Fatal(err)
			}
			if res.GetChanged() != tt.wantChanged {
				t.Errorf("changed = %v, want %v", res.GetChanged(), tt.wantChanged)
			}
			if diff := cmp.Diff(tt.want, read(t, target)); diff != "" {
				t.Errorf("after Apply (-want +got):\n%s", diff)
			}
			wantChange := []*sdk.Change{{Kind: sdk.ChangeFile, Name: "/etc/app/app.conf", State: "present", Sha256: sum(tt.want.Content)}}
			if diff := cmp.Diff(wantChange, res.GetChanges(), protocmp.Transform()); diff != "" {
				t.Errorf("declared changes (-want +got):\n%s", diff)
			}
			if v, err := New().Verify(t.Context(), sc); err != nil || !v.GetPassed() {
				t.Errorf("Verify after Apply = %v, %v", v, err)
			}
			entries, _ := os.ReadDir(filepath.Dir(target))
			if len(entries) != 1 {
				t.Errorf("temporary files left behind: %v", entries)
			}

			if _, err := New().Rollback(t.Context(), sc, res.GetRollbackRecord()); err != nil {
				t.Fatalf("Rollback: %v", err)
			}
			if diff := cmp.Diff(tt.before, read(t, target)); diff != "" {
				t.Errorf("after Rollback (-want +got):\n%s", diff)
			}
			if _, err := os.Stat(filepath.Join(root, "etc", "app")); tt.before == nil && err == nil {
				t.Error("Rollback left the directory Apply created")
			}
		})
	}
}

func TestApplyArtifactAndLargeRollback(t *testing.T) {
	root := newRoot(t)
	big := strings.Repeat("0123456789abcdef", (inlineLimit/16)+100) // over 1 MiB
	target := filepath.Join(root, "srv", "blob")
	write(t, target, big, 0o644)
	art := filepath.Join(t.TempDir(), "blob-v2")
	write(t, art, "v2", 0o600)

	sc := stepContext(t, root, map[string]any{"path": "/srv/blob", "artifact": "blob"})
	sc.Artifacts = map[string]string{"blob": art}
	res, err := New().Apply(t.Context(), sc, &sdktest.Recorder{})
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, target); got.Content != "v2" {
		t.Fatalf("content after Apply = %q", got.Content)
	}
	if len(res.GetRollbackRecord()) > 4096 {
		t.Errorf("rollback record has %d bytes; the large previous content belongs in the cache dir", len(res.GetRollbackRecord()))
	}
	if _, err := New().Rollback(t.Context(), sc, res.GetRollbackRecord()); err != nil {
		t.Fatal(err)
	}
	if got := read(t, target); got.Content != big {
		t.Errorf("content after Rollback has %d bytes, want the %d before", len(got.Content), len(big))
	}

	sc.CacheDir = ""
	if _, err := New().Apply(t.Context(), sc, &sdktest.Recorder{}); err == nil || !strings.Contains(err.Error(), "no cache directory") {
		t.Errorf("Apply over a large file without a cache dir: %v, want a clear error", err)
	}
}

func TestEscapesAreRefused(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, root, outside string)
		path  string
	}{
		{
			name: "symlinked directory pointing outside",
			setup: func(t *testing.T, root, outside string) {
				os.Symlink(outside, filepath.Join(root, "srv"))
			},
			path: "/srv/victim",
		},
		{
			name: "relative symlinked directory pointing outside",
			setup: func(t *testing.T, root, outside string) {
				rel, _ := filepath.Rel(root, outside)
				os.Symlink(rel, filepath.Join(root, "srv"))
			},
			path: "/srv/victim",
		},
		{
			name: "symlink at the path",
			setup: func(t *testing.T, root, outside string) {
				os.MkdirAll(filepath.Join(root, "srv"), 0o755)
				os.Symlink(filepath.Join(outside, "victim"), filepath.Join(root, "srv", "victim"))
			},
			path: "/srv/victim",
		},
		{
			name: "symlink at the path pointing inside",
			setup: func(t *testing.T, root, outside string) {
				write(t, filepath.Join(root, "srv", "real"), "keep", 0o644)
				os.Symlink("real", filepath.Join(root, "srv", "victim"))
			},
			path: "/srv/victim",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, outside := newRoot(t), t.TempDir()
			write(t, filepath.Join(outside, "victim"), "precious", 0o644)
			tt.setup(t, root, outside)
			sc := stepContext(t, root, map[string]any{"path": tt.path, "content": "pwned"})
			if _, err := New().Plan(t.Context(), sc); err == nil {
				t.Error("Plan accepted the path")
			}
			if _, err := New().Apply(t.Context(), sc, &sdktest.Recorder{}); err == nil {
				t.Error("Apply accepted the path")
			}
			if got := read(t, filepath.Join(outside, "victim")); got.Content != "precious" {
				t.Errorf("the file outside the root now holds %q", got.Content)
			}
			if entries, _ := os.ReadDir(outside); len(entries) != 1 {
				t.Errorf("files appeared outside the root: %v", entries)
			}
		})
	}
	t.Run("dotdot", func(t *testing.T) {
		for _, p := range []string{"../../etc/passwd", "/../../etc/passwd", "/srv/../../etc/passwd"} {
			sc := stepContext(t, newRoot(t), map[string]any{"path": p, "content": "pwned"})
			if _, err := New().Apply(t.Context(), sc, &sdktest.Recorder{}); !errors.Is(err, ErrInvalidParams) {
				t.Errorf("Apply with path %q: %v, want ErrInvalidParams", p, err)
			}
			rec, _ := (&record{Path: p, Existed: false}).marshal()
			if _, err := New().Rollback(t.Context(), sc, rec); !errors.Is(err, ErrNoRecord) {
				t.Errorf("Rollback of a record with path %q: %v, want ErrNoRecord", p, err)
			}
		}
	})
}

func TestPlan(t *testing.T) {
	root := newRoot(t)
	write(t, filepath.Join(root, "etc", "motd"), "hello\n", 0o644)
	tests := []struct {
		name   string
		params map[string]any
		want   *sdk.Plan
	}{
		{
			name:   "create",
			params: map[string]any{"path": "/etc/new", "content": "x", "mode": "0600"},
			want: &sdk.Plan{
				Actions:     []string{"create /etc/new (1 bytes, sha256 2d711642b726, mode 0600)"},
				Changes:     []*sdk.Change{{Kind: sdk.ChangeFile, Name: "/etc/new", State: "present", Sha256: sum("x")}},
				WouldChange: true,
			},
		},
		{
			name:   "replace and chmod",
			params: map[string]any{"path": "/etc/motd", "content": "x", "mode": "0600"},
			want: &sdk.Plan{
				Actions: []string{
					"replace /etc/motd: sha256 5891b5b522d5 → 2d711642b726 (1 bytes)",
					"chmod /etc/motd 0600 (was 0644)",
				},
				Changes:     []*sdk.Change{{Kind: sdk.ChangeFile, Name: "/etc/motd", State: "present", Sha256: sum("x")}},
				WouldChange: true,
			},
		},
		{
			name:   "up to date",
			params: map[string]any{"path": "/etc/motd", "content": "hello\n"},
			want: &sdk.Plan{
				Actions: []string{"/etc/motd is up to date"},
				Changes: []*sdk.Change{{Kind: sdk.ChangeFile, Name: "/etc/motd", State: "present", Sha256: sum("hello\n")}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New().Plan(t.Context(), stepContext(t, root, tt.params))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	root := newRoot(t)
	write(t, filepath.Join(root, "etc", "motd"), "hello\n", 0o644)
	os.Symlink("motd", filepath.Join(root, "etc", "link"))
	tests := []struct {
		name   string
		params map[string]any
		want   bool
		wantIn string
	}{
		{"matches", map[string]any{"path": "/etc/motd", "content": "hello\n"}, true, "as expected"},
		{"content differs", map[string]any{"path": "/etc/motd", "content": "bye\n"}, false, "differs: replace"},
		{"mode differs", map[string]any{"path": "/etc/motd", "content": "hello\n", "mode": "0600"}, false, "differs: chmod"},
		{"absent", map[string]any{"path": "/etc/none", "content": ""}, false, "/etc/none does not exist"},
		{"symlink", map[string]any{"path": "/etc/link", "content": "hello\n"}, false, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New().Verify(t.Context(), stepContext(t, root, tt.params))
			if err != nil {
				t.Fatal(err)
			}
			if got.GetPassed() != tt.want || !strings.Contains(got.GetEvidence(), tt.wantIn) {
				t.Errorf("Verify = %v %q, want %v with %q", got.GetPassed(), got.GetEvidence(), tt.want, tt.wantIn)
			}
		})
	}
}

func TestDryRunApplyChangesNothing(t *testing.T) {
	root := newRoot(t)
	sc := stepContext(t, root, map[string]any{"path": "/etc/new", "content": "x"})
	sc.DryRun = true
	rec := &sdktest.Recorder{}
	res, err := New().Apply(t.Context(), sc, rec)
	if err != nil {
		t.Fatal(err)
	}
	if res.GetChanged() || read(t, filepath.Join(root, "etc", "new")) != nil {
		t.Errorf("dry-run Apply changed=%v and wrote the file", res.GetChanged())
	}
	if !strings.Contains(rec.String(), "dry run: would create /etc/new") {
		t.Errorf("log %q", rec.String())
	}
}

func conformanceCases() sdktest.Cases {
	return sdktest.Cases{
		Context: func(t *testing.T) *sdk.StepContext {
			root := newRoot(t)
			write(t, filepath.Join(root, "etc", "app.conf"), "old\n", 0o600)
			return stepContext(t, root, map[string]any{"path": "/etc/app.conf", "content": "new\n", "mode": "0640"})
		},
		Invalid: []sdktest.Invalid{
			{Name: "escape", Params: map[string]any{"path": "../../etc/passwd", "content": "x"}, Field: "path"},
			{Name: "no_source", Params: map[string]any{"path": "/etc/x"}, Field: "content"},
			{Name: "bad_mode", Params: map[string]any{"path": "/etc/x", "content": "x", "mode": "abc"}, Field: "mode"},
		},
	}
}

func TestConformance(t *testing.T) {
	sdktest.Run(t, New(), conformanceCases())
}

func TestConformanceOverProcessBoundary(t *testing.T) {
	sdktest.RunBinary(t, sdktest.Self(t), conformanceCases())
}

// TestConformanceNewFile runs the harness on a file whose directories do
// not exist yet: the crash checks then cover the directories made too.
func TestConformanceNewFile(t *testing.T) {
	sdktest.Run(t, New(), sdktest.Cases{
		Context: func(t *testing.T) *sdk.StepContext {
			return stepContext(t, newRoot(t), map[string]any{"path": "/opt/app/conf.d/app.conf", "content": "new\n"})
		},
	})
}

// TestStaleTemporaryFile: the temporary file of an attempt a crash cut
// off is removed by the next Apply and by Rollback.
func TestStaleTemporaryFile(t *testing.T) {
	for _, then := range []string{"apply", "rollback"} {
		t.Run(then, func(t *testing.T) {
			root := newRoot(t)
			write(t, filepath.Join(root, "etc", "app.conf"), "old\n", 0o644)
			sc := stepContext(t, root, map[string]any{"path": "/etc/app.conf", "content": "new\n"})
			sc.StateDir = t.TempDir()
			res, err := New().Apply(t.Context(), sc, &sdktest.Recorder{})
			if err != nil {
				t.Fatal(err)
			}
			stale := filepath.Join(root, "etc", ".app.conf.cairn-tmp")
			write(t, stale, "half written", 0o600)
			switch then {
			case "apply":
				write(t, filepath.Join(root, "etc", "app.conf"), "old\n", 0o644)
				_, err = New().Apply(t.Context(), sc, &sdktest.Recorder{})
			case "rollback":
				_, err = New().Rollback(t.Context(), sc, res.GetRollbackRecord())
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(stale); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the stale temporary file is still there after %s: %v", then, err)
			}
		})
	}
}
