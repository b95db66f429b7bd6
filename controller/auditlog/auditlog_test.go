package auditlog

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cairn-ops/cairn/controller/store"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// chain appends n entries to a fresh memory store and returns them with
// the store's head.
func chain(t *testing.T, n int) ([]*controllerv1.AuditLogEntry, uint64, string) {
	t.Helper()
	st := store.NewMemory()
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for i := range n {
		err := st.Update(ctx, func(tx store.Tx) error {
			_, err := Append(tx, now.Add(time.Duration(i)*time.Second), "user:admin", "service.create", "service/web",
				map[string]string{"selector": "role=web"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var (
		entries []*controllerv1.AuditLogEntry
		seq     uint64
		hash    string
	)
	err := st.View(ctx, func(tx store.Tx) error {
		var err error
		if entries, err = tx.LogEntries(0, 0); err != nil {
			return err
		}
		seq, hash, err = tx.LogHead()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return entries, seq, hash
}

func TestAppendChains(t *testing.T) {
	entries, seq, hash := chain(t, 3)
	if len(entries) != 3 || seq != 3 || hash != entries[2].GetHash() {
		t.Fatalf("got %d entries, head %d %s", len(entries), seq, hash)
	}
	if entries[0].GetPrevHash() != "" || entries[1].GetPrevHash() != entries[0].GetHash() || entries[2].GetPrevHash() != entries[1].GetHash() {
		t.Error("entries are not linked by their previous hashes")
	}
	if p := Verify(entries, seq, hash); p != nil {
		t.Errorf("intact log: %v", p)
	}
}

func TestVerifyFindsTampering(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(entries []*controllerv1.AuditLogEntry, seq *uint64, hash *string) []*controllerv1.AuditLogEntry
		wantSeq uint64
		wantMsg string
	}{
		{
			name: "edited details",
			tamper: func(e []*controllerv1.AuditLogEntry, _ *uint64, _ *string) []*controllerv1.AuditLogEntry {
				e[1].Details["selector"] = "role=db"
				return e
			},
			wantSeq: 2, wantMsg: "edited",
		},
		{
			name: "edited and rehashed",
			tamper: func(e []*controllerv1.AuditLogEntry, _ *uint64, _ *string) []*controllerv1.AuditLogEntry {
				e[1].Actor = "user:mallory"
				e[1].Hash, _ = Hash(e[1])
				return e
			},
			wantSeq: 3, wantMsg: "previous-hash link broken",
		},
		{
			name: "middle entry deleted",
			tamper: func(e []*controllerv1.AuditLogEntry, _ *uint64, _ *string) []*controllerv1.AuditLogEntry {
				return append(e[:1:1], e[2:]...)
			},
			wantSeq: 2, wantMsg: "missing",
		},
		{
			name: "newest entry deleted",
			tamper: func(e []*controllerv1.AuditLogEntry, _ *uint64, _ *string) []*controllerv1.AuditLogEntry {
				return e[:3]
			},
			wantSeq: 4, wantMsg: "newest entries deleted",
		},
		{
			name: "newest entry deleted and head rewritten",
			tamper: func(e []*controllerv1.AuditLogEntry, seq *uint64, hash *string) []*controllerv1.AuditLogEntry {
				*seq, *hash = 3, "0000"
				return e[:3]
			},
			wantSeq: 3, wantMsg: "head hash",
		},
		{
			name: "entry appended outside the controller",
			tamper: func(e []*controllerv1.AuditLogEntry, _ *uint64, _ *string) []*controllerv1.AuditLogEntry {
				extra := proto.Clone(e[3]).(*controllerv1.AuditLogEntry)
				extra.Sequence, extra.PrevHash = 5, e[3].GetHash()
				extra.Hash, _ = Hash(extra)
				return append(e, extra)
			},
			wantSeq: 5, wantMsg: "appended outside",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, seq, hash := chain(t, 4)
			entries = tt.tamper(entries, &seq, &hash)
			p := Verify(entries, seq, hash)
			if p == nil {
				t.Fatal("tampering not detected")
			}
			if p.Sequence != tt.wantSeq || !strings.Contains(p.Reason, tt.wantMsg) {
				t.Errorf("got %v; want entry %d and %q", p, tt.wantSeq, tt.wantMsg)
			}
		})
	}
}

func TestVerifyEmpty(t *testing.T) {
	if p := Verify(nil, 0, ""); p != nil {
		t.Errorf("empty log: %v", p)
	}
}
