package ctl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLoadConfig(t *testing.T) {
	home := t.TempDir()
	dir := filepath.Join(home, ".config", "cairn")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("config.yaml", "controller: file:7443\ntoken: file-token\nca: ca.pem\n", 0o600)
	other := write("other.yaml", "controller: other:7443\n", 0o600)
	bad := write("bad.yaml", "controller: x\ntokn: typo\n", 0o600)
	open := write("open.yaml", "token: t\n", 0o644)
	xdg := t.TempDir()
	if err := os.MkdirAll(filepath.Join(xdg, "cairn"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(xdg, "cairn", "config.yaml"), []byte("controller: xdg:7443\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		env     map[string]string
		flags   globalFlags
		set     []string // flags given on the command line
		want    Config
		wantErr string
		warn    string
	}{
		{
			name: "defaults",
			env:  map[string]string{"HOME": t.TempDir()},
			want: Config{Controller: DefaultController, Timeout: DefaultTimeout},
		},
		{
			name: "file, ca relative to it",
			env:  map[string]string{"HOME": home},
			want: Config{Controller: "file:7443", Token: "file-token", CA: filepath.Join(dir, "ca.pem"), Timeout: DefaultTimeout},
		},
		{
			name: "env over file",
			env:  map[string]string{"HOME": home, "CAIRN_CONTROLLER": "env:7443", "CAIRN_TOKEN": "env-token", "CAIRN_CA": "/env/ca.pem"},
			want: Config{Controller: "env:7443", Token: "env-token", CA: "/env/ca.pem", Timeout: DefaultTimeout},
		},
		{
			name:  "flags over env",
			env:   map[string]string{"HOME": home, "CAIRN_CONTROLLER": "env:7443", "CAIRN_TOKEN": "env-token", "CAIRN_CA": "/env/ca.pem"},
			flags: globalFlags{controller: "flag:7443", token: "flag-token", ca: "/flag/ca.pem", timeout: 5 * time.Second},
			set:   []string{"controller", "token", "ca", "timeout"},
			want:  Config{Controller: "flag:7443", Token: "flag-token", CA: "/flag/ca.pem", Timeout: 5 * time.Second},
		},
		{
			name:  "flag default does not override env",
			env:   map[string]string{"HOME": home, "CAIRN_CONTROLLER": "env:7443"},
			flags: globalFlags{controller: DefaultController},
			want:  Config{Controller: "env:7443", Token: "file-token", CA: filepath.Join(dir, "ca.pem"), Timeout: DefaultTimeout},
		},
		{
			name:  "explicit config file",
			env:   map[string]string{"HOME": home},
			flags: globalFlags{config: other},
			set:   []string{"config"},
			want:  Config{Controller: "other:7443", Timeout: DefaultTimeout},
		},
		{
			name: "XDG_CONFIG_HOME",
			env:  map[string]string{"HOME": home, "XDG_CONFIG_HOME": xdg},
			want: Config{Controller: "xdg:7443", Timeout: DefaultTimeout},
		},
		{
			name:    "explicit config file missing",
			env:     map[string]string{"HOME": home},
			flags:   globalFlags{config: filepath.Join(dir, "nope.yaml")},
			set:     []string{"config"},
			wantErr: "no such file",
		},
		{
			name:    "unknown key",
			env:     map[string]string{"HOME": home},
			flags:   globalFlags{config: bad},
			set:     []string{"config"},
			wantErr: "field tokn not found",
		},
		{
			name:  "token in a readable file",
			env:   map[string]string{"HOME": home},
			flags: globalFlags{config: open},
			set:   []string{"config"},
			want:  Config{Controller: DefaultController, Token: "t", Timeout: DefaultTimeout},
			warn:  "chmod 600",
		},
		{
			name:    "bad timeout",
			env:     map[string]string{"HOME": t.TempDir()},
			flags:   globalFlags{timeout: -time.Second},
			set:     []string{"timeout"},
			wantErr: "give a positive duration",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.flags
			f.changed = func(name string) bool {
				for _, s := range tt.set {
					if s == name {
						return true
					}
				}
				return false
			}
			var warned []string
			got, err := loadConfig(f, func(k string) string { return tt.env[k] }, func(s string) { warned = append(warned, s) })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if tt.warn != "" && (len(warned) != 1 || !strings.Contains(warned[0], tt.warn)) {
				t.Errorf("warnings %q, want one containing %q", warned, tt.warn)
			}
			if tt.warn == "" && len(warned) > 0 {
				t.Errorf("unexpected warnings %q", warned)
			}
		})
	}
}
