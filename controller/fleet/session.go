package fleet

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/stamp"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// agentService serves the Agent service (mutual TLS).
type agentService struct {
	agentv1.UnimplementedAgentServer
	f *Fleet
}

var _ agentv1.AgentServer = (*agentService)(nil)

// session is one node's live stream. Only the goroutine running Session
// uses its fields, apart from live, which the hub shares.
type session struct {
	f      *Fleet
	nodeID string
	live   *liveSession
	stream grpc.BidiStreamingServer[agentv1.AgentMessage, agentv1.ControllerMessage]
	log    *slog.Logger
	// sent holds the commands delivered on this stream; completed those
	// the agent said in its Hello it has finished.
	sent, completed map[string]bool
	lastSeenWrite   time.Time
	// trustSent is the keyring generation of the trust last sent.
	trustSent uint64
}

// Session holds one node's stream: it marks the node connected, delivers
// its pending commands on connect and on Notify, records acknowledgements
// and results, and marks the node disconnected when the stream ends.
func (a *agentService) Session(stream grpc.BidiStreamingServer[agentv1.AgentMessage, agentv1.ControllerMessage]) error {
	f := a.f
	id, err := nodeID(stream.Context())
	if err != nil {
		return err
	}
	if _, err := f.liveNode(stream.Context(), id); err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(nil)

	in := make(chan *agentv1.AgentMessage)
	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case in <- m:
			case <-ctx.Done():
				return
			}
		}
	}()

	var hello *agentv1.Hello
	timer := time.NewTimer(helloTimeout)
	select {
	case m := <-in:
		timer.Stop()
		if hello = m.GetHello(); hello == nil {
			return status.Error(codes.InvalidArgument, "the first message of a session must be a Hello")
		}
	case err := <-recvErr:
		timer.Stop()
		return endStatus(err)
	case <-timer.C:
		return status.Errorf(codes.DeadlineExceeded, "no Hello within %s", helloTimeout)
	case <-ctx.Done():
		timer.Stop()
		return ctx.Err()
	}

	live, err := f.register(id, peerCA(stream.Context()), cancel)
	if err != nil {
		return status.Error(codes.Unavailable, err.Error())
	}
	s := &session{
		f:         f,
		nodeID:    id,
		live:      live,
		stream:    stream,
		log:       f.log.With("node_id", id),
		sent:      make(map[string]bool),
		completed: make(map[string]bool, len(hello.GetCompletedCommands())),
	}
	for _, c := range hello.GetCompletedCommands() {
		s.completed[c] = true
	}
	// The write that marks the node disconnected must happen even though
	// the stream's context has ended.
	defer s.disconnected(context.WithoutCancel(stream.Context()))
	if err := s.connected(ctx, hello); err != nil {
		return err
	}
	s.log.Info("agent connected", "hostname", hello.GetHostname(), "agent_version", hello.GetAgentVersion())
	if err := s.sendTrust(); err != nil {
		return err
	}
	if err := s.deliver(ctx); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return s.ended(ctx)
		case err := <-recvErr:
			return endStatus(err)
		case <-live.wake:
			// A wake-up follows every change an operator makes to the
			// node, revocation included: re-read the node first, so a
			// revoked node's session ends now, not at the next sweep.
			if _, err := s.f.liveNode(ctx, s.nodeID); err != nil {
				return s.failed(ctx, err)
			}
			if s.trustSent != s.f.keys.Generation() {
				if err := s.sendTrust(); err != nil {
					return s.failed(ctx, err)
				}
			}
			if err := s.deliver(ctx); err != nil {
				return s.failed(ctx, err)
			}
		case c := <-live.confirm:
			if err := stream.Send(&agentv1.ControllerMessage{Msg: &agentv1.ControllerMessage_Confirmation{Confirmation: c}}); err != nil {
				return s.failed(ctx, err)
			}
			s.log.Info("confirmation sent", "command_id", c.GetCommandId(), "step", c.GetStep())
		case m := <-in:
			if err := s.handle(ctx, m); err != nil {
				return s.failed(ctx, err)
			}
		}
	}
}

