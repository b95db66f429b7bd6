package api

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"

	"github.com/cairn-ops/cairn/controller/auditlog"
	"github.com/cairn-ops/cairn/controller/cms"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/limits"
	"github.com/cairn-ops/cairn/internal/stamp"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

type cmsServer struct {
	controllerv1.UnimplementedCMSServer
	*base
}

func (s *cmsServer) AcceptBaseline(ctx context.Context, req *controllerv1.AcceptBaselineRequest) (*controllerv1.BaselineRecord, error) {
	b, err := s.acceptBaseline(ctx, req)
	return b, s.rpcError("AcceptBaseline", err)
}

func (s *cmsServer) acceptBaseline(ctx context.Context, req *controllerv1.AcceptBaselineRequest) (*controllerv1.BaselineRecord, error) {
	if req.GetReason() == "" {
		return nil, invalid("reason", "say why this audit is the authorized baseline")
	}
	if err := checkText("reason", limits.Note, req.GetReason()); err != nil {
		return nil, err
	}
	if err := checkOptional("audit_id", limits.ObjectID, req.GetAuditId()); err != nil {
		return nil, err
	}
	if s.Blobs == nil {
		return nil, errors.New("accept baseline: the controller has no blob directory")
	}
	// The audit and what it tracked, read from its document outside the
	// write transaction.
	var a *controllerv1.AuditRecord
	err := s.Store.View(ctx, func(tx store.Tx) error {
		n, err := findNode(tx, req.GetNode())
		if err != nil {
			return err
		}
		a, err = baselineAudit(tx, n, req.GetAuditId())
		return err
	})
	if err != nil {
		return nil, err
	}
	doc, err := cms.LoadAudit(s.Blobs, a)
	if err != nil {
		return nil, fmt.Errorf("%w: audit %s cannot be read: %v", ErrPrecondition, a.GetId(), err)
	}
	now := s.Now()
	var b *controllerv1.BaselineRecord
	err = s.Store.Update(ctx, func(tx store.Tx) error {
		n, err := tx.Node(a.GetNodeId())
		if err != nil {
			return fmt.Errorf("node %s: %w", a.GetNodeId(), err)
		}
		b = &controllerv1.BaselineRecord{
			NodeId:      n.GetId(),
			AuditId:     a.GetId(),
			AcceptedBy:  actor(ctx),
			AcceptedAt:  stamp.Format(now),
			Reason:      req.GetReason(),
			ContentHash: a.GetContentHash(),
		}
		return cms.PutBaseline(tx, now, b, doc.GetFiles().GetPatterns())
	})
	if err != nil {
		if errors.Is(err, cms.ErrTracked) {
			return nil, fmt.Errorf("%w: %v", ErrPrecondition, err)
		}
		return nil, err
	}
	return b, nil
}

// baselineAudit returns the audit to accept for node n: id, which must be
// one of n's, or n's latest.
func baselineAudit(tx store.Tx, n *controllerv1.NodeRecord, id string) (*controllerv1.AuditRecord, error) {
	if id == "" {
		all, err := tx.NodeAudits(n.GetId())
		if err != nil {
			return nil, err
		}
		if len(all) == 0 {
			return nil, fmt.Errorf("%w: node %s has no audit yet: run `cairnctl audit run --node %s` first", ErrPrecondition, n.GetId(), n.GetId())
		}
		return all[len(all)-1], nil
	}
	a, err := tx.Audit(id)
	if err != nil {
		return nil, fmt.Errorf("audit %s: %w", id, err)
	}
	if a.GetNodeId() != n.GetId() {
		return nil, invalid("audit_id", "audit %s belongs to node %s, not %s", id, a.GetNodeId(), n.GetId())
	}
	return a, nil
}

func (s *cmsServer) BaselineHistory(ctx context.Context, req *controllerv1.BaselineHistoryRequest) (*controllerv1.BaselineHistoryResponse, error) {
	var out []*controllerv1.BaselineRecord
	err := s.Store.View(ctx, func(tx store.Tx) error {
		n, err := findNode(tx, req.GetNode())
		if err != nil {
			return err
		}
		out, err = tx.Baselines(n.GetId())
		return err
	})
	if err != nil {
		return nil, s.rpcError("BaselineHistory", err)
	}
	return &controllerv1.BaselineHistoryResponse{Baselines: out}, nil
}

func (s *cmsServer) Drift(ctx context.Context, req *controllerv1.DriftRequest) (*controllerv1.DriftResponse, error) {
	resp, err := s.drift(ctx, req)
	return resp, s.rpcError("Drift", err)
}

