package ctl

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cairn-ops/cairn/internal/readlimit"
)

// Defaults.
const (
	DefaultController = "127.0.0.1:7443"
	DefaultTimeout    = 30 * time.Second
)

// Config is how cairnctl reaches the controller, resolved once per run
// from defaults, the config file, the environment and flags, in that
// order of precedence (later wins).
type Config struct {
	// Controller is the controller's host:port.
	Controller string `yaml:"controller"`
	// Token is the operator's bearer token.
	Token string `yaml:"token"`
	// CA is the path of the controller's CA certificate (PEM). A relative
	// path in the config file is relative to the file's directory.
	CA string `yaml:"ca"`
	// Timeout bounds each call to the controller.
	Timeout time.Duration `yaml:"-"`
}

// globalFlags are the values of the persistent flags as given; a field
// counts only when its flag was set on the command line.
type globalFlags struct {
	config     string
	controller string
	token      string
	ca         string
	timeout    time.Duration
	changed    func(name string) bool
}

// loadConfig resolves the configuration. getenv reads the environment;
// warn reports a problem that is not an error.
func loadConfig(f globalFlags, getenv func(string) string, warn func(string)) (Config, error) {
	cfg := Config{Controller: DefaultController, Timeout: DefaultTimeout}

	path, explicit := f.config, f.changed("config")
	if !explicit {
		path = defaultConfigPath(getenv)
	}
	if path != "" {
		fileCfg, err := readConfigFile(path, warn)
		switch {
		case err == nil:
			if fileCfg.Controller != "" {
				cfg.Controller = fileCfg.Controller
			}
			if fileCfg.Token != "" {
				cfg.Token = fileCfg.Token
			}
			if fileCfg.CA != "" {
				cfg.CA = fileCfg.CA
				if !filepath.IsAbs(cfg.CA) {
					cfg.CA = filepath.Join(filepath.Dir(path), cfg.CA)
				}
			}
		case errors.Is(err, fs.ErrNotExist) && !explicit:
			// The default file is optional.
		default:
			return Config{}, err
		}
	}

	if v := getenv("CAIRN_CONTROLLER"); v != "" {
		cfg.Controller = v
	}
	if v := getenv("CAIRN_TOKEN"); v != "" {
		cfg.Token = v
	}
	if v := getenv("CAIRN_CA"); v != "" {
		cfg.CA = v
	}

	if f.changed("controller") {
		cfg.Controller = f.controller
	}
	if f.changed("token") {
		cfg.Token = f.token
	}
	if f.changed("ca") {
		cfg.CA = f.ca
	}
	if f.changed("timeout") {
		cfg.Timeout = f.timeout
	}

	if cfg.Controller == "" {
		return Config{}, fmt.Errorf("no controller address: pass --controller HOST:PORT or set CAIRN_CONTROLLER")
	}
	if cfg.Timeout <= 0 {
		return Config{}, fmt.Errorf("--timeout %s: give a positive duration, e.g. 30s", cfg.Timeout)
	}
	return cfg, nil
}

// defaultConfigPath is $XDG_CONFIG_HOME/cairn/config.yaml, or
// ~/.config/cairn/config.yaml; empty when neither is known.
func defaultConfigPath(getenv func(string) string) string {
	if dir := getenv("XDG_CONFIG_HOME"); dir != "" {
		return filepath.Join(dir, "cairn", "config.yaml")
	}
	if home := getenv("HOME"); home != "" {
		return filepath.Join(home, ".config", "cairn", "config.yaml")
	}
	return ""
}

// maxConfigBytes bounds the config file: three keys.
const maxConfigBytes = 64 << 10

// readConfigFile reads a YAML config file; unknown keys are errors, so a
// typo does not silently fall back to a default.
func readConfigFile(path string, warn func(string)) (Config, error) {
	data, err := readlimit.Stream(path, "config file", maxConfigBytes)
	if err != nil {
		return Config{}, err
	}
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("config %s: %v: the keys are controller, token and ca", path, err)
	}
	if cfg.Token != "" {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			warn(fmt.Sprintf("config %s holds a token and is readable by others: chmod 600 %s", path, path))
		}
	}
	return cfg, nil
}
