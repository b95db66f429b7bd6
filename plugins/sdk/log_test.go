package sdk_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

func TestNewLoggerWritesHCLogJSON(t *testing.T) {
	var buf bytes.Buffer
	sdk.NewLogger(&buf).With("step", "motd").Warn("slow disk", "path", "/etc/motd")
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v: %s", err, buf.Bytes())
	}
	ts, _ := got["@timestamp"].(string)
	if _, err := time.Parse("2006-01-02T15:04:05.000000Z07:00", ts); err != nil {
		t.Errorf("@timestamp %q is not in hclog's layout: %v", ts, err)
	}
	delete(got, "@timestamp")
	want := map[string]any{"@level": "warn", "@message": "slow disk", "step": "motd", "path": "/etc/motd"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
