package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cairn-ops/cairn/controller/dml"
	"github.com/cairn-ops/cairn/controller/notify"
	"github.com/cairn-ops/cairn/controller/rollout"
	"github.com/cairn-ops/cairn/internal/bytesize"
	"github.com/cairn-ops/cairn/internal/limits"
	"github.com/cairn-ops/cairn/internal/readlimit"
)

// Config is cairn-controller serve's configuration. It is built once, from
// defaults, then the YAML file, then CAIRN_* environment variables, then
// flags, each overriding the one before, and validated once.
type Config struct {
	// DataDir holds the CA, keys, store and blobs (see the package doc).
	DataDir string
	// Listen is the gRPC address for agents and operators.
	Listen string
	// MetricsListen is the HTTP address for /metrics and /healthz; empty
	// turns it off.
	MetricsListen string
	// LostAfter is how long a node may stay disconnected before it is
	// marked lost.
	LostAfter time.Duration
	// MaxAuditBytes bounds one uploaded audit document.
	MaxAuditBytes int64
	// MaxArtifactBytes bounds one artifact pushed into the DML.
	MaxArtifactBytes int64
	// UploadSessionsPerUser and UploadSessions cap the unfinished artifact
	// pushes one user, and all users together, may hold.
	UploadSessionsPerUser, UploadSessions int
	// UploadBytesPerUser and UploadBytes cap the bytes those unfinished
	// pushes may declare; 0 means 4 and 16 times MaxArtifactBytes.
	UploadBytesPerUser, UploadBytes int64
	// UploadIdleTimeout is how long an unfinished push lives after its
	// last data.
	UploadIdleTimeout time.Duration
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// LogFormat is text or json.
	LogFormat string
	// KeepaliveMinTime is the shortest keepalive ping interval agents may
	// use; pings more frequent than this close the connection.
	KeepaliveMinTime time.Duration
	// Webhooks receive rollout notifications (controller/notify). They
	// are set in the config file only; their secrets may also come from
	// the environment (see Webhook).
	Webhooks []Webhook
}

// Webhook is one receiver of rollout notifications:
//
//	webhooks:
//	  - url: https://hooks.example.com/cairn
//	    secret_file: webhook.secret   # or secret: ...; relative to the config file
//	    events: [rollout.halted, rollout.rolled_back]   # empty or absent: all
type Webhook struct {
	// URL is an http or https URL.
	URL string
	// Secret keys the X-Cairn-Signature HMAC; empty sends none. It comes
	// from secret or secret_file in the file, and CAIRN_WEBHOOK_SECRET_<N>
	// (N: the webhook's 0-based position in the list) overrides both.
	Secret Secret
	// Events are the events sent (rollout.started, rollout.wave_done,
	// rollout.halted, rollout.completed, rollout.rolled_back); empty: all.
	Events []string
}

// Secret is a string that never shows itself: printed, logged or
// marshaled it reads "[redacted]" (or "" when empty). string(s) is the
// value.
type Secret string

const redacted = "[redacted]"

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString is String for %#v.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.String()) }

// LogValue is String for slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText is String for encoding/json, YAML and the like.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// webhookEvents are the events a webhook may ask for.
var webhookEvents = []string{rollout.EventStarted, rollout.EventWaveDone, rollout.EventHalted, rollout.EventCompleted, rollout.EventRolledBack}

// webhookSecretEnv is the environment variable holding webhook i's
// secret.
func webhookSecretEnv(i int) string { return fmt.Sprintf("CAIRN_WEBHOOK_SECRET_%d", i) }

// NotifyHooks returns the webhooks as controller/notify takes them.
func (c Config) NotifyHooks() []notify.Hook {
	var hooks []notify.Hook
	for _, w := range c.Webhooks {
		hooks = append(hooks, notify.Hook{URL: w.URL, Secret: string(w.Secret), Events: slices.Clone(w.Events)})
	}
	return hooks
}

