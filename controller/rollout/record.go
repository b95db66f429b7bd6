package rollout

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// actorSystem is the audit-log actor of what the engine does by itself.
const actorSystem = "system"

// object names a rollout in the audit log.
func object(id string) string { return "rollout/" + id }

// parseStamp reads a stamp; the zero time when s is empty or malformed.
func parseStamp(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// newID returns prefix and n random bytes in hex.
func newID(prefix string, n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return prefix + hex.EncodeToString(b)
}

func plainCounts(c *controllerv1.RolloutCounts) Counts {
	return Counts{
		Nodes: c.GetNodes(), Pending: c.GetPending(), Running: c.GetRunning(), Passed: c.GetPassed(),
		Failed: c.GetFailed(), Unreachable: c.GetUnreachable(), Skipped: c.GetSkipped(), RolledBack: c.GetRolledBack(),
		RollbackFailed: c.GetRollbackFailed(), Aborted: c.GetAborted(), Interrupted: c.GetInterrupted(), Resolved: c.GetResolved(),
	}
}

// sortForDisplay orders nodes by wave, then hostname, then ID.
func sortForDisplay(nodes []*controllerv1.RolloutNode) {
	slices.SortStableFunc(nodes, func(a, b *controllerv1.RolloutNode) int {
		return cmp.Or(cmp.Compare(a.GetWave(), b.GetWave()), cmp.Compare(a.GetHostname(), b.GetHostname()), cmp.Compare(a.GetNodeId(), b.GetNodeId()))
	})
}

// nameList is up to limit names joined with ", ", and how many more.
func nameList(names []string, limit int) string {
	if len(names) <= limit {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:limit], ", "), len(names)-limit)
}

// plural is "1 node" or "2 nodes".
func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// joinErr joins non-empty messages with "; ".
func joinErr(msgs ...string) string {
	var out []string
	for _, m := range msgs {
		if m != "" {
			out = append(out, m)
		}
	}
	return strings.Join(out, "; ")
}
