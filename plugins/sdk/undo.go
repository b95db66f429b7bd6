package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Write-ahead undo records.
//
// A step that changes something must be able to undo itself even when
// the agent dies between the change and the journal's record of it: the
// journal then has no rollback record, and a re-run of an idempotent
// step finds the change already made and would record "nothing to undo".
// The rule is write-ahead:
//
//  1. Apply calls LoadUndo first. When it finds a record, an earlier
//     attempt of this same step (same StepContext.state_dir) was cut off:
//     the record describes the state before that attempt, and Apply keeps
//     it (and may add to it) instead of describing the state it finds now.
//  2. Before it changes anything, Apply saves what it needs to undo the
//     change with SaveUndo; the record is on disk (fsynced) when SaveUndo
//     returns.
//  3. Apply returns the same record as its Result's rollback_record.
//  4. Rollback called with an empty record (the step was cut off before
//     its result was journaled) loads the record with LoadUndo; RollbackRecord does steps 4 and the ordinary case in one call.
//  5. After a successful Rollback, or an Apply that failed and undid its
//     own partial work, the plugin calls ClearUndo.
//
// The host gives each step of each deployment its own state_dir and
// keeps it across crashes. Once its journal holds Apply's result, the
// host clears the record itself (ClearUndo): a later Apply with the same
// state_dir is then not taken for a re-run after a crash. When Apply
// fails, the host leaves the record, and calls Rollback with an empty
// record when the deployment is undone (HasUndo says whether to).
// Without a state_dir (a dry run, an older host) the functions do
// nothing and LoadUndo finds nothing.

// MaxUndoRecord is the largest undo record SaveUndo writes and LoadUndo
// reads: records name paths and small contents; larger data belongs in a
// file of its own under the state directory.
const MaxUndoRecord = 16 << 20

// ErrUndoRecord means a saved undo record could not be read back: it is
// larger than MaxUndoRecord or not the JSON SaveUndo wrote.
var ErrUndoRecord = errors.New("bad undo record")

const undoFile = "undo.json"

// SaveUndo durably replaces the step's undo record with v, encoded as
// JSON. It returns once the record and its directory entry are fsynced.
func SaveUndo(sc *StepContext, v any) error {
	dir := sc.GetStateDir()
	if dir == "" {
		return nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode undo record: %w", err)
	}
	if len(data) > MaxUndoRecord {
		return fmt.Errorf("%w: %d bytes (limit %d)", ErrUndoRecord, len(data), MaxUndoRecord)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("make state directory: %w", err)
	}
	// One fixed temporary name: a crash inside SaveUndo leaves at most
	// this file, which the next save replaces.
	tmp, err := os.OpenFile(filepath.Join(dir, undoFile+".tmp"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("save undo record: %w", err)
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, undoFile))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save undo record: %w", err)
	}
	return syncDir(dir)
}

// LoadUndo reads the step's undo record into v. It reports false, and
// leaves v alone, when there is none.
func LoadUndo(sc *StepContext, v any) (bool, error) {
	dir := sc.GetStateDir()
	if dir == "" {
		return false, nil
	}
	f, err := os.Open(filepath.Join(dir, undoFile))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("load undo record: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxUndoRecord+1))
	if err != nil {
		return false, fmt.Errorf("load undo record: %w", err)
	}
	if len(data) > MaxUndoRecord {
		return false, fmt.Errorf("%w: %s is larger than %d bytes", ErrUndoRecord, f.Name(), MaxUndoRecord)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("%w: %s: %v", ErrUndoRecord, f.Name(), err)
	}
	return true, nil
}

// RollbackRecord decodes what a Rollback has to undo into v: the rollback
// record it was given, or, when it was given none (Apply was cut off before
// the host journaled its result), the step's undo record. It reports false,
// and leaves v alone, when there is neither: Apply changed nothing.
func RollbackRecord(sc *StepContext, data []byte, v any) (bool, error) {
	if len(data) == 0 {
		return LoadUndo(sc, v)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("decode rollback record: %w", err)
	}
	return true, nil
}

// ClearUndo removes the step's undo record: the step is undone, or never
// changed anything.
func ClearUndo(sc *StepContext) error {
	dir := sc.GetStateDir()
	if dir == "" {
		return nil
	}
	for _, name := range []string{undoFile, undoFile + ".tmp"} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("clear undo record: %w", err)
		}
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open state directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync state directory: %w", err)
	}
	return nil
}

// HasUndo reports whether the state directory stateDir holds an undo
// record: the host asks it to decide whether a step that failed or was
// cut off left something for its plugin's Rollback to undo.
func HasUndo(stateDir string) bool {
	if stateDir == "" {
		return false
	}
	_, err := os.Lstat(filepath.Join(stateDir, undoFile))
	return err == nil
}
