package sdk_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

type undoRec struct {
	Path    string   `json:"path"`
	Created []string `json:"created"`
}

func TestUndoRecord(t *testing.T) {
	sc := &sdk.StepContext{StateDir: filepath.Join(t.TempDir(), "steps", "0")}
	var got undoRec
	if found, err := sdk.LoadUndo(sc, &got); err != nil || found {
		t.Fatalf("LoadUndo before any save = %v, %v; want false, nil", found, err)
	}
	if sdk.HasUndo(sc.GetStateDir()) {
		t.Fatal("HasUndo before any save = true")
	}
	want := undoRec{Path: "/etc/app.conf", Created: []string{"a", "b"}}
	if err := sdk.SaveUndo(sc, want); err != nil {
		t.Fatalf("SaveUndo: %v", err)
	}
	if !sdk.HasUndo(sc.GetStateDir()) {
		t.Fatal("HasUndo after SaveUndo = false")
	}
	found, err := sdk.LoadUndo(sc, &got)
	if err != nil || !found {
		t.Fatalf("LoadUndo = %v, %v", found, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LoadUndo (-saved +loaded):\n%s", diff)
	}
	entries, _ := os.ReadDir(sc.GetStateDir())
	if len(entries) != 1 {
		t.Errorf("state dir holds %d entries after a save, want only the record (no temp files)", len(entries))
	}
	if err := sdk.ClearUndo(sc); err != nil {
		t.Fatalf("ClearUndo: %v", err)
	}
	if found, err := sdk.LoadUndo(sc, &got); err != nil || found {
		t.Fatalf("LoadUndo after ClearUndo = %v, %v; want false, nil", found, err)
	}
	if err := sdk.ClearUndo(sc); err != nil {
		t.Fatalf("second ClearUndo: %v", err)
	}
}

func TestUndoRecordWithoutStateDir(t *testing.T) {
	sc := &sdk.StepContext{}
	if err := sdk.SaveUndo(sc, undoRec{Path: "x"}); err != nil {
		t.Fatalf("SaveUndo without a state dir: %v", err)
	}
	var got undoRec
	if found, err := sdk.LoadUndo(sc, &got); err != nil || found {
		t.Fatalf("LoadUndo without a state dir = %v, %v; want false, nil", found, err)
	}
}

func TestUndoRecordBad(t *testing.T) {
	for name, content := range map[string]string{
		"not json":  "{not json",
		"oversized": `"` + strings.Repeat("a", sdk.MaxUndoRecord) + `"`,
	} {
		t.Run(name, func(t *testing.T) {
			sc := &sdk.StepContext{StateDir: t.TempDir()}
			if err := os.WriteFile(filepath.Join(sc.GetStateDir(), "undo.json"), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			var got string
			_, err := sdk.LoadUndo(sc, &got)
			if !errors.Is(err, sdk.ErrUndoRecord) {
				t.Fatalf("LoadUndo of a %s record = %v; want ErrUndoRecord", name, err)
			}
		})
	}
}

// TestUndoRecordStaleTemporaryFile: a crash inside SaveUndo leaves its
// one temporary file, which the next save and ClearUndo take away.
func TestUndoRecordStaleTemporaryFile(t *testing.T) {
	sc := &sdk.StepContext{StateDir: t.TempDir()}
	stale := filepath.Join(sc.GetStateDir(), "undo.json.tmp")
	if err := os.WriteFile(stale, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := sdk.SaveUndo(sc, undoRec{Path: "x"}); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(sc.GetStateDir()); len(entries) != 1 {
		t.Errorf("state dir after a save over a stale temporary file: %d entries, want 1", len(entries))
	}
	if err := os.WriteFile(stale, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := sdk.ClearUndo(sc); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(sc.GetStateDir()); len(entries) != 0 {
		t.Errorf("state dir after ClearUndo: %d entries, want none", len(entries))
	}
}

// TestRollbackRecord: the record Rollback is given wins over the undo
// record; without one the undo record is used; without either there is
// nothing to undo; a malformed record is an error.
func TestRollbackRecord(t *testing.T) {
	sc := &sdk.StepContext{StateDir: filepath.Join(t.TempDir(), "steps", "0")}
	var got undoRec
	if found, err := sdk.RollbackRecord(sc, nil, &got); err != nil || found {
		t.Fatalf("RollbackRecord with neither = %v, %v; want false, nil", found, err)
	}
	saved := undoRec{Path: "/etc/saved.conf"}
	if err := sdk.SaveUndo(sc, saved); err != nil {
		t.Fatal(err)
	}
	if found, err := sdk.RollbackRecord(sc, nil, &got); err != nil || !found || got.Path != saved.Path {
		t.Fatalf("RollbackRecord without data = %v, %v, %+v; want the undo record", found, err, got)
	}
	got = undoRec{}
	if found, err := sdk.RollbackRecord(sc, []byte(`{"path":"/etc/given.conf"}`), &got); err != nil || !found || got.Path != "/etc/given.conf" {
		t.Fatalf("RollbackRecord with data = %v, %v, %+v; want the given record", found, err, got)
	}
	if found, err := sdk.RollbackRecord(sc, []byte(`{"path":`), &got); err == nil || found {
		t.Fatalf("RollbackRecord of a malformed record = %v, %v; want an error", found, err)
	}
}