func (s *cmsServer) drift(ctx context.Context, req *controllerv1.DriftRequest) (*controllerv1.DriftResponse, error) {
	if req.GetService() != "" && len(req.GetSelector()) > 0 {
		return nil, invalid("selector", "give a selector or a service, not both")
	}
	if err := checkOptional("service", limits.ServiceName, req.GetService()); err != nil {
		return nil, err
	}
	if err := validateLabels("selector", req.GetSelector(), false); err != nil {
		return nil, err
	}
	if s.Blobs == nil {
		return nil, errors.New("drift: the controller has no blob directory")
	}
	var targets []*controllerv1.NodeRecord
	err := s.Store.View(ctx, func(tx store.Tx) error {
		sel := req.GetSelector()
		if req.GetService() != "" {
			svc, err := tx.Service(req.GetService())
			if err != nil {
				return fmt.Errorf("service %s: %w", req.GetService(), err)
			}
			sel = svc.GetSelector()
		}
		all, err := tx.Nodes()
		targets = cms.Select(all, sel, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	nodes, err := cms.Drift(ctx, s.Store, s.Blobs, targets)
	if err != nil {
		return nil, err
	}
	return cms.Response(nodes), nil
}

func (s *cmsServer) Export(ctx context.Context, _ *controllerv1.ExportRequest) (*controllerv1.ExportResponse, error) {
	resp := &controllerv1.ExportResponse{}
	err := s.Store.View(ctx, func(tx store.Tx) error {
		var err error
		if resp.Nodes, err = tx.Nodes(); err != nil {
			return err
		}
		if resp.Services, err = tx.Services(); err != nil {
			return err
		}
		for _, n := range resp.Nodes {
			bs, err := tx.Baselines(n.GetId())
			if err != nil {
				return err
			}
			resp.Baselines = append(resp.Baselines, bs...)
		}
		return nil
	})
	if err != nil {
		return nil, s.rpcError("Export", err)
	}
	return resp, nil
}

// Import sets the labels of existing nodes (a node's labels become the
// imported ones) and creates the services that do not exist yet. Nodes
// that are not enrolled and services that exist are skipped and listed.
// Everything is validated before anything is written, and the changes
// and their audit-log entry commit together.
func (s *cmsServer) Import(ctx context.Context, req *controllerv1.ImportRequest) (*controllerv1.ImportResponse, error) {
	resp, err := s.importCIs(ctx, req)
	return resp, s.rpcError("Import", err)
}

func (s *cmsServer) importCIs(ctx context.Context, req *controllerv1.ImportRequest) (*controllerv1.ImportResponse, error) {
	for i, n := range req.GetNodes() {
		if n.GetId() == "" {
			return nil, invalid(fmt.Sprintf("nodes[%d].id", i), "a node ID is required")
		}
		if err := checkText(fmt.Sprintf("nodes[%d].id", i), limits.NodeRef, n.GetId()); err != nil {
			return nil, err
		}
		if err := validateLabels(fmt.Sprintf("nodes[%d].labels", i), n.GetLabels(), false); err != nil {
			return nil, err
		}
	}
	for i, svc := range req.GetServices() {
		if err := validateService(fmt.Sprintf("services[%d]", i), svc.GetName(), svc.GetSelector(), svc.GetDescription()); err != nil {
			return nil, err
		}
	}
	now := s.Now()
	who := actor(ctx)
	var resp *controllerv1.ImportResponse
	err := s.Store.Update(ctx, func(tx store.Tx) error {
		resp = &controllerv1.ImportResponse{}
		for _, in := range req.GetNodes() {
			n, err := tx.Node(in.GetId())
			if errors.Is(err, store.ErrNotFound) {
				resp.Skipped = append(resp.Skipped, "node "+in.GetId()+": not enrolled")
				continue
			}
			if err != nil {
				return err
			}
			if maps.Equal(n.GetLabels(), in.GetLabels()) {
				continue
			}
			n.Labels = in.GetLabels()
			if err := tx.PutNode(n); err != nil {
				return fmt.Errorf("store node %s: %w", n.GetId(), err)
			}
			resp.NodesUpdated++
		}
		for _, in := range req.GetServices() {
			_, err := tx.Service(in.GetName())
			if err == nil {
				resp.Skipped = append(resp.Skipped, "service "+in.GetName()+": exists")
				continue
			}
			if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			svc := &controllerv1.ServiceRecord{
				Name:        in.GetName(),
				Selector:    in.GetSelector(),
				Description: in.GetDescription(),
				CreatedBy:   who,
				CreatedAt:   stamp.Format(now),
			}
			if err := tx.PutService(svc); err != nil {
				return fmt.Errorf("store service %s: %w", svc.GetName(), err)
			}
			resp.ServicesCreated++
		}
		_, err := auditlog.Append(tx, now, who, "cms.import", "cms", map[string]string{
			"nodes_updated":    strconv.FormatUint(uint64(resp.NodesUpdated), 10),
			"services_created": strconv.FormatUint(uint64(resp.ServicesCreated), 10),
			"skipped":          strconv.Itoa(len(resp.Skipped)),
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}
