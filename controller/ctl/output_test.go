package ctl

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

func TestAgo(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, ts, want string
	}{
		{"empty", "", "never"},
		{"seconds", "2025-06-01T11:59:48Z", "12s ago"},
		{"nanoseconds", "2025-06-01T11:59:47.5Z", "12s ago"},
		{"minutes", "2025-06-01T11:55:00Z", "5m ago"},
		{"hours", "2025-05-31T09:00:00Z", "27h ago"},
		{"days", "2025-05-28T12:00:00Z", "4d ago"},
		{"future", "2025-06-01T12:02:00Z", "in 2m"},
		{"not a time", "yesterday", "yesterday"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ago(now, tt.ts); got != tt.want {
				t.Errorf("ago(%q) = %q, want %q", tt.ts, got, tt.want)
			}
		})
	}
}

// TestNodeTable renders the node table directly, including the cases the
// fake controller does not produce: no hostname, no labels, a revoked node.
func TestNodeTable(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	nodes := []*controllerv1.NodeRecord{
		{Id: "n-1", Hostname: "web1", State: controllerv1.NodeRecord_STATE_CONNECTED, LastSeen: "2025-06-01T11:59:58Z", AgentVersion: "0.3.0", Labels: map[string]string{"z": "1", "a": "2"}, LastAuditId: "x", LastAuditAt: "2025-06-01T10:00:00Z"},
		{Id: "n-2", State: controllerv1.NodeRecord_STATE_REVOKED},
		{Id: "n-3", Hostname: "db1", State: controllerv1.NodeRecord_STATE_DISCONNECTED, LastSeen: "2025-05-20T12:00:00Z", Labels: map[string]string{"tab": "a\tb"}},
	}
	var b bytes.Buffer
	tb := newTable(&b)
	nodeTable(tb, now, nodes)
	if err := tb.flush(); err != nil {
		t.Fatal(err)
	}
	golden(t, "node-table.txt", b.String())
}

func TestFormatCheck(t *testing.T) {
	tests := []struct {
		name, value string
		allowed     []string
		wantErr     bool
		want        string
	}{
		{"table", "table", listFormats, false, "table"},
		{"unknown", "xml", listFormats, true, ""},
		{"md alias", "md", diffFormats, false, "markdown"},
		{"md not allowed", "md", listFormats, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &format{name: tt.value, allowed: tt.allowed}
			err := f.check()
			if (err != nil) != tt.wantErr {
				t.Fatalf("check(%q) = %v, want error %v", tt.value, err, tt.wantErr)
			}
			if err == nil {
				if diff := cmp.Diff(tt.want, f.name); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			}
		})
	}
}
