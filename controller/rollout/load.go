package rollout

import (
	"fmt"

	"github.com/cairn-ops/cairn/controller/rollout/state"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// nodeInput is what load read for one node in flight: the command it
// waits for and, once that finished, what deciding the node's next state
// needs. decide reads it and nothing else from the store.
type nodeInput struct {
	// cmd is the command the node waits for; nil when the store has no
	// such command (missing says which).
	cmd     *controllerv1.CommandRecord
	missing string
	// audit is the audit a finished audit command stored.
	audit *loadedAudit
	// pre is the node's pre-audit (after the post-audit, the rollback's
	// audit and a resolution's audit).
	pre *loadedAudit
	// baseline is the node's latest CMS baseline (nil: none): after the
	// pre-audit, the post-audit and a rollback's audit. For the drift
	// pre-check, its document or why it could not be read.
	baseline    *controllerv1.BaselineRecord
	baselineDoc *inventoryv1.Audit
	baselineErr error
	// deploy is the node's deploy command (after the post-audit).
	deploy *controllerv1.CommandRecord
	// rollback is the node's rollback command (after its audit); nil
	// when the agent undid the deployment itself and only an audit ran.
	rollback *controllerv1.CommandRecord
}

// loadedAudit is an audit's record and verified document, or why they
// could not be read (the node then fails with it).
type loadedAudit struct {
	rec *controllerv1.AuditRecord
	doc *inventoryv1.Audit
	err error
}

// loadInputs reads what every node in flight needs. A store or context
// error ends the pass; an audit that does not verify is the node's
// failure, decided with the rest.
func (p *pass) loadInputs() error {
	for _, n := range p.nodes {
		if !state.NodeInFlight(n.GetState()) {
			continue
		}
		in, err := p.loadInput(n)
		if err != nil {
			return fmt.Errorf("rollout %s: node %s: %w", p.ro.GetId(), n.Name(), err)
		}
		p.in[n.GetNodeId()] = in
	}
	return nil
}

func (p *pass) loadInput(n *controllerv1.RolloutNode) (*nodeInput, error) {
	in := &nodeInput{}
	id := currentCommand(n)
	if id == "" {
		in.missing = fmt.Sprintf("internal: no command recorded for state %s", state.Name(n.GetState()))
		return in, nil
	}
	c, err := p.e.command(p.ctx, id)
	if isNotFound(err) {
		in.missing = fmt.Sprintf("command %s is missing from the store", id)
		return in, nil
	}
	if err != nil {
		return nil, err
	}
	in.cmd = c
	if !finished(c) || c.GetState() != controllerv1.CommandRecord_STATE_SUCCEEDED || c.GetKind() != controllerv1.CommandKindAudit {
		return in, nil
	}
	// A finished audit: what the next state depends on.
	if in.audit, err = p.loadAudit(c.GetAuditId()); err != nil {
		return nil, err
	}
	switch n.GetState() {
	case NodePreAudit:
		if in.baseline, err = p.e.latestBaseline(p.ctx, n.GetNodeId()); err != nil {
			return nil, err
		}
		if in.baseline != nil {
			_, in.baselineDoc, in.baselineErr = p.e.loadAudit(p.ctx, in.baseline.GetAuditId())
			if err := p.ctx.Err(); err != nil {
				return nil, err
			}
		}
	case NodePostAudit:
		if in.pre, err = p.loadAudit(n.GetPreAuditId()); err != nil {
			return nil, err
		}
		if in.baseline, err = p.e.latestBaseline(p.ctx, n.GetNodeId()); err != nil {
			return nil, err
		}
		if in.deploy, err = p.optionalCommand(n.GetDeployCommand()); err != nil {
			return nil, err
		}
	case NodeRollingBack:
		if in.pre, err = p.loadAudit(n.GetPreAuditId()); err != nil {
			return nil, err
		}
		if in.rollback, err = p.optionalCommand(n.GetRollbackCommand()); err != nil {
			return nil, err
		}
		if in.baseline, err = p.e.latestBaseline(p.ctx, n.GetNodeId()); err != nil {
			return nil, err
		}
	case NodeResolving:
		if n.GetPreAuditId() != "" {
			if in.pre, err = p.loadAudit(n.GetPreAuditId()); err != nil {
				return nil, err
			}
		}
	}
	return in, nil
}

// loadAudit reads an audit for decide: a missing or unverifiable one is
// kept as its error, a context error ends the pass.
func (p *pass) loadAudit(id string) (*loadedAudit, error) {
	rec, doc, err := p.e.loadAudit(p.ctx, id)
	if err != nil {
		if cerr := p.ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return &loadedAudit{err: err}, nil
	}
	return &loadedAudit{rec: rec, doc: doc}, nil
}

// optionalCommand reads a command by ID; nil when id is empty or the
// store has none.
func (p *pass) optionalCommand(id string) (*controllerv1.CommandRecord, error) {
	if id == "" {
		return nil, nil
	}
	c, err := p.e.command(p.ctx, id)
	if isNotFound(err) {
		return nil, nil
	}
	return c, err
}

// currentCommand is the command a node in flight waits for.
func currentCommand(n *controllerv1.RolloutNode) string {
	switch n.GetState() {
	case NodePreAudit:
		return n.GetPreAuditCommand()
	case NodeDeploying, NodeWaitingConfirmation:
		return n.GetDeployCommand()
	case NodePostAudit:
		return n.GetPostAuditCommand()
	case NodeRollingBack:
		if n.GetRollbackAuditCommand() != "" {
			return n.GetRollbackAuditCommand()
		}
		return n.GetRollbackCommand()
	case NodeResolving:
		return n.GetResolveAuditCommand()
	}
	return ""
}

// unfinished reports whether a command still waits for its result.
func unfinished(c *controllerv1.CommandRecord) bool { return c != nil && !finished(c) }
