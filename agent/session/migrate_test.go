package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/agent/journal"
	"github.com/cairn-ops/cairn/internal/testutil"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// oldState is the state.json of an agent from before the one outbox:
// five completed commands, two results the controller has not
// acknowledged (one of them a failed deploy with its report).
const oldState = `{
  "completed": ["c0", "c1", "c2", "c3", "c4"],
  "outbox": [
    {"command_id": "c3", "ok": true, "audit_id": "sha256:abc"},
    {"command_id": "c4", "ok": false, "error": "step steps[0] failed", "report_json": "eyJzdGF0ZSI6ImZhaWxlZCJ9"}
  ]
}
`

// oldDataDir is an older agent's data dir: state.json, and a journal
// whose outbox holds a step result.
func oldDataDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, StateFile), []byte(oldState), 0o600); err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := j.Put(t.Context(), journal.OutboxItem{ID: "dep/steps/a/1", Kind: journal.KindStepResult, Payload: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func migrationAgent(dir string) *Agent {
	log := slog.New(slog.DiscardHandler)
	return &Agent{cfg: Config{DataDir: dir}, log: log, journal: &journalHandle{dataDir: dir, log: log}}
}

// migrated is what a data dir holds: whether state.json is there, the
// completed commands, and the outbox (results as protos).
type migrated struct {
	StateFile bool
	Completed []string
	Outbox    []string
	Results   []*agentv1.CommandResult
}

func readMigrated(t *testing.T, dir string) migrated {
	t.Helper()
	var m migrated
	_, err := os.Stat(filepath.Join(dir, StateFile))
	m.StateFile = err == nil
	j, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if m.Completed, err = j.Recent(t.Context(), 100); err != nil {
		t.Fatal(err)
	}
	items, err := j.List(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range items {
		m.Outbox = append(m.Outbox, items[i].ID)
		if items[i].Kind == journal.KindCommandResult {
			m.Results = append(m.Results, storedResult(&items[i]))
		}
	}
	return m
}

var wantMigrated = migrated{
	Completed: []string{"c0", "c1", "c2", "c3", "c4"},
	Outbox:    []string{"dep/steps/a/1", "command/c3", "command/c4"},
	Results: []*agentv1.CommandResult{
		{CommandId: "c3", Ok: true, AuditId: "sha256:abc"},
		{CommandId: "c4", Error: "step steps[0] failed", ReportJson: []byte(`{"state":"failed"}`)},
	},
}

func TestMigrateState(t *testing.T) {
	dir := oldDataDir(t)
	if err := migrationAgent(dir).migrateState(t.Context()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantMigrated, readMigrated(t, dir), protocmp.Transform()); diff != "" {
		t.Errorf("after the migration (-want +got):\n%s", diff)
	}
	// The next start has nothing to migrate.
	if err := migrationAgent(dir).migrateState(t.Context()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantMigrated, readMigrated(t, dir), protocmp.Transform()); diff != "" {
		t.Errorf("after a second start (-want +got):\n%s", diff)
	}
}

// migrateCrashEnv names the data dir and the point at which
// TestMigrateStateCrashAnywhere's child process exits.
const migrateCrashEnv = "CAIRN_TEST_MIGRATE_CRASH"

// TestMigrateStateCrashAnywhere kills the migration (a child process
// exits on the spot, holding the journal open) at each of its points;
// the next start finishes it, and the data dir holds what an
// uninterrupted migration leaves, each result once.
func TestMigrateStateCrashAnywhere(t *testing.T) {
	if v := os.Getenv(migrateCrashEnv); v != "" {
		dir, point, _ := strings.Cut(v, "\n")
		a := migrationAgent(dir)
		a.migrateStop = func(p string) {
			if p == point {
				os.Exit(3)
			}
		}
		err := a.migrateState(t.Context())
		fmt.Fprintf(os.Stderr, "the migration did not stop at %q: %v\n", point, err)
		os.Exit(1)
	}
	tests := []struct {
		point string
		// after is what the crash left.
		after migrated
	}{
		{migrateRead, migrated{StateFile: true, Outbox: []string{"dep/steps/a/1"}}},
		{migrateImported, migrated{StateFile: true, Completed: wantMigrated.Completed, Outbox: wantMigrated.Outbox, Results: wantMigrated.Results}},
		{migrateRemoved, wantMigrated},
	}
	for _, tt := range tests {
		t.Run(tt.point, func(t *testing.T) {
			dir := oldDataDir(t)
			cmd := exec.Command(os.Args[0], "-test.run=^TestMigrateStateCrashAnywhere$")
			cmd.Env = append(os.Environ(), migrateCrashEnv+"="+dir+"\n"+tt.point)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 3 {
				t.Fatalf("child: %v, want exit status 3\n%s", err, out)
			}
			if diff := cmp.Diff(tt.after, readMigrated(t, dir), protocmp.Transform()); diff != "" {
				t.Errorf("after the crash (-want +got):\n%s", diff)
			}
			if err := migrationAgent(dir).migrateState(t.Context()); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantMigrated, readMigrated(t, dir), protocmp.Transform()); diff != "" {
				t.Errorf("after the next start (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMigrateStateRefusesABadFile: a state.json the agent cannot read is
// an error naming the file and what is wrong, and changes nothing.
func TestMigrateStateRefusesABadFile(t *testing.T) {
	tests := []struct {
		name    string
		make    func(t *testing.T, path string)
		wantErr string // PATH stands for state.json's path
	}{
		{
			name:    "not JSON",
			make:    writeFile(`{"completed": ["c0"], "outbox": [`),
			wantErr: "migrate state.json into journal.db: PATH is not an agent's state file: unexpected end of JSON input",
		},
		{
			name:    "a result without a command ID",
			make:    writeFile(`{"completed": ["c0"], "outbox": [{"ok": true}]}`),
			wantErr: "migrate state.json into journal.db: PATH: outbox[0] has no command_id",
		},
		{
			name: "over its limit",
			make: func(t *testing.T, path string) {
				if err := os.Rename(testutil.SparseFile(t, maxStateBytes+1), path); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "migrate state.json into journal.db: agent state PATH: larger than",
		},
		{
			name: "a named pipe",
			make: func(t *testing.T, path string) {
				if err := syscall.Mkfifo(path, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "migrate state.json into journal.db: agent state PATH: not a regular file (a named pipe)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, StateFile)
			tt.make(t, path)
			before, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			err = migrationAgent(dir).migrateState(t.Context())
			if want := strings.ReplaceAll(tt.wantErr, "PATH", path); err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("migrateState: %v\nwant an error starting with %s", err, want)
			}
			after, err := os.Lstat(path)
			if err != nil || after.Size() != before.Size() || after.Mode() != before.Mode() {
				t.Errorf("state.json changed: %v, %v", after, err)
			}
			if _, err := os.Stat(filepath.Join(dir, journal.FileName)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("journal.db: %v, want none made", err)
			}
		})
	}
}

func writeFile(content string) func(t *testing.T, path string) {
	return func(t *testing.T, path string) {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
