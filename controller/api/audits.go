package api

import (
	"context"
	"fmt"
	"strings"

	"github.com/cairn-ops/cairn/controller/auditlog"
	"github.com/cairn-ops/cairn/controller/cms"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/limits"
	"github.com/cairn-ops/cairn/internal/stamp"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

type audits struct {
	controllerv1.UnimplementedAuditsServer
	*base
}

// RunAudit issues an audit command to each node the request names. Each
// command tracks the node's tracked set (cms.AuditTrack) and the
// request's track paths, so the audit covers what the node's baseline
// covers and drift can compare them.
func (s *audits) RunAudit(ctx context.Context, req *controllerv1.RunAuditRequest) (*controllerv1.RunAuditResponse, error) {
	cmds, err := s.runAudit(ctx, req)
	if err != nil {
		return nil, s.rpcError("RunAudit", err)
	}
	if s.Dispatcher != nil {
		for _, c := range cmds {
			s.Dispatcher.Notify(c.GetNodeId())
		}
	}
	return &controllerv1.RunAuditResponse{Commands: cmds}, nil
}

func (s *audits) runAudit(ctx context.Context, req *controllerv1.RunAuditRequest) ([]*controllerv1.CommandRecord, error) {
	switch {
	case req.GetNode() == "" && len(req.GetSelector()) == 0:
		return nil, invalid("node", "name a node, or give a selector")
	case req.GetNode() != "" && len(req.GetSelector()) > 0:
		return nil, invalid("selector", "give a node or a selector, not both")
	}
	if err := validateLabels("selector", req.GetSelector(), false); err != nil {
		return nil, err
	}
	for _, c := range req.GetCollectors() {
		if c == "" {
			return nil, invalid("collectors", "empty collector name")
		}
	}
	if err := checkList("collectors", limits.Word, req.GetCollectors()); err != nil {
		return nil, err
	}
	if err := checkList("track", limits.Path, req.GetTrack()); err != nil {
		return nil, err
	}
	now := s.Now()
	who := actor(ctx)
	var cmds []*controllerv1.CommandRecord
	err := s.Store.Update(ctx, func(tx store.Tx) error {
		cmds = nil // Update may be retried by some stores
		targets, object, err := auditTargets(tx, req)
		if err != nil {
			return err
		}
		var ids, nodeIDs []string
		for _, n := range targets {
			id, err := newID("cmd_")
			if err != nil {
				return err
			}
			track, err := cms.AuditTrack(tx, n.GetId(), req.GetTrack(), nil)
			if err != nil {
				return err
			}
			c := &controllerv1.CommandRecord{
				Id:         id,
				NodeId:     n.GetId(),
				Kind:       controllerv1.CommandKindAudit,
				State:      controllerv1.CommandRecord_STATE_PENDING,
				CreatedBy:  who,
				CreatedAt:  stamp.Format(now),
				UpdatedAt:  stamp.Format(now),
				Collectors: req.GetCollectors(),
				Track:      track,
			}
			if err := tx.PutCommand(c); err != nil {
				return fmt.Errorf("store command for node %s: %w", n.GetId(), err)
			}
			cmds = append(cmds, c)
			ids = append(ids, id)
			nodeIDs = append(nodeIDs, n.GetId())
		}
		details := map[string]string{"nodes": strings.Join(nodeIDs, ","), "commands": strings.Join(ids, ",")}
		if len(req.GetCollectors()) > 0 {
			details["collectors"] = strings.Join(req.GetCollectors(), ",")
		}
		if len(req.GetTrack()) > 0 {
			details["track"] = strings.Join(req.GetTrack(), ",")
		}
		_, err = auditlog.Append(tx, now, who, "audit.run", object, details)
		return err
	})
	if err != nil {
		return nil, err
	}
	return cmds, nil
}

// auditTargets returns the nodes a RunAudit request names, without the
// revoked ones, and the audit-log object naming the request's target.
func auditTargets(tx store.Tx, req *controllerv1.RunAuditRequest) ([]*controllerv1.NodeRecord, string, error) {
	if req.GetNode() != "" {
		n, err := findNode(tx, req.GetNode())
		if err != nil {
			return nil, "", err
		}
		if n.GetState() == controllerv1.NodeRecord_STATE_REVOKED {
			return nil, "", fmt.Errorf("%w: node %s is revoked", ErrPrecondition, n.GetId())
		}
		return []*controllerv1.NodeRecord{n}, "node/" + n.GetId(), nil
	}
	all, err := tx.Nodes()
	if err != nil {
		return nil, "", err
	}
	sel := formatLabels(req.GetSelector())
	matched := cms.Select(all, req.GetSelector(), true)
	targets := cms.Select(matched, nil, false)
	switch {
	case len(matched) == 0:
		return nil, "", fmt.Errorf("%w: no node matches selector %s", ErrPrecondition, sel)
	case len(targets) == 0:
		return nil, "", fmt.Errorf("%w: every node matching selector %s is revoked", ErrPrecondition, sel)
	}
	return targets, "selector/" + sel, nil
}

func (s *audits) GetCommand(ctx context.Context, req *controllerv1.GetCommandRequest) (*controllerv1.CommandRecord, error) {
	if req.GetId() == "" {
		return nil, s.rpcError("GetCommand", invalid("id", "a command ID is required"))
	}
	if err := checkText("id", limits.ObjectID, req.GetId()); err != nil {
		return nil, s.rpcError("GetCommand", err)
	}
	var c *controllerv1.CommandRecord
	err := s.Store.View(ctx, func(tx store.Tx) error {
		var err error
		if c, err = tx.Command(req.GetId()); err != nil {
			return fmt.Errorf("command %s: %w", req.GetId(), err)
		}
		return nil
	})
	return c, s.rpcError("GetCommand", err)
}

func (s *audits) ListAudits(ctx context.Context, req *controllerv1.ListAuditsRequest) (*controllerv1.ListAuditsResponse, error) {
	var out []*controllerv1.AuditRecord
	err := s.Store.View(ctx, func(tx store.Tx) error {
		n, err := findNode(tx, req.GetNode())
		if err != nil {
			return err
		}
		out, err = tx.NodeAudits(n.GetId())
		return err
	})
	if err != nil {
		return nil, s.rpcError("ListAudits", err)
	}
	return &controllerv1.ListAuditsResponse{Audits: out}, nil
}

func (s *audits) GetAudit(ctx context.Context, req *controllerv1.GetAuditRequest) (*controllerv1.GetAuditResponse, error) {
	resp, err := s.getAudit(ctx, req)
	return resp, s.rpcError("GetAudit", err)
}

func (s *audits) getAudit(ctx context.Context, req *controllerv1.GetAuditRequest) (*controllerv1.GetAuditResponse, error) {
	if req.GetId() == "" {
		return nil, invalid("id", "an audit ID is required")
	}
	if err := checkText("id", limits.ObjectID, req.GetId()); err != nil {
		return nil, err
	}
	var rec *controllerv1.AuditRecord
	err := s.Store.View(ctx, func(tx store.Tx) error {
		var err error
		if rec, err = tx.Audit(req.GetId()); err != nil {
			return fmt.Errorf("audit %s: %w", req.GetId(), err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if s.Blobs == nil {
		return nil, fmt.Errorf("audit %s: the controller has no blob directory", rec.GetId())
	}
	a, err := cms.LoadAudit(s.Blobs, rec)
	if err != nil {
		return nil, err
	}
	return &controllerv1.GetAuditResponse{Record: rec, Audit: a}, nil
}
