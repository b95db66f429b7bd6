// Command gen wrote cairn.db, a schema-version-7 store whose baselines
// record no tracked paths, as every version before 9 stored them: audit
// commands with track lists, the audits they took (and one taken without
// a command, one whose command is gone), and baselines of those audits.
// TestBoltMigrateBaselineTracked opens a copy and checks the tracked set
// each baseline gets.
//
// It ran once, on branch h12-baselines before migration 9 filled the
// field, as
//
//	go run ./controller/store/testdata/v7/gen.go controller/store/testdata/v7/cairn.db
//
// (tx.PutBaseline stores a baseline as given, without tracked paths, and
// the file's schema_version was then set to 7, the last version main
// wrote). It is kept to say how the file was made.
package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"

	"github.com/cairn-ops/cairn/controller/store"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// baselines: per node, in version order, the audit's command ID ("" for
// an audit without one) and that command's track list (nil: the command
// is not stored).
var baselines = []struct {
	node    string
	command string
	track   []string
}{
	{"n1", "cmd-1", []string{"/etc/a"}},
	{"n1", "cmd-2", []string{"/etc/b"}},
	{"n1", "", nil},
	{"n1", "cmd-4", []string{"/etc/c", "/etc/a"}},
	{"n2", "cmd-gone", nil},
	{"n2", "cmd-6", []string{"/srv/x"}},
	{"n10", "cmd-7", []string{"/opt/y"}},
}

func main() {
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(path string) error {
	st, err := store.OpenBolt(path, store.BoltOptions{})
	if err != nil {
		return err
	}
	err = st.Update(context.Background(), func(tx store.Tx) error {
		versions := map[string]uint32{}
		for i, b := range baselines {
			if versions[b.node] == 0 {
				if err := tx.PutNode(&controllerv1.NodeRecord{Id: b.node, Hostname: "host-" + b.node}); err != nil {
					return err
				}
			}
			versions[b.node]++
			at := fmt.Sprintf("2026-10-0%dT10:00:00.000000000Z", i+1)
			if b.track != nil {
				c := &controllerv1.CommandRecord{Id: b.command, NodeId: b.node, Kind: controllerv1.CommandKindAudit,
					State: controllerv1.CommandRecord_STATE_SUCCEEDED, CreatedBy: "user:operator", CreatedAt: at, Track: b.track}
				if err := tx.PutCommand(c); err != nil {
					return err
				}
			}
			audit := fmt.Sprintf("audit-%d", i+1)
			if err := tx.PutAudit(&controllerv1.AuditRecord{Id: audit, NodeId: b.node, StoredAt: at, CommandId: b.command}); err != nil {
				return err
			}
			if err := tx.PutBaseline(&controllerv1.BaselineRecord{NodeId: b.node, Version: versions[b.node], AuditId: audit,
				AcceptedBy: "user:auditor", AcceptedAt: at, Reason: "fixture"}); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), binary.BigEndian.AppendUint64(nil, 7))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}
