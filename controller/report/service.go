package report

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/stamp"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// Config is what a Service needs.
type Config struct {
	Store store.Store
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Location is the time zone reports show times in (default
	// time.Local: the controller's).
	Location *time.Location
}

// Service renders the reports of the rollouts in a store, records each
// one it issues, and confirms the ones it issued.
type Service struct {
	cfg Config
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	return &Service{cfg: cfg}
}

// Issued is a report as the controller hands it out.
type Issued struct {
	Content []byte
	// MIME is the content's type ("text/html; charset=utf-8").
	MIME string
	// Digest is the digest the content carries, recorded as issued.
	Digest string
}

// Issue renders the report on rollout id in format (text when empty),
// for actor, from what the store holds now, and records it as issued
// (IssuedReport) before handing it out.
func (s *Service) Issue(ctx context.Context, actor, id, format string) (*Issued, error) {
	if _, _, err := renderer(format); err != nil {
		return nil, err
	}
	in, err := Load(ctx, s.cfg.Store, id)
	if err != nil {
		return nil, err
	}
	in.GeneratedAt, in.Location = s.cfg.Now(), s.cfg.Location
	content, mime, digest, err := render(in, format)
	if err != nil {
		return nil, err
	}
	rec := &controllerv1.IssuedReport{
		Digest:           digest,
		RolloutId:        id,
		Release:          in.Rollout.GetRelease(),
		Format:           cmp.Or(format, FormatText),
		GeneratedAt:      stamp.Format(in.GeneratedAt),
		GeneratedAtShown: stamp.HumanTime(in.GeneratedAt, in.Location),
		IssuedTo:         actor,
	}
	err = s.cfg.Store.Update(ctx, func(tx store.Tx) error {
		err := tx.PutIssuedReport(rec)
		if errors.Is(err, store.ErrConflict) {
			// The same bytes were issued already (same rollout, format
			// and second): the first record stands for both.
			return nil
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("record the report of rollout %s as issued: %w", id, err)
	}
	return &Issued{Content: content, MIME: mime, Digest: digest}, nil
}

// Confirm returns the record of the report issued with digest;
// store.ErrNotFound when this controller issued none, and ErrMalformed
// when digest is not one.
func (s *Service) Confirm(ctx context.Context, digest string) (*controllerv1.IssuedReport, error) {
	if !digestRE.MatchString(digest) {
		return nil, fmt.Errorf("%w: digest %q is not sha256: and 64 hex digits", ErrMalformed, digest)
	}
	var rec *controllerv1.IssuedReport
	err := s.cfg.Store.View(ctx, func(tx store.Tx) error {
		var err error
		rec, err = tx.IssuedReport(digest)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("this controller issued no report with digest %s: %w", digest, store.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("report %s: %w", digest, err)
	}
	return rec, nil
}
