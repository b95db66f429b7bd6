package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/controller/notify"
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
upload_sessions_per_user: 2
upload_sessions: 20
upload_bytes_per_user: 3GiB
upload_idle_timeout: 30m
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
				KeepaliveMinTime:      10 * time.Second,
				UploadSessionsPerUser: 2, UploadSessions: 20, UploadBytesPerUser: 3 << 30, UploadIdleTimeout: 30 * time.Minute,
			},
		},
		{
			name: "environment over file",
			file: full,
			env: map[string]string{
				"CAIRN_DATA_DIR": "/from/env", "CAIRN_LISTEN": "0.0.0.0:3000", "CAIRN_METRICS_LISTEN": "127.0.0.1:9100",
				"CAIRN_LOST_AFTER": "15m", "CAIRN_MAX_AUDIT_BYTES": "1048576", "CAIRN_LOG_LEVEL": "WARN",
				"CAIRN_MAX_ARTIFACT_BYTES": "5MiB", "CAIRN_UPLOAD_SESSIONS": "40", "CAIRN_UPLOAD_BYTES": "10GiB",
			},
			want: Config{
				DataDir: "/from/env", Listen: "0.0.0.0:3000", MetricsListen: "127.0.0.1:9100",
				LostAfter: 15 * time.Minute, MaxAuditBytes: 1 << 20, MaxArtifactBytes: 5 << 20, LogLevel: "warn", LogFormat: "text",
				KeepaliveMinTime:      10 * time.Second,
				UploadSessionsPerUser: 2, UploadSessions: 40, UploadBytesPerUser: 3 << 30, UploadBytes: 10 << 30, UploadIdleTimeout: 30 * time.Minute,
			},
		},
		{
			name: "flags over environment",
			file: full,
			env:  map[string]string{"CAIRN_LISTEN": "0.0.0.0:3000", "CAIRN_LOG_LEVEL": "warn"},
			flags: map[string]string{"listen": "127.0.0.1:4000", "log-level": "error", "metrics-listen": "", "log-format": "json", "max-artifact-bytes": "100KiB",
				"upload-sessions-per-user": "1", "upload-bytes-per-user": "4GiB", "upload-bytes": "8GiB", "upload-idle-timeout": "2h"},
			want: Config{
				DataDir: "/from/file", Listen: "127.0.0.1:4000", MetricsListen: "",
				LostAfter: 10 * time.Minute, MaxAuditBytes: 32 << 20, MaxArtifactBytes: 100 << 10, LogLevel: "error", LogFormat: "json",
				KeepaliveMinTime:      10 * time.Second,
				UploadSessionsPerUser: 1, UploadSessions: 20, UploadBytesPerUser: 4 << 30, UploadBytes: 8 << 30, UploadIdleTimeout: 2 * time.Hour,
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
		{name: "no upload sessions", flags: map[string]string{"data-dir": "/d", "upload-sessions-per-user": "0"}, want: "upload_sessions_per_user 0: want at least 1"},
		{name: "upload sessions not a number", env: map[string]string{"CAIRN_UPLOAD_SESSIONS": "many"}, flags: map[string]string{"data-dir": "/d"},
			want: `environment CAIRN_UPLOAD_SESSIONS: invalid number "many"`},
		{name: "total sessions below per user", flags: map[string]string{"data-dir": "/d", "upload-sessions-per-user": "8", "upload-sessions": "4"},
			want: "upload_sessions 4: want at least upload_sessions_per_user (8)"},
		{name: "per-user bytes below the largest artifact", flags: map[string]string{"data-dir": "/d", "max-artifact-bytes": "2GiB", "upload-bytes-per-user": "1GiB"},
			want: "upload_bytes_per_user 1 GiB: want at least max_artifact_bytes (2 GiB)"},
		{name: "total bytes below per user", flags: map[string]string{"data-dir": "/d", "upload-bytes": "2GiB"},
			want: "upload_bytes 2 GiB: want at least upload_bytes_per_user (4 GiB)"},
		{name: "idle timeout too long", flags: map[string]string{"data-dir": "/d", "upload-idle-timeout": "48h"}, want: "upload_idle_timeout 48h0m0s: want between 1m and 24h"},
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

func TestLoadWebhooks(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"hook.secret":     "from-file\n",
		"secrets/b.token": "other-file-secret",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "config.yaml")
	body := `
data_dir: /d
webhooks:
  - url: https://hooks.example.com/cairn
    secret: inline-secret
    events: [rollout.halted, rollout.rolled_back]
  - url: http://127.0.0.1:9000/hook
    secret_file: hook.secret
  - url: https://ops.example.com/in
  - url: https://audit.example.com/in
    secret_file: ` + filepath.Join(dir, "secrets/b.token") + `
    events: []
`
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		want []Webhook
	}{
		{
			name: "file",
			want: []Webhook{
				{URL: "https://hooks.example.com/cairn", Secret: "inline-secret", Events: []string{"rollout.halted", "rollout.rolled_back"}},
				{URL: "http://127.0.0.1:9000/hook", Secret: "from-file"},
				{URL: "https://ops.example.com/in"},
				{URL: "https://audit.example.com/in", Secret: "other-file-secret", Events: []string{}},
			},
		},
		{
			name: "environment over file",
			env:  map[string]string{"CAIRN_WEBHOOK_SECRET_0": "env-0", "CAIRN_WEBHOOK_SECRET_2": "env-2", "CAIRN_WEBHOOK_SECRET_1": "", "CAIRN_WEBHOOK_SECRET_9": "no such hook"},
			want: []Webhook{
				{URL: "https://hooks.example.com/cairn", Secret: "env-0", Events: []string{"rollout.halted", "rollout.rolled_back"}},
				{URL: "http://127.0.0.1:9000/hook", Secret: "from-file"},
				{URL: "https://ops.example.com/in", Secret: "env-2"},
				{URL: "https://audit.example.com/in", Secret: "other-file-secret", Events: []string{}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(Sources{ConfigFile: file, Env: func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got.Webhooks); diff != "" {
				t.Errorf("webhooks (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("NotifyHooks", func(t *testing.T) {
		c := Config{Webhooks: []Webhook{{URL: "https://a.example/x", Secret: "s", Events: []string{"rollout.halted"}}, {URL: "http://b.example/"}}}
		want := []notify.Hook{{URL: "https://a.example/x", Secret: "s", Events: []string{"rollout.halted"}}, {URL: "http://b.example/"}}
		if diff := cmp.Diff(want, c.NotifyHooks()); diff != "" {
			t.Errorf("NotifyHooks (-want +got):\n%s", diff)
		}
	})
}

func TestLoadWebhookErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "empty.secret"), []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		yaml string // after a first line "data_dir: /d"
		want string
	}{
		{"no url", "webhooks:\n  - events: [rollout.halted]\n", "webhooks[0].url: missing"},
		{"ftp url", "webhooks:\n  - url: https://a.example/\n  - url: ftp://b.example/path-token\n", `webhooks[1].url: scheme "ftp": want http or https`},
		{"relative url", "webhooks:\n  - url: /hook\n", `webhooks[0].url: scheme "": want http or https`},
		{"no host", "webhooks:\n  - url: 'https:///hook'\n", "webhooks[0].url: no host"},
		{"unparsable url", "webhooks:\n  - url: \"http://a b.example/%zz\"\n", "webhooks[0].url: not a valid URL"},
		{"unknown event", "webhooks:\n  - url: https://a.example/\n    events: [rollout.halted, rollout.start]\n", `webhooks[0].events: unknown event "rollout.start" (known: rollout.started, rollout.wave_done, rollout.halted, rollout.completed, rollout.rolled_back`},
		{"events not a list", "webhooks:\n  - url: https://a.example/\n    events: rollout.halted\n", "cannot unmarshal"},
		{"unknown webhook key", "webhooks:\n  - url: https://a.example/\n    secrets: x\n", `:4: unknown webhook key "secrets" (known keys: url, secret, secret_file, events)`},
		{"unknown top-level key lists webhooks", "webhook:\n  - url: https://a.example/\n", `:2: unknown key "webhook" (known keys: data_dir,`},
		{"secret and secret_file", "webhooks:\n  - url: https://a.example/\n  - url: https://b.example/\n    secret: x\n    secret_file: y\n", "webhooks[1]: set secret or secret_file, not both"},
		{"missing secret_file", "webhooks:\n  - url: https://a.example/\n    secret_file: nope.secret\n", "webhooks[0].secret_file: read secret: open " + filepath.Join(dir, "nope.secret")},
		{"empty secret_file", "webhooks:\n  - url: https://a.example/\n    secret_file: empty.secret\n", "webhooks[0].secret_file: " + filepath.Join(dir, "empty.secret") + " is empty"},
		{"webhooks not a list", "webhooks: https://a.example/\n", "cannot unmarshal"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, fmt.Sprintf("c%d.yaml", i))
			if err := os.WriteFile(file, []byte("data_dir: /d\n"+tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(Sources{ConfigFile: file})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load: %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "path-token") {
				t.Errorf("error repeats the URL: %v", err)
			}
		})
	}
}

// TestSecretRedacted: however the configuration is printed, logged or
// marshaled, webhook secrets do not show.
func TestSecretRedacted(t *testing.T) {
	const secret = "hunter2-webhook-secret"
	c := Defaults()
	c.DataDir = "/d"
	c.Webhooks = []Webhook{{URL: "https://a.example/", Secret: secret}, {URL: "https://b.example/"}}
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("config", "config", c, "hook", c.Webhooks[0], "secret", c.Webhooks[0].Secret)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("config", "config", c, "hook", c.Webhooks[0], "secret", c.Webhooks[0].Secret)
	marshaled, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c),
		"%s": fmt.Sprintf("%s", c.Webhooks[0].Secret), "%q": fmt.Sprintf("%q", c.Webhooks[0].Secret),
		"slog text": text.String(), "slog json": js.String(), "json": string(marshaled),
	}
	for how, out := range outputs {
		if strings.Contains(out, secret) {
			t.Errorf("%s shows the secret: %s", how, out)
		}
		if !strings.Contains(out, redacted) {
			t.Errorf("%s does not say the secret is redacted: %s", how, out)
		}
	}
	if string(c.Webhooks[0].Secret) != secret {
		t.Error("string(Secret) is not the value")
	}
	if got := fmt.Sprint(c.Webhooks[1].Secret); got != "" {
		t.Errorf("an empty secret prints %q, want nothing", got)
	}
}
