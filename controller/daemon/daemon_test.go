package daemon

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/controller/auditlog"
	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/controller/keyring"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/pki"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	res, err := Init(context.Background(), InitOptions{DataDir: dir, SANs: []string{"ctl.example.com", "10.0.0.5"}})
	if err != nil {
		t.Fatal(err)
	}

	modes := map[string]os.FileMode{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		modes[e.Name()] = info.Mode().Perm()
	}
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	modes["."] = info.Mode().Perm()
	want := map[string]os.FileMode{
		".":            0o700,
		CACertFile:     0o644,
		CAKeyFile:      0o600,
		ServerCertFile: 0o644,
		ServerKeyFile:  0o600,
		ReleaseKeyFile: 0o600,
		ReleasePubFile: 0o644,
		StoreFile:      0o600,
	}
	if diff := cmp.Diff(want, modes); diff != "" {
		t.Errorf("data dir files and modes (-want +got):\n%s", diff)
	}

	// The server certificate chains to the CA for every name.
	ca, err := pki.LoadCA(filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, ServerCertFile), filepath.Join(dir, ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for _, name := range []string{"localhost", "127.0.0.1", "::1", "ctl.example.com", "10.0.0.5"} {
		if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("server certificate for %s: %v", name, err)
		}
	}
	if k, err := keyring.Load(dir); err != nil || len(k.ReleaseKeys) != 1 || !k.CAs[0].Cert.Equal(ca.Cert) {
		t.Errorf("keyring.Load = %v, %v; want the CA and one release key", k, err)
	}

	// The store holds the admin, the token's hash (not the token) and a
	// verifying audit log.
	st, err := store.OpenBolt(filepath.Join(dir, StoreFile), store.BoltOptions{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var actions []string
	err = st.View(context.Background(), func(tx store.Tx) error {
		u, err := tx.User("admin")
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]string{auth.RoleAdmin}, u.GetRoles()); diff != "" {
			t.Errorf("admin roles (-want +got):\n%s", diff)
		}
		tok, err := tx.APIToken(auth.HashToken(res.Token))
		if err != nil {
			return err
		}
		if tok.GetUser() != "admin" || tok.GetId() != res.TokenID {
			t.Errorf("token record %v", tok)
		}
		entries, err := tx.LogEntries(0, 0)
		if err != nil {
			return err
		}
		seq, hash, err := tx.LogHead()
		if err != nil {
			return err
		}
		if p := auditlog.Verify(entries, seq, hash); p != nil {
			t.Errorf("audit log: %v", p)
		}
		for _, e := range entries {
			actions = append(actions, e.GetAction())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"controller.init", "user.create", "token.create"}, actions); diff != "" {
		t.Errorf("audit log actions (-want +got):\n%s", diff)
	}
	raw, err := os.ReadFile(filepath.Join(dir, StoreFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(res.Token)) {
		t.Error("the store holds the token in clear")
	}
}

func TestInitRefusesAnInitializedDir(t *testing.T) {
	dir := t.TempDir()
	if _, err := Init(context.Background(), InitOptions{DataDir: dir}); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Init(context.Background(), InitOptions{DataDir: dir})
	if !errors.Is(err, ErrInitialized) {
		t.Fatalf("second init: %v, want ErrInitialized", err)
	}
	after, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("second init replaced the CA key")
	}
}

