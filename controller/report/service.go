package report

import (
	"context"
	"time"

	"github.com/cairn-ops/cairn/controller/store"
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

// Service renders the reports of the rollouts in a store.
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
}

// Issue renders the report on rollout id in format (text when empty),
// for actor, from what the store holds now.
func (s *Service) Issue(ctx context.Context, actor, id, format string) (*Issued, error) {
	if _, _, err := renderer(format); err != nil {
		return nil, err
	}
	in, err := Load(ctx, s.cfg.Store, id)
	if err != nil {
		return nil, err
	}
	in.GeneratedAt, in.Location = s.cfg.Now(), s.cfg.Location
	content, mime, err := Render(in, format)
	if err != nil {
		return nil, err
	}
	return &Issued{Content: content, MIME: mime}, nil
}