// ended is the status a session ends with when its context ended: why
// the hub ended it (replaced, shutting down, the node revoked or its CA
// retired, each with its reason), or the call's own end.
func (s *session) ended(ctx context.Context) error {
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, ErrReplaced), errors.Is(cause, ErrShutdown):
		return status.Error(codes.Unavailable, cause.Error())
	case errors.Is(cause, ErrRevoked):
		return auth.NodeRevokedError(s.nodeID)
	case errors.Is(cause, ErrCertificateRetired):
		at, _ := s.f.keys.Retired(s.live.ca, s.f.now())
		return auth.CertificateRetiredError(s.nodeID, s.live.ca, at)
	}
	return status.FromContextError(ctx.Err()).Err()
}

// failed is the status a session ends with after err: when the session's
// context ended meanwhile (the hub ended it while a store read or a send
// was under way), why it ended, not the read's "context canceled".
func (s *session) failed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return s.ended(ctx)
	}
	return err
}

// sendTrust tells the agent what to trust now (controller/keyring):
// during a rotation's overlap the new CA and key besides the old.
func (s *session) sendTrust() error {
	gen := s.f.keys.Generation()
	if err := s.stream.Send(&agentv1.ControllerMessage{Msg: &agentv1.ControllerMessage_Trust{Trust: s.f.keys.Trust(s.f.now())}}); err != nil {
		return err
	}
	s.trustSent = gen
	return nil
}

// peerCA is the CA that issued the client certificate of the call in
// ctx, or nil when there is none.
func peerCA(ctx context.Context) *x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 {
		return nil
	}
	chain := info.State.VerifiedChains[0]
	return chain[len(chain)-1]
}

