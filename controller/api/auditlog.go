package api

import (
	"context"
	"time"

	"github.com/cairn-ops/cairn/controller/auditlog"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/limits"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

type auditLog struct {
	controllerv1.UnimplementedAuditLogServer
	*base
}

func (s *auditLog) ListEntries(ctx context.Context, req *controllerv1.ListEntriesRequest) (*controllerv1.ListEntriesResponse, error) {
	resp, err := s.listEntries(ctx, req)
	return resp, s.rpcError("ListEntries", err)
}

func (s *auditLog) listEntries(ctx context.Context, req *controllerv1.ListEntriesRequest) (*controllerv1.ListEntriesResponse, error) {
	var since time.Time
	if req.GetSince() != "" {
		t, err := time.Parse(time.RFC3339Nano, req.GetSince())
		if err != nil {
			return nil, invalid("since", "%s is not an RFC 3339 time (e.g. 2026-01-02T15:04:05Z)", limits.Quote(req.GetSince()))
		}
		since = t
	}
	limit := int(req.GetLimit())
	var entries []*controllerv1.AuditLogEntry
	err := s.Store.View(ctx, func(tx store.Tx) error {
		var err error
		if since.IsZero() {
			entries, err = tx.LogEntries(req.GetAfterSequence(), limit)
			return err
		}
		all, err := tx.LogEntries(req.GetAfterSequence(), 0)
		if err != nil {
			return err
		}
		for _, e := range all {
			t, err := time.Parse(time.RFC3339Nano, e.GetTime())
			if err == nil && t.Before(since) {
				continue
			}
			entries = append(entries, e)
			if limit > 0 && len(entries) == limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &controllerv1.ListEntriesResponse{Entries: entries}, nil
}

func (s *auditLog) Verify(ctx context.Context, _ *controllerv1.VerifyRequest) (*controllerv1.VerifyResponse, error) {
	var (
		entries  []*controllerv1.AuditLogEntry
		headSeq  uint64
		headHash string
	)
	err := s.Store.View(ctx, func(tx store.Tx) error {
		var err error
		if entries, err = tx.LogEntries(0, 0); err != nil {
			return err
		}
		headSeq, headHash, err = tx.LogHead()
		return err
	})
	if err != nil {
		return nil, s.rpcError("Verify", err)
	}
	resp := &controllerv1.VerifyResponse{Ok: true, Entries: uint64(len(entries)), HeadHash: headHash}
	if p := auditlog.Verify(entries, headSeq, headHash); p != nil {
		resp.Ok = false
		resp.FirstBadSequence = p.Sequence
		resp.Problem = p.Reason
	}
	return resp, nil
}
