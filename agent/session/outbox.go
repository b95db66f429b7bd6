package session

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/cairn-ops/cairn/agent/journal"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// journalHandle opens the agent's journal while the agent uses it (a
// deploy command runs, the outbox drains, an acknowledgement arrives) and
// closes it when nothing does. The journal is one bbolt file that one
// process at a time may hold, so an idle agent leaves it free for an
// operator's 'cairn-agent journal resolve'.
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

// recoverJournal runs journal.Recover when the agent starts, so that a
// deployment a crash cut off is reported at once: Recover marks each
// step it finds running interrupted (or pending, for an idempotent
// plugin), logs it with the way out, and queues a
// "deployment_interrupted" outbox item (journal.Interruption) for each
// one of a deploy command, which the first session sends. A journal the
// agent cannot open now (another process holds it) is recovered by the
// next deployment, which queues the same items.
func (a *Agent) recoverJournal(ctx context.Context) {
	if !a.journal.exists() {
		return
	}
	j, done, err := a.journal.acquire()
	if err != nil {
		a.log.Warn("cannot check the journal for steps a stop cut off now; the next deployment does", "err", err)
		return
	}
	defer done()
	if _, err := j.Recover(ctx); err != nil && ctx.Err() == nil {
		a.log.Warn("cannot check the journal for steps a stop cut off now; the next deployment does", "err", err)
	}
}

// drainOutbox sends every item of the journal's outbox to the controller,
// oldest first. The controller stores each item once and acknowledges
// it; the item stays in the outbox, and is sent again on the next drain,
// until its acknowledgement arrives. An outbox the agent cannot read now
// (another process holds the journal) is sent on the next drain.
func (a *Agent) drainOutbox(ctx context.Context, out *sender) error {
	if !a.journal.exists() {
		return nil
	}
	j, done, err := a.journal.acquire()
	if err != nil {
		a.log.Warn("cannot read the journal's outbox now; it is sent later", "err", err)
		return nil
	}
	items, err := j.List(ctx, 0)
	done()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		a.log.Warn("cannot read the journal's outbox now; it is sent later", "err", err)
		return nil
	}
	for _, it := range items {
		err := out.send(&agentv1.AgentMessage{Msg: &agentv1.AgentMessage_Outbox{Outbox: &agentv1.OutboxItem{
			Id: it.ID, Kind: it.Kind, DeploymentId: it.DeploymentID, Payload: boundJSON(it.Payload),
		}}})
		if err != nil {
			return fmt.Errorf("send outbox item %s: %w", it.ID, err)
		}
	}
	if len(items) > 0 {
		a.log.Debug("outbox sent", "items", len(items))
	}
	return nil
}

// ackOutbox removes an item the controller stored from the outbox. A
// failure only means the item is sent (and acknowledged) again.
func (a *Agent) ackOutbox(ctx context.Context, id string) {
	j, done, err := a.journal.acquire()
	if err != nil {
		a.log.Warn("cannot remove an acknowledged item from the outbox", "item", id, "err", err)
		return
	}
	defer done()
	if err := j.Ack(ctx, id); err != nil {
		a.log.Warn("cannot remove an acknowledged item from the outbox", "item", id, "err", err)
	}
}
