package session

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cairn-ops/cairn/agent/journal"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// The agent keeps one durable outbox, in the journal (agent/journal):
// the results of its commands (journal.KindCommandResult, sent as a
// CommandResult and acknowledged by a ResultAck) and the journal's own
// reports (step and deployment results, interruptions: sent as an
// OutboxItem carrying the typed report, and acknowledged by an
// OutboxAck). Both acknowledgements remove the item the same way
// (Agent.ack).

// journalHandle opens the agent's journal while the agent uses it (a
// command is checked or completed, a deploy command runs, the outbox
// drains, an acknowledgement arrives) and closes it when nothing does.
// The journal is one bbolt file that one process at a time may hold, so
// an idle agent leaves it free for an operator's 'cairn-agent journal
// resolve'.
type journalHandle struct {
	dataDir string
	log     *slog.Logger

	mu    sync.Mutex
	j     *journal.Journal
	users int
}

// exists reports whether the journal file was ever created.
func (h *journalHandle) exists() bool {
	_, err := os.Stat(filepath.Join(h.dataDir, journal.FileName))
	return err == nil
}

// acquire returns the open journal; the caller calls done when it no
// longer uses it.
func (h *journalHandle) acquire() (j *journal.Journal, done func(), err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.j == nil {
		j, err := journal.Open(h.dataDir, journal.Options{Logger: h.log})
		if err != nil {
			return nil, nil, err
		}
		h.j = j
	}
	h.users++
	var once sync.Once
	return h.j, func() { once.Do(h.release) }, nil
}

func (h *journalHandle) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.users--
	if h.users > 0 || h.j == nil {
		return
	}
	if err := h.j.Close(); err != nil {
		h.log.Warn("close journal", "err", err)
	}
	h.j = nil
}

// with runs fn with the open journal.
func (h *journalHandle) with(fn func(*journal.Journal) error) error {
	j, done, err := h.acquire()
	if err != nil {
		return err
	}
	defer done()
	return fn(j)
}

// recoverJournal runs journal.Recover when the agent starts, so that a
// deployment a crash cut off is reported at once: Recover marks each
// step it finds running interrupted (or pending, for an idempotent
// plugin), logs it with the way out, and queues a
// "deployment_interrupted" outbox item (an agentv1.Interruption) for each
// one of a deploy command, which the first session sends. A journal the
// agent cannot open now (another process holds it) is recovered by the
// next deployment, which queues the same items.
func (a *Agent) recoverJournal(ctx context.Context) {
	if !a.journal.exists() {
		return
	}
	err := a.journal.with(func(j *journal.Journal) error {
		_, err := j.Recover(ctx)
		return err
	})
	if err != nil && ctx.Err() == nil {
		a.log.Warn("cannot check the journal for steps a stop cut off now; the next deployment does", "err", err)
	}
}

// completion is how the journal keeps a command's result: the
// CommandResult, protojson.
func completion(r result) (*journal.Completion, error) {
	data, err := protojson.Marshal(r.proto())
	if err != nil {
		return nil, fmt.Errorf("encode the result of command %s: %w", r.CommandID, err)
	}
	return &journal.Completion{CommandID: r.CommandID, Result: data}, nil
}

// storedResult decodes a command's result from the outbox. One the agent
// cannot read is sent as a failure saying so, so that it leaves the
// outbox instead of staying there unsent.
func storedResult(it *journal.OutboxItem) *agentv1.CommandResult {
	var r agentv1.CommandResult
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(it.Payload, &r); err != nil || r.GetCommandId() == "" {
		id, _ := strings.CutPrefix(it.ID, journal.ResultID(""))
		return &agentv1.CommandResult{
			CommandId: id,
			Error:     fmt.Sprintf("the agent could not read the result it stored for this command (outbox item %s): %v", it.ID, err),
		}
	}
	return &r
}

