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

// sender serializes messages on the session stream: the command worker
// and the session start both send.
type sender struct {
	mu     sync.Mutex
	stream agentv1.Agent_SessionClient
}

func (s *sender) send(m *agentv1.AgentMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stream.Send(m)
}

func (s *sender) hello(hostname, version string, completed []string) error {
	return s.send(&agentv1.AgentMessage{Msg: &agentv1.AgentMessage_Hello{Hello: &agentv1.Hello{
		Hostname: hostname, AgentVersion: version, CompletedCommands: completed,
	}}})
}

func (s *sender) ack(id string) error {
	return s.send(&agentv1.AgentMessage{Msg: &agentv1.AgentMessage_Ack{Ack: &agentv1.CommandAck{CommandId: id}}})
}

func (s *sender) result(r result) error {
	return s.send(&agentv1.AgentMessage{Msg: &agentv1.AgentMessage_Result{Result: r.proto()}})
}

// receive reads the controller's messages until the stream ends: commands
// go to the worker in order, result acknowledgements empty the outbox.
// Once the worker has stopped (idle closed), commands are dropped
// unacknowledged; the controller redelivers them on the next session.
func (a *Agent) receive(ctx context.Context, stream agentv1.Agent_SessionClient, commands chan<- *agentv1.Command, idle <-chan struct{}) error {
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
			id := m.ResultAck.GetCommandId()
			found, err := a.state.ack(id)
			if err != nil {
				return err
			}
			if found {
				a.log.Debug("result acknowledged", "command", id)
			}
		}
	}
}

// work runs commands one at a time and renews the certificate between
// them when it is due, which ends the session with errRenewed.
func (a *Agent) work(ctx context.Context, c *client, out *sender, commands <-chan *agentv1.Command) error {
	if err := a.renewIfDue(ctx, c); err != nil {
		return err
	}
	tick := time.NewTicker(a.cfg.RenewCheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if err := a.renewIfDue(ctx, c); err != nil {
				return err
			}
		case cmd := <-commands:
			if err := a.handle(ctx, c, out, cmd); err != nil {
				return err
			}
		}
	}
}

// handle acknowledges and runs one command, unless it ran before: then it
// is acknowledged and its result, if still unacknowledged, sent again.
// The result is saved before it is sent. It returns an error only when
// the session is broken; a failed command is a result with ok=false.
func (a *Agent) handle(ctx context.Context, c *client, out *sender, cmd *agentv1.Command) error {
	id := cmd.GetId()
	log := a.log.With("command", id)
	if done, r := a.state.done(id); done {
		log.Info("command already done, not running it again")
		if err := out.ack(id); err != nil {
			return err
		}
		if r != nil {
			return out.result(*r)
		}
		return nil
	}
	if err := out.ack(id); err != nil {
		return err
	}
	var res result
	switch k := cmd.GetKind().(type) {
	case *agentv1.Command_Audit:
		r, err := a.runAudit(ctx, c, id, k.Audit)
		if err != nil {
			return err
		}
		res = r
	default:
		res = result{CommandID: id, Error: "unsupported command: this agent is older than the controller"}
	}
	if err := a.state.complete(res); err != nil {
		return err
	}
	if res.OK {
		log.Info("command done", "audit", res.AuditID)
	} else {
		log.Warn("command failed", "error", res.Error)
	}
	return out.result(res)
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
