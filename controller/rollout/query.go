package rollout

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/manifest"
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

// Report renders the rollout's management report: text, json, markdown
// or html. It returns the content and its MIME type.
func (e *Engine) Report(ctx context.Context, id, format string) ([]byte, string, error) {
	ro, err := e.Get(ctx, id)
	if err != nil {
		return nil, "", err
	}
	var rel *controllerv1.ReleaseRecord
	var entries []*controllerv1.AuditLogEntry
	err = e.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		ref := ro.GetRelease()
		if rel, err = tx.Release(ref.GetName(), ref.GetVersion()); err != nil {
			return fmt.Errorf("release %s: %w", refString(ref), err)
		}
		all, err := tx.LogEntries(0, 0)
		if err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
		for _, le := range all {
			if le.GetObject() == object(id) {
				entries = append(entries, le)
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	m, err := manifest.Parse(rel.GetManifestYaml(), rel.GetName()+"@"+rel.GetVersion()+".yaml")
	if err != nil {
		return nil, "", fmt.Errorf("release %s@%s: stored manifest: %w", rel.GetName(), rel.GetVersion(), err)
	}
	return RenderReport(ReportInput{
		Rollout:     ro,
		Release:     rel,
		Manifest:    m,
		Log:         entries,
		GeneratedAt: e.cfg.Now(),
	}, format)
}
