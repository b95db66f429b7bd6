package rollout

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cairn-ops/cairn/controller/cms"
	"github.com/cairn-ops/cairn/controller/store"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// command reads a command record.
func (e *Engine) command(ctx context.Context, id string) (*controllerv1.CommandRecord, error) {
	var c *controllerv1.CommandRecord
	err := e.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		c, err = tx.Command(id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("command %s: %w", id, err)
	}
	return c, nil
}

// auditRecord reads an audit's record.
func (e *Engine) auditRecord(ctx context.Context, id string) (*controllerv1.AuditRecord, error) {
	if id == "" {
		return nil, fmt.Errorf("no audit ID: %w", store.ErrNotFound)
	}
	var rec *controllerv1.AuditRecord
	err := e.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		rec, err = tx.Audit(id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("audit %s: %w", id, err)
	}
	return rec, nil
}

// loadAudit reads an audit's record and its verified document.
func (e *Engine) loadAudit(ctx context.Context, id string) (*controllerv1.AuditRecord, *inventoryv1.Audit, error) {
	rec, err := e.auditRecord(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if e.cfg.Blobs == nil {
		return nil, nil, errors.New("the controller has no blob directory to read audits from")
	}
	if doc := e.audits.get(id); doc != nil {
		return rec, doc, nil
	}
	doc, err := cms.LoadAudit(e.cfg.Blobs, rec)
	if err != nil {
		return nil, nil, err
	}
	e.audits.put(id, doc)
	return rec, doc, nil
}

// auditCacheSize is how many decoded audits the engine keeps: a node's
// baseline, pre- and post-audit are each read more than once while it
// deploys, and decoding (with every hash checked) is most of the
// controller's work per node.
const auditCacheSize = 128

// auditCache keeps recently decoded audits by ID. Audits are immutable
// (the ID is the document's hash), so an entry never goes stale; users
// must not modify a cached document.
type auditCache struct {
	mu    sync.Mutex
	docs  map[string]*inventoryv1.Audit
	order []string // oldest first
}

func (c *auditCache) get(id string) *inventoryv1.Audit {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.docs[id]
}

func (c *auditCache) put(id string, doc *inventoryv1.Audit) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.docs == nil {
		c.docs = map[string]*inventoryv1.Audit{}
	}
	if _, ok := c.docs[id]; ok {
		return
	}
	if len(c.order) == auditCacheSize {
		delete(c.docs, c.order[0])
		c.order = c.order[1:]
	}
	c.docs[id] = doc
	c.order = append(c.order, id)
}

// latestAudit returns a node's newest audit document, nil when it has
// none.
func (e *Engine) latestAudit(ctx context.Context, nodeID string) (*inventoryv1.Audit, error) {
	var rec *controllerv1.AuditRecord
	err := e.cfg.Store.View(ctx, func(tx store.Tx) error {
		all, err := tx.NodeAudits(nodeID)
		if err != nil || len(all) == 0 {
			return err
		}
		rec = all[len(all)-1]
		return nil
	})
	if err != nil || rec == nil || e.cfg.Blobs == nil {
		return nil, err
	}
	return cms.LoadAudit(e.cfg.Blobs, rec)
}

// latestBaseline returns a node's newest CMS baseline, nil when it has
// none.
func (e *Engine) latestBaseline(ctx context.Context, nodeID string) (*controllerv1.BaselineRecord, error) {
	var b *controllerv1.BaselineRecord
	err := e.cfg.Store.View(ctx, func(tx store.Tx) error {
		all, err := tx.Baselines(nodeID)
		if err != nil || len(all) == 0 {
			return err
		}
		b = all[len(all)-1]
		return nil
	})
	return b, err
}

// commandDuration is how long a finished command took.
func commandDuration(c *controllerv1.CommandRecord) time.Duration {
	a, b := parseStamp(c.GetCreatedAt()), parseStamp(c.GetUpdatedAt())
	if a.IsZero() || b.Before(a) {
		return 0
	}
	return b.Sub(a)
}

// finished reports whether a command has its result.
func finished(c *controllerv1.CommandRecord) bool {
	switch c.GetState() {
	case controllerv1.CommandRecord_STATE_SUCCEEDED, controllerv1.CommandRecord_STATE_FAILED:
		return true
	}
	return false
}
