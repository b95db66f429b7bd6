package report

import (
	"context"
	"fmt"

	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/manifest"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// logPage is how many audit-log entries Load reads at a time while it
// looks for a rollout's, so that a long log is never held whole.
const logPage = 1024

// Load reads what the report on rollout id is drawn from, in one read
// transaction: the rollout with its nodes, its release and the release's
// manifest, and the audit-log entries about the rollout, oldest first.
// An unknown rollout is store.ErrNotFound.
func Load(ctx context.Context, st store.Store, id string) (Input, error) {
	in := Input{}
	err := st.View(ctx, func(tx store.Tx) error {
		ro, err := tx.Rollout(id)
		if err != nil {
			return fmt.Errorf("rollout %q: %w ('cairnctl rollout list' shows the rollouts)", id, err)
		}
		if ro.Nodes, err = tx.RolloutNodes(id); err != nil {
			return fmt.Errorf("rollout %s: nodes: %w", id, err)
		}
		ref := ro.GetRelease()
		rel, err := tx.Release(ref.GetName(), ref.GetVersion())
		if err != nil {
			return fmt.Errorf("rollout %s: release %s@%s: %w", id, ref.GetName(), ref.GetVersion(), err)
		}
		log, err := logAbout(tx, "rollout/"+id)
		if err != nil {
			return fmt.Errorf("rollout %s: audit log: %w", id, err)
		}
		in.Rollout, in.Release, in.Log = ro, rel, log
		return nil
	})
	if err != nil {
		return Input{}, err
	}
	rel := in.Release
	m, err := manifest.Parse(rel.GetManifestYaml(), rel.GetName()+"@"+rel.GetVersion()+".yaml")
	if err != nil {
		return Input{}, fmt.Errorf("release %s@%s: stored manifest: %w", rel.GetName(), rel.GetVersion(), err)
	}
	in.Manifest = m
	return in, nil
}

// logAbout returns the audit-log entries whose object is object, in
// sequence order, reading the log a page at a time.
func logAbout(tx store.Tx, object string) ([]*controllerv1.AuditLogEntry, error) {
	var out []*controllerv1.AuditLogEntry
	for after := uint64(0); ; {
		page, err := tx.LogEntries(after, logPage)
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			if e.GetObject() == object {
				out = append(out, e)
			}
		}
		if len(page) < logPage {
			return out, nil
		}
		after = page[len(page)-1].GetSequence()
	}
}
