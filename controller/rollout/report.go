package rollout

import (
	"time"

	"github.com/cairn-ops/cairn/internal/manifest"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// ReportInput is everything a rollout's management report is drawn from.
type ReportInput struct {
	// Rollout with its nodes filled in.
	Rollout *controllerv1.RolloutRecord
	Release *controllerv1.ReleaseRecord
	// Manifest is the release's manifest, parsed (SLA, known errors).
	Manifest *manifest.Manifest
	// Log holds the audit-log entries about the rollout, oldest first.
	Log         []*controllerv1.AuditLogEntry
	GeneratedAt time.Time
}

// RenderReport renders the report as text, json, markdown or html and
// returns it with its MIME type.
func RenderReport(in ReportInput, format string) ([]byte, string, error) {
	panic("not implemented")
}
