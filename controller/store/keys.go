package store

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cairn-ops/cairn/internal/pkgversion"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// Keys shared by the implementations. Several records are listed per node
// in time or version order; both implementations order them by the same
// keys so that they agree exactly.

// checkKey refuses an empty key field or one holding a NUL byte (NUL
// separates a node ID from the rest of an index key).
func checkKey(what, s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%w: %s %q contains a NUL byte", ErrInvalid, what, s)
	}
	return nil
}

// timeKey maps an RFC 3339 timestamp to a number that sorts like the
// instant it names. Comparing the strings would not do: "…:05Z" sorts
// after "…:05.5Z", and RFC3339Nano trims trailing zeros. An empty or
// unparsable timestamp sorts first.
func timeKey(ts string) uint64 {
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return 0
	}
	switch {
	case t.Year() < 1678:
		return 1
	case t.Year() > 2261:
		return ^uint64(0)
	}
	// Flip the sign bit so that negative nanoseconds sort first.
	return uint64(t.UnixNano()) ^ (1 << 63)
}

// nodePrefix is the start of every index key of nodeID.
func nodePrefix(nodeID string) []byte {
	return append([]byte(nodeID), 0)
}

// timeIndexKey is nodeID, NUL, the 8-byte big-endian timeKey of ts, id.
func timeIndexKey(nodeID, ts, id string) []byte {
	k := nodePrefix(nodeID)
	k = binary.BigEndian.AppendUint64(k, timeKey(ts))
	return append(k, id...)
}

// versionKey is nodeID, NUL, the 8-byte big-endian version.
func versionKey(nodeID string, version uint32) []byte {
	return binary.BigEndian.AppendUint64(nodePrefix(nodeID), uint64(version))
}

// seqKey is the 8-byte big-endian sequence.
func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, seq)
}

// Table (bbolt bucket) names.
const (
	tableMeta         = "meta"
	tableEnrollTokens = "enroll_tokens"
	tableNodes        = "nodes"
	tableUsers        = "users"
	tableAPITokens    = "api_tokens"
	tableCommands     = "commands"
	tableNodeCommands = "node_commands"
	tableAudits       = "audits"
	tableNodeAudits   = "node_audits"
	tableBaselines    = "baselines"
	tableServices     = "services"
	tableAuditLog     = "auditlog"
	// Schema version 2.
	tableArtifacts     = "artifacts"
	tableArtifactNames = "artifact_names"
	// Schema version 3.
	tableReleases = "releases"
	// Schema version 4.
	tableRollouts     = "rollouts"
	tableRolloutNodes = "rollout_nodes"
	tableAgentEvents  = "agent_events"
	// Schema version 7.
	tableIssuedReports = "issued_reports"
)

// pairKey is a, NUL, b: rollout nodes by rollout then node, agent events
// by node then ID.
func pairKey(a, b string) []byte {
	return append(append([]byte(a), 0), b...)
}

// sortRollouts orders rollouts by the instant of created_at (timeKey, as
// commands and audits), then ID.
func sortRollouts(recs []*controllerv1.RolloutRecord) {
	slices.SortStableFunc(recs, func(a, b *controllerv1.RolloutRecord) int {
		if c := cmp.Compare(timeKey(a.GetCreatedAt()), timeKey(b.GetCreatedAt())); c != 0 {
			return c
		}
		return strings.Compare(a.GetId(), b.GetId())
	})
}

// releaseKey is name, NUL, version.
func releaseKey(name, version string) []byte {
	return append(append([]byte(name), 0), version...)
}

// sortReleases orders releases by name, then version (Debian ordering,
// pkgversion), then the version string, so that both implementations
// agree exactly.
func sortReleases(recs []*controllerv1.ReleaseRecord) {
	slices.SortStableFunc(recs, func(a, b *controllerv1.ReleaseRecord) int {
		if c := strings.Compare(a.GetName(), b.GetName()); c != 0 {
			return c
		}
		if c := pkgversion.Compare(a.GetVersion(), b.GetVersion()); c != 0 {
			return c
		}
		return strings.Compare(a.GetVersion(), b.GetVersion())
	})
}

// nameIndexKey is name, NUL, digest: artifacts listed by name, then
// digest.
func nameIndexKey(name, digest string) []byte {
	return append(append([]byte(name), 0), digest...)
}

// readableKey replaces a not-found error about a composite key (with its
// NUL separator) by one that names the record as people do.
func readableKey(err error, what, key string) error {
	if errors.Is(err, ErrNotFound) {
		return notFound(what, key)
	}
	return err
}

func notFound(what, key string) error {
	return fmt.Errorf("%s %q: %w", what, key, ErrNotFound)
}

func readOnly(what string) error {
	return fmt.Errorf("put %s: %w", what, ErrReadOnly)
}

// nextSequence checks that got follows last, for baselines and log
// entries.
func nextSequence(what string, last, got uint64) error {
	if got != last+1 {
		return fmt.Errorf("%w: %s %d out of sequence: want %d", ErrConflict, what, got, last+1)
	}
	return nil
}

// checkHead refuses to extend an audit log whose recorded head does not
// match its newest entry: entries were deleted outside the store, and a
// new entry would hide that.
func checkHead(headSeq, lastSeq uint64) error {
	if headSeq != lastSeq {
		return fmt.Errorf("%w: the audit log's head is entry %d but its newest entry is %d: entries were removed outside cairn; run 'cairnctl auditlog verify'", ErrConflict, headSeq, lastSeq)
	}
	return nil
}
