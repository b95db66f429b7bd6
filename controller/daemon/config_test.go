package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLoadPrecedence(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	full := write("full.yaml", `
data_dir: /from/file
listen: 0.0.0.0:1000
metrics_listen: 127.0.0.1:9000
lost_after: 10m
max_audit_bytes: 32MiB
max_artifact_bytes: 2GiB
log_level: debug
keepalive_min_time: 10s
`)
	// DATA/config.yaml is read when no --config is given.
	dataDir := filepath.Join(dir, "data")
	if err := os.Mkdir(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	write("data/config.yaml", "listen: 127.0.0.1:2000\n")
	write("empty.yaml", "")

	withDefaults := func(f func(c *Config)) Config {
		c := Defaults()
		f(&c)
		return c
	}
	tests := []struct {
		name  string
		file  string
		env   map[string]string
		flags map[string]string
		want  Config
	}{
		{
			name:  "defaults",
			flags: map[string]string{"data-dir": "/d"},
			want:  withDefaults(func(c *Config) { c.DataDir = "/d" }),
		},
		{
			name: "file over defaults",
			file: full,
			want: Config{
				DataDir: "/from/file", Listen: "0.0.0.0:1000", MetricsListen: "127.0.0.1:9000",
				LostAfter: 10 * time.Minute, MaxAuditBytes: 32 << 20, MaxArtifactBytes: 2 << 30, LogLevel: "debug", LogFormat: "text",
				KeepaliveMinTime: 10 * time.Second,
			},
		},
		{
			name: "environment over file",
			file: full,
			env: map[string]string{
				"CAIRN_DATA_DIR": "/from/env", "CAIRN_LISTEN": "0.0.0.0:3000", "CAIRN_METRICS_LISTEN": "127.0.0.1:9100",
				"CAIRN_LOST_AFTER": "15m", "CAIRN_MAX_AUDIT_BYTES": "1048576", "CAIRN_LOG_LEVEL": "WARN",
				"CAIRN_MAX_ARTIFACT_BYTES": "5MiB",
			},
			want: Config{
				DataDir: "/from/env", Listen: "0.0.0.0:3000", MetricsListen: "127.0.0.1:9100",
				LostAfter: 15 * time.Minute, MaxAuditBytes: 1 << 20, MaxArtifactBytes: 5 << 20, LogLevel: "warn", LogFormat: "text",
				KeepaliveMinTime: 10 * time.Second,
			},
		},
		{
			name:  "flags over environment",
			file:  full,
			env:   map[string]string{"CAIRN_LISTEN": "0.0.0.0:3000", "CAIRN_LOG_LEVEL": "warn"},
			flags: map[string]string{"listen": "127.0.0.1:4000", "log-level": "error", "metrics-listen": "", "log-format": "json", "max-artifact-bytes": "100KiB"},
			want: Config{
				DataDir: "/from/file", Listen: "127.0.0.1:4000", MetricsListen: "",
				LostAfter: 10 * time.Minute, MaxAuditBytes: 32 << 20, MaxArtifactBytes: 100 << 10, LogLevel: "error", LogFormat: "json",
				KeepaliveMinTime: 10 * time.Second,
			},
		},
		{
			name:  "config.yaml in the data dir from the flag",
			flags: map[string]string{"data-dir": dataDir},
			want:  withDefaults(func(c *Config) { c.DataDir = dataDir; c.Listen = "127.0.0.1:2000" }),
		},
		{
			name: "config.yaml in the data dir from the environment",
			env:  map[string]string{"CAIRN_DATA_DIR": dataDir},
			want: withDefaults(func(c *Config) { c.DataDir = dataDir; c.Listen = "127.0.0.1:2000" }),
		},
		{
			name:  "empty file",
			file:  filepath.Join(dir, "empty.yaml"),
			flags: map[string]string{"data-dir": "/d"},
			want:  withDefaults(func(c *Config) { c.DataDir = "/d" }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(Sources{
				ConfigFile: tt.file,
				Env:        func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok },
				Flags:      tt.flags,
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("listen: 127.0.0.1:1\nlisten_addr: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badValue := filepath.Join(dir, "value.yaml")
	if err := os.WriteFile(badValue, []byte("lost_after: soon\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		file  string
		env   map[string]string
		flags map[string]string
		want  string
	}{
		{name: "unknown key names file and line", file: bad, flags: map[string]string{"data-dir": "/d"}, want: bad + `:2: unknown key "listen_addr"`},
		{name: "bad file value", file: badValue, flags: map[string]string{"data-dir": "/d"}, want: badValue + `: lost_after: invalid duration "soon"`},
		{name: "missing explicit file", file: filepath.Join(dir, "nope.yaml"), want: "no such file"},
		{name: "no data dir", want: "no data dir"},
		{name: "bad env value", env: map[string]string{"CAIRN_MAX_AUDIT_BYTES": "lots"}, flags: map[string]string{"data-dir": "/d"}, want: "environment CAIRN_MAX_AUDIT_BYTES: invalid size"},
		{name: "bad flag value", flags: map[string]string{"data-dir": "/d", "lost-after": "5"}, want: "flag --lost-after: invalid duration"},
		{name: "bad listen", flags: map[string]string{"data-dir": "/d", "listen": "7443"}, want: `listen address "7443": want HOST:PORT`},
		{name: "bad log level", flags: map[string]string{"data-dir": "/d", "log-level": "loud"}, want: `log level "loud"`},
		{name: "lost_after too short", flags: map[string]string{"data-dir": "/d", "lost-after": "1s"}, want: "lost_after 1s is too short"},
		{name: "keepalive above agent ping", flags: map[string]string{"data-dir": "/d", "keepalive-min-time": "1m"}, want: "keepalive_min_time 1m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(Sources{
				ConfigFile: tt.file,
				Env:        func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok },
				Flags:      tt.flags,
			})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
