package api

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cairn-ops/cairn/controller/auditlog"
	"github.com/cairn-ops/cairn/controller/cms"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/limits"
	"github.com/cairn-ops/cairn/internal/stamp"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

type nodes struct {
	controllerv1.UnimplementedNodesServer
	*base
}

// findNode resolves a node reference: a node ID, else a hostname that
// exactly one node has.
func findNode(tx store.Tx, ref string) (*controllerv1.NodeRecord, error) {
	if ref == "" {
		return nil, invalid("node", "a node ID or hostname is required")
	}
	if err := checkText("node", limits.NodeRef, ref); err != nil {
		return nil, err
	}
	n, err := tx.Node(ref)
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return n, err
	}
	all, err := tx.Nodes()
	if err != nil {
		return nil, err
	}
	var found []*controllerv1.NodeRecord
	for _, n := range all {
		if n.GetHostname() == ref {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("node %q (no node has this ID or hostname): %w", ref, store.ErrNotFound)
	case 1:
		return found[0], nil
	}
	ids := make([]string, len(found))
	for i, n := range found {
		ids[i] = n.GetId()
	}
	return nil, fmt.Errorf("%w: hostname %q names %d nodes (%s): use a node ID", ErrPrecondition, ref, len(found), strings.Join(ids, ", "))
}

func (s *nodes) ListNodes(ctx context.Context, req *controllerv1.ListNodesRequest) (*controllerv1.ListNodesResponse, error) {
	var out []*controllerv1.NodeRecord
	err := s.Store.View(ctx, func(tx store.Tx) error {
		all, err := tx.Nodes()
		out = cms.Select(all, req.GetSelector(), true)
		return err
	})
	if err != nil {
		return nil, s.rpcError("ListNodes", err)
	}
	for _, n := range out {
		s.seenNow(n)
	}
	return &controllerv1.ListNodesResponse{Nodes: out}, nil
}

// seenNow sets a node's last_seen to now when it has a live session: the
// stored time is written at most every 30 seconds, and only when the agent
// sends something, but an open session is kept alive by the transport, so
// a connected node is seen now, not "4m ago".
func (s *nodes) seenNow(n *controllerv1.NodeRecord) {
	if n != nil && s.Dispatcher != nil && s.Dispatcher.IsConnected(n.GetId()) {
		n.LastSeen = stamp.Format(s.Now())
	}
}

func (s *nodes) GetNode(ctx context.Context, req *controllerv1.GetNodeRequest) (*controllerv1.NodeRecord, error) {
	var n *controllerv1.NodeRecord
	err := s.Store.View(ctx, func(tx store.Tx) error {
		var err error
		n, err = findNode(tx, req.GetNode())
		return err
	})
	s.seenNow(n)
	return n, s.rpcError("GetNode", err)
}

func (s *nodes) LabelNode(ctx context.Context, req *controllerv1.LabelNodeRequest) (*controllerv1.NodeRecord, error) {
	n, err := s.labelNode(ctx, req)
	s.seenNow(n)
	return n, s.rpcError("LabelNode", err)
}

func (s *nodes) labelNode(ctx context.Context, req *controllerv1.LabelNodeRequest) (*controllerv1.NodeRecord, error) {
	if len(req.GetSet()) == 0 {
		return nil, invalid("set", "no labels to set or remove")
	}
	if err := validateLabels("set", req.GetSet(), true); err != nil {
		return nil, err
	}
	var n *controllerv1.NodeRecord
	err := s.Store.Update(ctx, func(tx store.Tx) error {
		var err error
		if n, err = findNode(tx, req.GetNode()); err != nil {
			return err
		}
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		var set, removed []string
		for _, k := range slices.Sorted(maps.Keys(req.GetSet())) {
			v := req.GetSet()[k]
			old, had := n.Labels[k]
			switch {
			case v == "" && had:
				delete(n.Labels, k)
				removed = append(removed, k)
			case v != "" && (!had || old != v):
				n.Labels[k] = v
				set = append(set, k+"="+v)
			}
		}
		if len(set) == 0 && len(removed) == 0 {
			return nil // nothing changes, nothing to record
		}
		if err := tx.PutNode(n); err != nil {
			return fmt.Errorf("store node %s: %w", n.GetId(), err)
		}
		details := map[string]string{}
		if len(set) > 0 {
			details["set"] = strings.Join(set, ",")
		}
		if len(removed) > 0 {
			details["removed"] = strings.Join(removed, ",")
		}
		_, err = auditlog.Append(tx, s.Now(), actor(ctx), "node.label", "node/"+n.GetId(), details)
		return err
	})
	if err != nil {
		return nil, err
	}
	return n, nil
}

func (s *nodes) RevokeNode(ctx context.Context, req *controllerv1.RevokeNodeRequest) (*controllerv1.NodeRecord, error) {
	if err := checkOptional("reason", limits.Note, req.GetReason()); err != nil {
		return nil, s.rpcError("RevokeNode", err)
	}
	var n *controllerv1.NodeRecord
	changed := false
	err := s.Store.Update(ctx, func(tx store.Tx) error {
		var err error
		if n, err = findNode(tx, req.GetNode()); err != nil {
			return err
		}
		if n.GetState() == controllerv1.NodeRecord_STATE_REVOKED {
			return nil
		}
		n.State = controllerv1.NodeRecord_STATE_REVOKED
		if err := tx.PutNode(n); err != nil {
			return fmt.Errorf("store node %s: %w", n.GetId(), err)
		}
		changed = true
		details := map[string]string{"hostname": n.GetHostname()}
		if req.GetReason() != "" {
			details["reason"] = req.GetReason()
		}
		_, err = auditlog.Append(tx, s.Now(), actor(ctx), "node.revoke", "node/"+n.GetId(), details)
		return err
	})
	if err != nil {
		return nil, s.rpcError("RevokeNode", err)
	}
	if changed && s.Dispatcher != nil {
		// The fleet re-reads the node and drops a revoked node's session.
		s.Dispatcher.Notify(n.GetId())
	}
	return n, nil
}
