package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/internal/audit"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// result is what one cairnctl run printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

// run runs cairnctl against f with the admin token, the fake's CA and
// address in the environment, overridden by env (an empty value unsets),
// and a HOME without a config file.
func (f *fake) run(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	return f.runCtx(t, context.Background(), env, stdin, args...)
}

// runCtx is run with a context, which a test may cancel as an interrupt.
func (f *fake) runCtx(t *testing.T, ctx context.Context, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	vars := map[string]string{
		"CAIRN_CONTROLLER": f.addr,
		"CAIRN_CA":         f.caPath,
		"CAIRN_TOKEN":      adminToken,
		"HOME":             t.TempDir(),
	}
	for k, v := range env {
		vars[k] = v
	}
	var out, errOut bytes.Buffer
	a := &app{
		in:           strings.NewReader(stdin),
		out:          &out,
		errOut:       &errOut,
		getenv:       func(k string) string { return vars[k] },
		now:          func() time.Time { return testNow },
		pollInterval: 5 * time.Millisecond,
	}
	code := a.execute(ctx, args)
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}

// golden compares got with testdata/NAME, or rewrites it when
// UPDATE_GOLDEN=1.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with UPDATE_GOLDEN=1 to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got), UPDATE_GOLDEN=1 rewrites it:\n%s", path, diff)
	}
}