// endStatus is what Session returns when the agent's side ends.
func endStatus(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// connected records the node as connected, with the descriptive facts
// from its Hello.
func (s *session) connected(ctx context.Context, hello *agentv1.Hello) error {
	now := s.f.now()
	s.lastSeenWrite = now
	err := s.f.st.Batch(ctx, func(tx store.Tx) error {
		if !s.f.hub.current(s.live) {
			return nil // a newer session of the node wrote its own state
		}
		n, err := tx.Node(s.nodeID)
		if err != nil {
			return err
		}
		if n.GetState() == controllerv1.NodeRecord_STATE_REVOKED {
			return ErrRevoked
		}
		n.State = controllerv1.NodeRecord_STATE_CONNECTED
		n.LastSeen = stamp.Format(now)
		if h := hello.GetHostname(); h != "" {
			n.Hostname = h
		}
		if v := hello.GetAgentVersion(); v != "" {
			n.AgentVersion = v
		}
		return tx.PutNode(n)
	})
	switch {
	case errors.Is(err, ErrRevoked):
		return auth.NodeRevokedError(s.nodeID)
	case errors.Is(err, store.ErrNotFound):
		return notEnrolled(s.nodeID)
	case err != nil:
		return status.Errorf(codes.Internal, "mark node connected: %v", err)
	}
	return nil
}

// disconnected unregisters the session and, unless a newer session of the
// node took over, records the node as disconnected.
func (s *session) disconnected(ctx context.Context) {
	s.f.unregister(s.live)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	now := s.f.now()
	err := s.f.st.Batch(ctx, func(tx store.Tx) error {
		if s.f.hub.has(s.nodeID) {
			return nil
		}
		n, err := tx.Node(s.nodeID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if n.GetState() != controllerv1.NodeRecord_STATE_REVOKED {
			n.State = controllerv1.NodeRecord_STATE_DISCONNECTED
		}
		n.LastSeen = stamp.Format(now)
		return tx.PutNode(n)
	})
	if err != nil {
		s.log.Warn("cannot mark node disconnected", "err", err)
		return
	}
	s.log.Info("agent disconnected")
}

// seen notes that the agent spoke, writing last-seen at most every
// lastSeenEvery.
func (s *session) seen(ctx context.Context) error {
	now := s.f.now()
	if now.Sub(s.lastSeenWrite) < lastSeenEvery {
		return nil
	}
	s.lastSeenWrite = now
	err := s.f.st.Batch(ctx, func(tx store.Tx) error {
		n, err := tx.Node(s.nodeID)
		if err != nil {
			return err
		}
		n.LastSeen = stamp.Format(now)
		return tx.PutNode(n)
	})
	if err != nil {
		return status.Errorf(codes.Internal, "record last seen: %v", err)
	}
	return nil
}

// deliver sends the node's unfinished commands that this stream has not
// carried yet, oldest first. A command the agent reported completed is
// not sent again as new work: the agent resends its result instead.
func (s *session) deliver(ctx context.Context) error {
	var cmds []*controllerv1.CommandRecord
	err := s.f.st.View(ctx, func(tx store.Tx) error {
		all, err := tx.NodeCommands(s.nodeID)
		if err != nil {
			return err
		}
		for _, c := range all {
			switch c.GetState() {
			case controllerv1.CommandRecord_STATE_PENDING, controllerv1.CommandRecord_STATE_ACKNOWLEDGED:
				if !s.sent[c.GetId()] && !s.completed[c.GetId()] {
					cmds = append(cmds, c)
				}
			}
		}
		return nil
	})
	if err != nil {
		return status.Errorf(codes.Internal, "read commands: %v", err)
	}
	for _, c := range cmds {
		msg, ok := commandMessage(c)
		if !ok {
			s.log.Warn("cannot deliver command of unknown kind", "command_id", c.GetId(), "kind", c.GetKind())
			undeliverable := &agentv1.CommandResult{CommandId: c.GetId(), Error: fmt.Sprintf("this controller cannot deliver commands of kind %q", c.GetKind())}
			if c.GetKind() == controllerv1.CommandKindDeploy {
				undeliverable.Error = "a deploy command without its deploy instructions cannot be delivered"
			}
			if err := s.finish(ctx, undeliverable); err != nil {
				return err
			}
			continue
		}
		if err := s.stream.Send(msg); err != nil {
			return err
		}
		s.sent[c.GetId()] = true
		s.log.Debug("command sent", "command_id", c.GetId(), "kind", c.GetKind())
	}
	return nil
}

// commandMessage turns a stored command into what the agent receives.
func commandMessage(c *controllerv1.CommandRecord) (*agentv1.ControllerMessage, bool) {
	switch c.GetKind() {
	case controllerv1.CommandKindAudit, "":
		return &agentv1.ControllerMessage{Msg: &agentv1.ControllerMessage_Command{Command: &agentv1.Command{
			Id: c.GetId(),
			Kind: &agentv1.Command_Audit{Audit: &agentv1.AuditCommand{
				Collectors: c.GetCollectors(),
				Track:      c.GetTrack(),
			}},
		}}}, true
	case controllerv1.CommandKindDeploy:
		if c.GetDeploy() == nil {
			return nil, false
		}
		return &agentv1.ControllerMessage{Msg: &agentv1.ControllerMessage_Command{Command: &agentv1.Command{
			Id:   c.GetId(),
			Kind: &agentv1.Command_Deploy{Deploy: c.GetDeploy()},
		}}}, true
	}
	return nil, false
}

// handle processes one message from the agent.
func (s *session) handle(ctx context.Context, m *agentv1.AgentMessage) error {
	if err := s.seen(ctx); err != nil {
		return err
	}
	switch msg := m.GetMsg().(type) {
	case *agentv1.AgentMessage_Hello:
		return status.Error(codes.InvalidArgument, "Hello may only be the first message of a session")
	case *agentv1.AgentMessage_Ack:
		return s.acknowledge(ctx, msg.Ack.GetCommandId())
	case *agentv1.AgentMessage_Result:
		r := msg.Result
		if err := s.finish(ctx, r); err != nil {
			return err
		}
		return s.stream.Send(&agentv1.ControllerMessage{Msg: &agentv1.ControllerMessage_ResultAck{
			ResultAck: &agentv1.ResultAck{CommandId: r.GetCommandId()},
		}})
	case *agentv1.AgentMessage_ConfirmationRequest:
		return s.confirmationRequested(ctx, msg.ConfirmationRequest)
	case *agentv1.AgentMessage_Outbox:
		if err := s.storeOutbox(ctx, msg.Outbox); err != nil {
			return err
		}
		return s.stream.Send(&agentv1.ControllerMessage{Msg: &agentv1.ControllerMessage_OutboxAck{
			OutboxAck: &agentv1.OutboxAck{Id: msg.Outbox.GetId()},
		}})
	default:
		return status.Error(codes.InvalidArgument, "empty or unknown agent message")
	}
}

// acknowledge moves a pending command to acknowledged.
func (s *session) acknowledge(ctx context.Context, id string) error {
	now := s.f.now()
	return s.updateCommand(ctx, id, func(c *controllerv1.CommandRecord) bool {
		if c.GetState() != controllerv1.CommandRecord_STATE_PENDING {
			return false
		}
		c.State = controllerv1.CommandRecord_STATE_ACKNOWLEDGED
		c.UpdatedAt = stamp.Format(now)
		return true
	})
}

// finish records a command's result (a deploy command's report with
// it) and tells the events receiver. A result for a command already
// finished (a redelivery after a lost ResultAck) changes nothing, but is
// reported again.
func (s *session) finish(ctx context.Context, r *agentv1.CommandResult) error {
	now := s.f.now()
	foreign, err := s.foreignAudit(ctx, r)
	if err != nil {
		return err
	}
	own := false
	err = s.updateCommand(ctx, r.GetCommandId(), func(c *controllerv1.CommandRecord) bool {
		own = true
		switch c.GetState() {
		case controllerv1.CommandRecord_STATE_SUCCEEDED, controllerv1.CommandRecord_STATE_FAILED:
			return false
		}
		c.State = controllerv1.CommandRecord_STATE_FAILED
		if r.GetOk() {
			c.State = controllerv1.CommandRecord_STATE_SUCCEEDED
		}
		c.Error = r.GetError()
		c.AuditId = r.GetAuditId()
		if foreign != "" {
			s.log.Warn("agent named an audit that is not its own for a command", "command_id", c.GetId(), "audit_id", r.GetAuditId(), "reason", foreign)
			c.State = controllerv1.CommandRecord_STATE_FAILED
			c.Error = fmt.Sprintf("the agent reported audit %s, which is not its own (%s)", r.GetAuditId(), foreign)
			c.AuditId = ""
		}
		if err := setCommandReport(c, r); err != nil {
			s.log.Warn("agent's report refused", "command_id", c.GetId(), "err", err)
			c.State = controllerv1.CommandRecord_STATE_FAILED
			c.Error = strings.TrimPrefix(c.GetError()+"; "+err.Error(), "; ")
		}
		c.UpdatedAt = stamp.Format(now)
		return true
	})
	if err != nil {
		return err
	}
	if own {
		s.f.commandFinished(s.nodeID, r.GetCommandId())
	}
	return nil
}

// foreignAudit says why the audit a result names is not the node's own
// ("" when it is, or when it is not stored: the engine fails a command
// whose audit it cannot read), so that a node cannot pass off another
// node's audit as its result. The command the audit was uploaded for is
// not compared: an identical document uploaded again keeps its first
// record.
func (s *session) foreignAudit(ctx context.Context, r *agentv1.CommandResult) (string, error) {
	if r.GetAuditId() == "" {
		return "", nil
	}
	var a *controllerv1.AuditRecord
	err := s.f.st.View(ctx, func(tx store.Tx) error {
		var err error
		a, err = tx.Audit(r.GetAuditId())
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", nil
	case err != nil:
		return "", status.Errorf(codes.Internal, "read audit %s: %v", r.GetAuditId(), err)
	case a.GetNodeId() != s.nodeID:
		return "it belongs to another node", nil
	}
	return "", nil
}

// confirmationRequested passes an agent's request for a manual step's
// confirmation on to the events receiver, when the command is one of the
// node's own unfinished deploy commands.
func (s *session) confirmationRequested(ctx context.Context, r *agentv1.ConfirmationRequest) error {
	if r.GetCommandId() == "" || r.GetStep() == "" {
		return status.Error(codes.InvalidArgument, "a confirmation request needs command_id and step")
	}
	var c *controllerv1.CommandRecord
	err := s.f.st.View(ctx, func(tx store.Tx) error {
		var err error
		c, err = tx.Command(r.GetCommandId())
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return status.Errorf(codes.Internal, "read command %s: %v", r.GetCommandId(), err)
	case c.GetNodeId() == s.nodeID && c.GetKind() == controllerv1.CommandKindDeploy && unfinished(c):
		s.log.Info("step waits for confirmation", "command_id", r.GetCommandId(), "step", r.GetStep())
		s.f.confirmationRequested(s.nodeID, r)
		return nil
	}
	s.log.Warn("agent asked to confirm a step of a command that is not its own unfinished deploy command",
		"command_id", r.GetCommandId(), "step", r.GetStep())
	return nil
}

// storeOutbox stores one item of the agent's outbox, once per node and
// item ID: an item sent again (its OutboxAck was lost, or the agent
// drained its outbox again before the ack came) is already stored, and
// only acknowledged again.
func (s *session) storeOutbox(ctx context.Context, item *agentv1.OutboxItem) error {
	if item.GetId() == "" {
		return status.Error(codes.InvalidArgument, "an outbox item needs an id")
	}
	rec := &controllerv1.AgentEventRecord{
		NodeId:       s.nodeID,
		Id:           item.GetId(),
		Kind:         item.GetKind(),
		DeploymentId: item.GetDeploymentId(),
		ReceivedAt:   stamp.Format(s.f.now()),
	}
	setEventReport(rec, item)
	fresh := false // stored now, not before
	err := s.f.st.Batch(ctx, func(tx store.Tx) error {
		fresh = false
		_, err := tx.AgentEvent(s.nodeID, item.GetId())
		switch {
		case err == nil:
			return nil // stored before
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if err := tx.PutAgentEvent(rec); err != nil {
			return err
		}
		fresh = true
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return status.Errorf(codes.Internal, "store outbox item %s: %v", item.GetId(), err)
	}
	if err == nil && fresh && item.GetKind() == agentv1.OutboxDeploymentInterrupted {
		return s.deploymentInterrupted(ctx, item.GetId(), rec.GetInterruption())
	}
	return nil
}

// deploymentInterrupted passes an agent's report that a crash or a stop
// cut off a step of a deploy command's deployment (outbox item id) on to
// the events receiver, when it names one of the node's own deploy
// commands and a step as LIST/NAME; anything else is logged and dropped
// (the item is stored either way).
func (s *session) deploymentInterrupted(ctx context.Context, id string, in *agentv1.Interruption) error {
	if in == nil {
		s.log.Warn("agent reported an interrupted deployment without an interruption", "item", id)
		return nil
	}
	commandID, step := in.GetCommandId(), in.GetStep()
	list, name, ok := strings.Cut(step, "/")
	if commandID == "" || !ok || name == "" || !slices.Contains([]string{"steps", "verify", "rollback"}, list) {
		s.log.Warn("agent reported an interrupted deployment without a command_id and a step LIST/NAME", "item", id, "command_id", commandID, "step", step)
		return nil
	}
	var c *controllerv1.CommandRecord
	err := s.f.st.View(ctx, func(tx store.Tx) error {
		var err error
		c, err = tx.Command(commandID)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return status.Errorf(codes.Internal, "read command %s: %v", commandID, err)
	case c.GetNodeId() == s.nodeID && c.GetKind() == controllerv1.CommandKindDeploy:
		s.log.Warn("agent reports a deployment cut off by a stop", "command_id", commandID, "step", step)
		s.f.deploymentInterrupted(s.nodeID, commandID, step)
		return nil
	}
	s.log.Warn("agent reported an interrupted deployment of a command that is not its own deploy command", "item", id, "command_id", commandID)
	return nil
}

// unfinished reports whether a command still waits for its result.
func unfinished(c *controllerv1.CommandRecord) bool {
	switch c.GetState() {
	case controllerv1.CommandRecord_STATE_PENDING, controllerv1.CommandRecord_STATE_ACKNOWLEDGED:
		return true
	}
	return false
}

// updateCommand applies change to one of the node's commands. Unknown
// commands and other nodes' commands are logged and ignored, so that an
// agent holding a stale result can still be told to forget it.
func (s *session) updateCommand(ctx context.Context, id string, change func(*controllerv1.CommandRecord) bool) error {
	if id == "" {
		return status.Error(codes.InvalidArgument, "command_id is required")
	}
	err := s.f.st.Batch(ctx, func(tx store.Tx) error {
		c, err := tx.Command(id)
		if err != nil {
			return err
		}
		if c.GetNodeId() != s.nodeID {
			return errForeignCommand
		}
		if !change(c) {
			return nil
		}
		return tx.PutCommand(c)
	})
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, errForeignCommand):
		s.log.Warn("agent reported on a command that is not its own", "command_id", id, "err", err)
		return nil
	case err != nil:
		return status.Errorf(codes.Internal, "update command %s: %v", id, err)
	}
	return nil
}
