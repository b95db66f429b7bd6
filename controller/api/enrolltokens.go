package api

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/cairn-ops/cairn/controller/auditlog"
	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/controller/store"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// Enrollment token limits.
const (
	DefaultEnrollTTL = 10 * time.Minute
	MaxEnrollTTL     = 24 * time.Hour
)

type enrollTokens struct {
	controllerv1.UnimplementedEnrollTokensServer
	*base
}

func (s *enrollTokens) CreateEnrollToken(ctx context.Context, req *controllerv1.CreateEnrollTokenRequest) (*controllerv1.CreateEnrollTokenResponse, error) {
	resp, err := s.createEnrollToken(ctx, req)
	return resp, s.rpcError("CreateEnrollToken", err)
}

func (s *enrollTokens) createEnrollToken(ctx context.Context, req *controllerv1.CreateEnrollTokenRequest) (*controllerv1.CreateEnrollTokenResponse, error) {
	ttl := time.Duration(req.GetTtlSeconds()) * time.Second
	switch {
	case req.GetTtlSeconds() < 0:
		return nil, invalid("ttl_seconds", "must not be negative")
	case req.GetTtlSeconds() == 0:
		ttl = DefaultEnrollTTL
	case req.GetTtlSeconds() > int64(MaxEnrollTTL/time.Second):
		return nil, invalid("ttl_seconds", "%s is longer than the maximum of 24h", ttl)
	}
	uses := req.GetUses()
	if uses == 0 {
		uses = 1
	}
	if err := validateLabels("labels", req.GetLabels(), false); err != nil {
		return nil, err
	}
	token, err := auth.NewToken(auth.TokenEnroll)
	if err != nil {
		return nil, err
	}
	id, err := newID("et_")
	if err != nil {
		return nil, err
	}
	now := s.Now()
	rec := &controllerv1.EnrollTokenRecord{
		Id:        id,
		TokenHash: auth.HashToken(token),
		CreatedBy: actor(ctx),
		CreatedAt: stamp(now),
		ExpiresAt: stamp(now.Add(ttl)),
		UsesLeft:  uses,
		Labels:    req.GetLabels(),
	}
	err = s.Store.Update(ctx, func(tx store.Tx) error {
		if err := tx.PutEnrollToken(rec); err != nil {
			return fmt.Errorf("store enroll token: %w", err)
		}
		details := map[string]string{"expires_at": rec.ExpiresAt, "uses": strconv.FormatUint(uint64(uses), 10)}
		if len(rec.Labels) > 0 {
			details["labels"] = formatLabels(rec.Labels)
		}
		_, err := auditlog.Append(tx, now, rec.CreatedBy, "enroll-token.create", "enroll-token/"+id, details)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &controllerv1.CreateEnrollTokenResponse{Token: token, Id: id, ExpiresAt: rec.ExpiresAt, Uses: uses}, nil
}
