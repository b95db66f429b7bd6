package rollout

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/cairn-ops/cairn/controller/store"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// Get returns a rollout with its nodes, by wave, then hostname.
func (e *Engine) Get(ctx context.Context, id string) (*controllerv1.RolloutRecord, error) {
	if id == "" {
		return nil, fmt.Errorf("%w: id: a rollout ID is required", ErrInvalid)
	}
	var ro *controllerv1.RolloutRecord
	err := e.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		if ro, err = tx.Rollout(id); err != nil {
			return rolloutError(id, err)
		}
		if ro.Nodes, err = tx.RolloutNodes(id); err != nil {
			return fmt.Errorf("rollout %s: nodes: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sortForDisplay(ro.Nodes)
	return ro, nil
}

// List returns rollouts (without nodes), newest first; release filters
// by name or name@version when not empty.
func (e *Engine) List(ctx context.Context, release string) ([]*controllerv1.RolloutRecord, error) {
	name, version, _ := strings.Cut(release, "@")
	var out []*controllerv1.RolloutRecord
	err := e.cfg.Store.View(ctx, func(tx store.Tx) error {
		all, err := tx.Rollouts()
		if err != nil {
			return fmt.Errorf("list rollouts: %w", err)
		}
		for _, r := range all {
			if name != "" && r.GetRelease().GetName() != name {
				continue
			}
			if version != "" && r.GetRelease().GetVersion() != version {
				continue
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Reverse(out)
	return out, nil
}
