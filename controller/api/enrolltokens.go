package api

import (
	"context"
	"fmt"
	"strconv"

	"github.com/cairn-ops/cairn/controller/auditlog"
	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/limits"
	"github.com/cairn-ops/cairn/internal/stamp"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
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
	ttl, err := checkSeconds("ttl_seconds", req.GetTtlSeconds(), limits.EnrollTTL, "24h")
	if err != nil {
		return nil, err
	}
	if ttl == 0 {
		ttl = limits.DefaultEnrollTTL
	}
	uses := req.GetUses()
	switch {
	case uses == 0:
		uses = 1
	case uses > limits.EnrollUses:
		return nil, invalid("uses", "%d is more than the maximum of %d", uses, limits.EnrollUses)
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
		CreatedAt: stamp.Format(now),
		ExpiresAt: stamp.Format(now.Add(ttl)),
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
