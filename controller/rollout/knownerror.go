package rollout

import (
	"github.com/cairn-ops/cairn/internal/compare"
	"github.com/cairn-ops/cairn/internal/manifest"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// knownErrorResolved is the status of a known error that no longer
// affects anyone.
const knownErrorResolved = "resolved"

// matchKnownErrors returns "ID: summary" of each known error that is not
// resolved and whose signature matches the audit (internal/compare's
// MatchSignature). An error without a signature matches no node: it is
// shown with the release instead.
func matchKnownErrors(kes []manifest.KnownError, a *inventoryv1.Audit) []string {
	if a == nil {
		return nil
	}
	var out []string
	for _, ke := range kes {
		if ke.Status == knownErrorResolved {
			continue
		}
		if ok, _ := compare.MatchSignature(a, ke.Signature); ok {
			out = append(out, ke.ID+": "+ke.Summary)
		}
	}
	return out
}
