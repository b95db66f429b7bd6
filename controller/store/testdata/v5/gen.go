// Command gen wrote cairn.db, a schema-version-5 store whose rollouts,
// waves and nodes are in every state that version knew, spelled as the
// strings it stored them as. TestBoltMigrateRolloutStates opens a copy
// and checks that each reads back as its enum.
//
// It ran once, at commit b5ea7aa (the last with string states), as
//
//	go run ./controller/store/testdata/v5/gen.go controller/store/testdata/v5/cairn.db
//
// and does not build against later code: it is kept to say how the file
// was made.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/cairn-ops/cairn/controller/store"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// rollouts: ID → rollout state, its waves' states, its nodes' states.
var rollouts = []struct {
	id, state string
	waves     []string
	nodes     []string
}{
	{"ro-running", "running", []string{"done", "running", "pending"}, []string{"passed", "pre_audit", "deploying", "waiting_confirmation", "post_audit", "pending"}},
	{"ro-paused", "paused", []string{"done", "baking"}, []string{"passed", "passed"}},
	{"ro-halted", "halted", []string{"failed", "pending"}, []string{"failed", "unreachable", "skipped"}},
	{"ro-completed", "completed", []string{"done"}, []string{"passed", "failed"}},
	{"ro-aborted", "aborted", []string{"done", "pending"}, []string{"passed", "aborted"}},
	{"ro-rolling-back", "rolling_back", []string{"done"}, []string{"rolling_back", "rolled_back"}},
	{"ro-rolled-back", "rolled_back", []string{"done"}, []string{"rolled_back"}},
	{"ro-rollback-failed", "rollback_failed", []string{"failed"}, []string{"rollback_failed", "rolled_back"}},
}

func main() {
	st, err := store.OpenBolt(os.Args[1], store.BoltOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer st.Close()
	err = st.Update(context.Background(), func(tx store.Tx) error {
		for i, r := range rollouts {
			ro := &controllerv1.RolloutRecord{
				Id: r.id, State: r.state, Release: &controllerv1.ReleaseRef{Name: "webshop", Version: "2.4.0"},
				CreatedBy: "user:operator", CreatedAt: fmt.Sprintf("2026-11-0%dT10:00:00.000000000Z", i+1),
			}
			for w, ws := range r.waves {
				ro.Waves = append(ro.Waves, &controllerv1.RolloutWave{Index: uint32(w + 1), State: ws})
			}
			if err := tx.PutRollout(ro); err != nil {
				return err
			}
			for n, ns := range r.nodes {
				node := &controllerv1.RolloutNode{RolloutId: r.id, NodeId: fmt.Sprintf("node-%d", n), Hostname: fmt.Sprintf("web%d", n), Wave: 1, State: ns}
				if err := tx.PutRolloutNode(node); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