// Defaults returns the configuration before any file, environment or flag.
func Defaults() Config {
	return Config{
		Listen:           "127.0.0.1:7443",
		LostAfter:        5 * time.Minute,
		MaxAuditBytes:    64 << 20,
		MaxArtifactBytes: 1 << 30,
		// The upload byte caps default to multiples of MaxArtifactBytes
		// (UploadLimits), so they follow it.
		UploadSessionsPerUser: limits.DefaultUploadSessionsPerUser,
		UploadSessions:        limits.DefaultUploadSessions,
		UploadIdleTimeout:     limits.DefaultUploadIdle,
		LogLevel:              "info",
		LogFormat:             "text",
		KeepaliveMinTime:      20 * time.Second,
	}
}

// setting is one configuration key: its name in the YAML file, its
// environment variable and flag, and how a string value is applied.
type setting struct {
	key, env, flag string
	set            func(c *Config, v string) error
}

// settings lists every key, in the order help and errors show them.
var settings = []setting{
	{"data_dir", "CAIRN_DATA_DIR", "data-dir", func(c *Config, v string) error { c.DataDir = v; return nil }},
	{"listen", "CAIRN_LISTEN", "listen", func(c *Config, v string) error { c.Listen = v; return nil }},
	{"metrics_listen", "CAIRN_METRICS_LISTEN", "metrics-listen", func(c *Config, v string) error { c.MetricsListen = v; return nil }},
	{"lost_after", "CAIRN_LOST_AFTER", "lost-after", func(c *Config, v string) error { return setDuration(&c.LostAfter, v) }},
	{"max_audit_bytes", "CAIRN_MAX_AUDIT_BYTES", "max-audit-bytes", func(c *Config, v string) error {
		n, err := bytesize.Parse(v)
		if err != nil {
			return err
		}
		c.MaxAuditBytes = int64(n)
		return nil
	}},
	{"max_artifact_bytes", "CAIRN_MAX_ARTIFACT_BYTES", "max-artifact-bytes", func(c *Config, v string) error {
		n, err := bytesize.Parse(v)
		if err != nil {
			return err
		}
		c.MaxArtifactBytes = int64(n)
		return nil
	}},
	{"upload_sessions_per_user", "CAIRN_UPLOAD_SESSIONS_PER_USER", "upload-sessions-per-user", func(c *Config, v string) error {
		return setCount(&c.UploadSessionsPerUser, v)
	}},
	{"upload_sessions", "CAIRN_UPLOAD_SESSIONS", "upload-sessions", func(c *Config, v string) error { return setCount(&c.UploadSessions, v) }},
	{"upload_bytes_per_user", "CAIRN_UPLOAD_BYTES_PER_USER", "upload-bytes-per-user", func(c *Config, v string) error { return setSize(&c.UploadBytesPerUser, v) }},
	{"upload_bytes", "CAIRN_UPLOAD_BYTES", "upload-bytes", func(c *Config, v string) error { return setSize(&c.UploadBytes, v) }},
	{"upload_idle_timeout", "CAIRN_UPLOAD_IDLE_TIMEOUT", "upload-idle-timeout", func(c *Config, v string) error { return setDuration(&c.UploadIdleTimeout, v) }},
	{"log_level", "CAIRN_LOG_LEVEL", "log-level", func(c *Config, v string) error { c.LogLevel = strings.ToLower(v); return nil }},
	{"log_format", "CAIRN_LOG_FORMAT", "log-format", func(c *Config, v string) error { c.LogFormat = strings.ToLower(v); return nil }},
	{"keepalive_min_time", "CAIRN_KEEPALIVE_MIN_TIME", "keepalive-min-time", func(c *Config, v string) error { return setDuration(&c.KeepaliveMinTime, v) }},
}

func setCount(n *int, v string) error {
	x, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return fmt.Errorf("invalid number %q: want a whole number, e.g. 8", v)
	}
	*n = x
	return nil
}

func setSize(n *int64, v string) error {
	x, err := bytesize.Parse(v)
	if err != nil {
		return err
	}
	if x > 1<<62 {
		return fmt.Errorf("size %q is too large", v)
	}
	*n = int64(x)
	return nil
}

func setDuration(d *time.Duration, v string) error {
	x, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("invalid duration %q: want e.g. 30s, 5m, 1h", v)
	}
	*d = x
	return nil
}

