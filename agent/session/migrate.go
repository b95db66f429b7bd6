package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cairn-ops/cairn/agent/journal"
	"github.com/cairn-ops/cairn/internal/atomicfile"
	"github.com/cairn-ops/cairn/internal/readlimit"
)

// Bounds of state.json, the file in which agents before the one outbox
// kept their completed commands and unacknowledged results.
const (
	legacyMaxCompleted = 1000
	legacyMaxOutbox    = 1000
	// maxStateBytes bounds state.json as read back: a full outbox of the
	// largest results (their reports base64 in JSON) and the completed
	// IDs.
	maxStateBytes = legacyMaxOutbox*(maxPayloadBytes*4/3+maxErrorBytes+4<<10) + legacyMaxCompleted*256
	// helloCompleted is how many of the most recent completed IDs Hello
	// carries. The agent checks every redelivery against all it keeps.
	helloCompleted = 100
)

// stateFile is state.json: command IDs oldest first, then the results
// the controller had not acknowledged.
type stateFile struct {
	Completed []string `json:"completed"`
	Outbox    []result `json:"outbox"`
}

// Points of the migration of state.json, at which a test stops it.
const (
	migrateRead     = "read"     // state.json read, nothing written
	migrateImported = "imported" // its contents committed to the journal
	migrateRemoved  = "removed"  // state.json removed
)

// migrateState moves the state.json of an older agent into the journal,
// once, when the agent starts: it reads the file (within its bounds),
// writes its completed commands and results into the journal in one
// transaction that also records the import as done, then removes the
// file. A stop at any point leaves either the file and a journal without
// its contents (the next start imports it), or both (the next start
// only removes the file), or only the journal. A file the agent cannot
// read is an error that names it, and nothing is changed.
func (a *Agent) migrateState(ctx context.Context) error {
	path := filepath.Join(a.cfg.DataDir, StateFile)
	data, err := readlimit.File(path, "agent state", maxStateBytes)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("migrate %s into %s: %w", StateFile, journal.FileName, err)
	}
	var old stateFile
	if err := json.Unmarshal(data, &old); err != nil {
		return fmt.Errorf("migrate %s into %s: %s is not an agent's state file: %w", StateFile, journal.FileName, path, err)
	}
	items := make([]journal.OutboxItem, 0, len(old.Outbox))
	for i, r := range old.Outbox {
		if r.CommandID == "" {
			return fmt.Errorf("migrate %s into %s: %s: outbox[%d] has no command_id", StateFile, journal.FileName, path, i)
		}
		c, err := completion(r)
		if err != nil {
			return err
		}
		items = append(items, journal.OutboxItem{ID: journal.ResultID(r.CommandID), Kind: journal.KindCommandResult, Payload: c.Result})
	}
	a.stopAt(migrateRead)
	var before bool
	err = a.journal.with(func(j *journal.Journal) error {
		var err error
		before, err = j.Import(ctx, StateFile, old.Completed, items)
		return err
	})
	if err != nil {
		return fmt.Errorf("migrate %s into %s: %w", path, journal.FileName, err)
	}
	a.stopAt(migrateImported)
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("migrate %s into %s: remove it: %w", path, journal.FileName, err)
	}
	a.stopAt(migrateRemoved)
	if err := atomicfile.SyncDir(a.cfg.DataDir); err != nil {
		return fmt.Errorf("migrate %s into %s: %w", path, journal.FileName, err)
	}
	if before {
		a.log.Info("removed state.json: its contents were moved into the journal before", "file", path)
		return nil
	}
	a.log.Info("moved state.json into the journal", "file", path, "completed", len(old.Completed), "results", len(items))
	return nil
}

// stopAt calls the test hook at a point of the migration.
func (a *Agent) stopAt(point string) {
	if a.migrateStop != nil {
		a.migrateStop(point)
	}
}
