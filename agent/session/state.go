package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"sync"

	"github.com/cairn-ops/cairn/internal/atomicfile"
	"github.com/cairn-ops/cairn/internal/readlimit"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// Bounds on state.json.
const (
	// maxCompleted is how many completed command IDs are remembered; a
	// command redelivered after that many newer ones would run again.
	maxCompleted = 1000
	// maxOutbox is how many unacknowledged results are kept.
	maxOutbox = 1000
	// maxStateBytes bounds state.json as read back: what the bounds above
	// let it hold, a full outbox of the largest results (their reports
	// base64 in JSON) and the completed IDs.
	maxStateBytes = maxOutbox*(maxPayloadBytes*4/3+maxErrorBytes+4<<10) + maxCompleted*256
	// helloCompleted is how many of the most recent completed IDs Hello
	// carries. The agent checks every redelivery against all it keeps.
	helloCompleted = 100
)

// state is what the agent remembers across restarts: the commands it has
// completed, oldest first, and the results the controller has not
// acknowledged. Every change is written to disk before it is acted on.
type state struct {
	path string

	mu    sync.Mutex
	disk  stateFile
	index map[string]bool
	// dropped are results complete dropped from a full outbox, unread.
	dropped []string
}

type stateFile struct {
	Completed []string `json:"completed"`
	Outbox    []result `json:"outbox"`
}

type result struct {
	CommandID string `json:"command_id"`
	OK        bool   `json:"ok"`
	Error     string `json:"error,omitempty"`
	AuditID   string `json:"audit_id,omitempty"`
	// ReportJSON is a deploy command's report (agent/apply's Report or
	// PlanReport), JSON.
	ReportJSON []byte `json:"report_json,omitempty"`
}

func (r result) proto() *agentv1.CommandResult {
	return &agentv1.CommandResult{CommandId: r.CommandID, Ok: r.OK, Error: r.Error, AuditId: r.AuditID, ReportJson: r.ReportJSON}
}

// loadState reads dir/state.json; a missing file is an empty state.
func loadState(dir string) (*state, error) {
	s := &state{path: filepath.Join(dir, StateFile), index: map[string]bool{}}
	data, err := readlimit.File(s.path, "agent state", maxStateBytes)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		if err := json.Unmarshal(data, &s.disk); err != nil {
			return nil, fmt.Errorf("read agent state %s: %w", s.path, err)
		}
	}
	for _, id := range s.disk.Completed {
		s.index[id] = true
	}
	return s, nil
}

// done reports whether the command ran, and its result when the
// controller has not acknowledged it yet.
func (s *state) done(id string) (bool, *result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.index[id] {
		return false, nil
	}
	for _, r := range s.disk.Outbox {
		if r.CommandID == id {
			return true, &r
		}
	}
	return true, nil
}

// recent returns the most recently completed command IDs.
func (s *state) recent(n int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.disk.Completed
	return slices.Clone(c[max(0, len(c)-n):])
}

// takeDropped returns (once) the IDs of results dropped because the
// outbox was full: the controller never learns how those commands ended.
func (s *state) takeDropped() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dropped
	s.dropped = nil
	return d
}

func commandIDs(rs []result) []string {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.CommandID
	}
	return ids
}

// outbox returns the unacknowledged results, oldest first.
func (s *state) outbox() []result {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.disk.Outbox)
}

// complete records a command as done with its result, durably.
func (s *state) complete(r result) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := stateFile{
		Completed: append(slices.Clone(s.disk.Completed), r.CommandID),
		Outbox:    append(slices.Clone(s.disk.Outbox), r),
	}
	next.Completed = next.Completed[max(0, len(next.Completed)-maxCompleted):]
	if n := len(next.Outbox) - maxOutbox; n > 0 {
		s.dropped = append(s.dropped, commandIDs(next.Outbox[:n])...)
		next.Outbox = next.Outbox[n:]
	}
	if err := s.write(next); err != nil {
		return err
	}
	s.disk = next
	s.index = make(map[string]bool, len(next.Completed))
	for _, id := range next.Completed {
		s.index[id] = true
	}
	return nil
}

// ack forgets a result the controller stored. It reports whether the
// result was in the outbox.
func (s *state) ack(id string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.disk.Outbox, func(r result) bool { return r.CommandID == id })
	if i < 0 {
		return false, nil
	}
	next := stateFile{Completed: s.disk.Completed, Outbox: slices.Delete(slices.Clone(s.disk.Outbox), i, i+1)}
	if err := s.write(next); err != nil {
		return true, err
	}
	s.disk = next
	return true, nil
}

func (s *state) write(f stateFile) error {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode agent state: %w", err)
	}
	if err := atomicfile.Write(s.path, append(data, '\n'), filePerm); err != nil {
		return fmt.Errorf("save agent state: %w", err)
	}
	return nil
}