// Sources are the inputs Load reads besides the defaults.
type Sources struct {
	// ConfigFile is the --config flag; empty means DATA/config.yaml if it
	// exists, DATA being the data dir from the flags or environment.
	ConfigFile string
	// Env looks up an environment variable (os.LookupEnv in main).
	Env func(string) (string, bool)
	// Flags holds the flags the user set, by flag name (e.g. "listen").
	Flags map[string]string
}

// Limits on the files the configuration is read from. The daemon reads
// regular files only: a named pipe would hold its start.
const (
	maxConfigBytes = 1 << 20
	maxSecretBytes = 64 << 10
)

// Load builds the configuration: defaults, then the file, then the
// environment, then flags, validated once.
func Load(src Sources) (Config, error) {
	c := Defaults()
	env := src.Env
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	path, explicit := src.ConfigFile, src.ConfigFile != ""
	if !explicit {
		dir := src.Flags["data-dir"]
		if dir == "" {
			dir, _ = env("CAIRN_DATA_DIR")
		}
		if dir != "" {
			path = filepath.Join(dir, ConfigFileName)
		}
	}
	if path != "" {
		data, err := readlimit.File(path, "config", maxConfigBytes)
		switch {
		case err == nil:
			if err := loadYAML(&c, path, data); err != nil {
				return Config{}, err
			}
		case explicit || !errors.Is(err, os.ErrNotExist):
			return Config{}, err
		}
	}
	for _, s := range settings {
		if v, ok := env(s.env); ok && v != "" {
			if err := s.set(&c, v); err != nil {
				return Config{}, fmt.Errorf("environment %s: %w", s.env, err)
			}
		}
	}
	for i := range c.Webhooks {
		if v, ok := env(webhookSecretEnv(i)); ok && v != "" {
			c.Webhooks[i].Secret = Secret(v)
		}
	}
	for _, s := range settings {
		if v, ok := src.Flags[s.flag]; ok {
			if err := s.set(&c, v); err != nil {
				return Config{}, fmt.Errorf("flag --%s: %w", s.flag, err)
			}
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// fileConfig is the YAML file's shape. Values are strings so that
// durations ("5m") and sizes ("64MiB") read the same as in the
// environment and on the command line.
type fileConfig struct {
	DataDir               *string       `yaml:"data_dir"`
	Listen                *string       `yaml:"listen"`
	MetricsListen         *string       `yaml:"metrics_listen"`
	LostAfter             *string       `yaml:"lost_after"`
	MaxAuditBytes         *string       `yaml:"max_audit_bytes"`
	MaxArtifactBytes      *string       `yaml:"max_artifact_bytes"`
	UploadSessionsPerUser *string       `yaml:"upload_sessions_per_user"`
	UploadSessions        *string       `yaml:"upload_sessions"`
	UploadBytesPerUser    *string       `yaml:"upload_bytes_per_user"`
	UploadBytes           *string       `yaml:"upload_bytes"`
	UploadIdleTimeout     *string       `yaml:"upload_idle_timeout"`
	LogLevel              *string       `yaml:"log_level"`
	LogFormat             *string       `yaml:"log_format"`
	KeepaliveMinTime      *string       `yaml:"keepalive_min_time"`
	Webhooks              []fileWebhook `yaml:"webhooks"`
}

// fileWebhook is a webhook in the YAML file.
type fileWebhook struct {
	URL        string   `yaml:"url"`
	Secret     string   `yaml:"secret"`
	SecretFile string   `yaml:"secret_file"`
	Events     []string `yaml:"events"`
}

var webhookKeys = []string{"url", "secret", "secret_file", "events"}

func (f *fileConfig) values() map[string]*string {
	return map[string]*string{
		"data_dir": f.DataDir, "listen": f.Listen, "metrics_listen": f.MetricsListen,
		"lost_after": f.LostAfter, "max_audit_bytes": f.MaxAuditBytes, "max_artifact_bytes": f.MaxArtifactBytes, "log_level": f.LogLevel,
		"upload_sessions_per_user": f.UploadSessionsPerUser, "upload_sessions": f.UploadSessions,
		"upload_bytes_per_user": f.UploadBytesPerUser, "upload_bytes": f.UploadBytes, "upload_idle_timeout": f.UploadIdleTimeout,
		"log_format": f.LogFormat, "keepalive_min_time": f.KeepaliveMinTime,
	}
}

var unknownField = regexp.MustCompile(`^line (\d+): field (\S+) not found in type (\S+)$`)

// loadYAML applies a config file. Unknown keys are errors naming the file
// and line.
func loadYAML(c *Config, path string, data []byte) error {
	var f fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			msgs := make([]string, len(te.Errors))
			for i, m := range te.Errors {
				if g := unknownField.FindStringSubmatch(m); g != nil {
					what, known := "key", keys()
					if strings.HasSuffix(g[3], "fileWebhook") {
						what, known = "webhook key", webhookKeys
					}
					m = fmt.Sprintf("line %s: unknown %s %q (known keys: %s)", g[1], what, g[2], strings.Join(known, ", "))
				}
				msgs[i] = fmt.Sprintf("%s:%s", path, strings.TrimPrefix(m, "line "))
			}
			return errors.New(strings.Join(msgs, "; "))
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	vals := f.values()
	for _, s := range settings {
		if v := vals[s.key]; v != nil {
			if err := s.set(c, *v); err != nil {
				return fmt.Errorf("%s: %s: %w", path, s.key, err)
			}
		}
	}
	for i, w := range f.Webhooks {
		secret := w.Secret
		if w.SecretFile != "" {
			if w.Secret != "" {
				return fmt.Errorf("%s: webhooks[%d]: set secret or secret_file, not both", path, i)
			}
			var err error
			if secret, err = readSecretFile(filepath.Dir(path), w.SecretFile); err != nil {
				return fmt.Errorf("%s: webhooks[%d].secret_file: %w", path, i, err)
			}
		}
		c.Webhooks = append(c.Webhooks, Webhook{URL: w.URL, Secret: Secret(secret), Events: w.Events})
	}
	return nil
}

// readSecretFile reads a secret from a file, relative to dir unless
// absolute, without its trailing newline.
func readSecretFile(dir, name string) (string, error) {
	if !filepath.IsAbs(name) {
		name = filepath.Join(dir, name)
	}
	data, err := readlimit.File(name, "secret", maxSecretBytes)
	if err != nil {
		return "", err
	}
	secret := strings.TrimRight(string(data), "\r\n")
	if secret == "" {
		return "", fmt.Errorf("%s is empty", name)
	}
	return secret, nil
}

func keys() []string {
	k := make([]string, len(settings), len(settings)+1)
	for i, s := range settings {
		k[i] = s.key
	}
	return append(k, "webhooks")
}

// logLevels maps LogLevel values to slog levels.
var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError,
}

// Validate reports the first setting that cannot work, saying how to fix it.
func (c Config) Validate() error {
	switch {
	case c.DataDir == "":
		return errors.New("no data dir: set --data-dir, CAIRN_DATA_DIR or data_dir in the config file")
	case c.Listen == "":
		return errors.New("no listen address: set --listen, e.g. 127.0.0.1:7443")
	}
	if err := checkAddr(c.Listen); err != nil {
		return fmt.Errorf("listen address %q: %w", c.Listen, err)
	}
	if c.MetricsListen != "" {
		if err := checkAddr(c.MetricsListen); err != nil {
			return fmt.Errorf("metrics listen address %q: %w", c.MetricsListen, err)
		}
	}
	if _, ok := logLevels[c.LogLevel]; !ok {
		return fmt.Errorf("log level %q: want one of debug, info, warn, error", c.LogLevel)
	}
	if !slices.Contains([]string{"text", "json"}, c.LogFormat) {
		return fmt.Errorf("log format %q: want text or json", c.LogFormat)
	}
	switch {
	case c.LostAfter < 10*time.Second:
		return fmt.Errorf("lost_after %s is too short: at least 10s (the default is 5m)", c.LostAfter)
	case c.MaxAuditBytes < 1<<10 || c.MaxAuditBytes > 1<<30:
		return fmt.Errorf("max_audit_bytes %d: want between 1KiB and 1GiB (the default is 64MiB)", c.MaxAuditBytes)
	case c.MaxArtifactBytes < 1 || c.MaxArtifactBytes > 1<<40:
		return fmt.Errorf("max_artifact_bytes %d: want between 1B and 1TiB (the default is 1GiB)", c.MaxArtifactBytes)
	case c.KeepaliveMinTime < time.Second || c.KeepaliveMinTime > 30*time.Second:
		// Agents ping every 30 s; a longer minimum would cut them off.
		return fmt.Errorf("keepalive_min_time %s: want between 1s and 30s, the agents' ping interval (the default is 20s)", c.KeepaliveMinTime)
	}
	if err := c.validateUploads(); err != nil {
		return err
	}
	for i, w := range c.Webhooks {
		if err := w.validate(); err != nil {
			return fmt.Errorf("webhooks[%d].%w", i, err)
		}
	}
	return nil
}

// UploadLimits are the DML's caps on unfinished pushes, with the byte
// caps' defaults filled in from MaxArtifactBytes.
func (c Config) UploadLimits() dml.SessionLimits {
	l := dml.SessionLimits{
		PerUser: c.UploadSessionsPerUser, Total: c.UploadSessions,
		BytesPerUser: c.UploadBytesPerUser, Bytes: c.UploadBytes, Idle: c.UploadIdleTimeout,
	}
	if l.BytesPerUser == 0 {
		l.BytesPerUser = limits.UploadBytesPerUserArtifacts * c.MaxArtifactBytes
	}
	if l.Bytes == 0 {
		l.Bytes = limits.UploadBytesArtifacts * c.MaxArtifactBytes
	}
	return l
}

// validateUploads checks the caps on unfinished pushes: each at least
// one push of the largest artifact, the totals at least the per-user
// ones.
func (c Config) validateUploads() error {
	l := c.UploadLimits()
	size := func(n int64) string { return bytesize.Format(uint64(n)) }
	switch {
	case l.PerUser < 1:
		return fmt.Errorf("upload_sessions_per_user %d: want at least 1 (the default is %d)", l.PerUser, limits.DefaultUploadSessionsPerUser)
	case l.Total < l.PerUser:
		return fmt.Errorf("upload_sessions %d: want at least upload_sessions_per_user (%d); the default is %d", l.Total, l.PerUser, limits.DefaultUploadSessions)
	case l.BytesPerUser < c.MaxArtifactBytes:
		return fmt.Errorf("upload_bytes_per_user %s: want at least max_artifact_bytes (%s), or the largest artifact could never be pushed; the default is %d times max_artifact_bytes",
			size(l.BytesPerUser), size(c.MaxArtifactBytes), limits.UploadBytesPerUserArtifacts)
	case l.Bytes < l.BytesPerUser:
		return fmt.Errorf("upload_bytes %s: want at least upload_bytes_per_user (%s); the default is %d times max_artifact_bytes",
			size(l.Bytes), size(l.BytesPerUser), limits.UploadBytesArtifacts)
	case l.Idle < time.Minute || l.Idle > 24*time.Hour:
		return fmt.Errorf("upload_idle_timeout %s: want between 1m and 24h (the default is %s)", l.Idle, limits.DefaultUploadIdle)
	}
	return nil
}

// validate checks a webhook. Its errors start with the field's name, and
// never repeat the URL or the secret (a URL's path is often a
// credential).
func (w Webhook) validate() error {
	if w.URL == "" {
		return errors.New("url: missing; want an http or https URL")
	}
	u, err := url.Parse(w.URL)
	switch {
	case err != nil:
		return errors.New("url: not a valid URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("url: scheme %q: want http or https", u.Scheme)
	case u.Host == "":
		return errors.New("url: no host")
	}
	for _, e := range w.Events {
		if !slices.Contains(webhookEvents, e) {
			return fmt.Errorf("events: unknown event %q (known: %s; none means all)", e, strings.Join(webhookEvents, ", "))
		}
	}
	return nil
}

func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want HOST:PORT: %w", err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}
