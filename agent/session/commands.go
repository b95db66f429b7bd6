package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/agent/inventory"
	"github.com/cairn-ops/cairn/agent/journal"
	"github.com/cairn-ops/cairn/internal/audit"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// client is the controller's Agent service on one connection.
type client struct {
	agent agentv1.AgentClient
}

func newClient(conn grpc.ClientConnInterface) *client {
	return &client{agent: agentv1.NewAgentClient(conn)}
}

// link is what the goroutines of one session share: the controller's
// service, the stream's sender, the manual steps waiting for their
// confirmations, and a signal that the controller's trust changed.
type link struct {
	client *client
	out    *sender
	waits  *confirmations
	// trusted has room for one signal: the receiver took a new trust, and
	// the worker checks whether the certificate needs renewing.
	trusted chan struct{}
}

// sender serializes messages on the session stream: the command worker
// and the session start both send.
type sender struct {
	mu     sync.Mutex
	stream agentv1.Agent_SessionClient
	// sent are the outbox items sent on this stream and not acknowledged
	// yet: a drain sends each once per session.
	sent map[string]bool
}

func (s *sender) send(m *agentv1.AgentMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stream.Send(m)
}

// sendOnce sends the message of outbox item id unless it was sent on
// this stream; fresh reports whether it sent it now.
func (s *sender) sendOnce(id string, m *agentv1.AgentMessage) (fresh bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sent[id] {
		return false, nil
	}
	if err := s.stream.Send(m); err != nil {
		return false, err
	}
	s.sent[id] = true
	return true, nil
}

// forget makes an acknowledged item's ID new again, for an item put
// again under the same ID later.
func (s *sender) forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sent, id)
}

func (s *sender) hello(hostname, version string, completed []string) error {
	return s.send(&agentv1.AgentMessage{Msg: &agentv1.AgentMessage_Hello{Hello: &agentv1.Hello{
		Hostname: hostname, AgentVersion: version, CompletedCommands: completed,
	}}})
}

func (s *sender) ack(id string) error {
	return s.send(&agentv1.AgentMessage{Msg: &agentv1.AgentMessage_Ack{Ack: &agentv1.CommandAck{CommandId: id}}})
}

// result is a command's result (JSON: as state.json kept it).
type result struct {
	CommandID string `json:"command_id"`
	OK        bool   `json:"ok"`
	Error     string `json:"error,omitempty"`
	AuditID   string `json:"audit_id,omitempty"`
	// ReportJSON is a deploy command's report as agents before the typed
	// reports kept it in state.json: sent as it is (CommandResult's
	// report_json), the controller reads it.
	ReportJSON []byte `json:"report_json,omitempty"`
	// Apply and Plan are a deploy command's report: an apply or a
	// rollback, or a plan (the dry run).
	Apply *agentv1.ApplyReport `json:"-"`
	Plan  *agentv1.PlanReport  `json:"-"`
}

func (r result) proto() *agentv1.CommandResult {
	c := &agentv1.CommandResult{CommandId: r.CommandID, Ok: r.OK, Error: r.Error, AuditId: r.AuditID, ReportJson: r.ReportJSON}
	switch {
	case r.Apply != nil:
		c.Report = &agentv1.CommandResult_ApplyReport{ApplyReport: r.Apply}
	case r.Plan != nil:
		c.Report = &agentv1.CommandResult_PlanReport{PlanReport: r.Plan}
	}
	return c
}

// receive reads the controller's messages until the stream ends: commands
// go to the worker in order, acknowledgements of results and of outbox
// items empty the outbox, a new trust is saved and signalled to the
// worker, and confirmations go to the manual steps waiting for them. Once
// the worker has stopped (idle closed), commands are dropped
// unacknowledged; the controller redelivers them on the next session.
func (a *Agent) receive(ctx context.Context, stream agentv1.Agent_SessionClient, l *link, commands chan<- *agentv1.Command, idle <-chan struct{}) error {
	for {
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		switch m := msg.GetMsg().(type) {
		case *agentv1.ControllerMessage_Command:
			select {
			case commands <- m.Command:
			case <-idle:
			case <-ctx.Done():
				return ctx.Err()
			}
		case *agentv1.ControllerMessage_ResultAck:
			a.ack(ctx, l.out, journal.ResultID(m.ResultAck.GetCommandId()))
		case *agentv1.ControllerMessage_OutboxAck:
			a.ack(ctx, l.out, m.OutboxAck.GetId())
		case *agentv1.ControllerMessage_Trust:
			if err := a.updateTrust(m.Trust); err != nil {
				// The old trust stays; the session goes on with it.
				a.log.Error("trust update not taken", "error", err)
				continue
			}
			select {
			case l.trusted <- struct{}{}:
			default:
			}
		case *agentv1.ControllerMessage_Confirmation:
			c := m.Confirmation
			if !l.waits.deliver(c) {
				a.log.Debug("confirmation for a step that does not wait", "command", c.GetCommandId(), "step", c.GetStep())
			}
		}
	}
}