// outboxItem is a journal outbox item as the controller receives it:
// its report, read from the protojson the journal keeps, bounded
// (boundApply and the like). An item whose payload does not read as its
// kind's report — queued by an agent before the typed reports (a
// step_result held the journal's step record), or of a kind this agent
// does not know — is sent as its JSON payload, which the controller
// reads as such.
func outboxItem(it *journal.OutboxItem) *agentv1.OutboxItem {
	out := &agentv1.OutboxItem{Id: it.ID, Kind: it.Kind, DeploymentId: it.DeploymentID}
	switch it.Kind {
	case journal.KindStepResult:
		var r agentv1.StepResult
		if protojson.Unmarshal(it.Payload, &r) == nil {
			out.Report = &agentv1.OutboxItem_StepResult{StepResult: boundStep(&r)}
		}
	case journal.KindDeploymentResult:
		var r agentv1.ApplyReport
		if protojson.Unmarshal(it.Payload, &r) == nil {
			out.Report = &agentv1.OutboxItem_DeploymentResult{DeploymentResult: boundApply(&r)}
		}
	case journal.KindDeploymentInterrupted:
		var r agentv1.Interruption
		if protojson.Unmarshal(it.Payload, &r) == nil {
			out.Report = &agentv1.OutboxItem_Interruption{Interruption: boundInterruption(&r)}
		}
	}
	if out.Report == nil {
		out.Payload = boundJSON(it.Payload)
	}
	return out
}

// complete records command r.CommandID as completed with its result,
// durably, in one transaction. A command a deployment's end completed
// already keeps that result.
func (a *Agent) complete(ctx context.Context, r result) error {
	c, err := completion(r)
	if err != nil {
		return err
	}
	return a.journal.with(func(j *journal.Journal) error { return j.Complete(ctx, *c) })
}

// completed reports whether a command ran here, and its result while
// the controller has not acknowledged it.
func (a *Agent) completed(ctx context.Context, id string) (bool, *agentv1.CommandResult, error) {
	if !a.journal.exists() {
		return false, nil, nil
	}
	var done bool
	var item *journal.OutboxItem
	err := a.journal.with(func(j *journal.Journal) error {
		var err error
		done, item, err = j.Completed(ctx, id)
		return err
	})
	if err != nil || item == nil {
		return done, nil, err
	}
	return true, storedResult(item), nil
}

// recent returns the IDs of the commands completed last, for Hello. A
// journal the agent cannot read now gives none: the agent checks every
// command it is sent itself.
func (a *Agent) recent(ctx context.Context) []string {
	if !a.journal.exists() {
		return nil
	}
	var ids []string
	err := a.journal.with(func(j *journal.Journal) error {
		var err error
		ids, err = j.Recent(ctx, helloCompleted)
		return err
	})
	if err != nil {
		a.log.Warn("cannot read the completed commands from the journal now; saying hello without them", "err", err)
	}
	return ids
}

// drainPage is how many outbox items a drain reads at a time.
const drainPage = 64

// drainOutbox sends the outbox to the controller, oldest first: each
// item not sent on this session yet. The controller stores each item
// once and acknowledges it; the item stays in the outbox, and is sent
// again on the next session, until its acknowledgement arrives. An
// outbox the agent cannot read now (another process holds the journal)
// is sent on the next drain.
func (a *Agent) drainOutbox(ctx context.Context, out *sender) error {
	if !a.journal.exists() {
		return nil
	}
	var after uint64
	sent := 0
	for {
		var items []journal.OutboxItem
		err := a.journal.with(func(j *journal.Journal) error {
			var err error
			items, err = j.List(ctx, after, drainPage)
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			a.log.Warn("cannot read the outbox now; it is sent later", "err", err)
			return nil
		}
		if len(items) == 0 {
			break
		}
		for i := range items {
			it := &items[i]
			var msg *agentv1.AgentMessage
			if it.Kind == journal.KindCommandResult {
				msg = &agentv1.AgentMessage{Msg: &agentv1.AgentMessage_Result{Result: storedResult(it)}}
			} else {
				msg = &agentv1.AgentMessage{Msg: &agentv1.AgentMessage_Outbox{Outbox: outboxItem(it)}}
			}
			fresh, err := out.sendOnce(it.ID, msg)
			if err != nil {
				return fmt.Errorf("send outbox item %s: %w", it.ID, err)
			}
			if fresh {
				sent++
			}
		}
		after = items[len(items)-1].Seq
	}
	if sent > 0 {
		a.log.Debug("outbox sent", "items", sent)
	}
	return nil
}

// ack removes an item the controller stored from the outbox: a command's
// result (its ResultAck, journal.ResultID) or any other item (its
// OutboxAck). A failure only means the item is sent (and acknowledged)
// again.
func (a *Agent) ack(ctx context.Context, out *sender, id string) {
	out.forget(id)
	if !a.journal.exists() {
		return
	}
	if err := a.journal.with(func(j *journal.Journal) error { return j.Ack(ctx, id) }); err != nil {
		a.log.Warn("cannot remove an acknowledged item from the outbox", "item", id, "err", err)
		return
	}
	a.log.Debug("outbox item acknowledged", "item", id)
}