func TestCLI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string // regexp on stdout
		wantErr  string // substring of stderr
	}{
		{name: "init", args: []string{"init", "--data-dir", dir}, wantCode: ExitOK,
			wantOut: `(?s)API token for user "admin".*export CAIRN_TOKEN=cairn_u_[a-z2-7]+\n  export CAIRN_CA=` + regexp.QuoteMeta(filepath.Join(dir, "ca.pem"))},
		{name: "second init fails", args: []string{"init", "--data-dir", dir}, wantCode: ExitFailed, wantErr: "already initialized"},
		{name: "init without data dir", args: []string{"init"}, wantCode: ExitUsage, wantErr: "--data-dir is required"},
		{name: "unknown flag", args: []string{"serve", "--bogus"}, wantCode: ExitUsage, wantErr: "unknown flag: --bogus"},
		{name: "bad config", args: []string{"serve", "--data-dir", dir, "--listen", "nowhere"}, wantCode: ExitUsage, wantErr: `listen address "nowhere"`},
		{name: "serve uninitialized", args: []string{"serve", "--data-dir", t.TempDir()}, wantCode: ExitFailed, wantErr: "run 'cairn-controller init --data-dir"},
		{name: "unknown command", args: []string{"start"}, wantCode: ExitUsage, wantErr: `unknown command "start"`},
		// What the controller prints passes internal/termsafe.
		{name: "an error quoting terminal controls", args: []string{"serve", "--config", "/nonexistent/\x1b[2J\u202e.yaml"}, wantCode: ExitUsage,
			wantErr: `open /nonexistent/\x1b[2J\u202e.yaml: no such file or directory`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Execute(context.Background(), tt.args, &out, &errOut)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d; stderr: %s", code, tt.wantCode, errOut.String())
			}
			if tt.wantOut != "" && !regexp.MustCompile(tt.wantOut).MatchString(out.String()) {
				t.Errorf("stdout %q does not match %q", out.String(), tt.wantOut)
			}
			if !strings.Contains(errOut.String(), tt.wantErr) {
				t.Errorf("stderr %q, want it to contain %q", errOut.String(), tt.wantErr)
			}
		})
	}
}

func TestServeSmoke(t *testing.T) {
	dir := t.TempDir()
	res, err := Init(context.Background(), InitOptions{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(Sources{Flags: map[string]string{"data-dir": dir, "listen": "127.0.0.1:0", "metrics-listen": "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	srv, err := NewServer(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()

	caPEM, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	_, port, _ := net.SplitHostPort(srv.Addr().String())
	conn, err := grpc.NewClient(net.JoinHostPort("localhost", port),
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	// Health is open: no token, no client certificate.
	var hresp *healthpb.HealthCheckResponse
	deadline := time.Now().Add(5 * time.Second)
	for {
		hresp, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil && hresp.GetStatus() == healthpb.HealthCheckResponse_SERVING || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || hresp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health check: %v %v, want SERVING", hresp, err)
	}

	// Operator methods need a token.
	users := controllerv1.NewUsersClient(conn)
	_, err = users.WhoAmI(ctx, &controllerv1.WhoAmIRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("WhoAmI without a token: %v, want Unauthenticated", err)
	}
	me, err := users.WhoAmI(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+res.Token), &controllerv1.WhoAmIRequest{})
	if err != nil || me.GetName() != "admin" {
		t.Errorf("WhoAmI with the init token: %v, %v", me, err)
	}

	resp, err := http.Get("http://" + srv.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"cairn_agents_connected 0\n",
		`cairn_nodes{state="connected"} 0` + "\n",
		`cairn_rpc_total{method="/cairn.controller.v1.Users/WhoAmI",code="Unauthenticated"} 1` + "\n",
		`cairn_rpc_total{method="/cairn.controller.v1.Users/WhoAmI",code="OK"} 1` + "\n",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(logs.String(), res.Token) {
		t.Error("the token appears in the logs")
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if !strings.Contains(logs.String(), "cairn-controller serving") || !strings.Contains(logs.String(), "data_dir="+dir) {
		t.Errorf("start log line missing: %s", logs.String())
	}
}

// TestServedMethodsAreAllInTheAuthorizationTable checks the server as
// serve assembles it: every method it registers has a rule in
// auth.Rules, and every rule names a method it serves. (The api package's
// enumeration test calls each method with wrong credentials; this one
// makes sure that test's server and the real one serve the same methods.)
func TestServedMethodsAreAllInTheAuthorizationTable(t *testing.T) {
	dir := t.TempDir()
	if _, err := Init(context.Background(), InitOptions{DataDir: dir}); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(Sources{Flags: map[string]string{"data-dir": dir, "listen": "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	served := map[string]bool{}
	for svc, info := range srv.grpc.GetServiceInfo() {
		for _, m := range info.Methods {
			served["/"+svc+"/"+m.Name] = true
		}
	}
	if len(served) < 25 {
		t.Fatalf("only %d methods served; is the server assembled?", len(served))
	}
	for m := range served {
		if _, ok := auth.Rules[m]; !ok {
			t.Errorf("served method %s has no authorization rule", m)
		}
	}
	for m := range auth.Rules {
		if !served[m] {
			t.Errorf("rule for %s names a method the controller does not serve", m)
		}
	}
}
