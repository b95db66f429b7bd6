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

func TestLineLevel(t *testing.T) {
	for line, want := range map[string]string{
		"Created symlink /etc/systemd/system/multi-user.target.wants/x.service → /lib/systemd/system/x.service.": sdk.LevelInfo,
		"Selecting previously unselected package greeter.":                                                       sdk.LevelInfo,
		"(Reading database ... 12 files and directories currently installed.)":                                   sdk.LevelInfo,
		"no errors found":                    sdk.LevelInfo,
		"Writing 3 warnings to the log file": sdk.LevelInfo,
		"":                                   sdk.LevelInfo,
		"dpkg: warning: files list file for package 'x' missing": sdk.LevelWarn,
		"warning: unit file changed on disk":                     sdk.LevelWarn,
		"W: Some index files failed to download":                 sdk.LevelWarn,
		"E: Unable to locate package x":                          sdk.LevelWarn,
		"[WARN] disk almost full":                                sdk.LevelWarn,
		"ERROR connection refused":                               sdk.LevelWarn,
		"fatal: not a git repository":                            sdk.LevelWarn,
		"dpkg: error processing package x (--configure):":        sdk.LevelWarn,
	} {
		if got := sdk.LineLevel(line); got != want {
			t.Errorf("LineLevel(%q) = %s, want %s", line, got, want)
		}
	}
}