// work runs commands one at a time and renews the certificate between
// them when it is due or the controller's CA was rotated, which ends the
// session with errRenewed. sctx is
// the session's context; ctx, the agent's, bounds deployments, which do
// not stop when the session does.
func (a *Agent) work(ctx, sctx context.Context, l *link, commands <-chan *agentv1.Command) error {
	if err := a.renewIfDue(sctx, l.client); err != nil {
		return err
	}
	tick := time.NewTicker(a.cfg.RenewCheck)
	defer tick.Stop()
	for {
		select {
		case <-sctx.Done():
			return sctx.Err()
		case <-tick.C:
			if err := a.renewIfDue(sctx, l.client); err != nil {
				return err
			}
		case <-l.trusted:
			if err := a.renewIfDue(sctx, l.client); err != nil {
				return err
			}
		case cmd := <-commands:
			if err := a.handle(ctx, sctx, l, cmd); err != nil {
				return err
			}
		}
	}
}

// handle acknowledges and runs one command, unless it ran before: then it
// is acknowledged and its result, if still unacknowledged, sent again.
// The command's completion and result are saved in the journal (for a
// deploy command, with the end of its deployment) before the result is
// sent with the rest of the outbox. It returns an error only when the
// session is broken, the journal cannot be read or written now, or the
// command must run again; a failed command is a result with ok=false.
func (a *Agent) handle(ctx, sctx context.Context, l *link, cmd *agentv1.Command) error {
	out := l.out
	id := cmd.GetId()
	log := a.log.With("command", id)
	done, prev, err := a.completed(sctx, id)
	if err != nil {
		return fmt.Errorf("command %s: is it done? %w", id, err)
	}
	if done {
		log.Info("command already done, not running it again")
		if err := out.ack(id); err != nil {
			return err
		}
		if prev != nil {
			_, err := out.sendOnce(journal.ResultID(id), &agentv1.AgentMessage{Msg: &agentv1.AgentMessage_Result{Result: prev}})
			return err
		}
		return nil
	}
	if err := out.ack(id); err != nil {
		return err
	}
	var res result
	switch k := cmd.GetKind().(type) {
	case *agentv1.Command_Audit:
		r, err := a.runAudit(sctx, l.client, id, k.Audit)
		if err != nil {
			return err
		}
		res = r
	case *agentv1.Command_Deploy:
		r, err := a.runDeploy(ctx, sctx, l, id, k.Deploy)
		if err != nil {
			return err
		}
		res = r
	default:
		res = result{CommandID: id, Error: "unsupported command: this agent is older than the controller"}
	}
	if err := a.complete(ctx, res); err != nil {
		return fmt.Errorf("command %s ran, but its completion was not saved (it runs again when it is delivered again): %w", id, err)
	}
	if res.OK && res.AuditID != "" {
		log.Info("command done", "audit", res.AuditID)
	} else if res.OK {
		log.Info("command done")
	} else {
		log.Warn("command failed", "error", res.Error)
	}
	return a.drainOutbox(sctx, out)
}

// runAudit takes an audit and uploads it. A broken connection is an
// error (the command will be redelivered); anything else is a failed
// result.
func (a *Agent) runAudit(ctx context.Context, c *client, id string, cmd *agentv1.AuditCommand) (result, error) {
	fail := func(format string, args ...any) (result, error) {
		return result{CommandID: id, Error: fmt.Sprintf(format, args...)}, nil
	}
	doc, err := a.cfg.Collect(ctx, inventory.Options{
		Root:         a.cfg.Root,
		Collectors:   cmd.GetCollectors(),
		Track:        cmd.GetTrack(),
		Timeout:      a.cfg.Timeout,
		AgentVersion: a.cfg.AgentVersion,
		NodeID:       a.id.NodeID,
		Logger:       a.log,
	})
	if ctx.Err() != nil {
		return result{}, ctx.Err()
	}
	if err != nil {
		return fail("audit: %v", err)
	}
	data, err := audit.Marshal(doc)
	if err != nil {
		return fail("encode audit: %v", err)
	}
	resp, err := a.upload(ctx, c, id, data)
	if err != nil {
		if transient(ctx, err) {
			return result{}, fmt.Errorf("upload audit: %w", err)
		}
		return fail("upload audit: %s", status.Convert(err).Message())
	}
	return result{CommandID: id, OK: true, AuditID: resp.GetAuditId()}, nil
}

// upload streams data in chunks; the first carries the command ID.
func (a *Agent) upload(ctx context.Context, c *client, id string, data []byte) (*agentv1.UploadAuditResponse, error) {
	stream, err := c.agent.UploadAudit(ctx)
	if err != nil {
		return nil, err
	}
	for off := 0; off == 0 || off < len(data); off += a.cfg.ChunkSize {
		chunk := &agentv1.AuditChunk{Data: data[off:min(off+a.cfg.ChunkSize, len(data))]}
		if off == 0 {
			chunk.CommandId = id
		}
		if err := stream.Send(chunk); err != nil {
			if errors.Is(err, io.EOF) {
				break // the server ended the call; CloseAndRecv says why
			}
			return nil, err
		}
	}
	return stream.CloseAndRecv()
}

// transient reports whether a failed call is worth redoing on a new
// connection rather than reporting as the command's failure.
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.Canceled, codes.DeadlineExceeded, codes.Aborted:
		return true
	}
	return false
}