// TestCommands runs each command against the fake controller and checks
// exit code, output and the request the controller received.
func TestCommands(t *testing.T) {
	f := startFake(t)
	importFile := filepath.Join(t.TempDir(), "cis.json")
	if err := os.WriteFile(importFile, []byte(`{"nodes":[{"id":"n-web1","labels":{"role":"web"}},{"id":"n-gone"}],"services":[{"name":"billing","selector":{"app":"billing"}}],"baselines":[{"node_id":"n-web1","version":1}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	badFile := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(badFile, []byte(`{"nodes": [`), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		args  []string
		stdin string
		env   map[string]string
		setup func()
		code  int
		// golden names a testdata file holding the expected stdout.
		golden string
		// out and errOut are substrings expected in stdout and stderr.
		out, errOut []string
		// req is the last request the controller should have received.
		req proto.Message
	}{
		{name: "node list", args: []string{"node", "list"}, golden: "node-list.txt", req: &controllerv1.ListNodesRequest{}},
		{name: "node list json", args: []string{"node", "list", "-o", "json"}, golden: "node-list.json"},
		{name: "node list yaml", args: []string{"node", "list", "-o", "yaml"}, golden: "node-list.yaml"},
		{
			name: "node list selector", args: []string{"node", "list", "--selector", "env=prod,role=web"},
			out: []string{"n-web1"}, req: &controllerv1.ListNodesRequest{Selector: map[string]string{"env": "prod", "role": "web"}},
		},
		{name: "node list bad selector", args: []string{"node", "list", "--selector", "env"}, code: ExitUsage, errOut: []string{`cairnctl: --selector "env": want key=value`}},
		{name: "node list bad format", args: []string{"node", "list", "-o", "xml"}, code: ExitUsage, errOut: []string{`unknown output format "xml": use table, json or yaml`}},
		{name: "node show", args: []string{"node", "show", "web1"}, golden: "node-show.txt", req: &controllerv1.GetNodeRequest{Node: "web1"}},
		{name: "node show unknown", args: []string{"node", "show", "nope"}, code: ExitFailed, errOut: []string{`cairnctl: show node nope: node "nope" not found`}},
		{name: "node show no arg", args: []string{"node", "show"}, code: ExitUsage, errOut: []string{"cairnctl node show needs NODE (got 0 arguments)"}},
		{
			name: "node label", args: []string{"node", "label", "web1", "tier=front", "role="},
			out: []string{"node n-web1 (web1) labels: env=prod,tier=front"},
			req: &controllerv1.LabelNodeRequest{Node: "web1", Set: map[string]string{"tier": "front", "role": ""}},
		},
		{name: "node label bad pair", args: []string{"node", "label", "web1", "tier"}, code: ExitUsage, errOut: []string{`label "tier": want key=value`}},
		{name: "node label no pairs", args: []string{"node", "label", "web1"}, code: ExitUsage},
		{
			name: "node revoke", args: []string{"node", "revoke", "db1", "--reason", "decommissioned"},
			out: []string{"node n-db1 (db1) revoked"}, req: &controllerv1.RevokeNodeRequest{Node: "db1", Reason: "decommissioned"},
		},
		{
			name: "enroll-token create", args: []string{"enroll-token", "create", "--ttl", "1h", "--uses", "3", "--labels", "env=prod", "--labels", "role=web"},
			out: []string{"cairn_e_join-me", "cairn-agent run --controller " + f.addr + " --token cairn_e_join-me --ca ca.pem --data-dir /var/lib/cairn-agent", "3 use(s)"},
			req: &controllerv1.CreateEnrollTokenRequest{TtlSeconds: 3600, Uses: 3, Labels: map[string]string{"env": "prod", "role": "web"}},
		},
		{name: "enroll-token ttl too long", args: []string{"enroll-token", "create", "--ttl", "48h"}, code: ExitUsage, errOut: []string{"--ttl 48h0m0s"}},
		{name: "enroll-token too many uses", args: []string{"enroll-token", "create", "--uses", "10001"}, code: ExitUsage, errOut: []string{"--uses 10001: at most 10000"}},
		{name: "enroll-token json", args: []string{"enroll-token", "create", "-o", "json"}, out: []string{`"token": "cairn_e_join-me"`}},
		{
			name: "audit run wait", args: []string{"audit", "run", "--node", "web1", "--wait", "--collectors", "packages,os", "--track", "/etc/nginx"},
			out: []string{"web1: acknowledged (0/1 done)", "web1: succeeded, audit " + f.auditB + " (1/1 done)", "cmd-n-web1  web1  n-web1   succeeded"},
		},
		{
			name: "audit run request", args: []string{"audit", "run", "--node", "web1", "--collectors", "packages,os", "--track", "/etc/nginx"},
			out: []string{"cmd-n-web1  web1  n-web1   pending"},
			req: &controllerv1.RunAuditRequest{Node: "web1", Collectors: []string{"packages", "os"}, Track: []string{"/etc/nginx"}},
		},
		{
			name: "audit run selector one fails", args: []string{"audit", "run", "--selector", "env=prod", "--wait"},
			code: ExitFailed, out: []string{"db1: failed: collector packages: dpkg status unreadable", "web1: succeeded"},
			errOut: []string{"cairnctl: audit failed on 1 of 2 nodes (db1: collector packages: dpkg status unreadable)"},
		},
		{
			name: "audit run wait json", args: []string{"audit", "run", "--node", "web1", "--wait", "-o", "json"},
			out: []string{`"state": "STATE_SUCCEEDED"`}, errOut: []string{"web1: succeeded"},
		},
		{
			name: "audit run wait timeout", args: []string{"audit", "run", "--node", "offline", "--wait", "--wait-timeout", "50ms"},
			code: ExitFailed, errOut: []string{"cairnctl: gave up after 50ms waiting for 1 of 1 audits (n-offline)"},
		},
		{name: "audit run no target", args: []string{"audit", "run"}, code: ExitUsage, errOut: []string{"give either --node NODE or --selector k=v,..."}},
		{name: "audit run both targets", args: []string{"audit", "run", "--node", "a", "--selector", "b=c"}, code: ExitUsage},
		{name: "audit run selector matches nothing", args: []string{"audit", "run", "--selector", "env=none"}, code: ExitFailed, errOut: []string{"no node matches --selector env=none"}},
		{name: "audit list", args: []string{"audit", "list", "web1"}, golden: "audit-list.txt", req: &controllerv1.ListAuditsRequest{Node: "web1"}},
		{name: "audit show text", args: []string{"audit", "show", f.auditB, "--summary"}, out: []string{"audit of / (host web1)", "[packages]"}},
		{name: "audit show tampered", args: []string{"audit", "show", "tampered"}, code: ExitFailed, errOut: []string{"cairnctl: audit tampered does not verify"}},
		{name: "audit show summary json", args: []string{"audit", "show", "x", "--summary", "-o", "json"}, code: ExitUsage},
		{name: "audit diff text", args: []string{"audit", "diff", f.auditA, f.auditB}, golden: "audit-diff.txt"},
		{name: "audit diff markdown", args: []string{"audit", "diff", f.auditA, f.auditB, "-o", "markdown"}, out: []string{"# Audit diff: web1", "nginx"}},
		{name: "audit diff html", args: []string{"audit", "diff", f.auditA, f.auditB, "-o", "html"}, out: []string{"<!DOCTYPE html>", "nginx"}},
		{name: "audit diff one arg", args: []string{"audit", "diff", f.auditA}, code: ExitUsage, errOut: []string{"needs ID_A ID_B (got 1 arguments)"}},
		{name: "audit diff missing", args: []string{"audit", "diff", f.auditA, "nope"}, code: ExitFailed, errOut: []string{"cairnctl: get audit nope: audit nope not found"}},
		{
			name: "cms baseline accept", args: []string{"cms", "baseline", "accept", "web1", "--reason", "CHG-1"},
			out: []string{"node web1 baseline version 2: audit " + f.auditB}, req: &controllerv1.AcceptBaselineRequest{Node: "web1", Reason: "CHG-1"},
		},
		{name: "cms baseline accept no reason", args: []string{"cms", "baseline", "accept", "web1"}, code: ExitUsage, errOut: []string{"--reason is required"}},
		{name: "cms history", args: []string{"cms", "history", "web1"}, golden: "cms-history.txt"},
		{name: "cms show", args: []string{"cms", "show", "web1"}, golden: "cms-show.txt"},
		{name: "cms show no baseline", args: []string{"cms", "show", "db1"}, out: []string{"no baseline: accept one with 'cairnctl cms baseline accept db1 --reason TEXT'", "no audit yet"}},
		{name: "cms show json", args: []string{"cms", "show", "web1", "-o", "json"}, out: []string{`"drift": "1 package added"`, `"version": 1`}},
		{name: "cms drift text", args: []string{"cms", "drift"}, golden: "cms-drift.txt", req: &controllerv1.DriftRequest{}},
		{name: "cms drift markdown", args: []string{"cms", "drift", "--service", "shop", "-o", "md"}, golden: "cms-drift.md", req: &controllerv1.DriftRequest{Service: "shop"}},
		{name: "cms drift html", args: []string{"cms", "drift", "-o", "html"}, golden: "cms-drift.html"},
		{name: "cms drift json", args: []string{"cms", "drift", "-o", "json"}, out: []string{`"nodes_drifted": 1`, `"summary": "1 package added"`, `"op": "added"`,
			`"total_paths_not_compared": 1`, `"paths_not_compared": 1`, `"tracked_by": "after"`}},
		{name: "cms history json", args: []string{"cms", "history", "web1", "-o", "json"}, out: []string{`"tracked": [`, `"/etc/ssh/sshd_config"`, `"untracked": [`}},
		{name: "cms drift both filters", args: []string{"cms", "drift", "--service", "shop", "--selector", "a=b"}, code: ExitUsage},
		{name: "cms drift unknown service", args: []string{"cms", "drift", "--service", "nope"}, code: ExitFailed, errOut: []string{`cairnctl: drift: service "nope" not found`}},
		{name: "cms export", args: []string{"cms", "export", "-o", "json"}, out: []string{`"services": [`, `"baselines": [`}},
		{
			name: "cms import", args: []string{"cms", "import", importFile},
			out:    []string{"1 node(s) updated, 1 service(s) created", "skipped: node n-gone: not enrolled"},
			errOut: []string{"1 baseline(s) in " + importFile + " not imported"},
		},
		{name: "cms import stdin", args: []string{"cms", "import", "-"}, stdin: `{"services":[{"name":"x"}]}`, out: []string{"imported -: 0 node(s) updated, 1 service(s) created"}},
		{name: "cms import malformed", args: []string{"cms", "import", badFile}, code: ExitUsage, errOut: []string{"cairnctl: import " + badFile + ": ", "give the JSON written by 'cairnctl cms export -o json'"}},
		{name: "cms import missing", args: []string{"cms", "import", "/nonexistent.json"}, code: ExitUsage, errOut: []string{"no such file"}},
		{
			name: "service create", args: []string{"service", "create", "web", "--selector", "role=web", "--description", "web tier"},
			out: []string{"service web created: selector role=web"},
			req: &controllerv1.CreateServiceRequest{Name: "web", Selector: map[string]string{"role": "web"}, Description: "web tier"},
		},
		{name: "service create exists", args: []string{"service", "create", "shop", "--selector", "a=b"}, code: ExitFailed, errOut: []string{`create service shop: service "shop" exists`}},
		{name: "service create no selector", args: []string{"service", "create", "web"}, code: ExitUsage, errOut: []string{"--selector is required"}},
		{name: "service list", args: []string{"service", "list"}, golden: "service-list.txt"},
		{name: "service delete", args: []string{"service", "delete", "shop"}, out: []string{"service shop deleted"}, req: &controllerv1.DeleteServiceRequest{Name: "shop"}},
		{
			name: "user create", args: []string{"user", "create", "bob", "--role", "tester,approver"},
			out: []string{"user bob created with roles tester,approver"}, req: &controllerv1.CreateUserRequest{Name: "bob", Roles: []string{"tester", "approver"}},
		},
		{name: "user create bad role", args: []string{"user", "create", "bob", "--role", "root"}, code: ExitUsage, errOut: []string{`create user bob: unknown role "root"`}},
		{name: "user list", args: []string{"user", "list"}, golden: "user-list.txt"},
		{name: "token create", args: []string{"token", "create", "--user", "alice"}, golden: "token-create.txt", errOut: []string{"token tok-7 for user alice, expires never; shown once", "issued by admin: what alice does with it counts for separation of duties"}},
		{name: "token create no user", args: []string{"token", "create"}, code: ExitUsage},
		{name: "token ttl over 400 days", args: []string{"token", "create", "--user", "alice", "--ttl", "9601h"}, code: ExitUsage,
			errOut: []string{"--ttl 9601h0m0s: at most 9600h0m0s (400 days)"}},
		{
			name: "token create expires", args: []string{"token", "create", "--user", "alice", "--expires", "2025-12-31T23:59:59Z"},
			req: &controllerv1.CreateTokenRequest{User: "alice", ExpiresAt: "2025-12-31T23:59:59Z"},
		},
		{name: "token create ttl and expires", args: []string{"token", "create", "--user", "alice", "--ttl", "1h", "--expires", "2025-12-31T23:59:59Z"}, code: ExitUsage,
			errOut: []string{"--ttl and --expires: give one of them"}},
		{name: "token create bad expires", args: []string{"token", "create", "--user", "alice", "--expires", "tomorrow"}, code: ExitUsage,
			errOut: []string{`--expires "tomorrow": want an RFC 3339 time`}},
		{name: "token list", args: []string{"token", "list"}, golden: "token-list.txt", req: &controllerv1.ListTokensRequest{}},
		{name: "token list user json", args: []string{"token", "list", "--user", "bob", "-o", "json"}, out: []string{`"state": "STATE_USER_DISABLED"`}, req: &controllerv1.ListTokensRequest{User: "bob"}},
		{
			name: "token revoke", args: []string{"token", "revoke", "tok-7"}, out: []string{"token tok-7 of user alice revoked: refused from its next call on"},
			req: &controllerv1.RevokeTokenRequest{Ids: []string{"tok-7"}},
		},
		{name: "token revoke again", args: []string{"token", "revoke", "tok-old"}, out: []string{"no token revoked: each was revoked before"}},
		{name: "token revoke unknown", args: []string{"token", "revoke", "tok-7", "tok-nope"}, code: ExitFailed, errOut: []string{"cairnctl: revoke token tok-7, tok-nope: token tok-nope: not found: nothing was revoked"}},
		{
			name: "token revoke user", args: []string{"token", "revoke", "--user", "alice"}, out: []string{"token tok-7 of user alice revoked", "token tok-8 of user alice revoked"},
			req: &controllerv1.RevokeTokenRequest{User: "alice"},
		},
		{name: "token revoke nothing", args: []string{"token", "revoke"}, code: ExitUsage, errOut: []string{"name the tokens to revoke by ID"}},
		{name: "token revoke both", args: []string{"token", "revoke", "tok-7", "--user", "alice"}, code: ExitUsage, errOut: []string{"give token IDs or --user, not both"}},
		{
			name: "user disable", args: []string{"user", "disable", "alice"},
			out: []string{"user alice disabled by user:admin at 2025-06-01T12:00:00Z: its tokens are refused from their next call on; 'cairnctl user enable alice' brings back"},
			req: &controllerv1.DisableUserRequest{Name: "alice"},
		},
		{
			name: "user disable revoke", args: []string{"user", "disable", "alice", "--revoke-tokens"}, out: []string{"and they are revoked"},
			req: &controllerv1.DisableUserRequest{Name: "alice", RevokeTokens: true},
		},
		{name: "user disable last admin", args: []string{"user", "disable", "admin"}, code: ExitFailed, errOut: []string{"cairnctl: disable user admin: this would leave no enabled user with the admin role"}},
		{name: "user disable json", args: []string{"user", "disable", "alice", "-o", "json"}, out: []string{`"disabled_by": "user:admin"`}},
		{name: "user enable", args: []string{"user", "enable", "alice"}, out: []string{"user alice enabled"}, req: &controllerv1.EnableUserRequest{Name: "alice"}},
		{
			name: "user set-roles", args: []string{"user", "set-roles", "alice", "tester", "approver,auditor"}, out: []string{"user alice now has roles tester,approver,auditor"},
			req: &controllerv1.SetRolesRequest{Name: "alice", Roles: []string{"tester", "approver", "auditor"}},
		},
		{name: "user set-roles none", args: []string{"user", "set-roles", "alice"}, code: ExitUsage, errOut: []string{"cairnctl user set-roles needs NAME ROLE... (got 1 arguments)"}},
		{name: "user set-roles empty", args: []string{"user", "set-roles", "alice", ","}, code: ExitUsage, errOut: []string{"give one or more roles"}},
		{name: "whoami", args: []string{"whoami"}, out: []string{"user admin, roles admin, controller " + f.addr}},
		{name: "auditlog list", args: []string{"auditlog", "list"}, golden: "auditlog-list.txt"},
		{
			name: "auditlog list since", args: []string{"auditlog", "list", "--since", "150m", "--limit", "2"},
			out: []string{"baseline.accept", "node.label"}, req: &controllerv1.ListEntriesRequest{Since: ts(150 * time.Minute), Limit: 2},
		},
		{name: "auditlog list bad since", args: []string{"auditlog", "list", "--since", "yesterday"}, code: ExitUsage, errOut: []string{`--since "yesterday"`}},
		{name: "auditlog verify", args: []string{"auditlog", "verify"}, out: []string{"audit log intact: 5 entries, head " + strings.Repeat("e", 64)}},
		{
			name: "auditlog verify broken", args: []string{"auditlog", "verify"}, setup: func() { f.logBroken = true }, code: ExitFailed,
			errOut: []string{"cairnctl: audit log broken at entry 3: hash does not match its content (edited)"},
		},
		{name: "completion bash", args: []string{"completion", "bash"}, env: map[string]string{"CAIRN_CA": ""}, out: []string{"bash completion"}},
		{name: "completion zsh", args: []string{"completion", "zsh"}, out: []string{"#compdef cairnctl"}},
		{name: "completion bad shell", args: []string{"completion", "tcsh"}, code: ExitUsage},
		{name: "no token", args: []string{"node", "list"}, env: map[string]string{"CAIRN_TOKEN": ""}, code: ExitDenied, errOut: []string{"cairnctl: list nodes: no bearer token: check --token / CAIRN_TOKEN"}},
		{name: "bad token", args: []string{"whoami", "--token", "cairn_u_wrong"}, code: ExitDenied, errOut: []string{"unknown token: check --token / CAIRN_TOKEN"}},
		{name: "forbidden", args: []string{"node", "revoke", "web1"}, env: map[string]string{"CAIRN_TOKEN": viewerToken}, code: ExitDenied, errOut: []string{"needs role operator (refused; see 'cairnctl whoami' for your user and roles)"}},
		{name: "no CA", args: []string{"node", "list"}, env: map[string]string{"CAIRN_CA": ""}, code: ExitUsage, errOut: []string{"cairnctl: no CA: pass --ca or set CAIRN_CA to the controller's ca.pem\n"}},
		{name: "unknown command", args: []string{"nodes"}, code: ExitUsage, errOut: []string{`unknown command "nodes" for "cairnctl": did you mean node?`}},
		{name: "unknown subcommand", args: []string{"node", "lst"}, code: ExitUsage, errOut: []string{`unknown command "lst" for "cairnctl node"`}},
		{name: "unknown flag", args: []string{"node", "list", "--sel", "a=b"}, code: ExitUsage, errOut: []string{"unknown flag: --sel"}},
		{name: "group help", args: []string{"node"}, out: []string{"Available Commands:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.reset()
			if tt.setup != nil {
				tt.setup()
			}
			r := f.run(t, tt.env, tt.stdin, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tt.code, r.stdout, r.stderr)
			}
			if tt.golden != "" {
				golden(t, tt.golden, r.stdout)
			}
			for _, s := range tt.out {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
				}
			}
			for _, s := range tt.errOut {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
				}
			}
			if tt.code != ExitOK && strings.Count(r.stderr, "cairnctl: ") != 1+strings.Count(r.stderr, "cairnctl: warning: ") {
				t.Errorf("want exactly one error line on stderr, got:\n%s", r.stderr)
			}
			if tt.req != nil {
				if diff := cmp.Diff(tt.req, f.last(), protocmp.Transform()); diff != "" {
					t.Errorf("request (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestBearerToken checks that the token from each source reaches the
// controller on every call.
func TestBearerToken(t *testing.T) {
	f := startFake(t)
	home := t.TempDir()
	cfgDir := filepath.Join(home, ".config", "cairn")
	if err := os.MkdirAll(cfgDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "config.yaml"), []byte("token: "+adminToken+"\ncontroller: "+f.addr+"\nca: "+f.caPath+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"env", nil, nil},
		{"flag", map[string]string{"CAIRN_TOKEN": "cairn_u_wrong"}, []string{"--token", adminToken}},
		{"config file", map[string]string{"CAIRN_TOKEN": "", "CAIRN_CA": "", "CAIRN_CONTROLLER": "", "HOME": home}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.reset()
			r := f.run(t, tt.env, "", append([]string{"audit", "run", "--node", "web1", "--wait"}, tt.args...)...)
			if r.code != ExitOK {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.tokens) < 3 {
				t.Fatalf("the controller saw %d calls, want RunAudit and at least two GetCommand", len(f.tokens))
			}
			for i, tok := range f.tokens {
				if tok != adminToken {
					t.Errorf("call %d carried token %q, want %q", i, tok, adminToken)
				}
			}
		})
	}
}

// TestConnectionErrors covers a controller that is not there and one
// whose certificate the CA does not sign.
func TestConnectionErrors(t *testing.T) {
	f := startFake(t)
	other := startFake(t) // a different CA

	r := f.run(t, map[string]string{"CAIRN_CA": other.caPath}, "", "node", "list")
	if r.code != ExitFailed || !strings.Contains(r.stderr, "cairnctl: TLS handshake with controller at "+f.addr+" failed: is --ca / CAIRN_CA the controller's ca.pem") {
		t.Errorf("wrong CA: exit %d, stderr %q", r.code, r.stderr)
	}

	// A port nobody listens on.
	closed := "127.0.0.1:1"
	r = f.run(t, map[string]string{"CAIRN_CONTROLLER": closed}, "", "node", "list", "--timeout", "5s")
	if r.code != ExitFailed || !strings.HasPrefix(r.stderr, "cairnctl: cannot reach controller at "+closed+": is cairn-controller serve running? (") {
		t.Errorf("closed port: exit %d, stderr %q", r.code, r.stderr)
	}

	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = f.run(t, map[string]string{"CAIRN_CA": notPEM}, "", "node", "list")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "holds no PEM certificate") {
		t.Errorf("CA not PEM: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestExportImportRoundTrip feeds cms export's output to cms import.
func TestExportImportRoundTrip(t *testing.T) {
	f := startFake(t)
	r := f.run(t, nil, "", "cms", "export", "-o", "json")
	if r.code != ExitOK {
		t.Fatalf("export: exit %d: %s", r.code, r.stderr)
	}
	var doc controllerv1.ExportResponse
	if err := protojson.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("export output does not parse: %v", err)
	}
	r = f.run(t, nil, r.stdout, "cms", "import", "-")
	if r.code != ExitOK {
		t.Fatalf("import: exit %d: %s", r.code, r.stderr)
	}
	want := &controllerv1.ImportRequest{Nodes: doc.GetNodes(), Services: doc.GetServices()}
	if diff := cmp.Diff(want, f.last(), protocmp.Transform()); diff != "" {
		t.Errorf("import request (-want +got):\n%s", diff)
	}
}

// TestAuditShowJSON checks that -o json prints the canonical document, as
// audit.WriteJSON writes it.
func TestAuditShowJSON(t *testing.T) {
	f := startFake(t)
	r := f.run(t, nil, "", "audit", "show", f.auditA, "-o", "json")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var want bytes.Buffer
	if err := audit.WriteJSON(&want, f.audits[f.auditA]); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want.String(), r.stdout); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := audit.Decode([]byte(r.stdout)); err != nil {
		t.Errorf("the printed audit does not decode: %v", err)
	}
}

// TestAuditLogExport checks JSON lines, one per entry, paged by sequence.
func TestAuditLogExport(t *testing.T) {
	f := startFake(t)
	r := f.run(t, nil, "", "auditlog", "export")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != len(f.entries) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(f.entries), r.stdout)
	}
	for i, line := range lines {
		var e controllerv1.AuditLogEntry
		if err := protojson.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if diff := cmp.Diff(f.entries[i], &e, protocmp.Transform()); diff != "" {
			t.Errorf("line %d (-want +got):\n%s", i+1, diff)
		}
		var raw map[string]any
		if err := json.Unmarshal([]byte(line), &raw); err != nil {
			t.Fatal(err)
		}
		if _, ok := raw["prev_hash"]; !ok && f.entries[i].GetPrevHash() != "" {
			t.Errorf("line %d lacks the proto name prev_hash: %s", i+1, line)
		}
	}
}

// TestHelpHasExamples walks every command: each has a short description,
// long help and examples.
func TestHelpHasExamples(t *testing.T) {
	a := &app{getenv: func(string) string { return "" }, now: time.Now}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		if c.Short == "" || c.Long == "" || c.Example == "" {
			t.Errorf("%s: want Short, Long and Example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(a.newRootCommand())
}

// TestCMSShowDriftWhereBothAuditsLooked: `cms show` says what drift
// says. The two audits are compared where both looked, as the
// controller's drift does (internal/diff.Compare), and a path the
// baseline did not track is named as not compared, not read as "no
// changes".
func TestCMSShowDriftWhereBothAuditsLooked(t *testing.T) {
	f := startFake(t)
	withFiles := func(id string, patterns []string, paths ...string) {
		a := proto.Clone(f.audits[id]).(*inventoryv1.Audit)
		a.Files = &inventoryv1.Files{Patterns: patterns}
		for _, p := range paths {
			a.Files.Files = append(a.Files.Files, &inventoryv1.File{Key: p, Path: p, Type: "file", Mode: "0644"})
		}
		a.Collectors = append(a.Collectors, &inventoryv1.CollectorStatus{Name: "files", Section: "files", State: inventoryv1.CollectorStatus_STATE_OK})
		a.Packages = proto.Clone(f.audits[f.auditA].GetPackages()).(*inventoryv1.Packages)
		if err := audit.Seal(a); err != nil {
			t.Fatal(err)
		}
		f.audits[id] = a
	}
	withFiles(f.auditA, []string{"/etc/ssh"}, "/etc/ssh", "/etc/ssh/sshd_config")
	withFiles(f.auditB, []string{"/etc/greeter/greeter.conf", "/etc/ssh"}, "/etc/greeter/greeter.conf", "/etc/ssh", "/etc/ssh/sshd_config")

	r := f.run(t, nil, "", "cms", "show", "web1")
	if r.code != ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if want := "\ndrift: no changes where both audits looked; 1 tracked path not compared: /etc/greeter/greeter.conf\n"; !strings.Contains(r.stdout, want) {
		t.Errorf("cms show web1 does not say %q:\n%s", want, r.stdout)
	}
}
