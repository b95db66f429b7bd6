package session

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/agent/journal"
	"github.com/cairn-ops/cairn/internal/pki"
	"github.com/cairn-ops/cairn/internal/refusal"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

func TestEnrollWritesIdentity(t *testing.T) {
	f := newFakeController(t)
	dir := f.enroll(t)

	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v, want 0700", fi.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", e.Name(), info.Mode().Perm())
		}
	}
	if diff := cmp.Diff([]string{CAFile, IdentityFile, KeyFile, CertFile}, names); diff != "" {
		t.Errorf("files in the data dir (-want +got):\n%s", diff)
	}

	id, err := LoadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	if id.NodeID != testNode || id.Controller != f.addr || !slices.Equal(id.ReleasePublicKey, f.release) {
		t.Errorf("identity %+v, want node %s at %s with the release key", id, testNode, f.addr)
	}
	creds, err := LoadCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := pki.NodeID(creds.Leaf); got != testNode {
		t.Errorf("certificate names %q, want %q", got, testNode)
	}
	trust := loadTrust(t, dir)
	if len(trust.CAs) != 1 || !trust.Issuing().Equal(f.ca.Cert) || !trust.ReleaseKeys[0].Public.Equal(f.release) {
		t.Errorf("trust %+v, want the controller's CA and release key", trust)
	}
}

func TestEnrollFails(t *testing.T) {
	other, err := pki.NewCA("someone else", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		token   string
		refusal error
		caPEM   func(f *fakeController) []byte
		want    error
		wantMsg string
	}{
		{name: "unknown token", token: "cairn_e_wrong", want: ErrEnrollRefused, wantMsg: "unknown join token"},
		{name: "expired token", token: goodToken, refusal: status.Error(codes.PermissionDenied, "join token expired"), want: ErrEnrollRefused, wantMsg: "join token expired"},
		{name: "used-up token", token: goodToken, refusal: status.Error(codes.Unauthenticated, "join token used up"), want: ErrEnrollRefused, wantMsg: "join token used up"},
		{name: "wrong CA", token: goodToken, caPEM: func(*fakeController) []byte { return other.CertPEM }, want: ErrUntrusted, wantMsg: "is --ca the controller's ca.pem?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeController(t)
			f.refusal = tt.refusal
			caPEM := f.caPEM
			if tt.caPEM != nil {
				caPEM = tt.caPEM(f)
			}
			dir := filepath.Join(t.TempDir(), "agent")
			ctx, cancel := context.WithTimeout(t.Context(), waitFor)
			defer cancel()
			_, err := Enroll(ctx, EnrollOptions{
				DataDir: dir, Controller: f.addr, Token: tt.token, CAPEM: caPEM,
				ReconnectBase: time.Millisecond, ReconnectMax: time.Millisecond,
			})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("error %q does not say %q", msg, tt.wantMsg)
			}
			f.mu.Lock()
			enrolls := f.enrolls
			f.mu.Unlock()
			if tt.caPEM == nil && enrolls != 1 {
				t.Errorf("%d enroll calls, want 1: a refusal is not retried", enrolls)
			}
			if _, err := LoadIdentity(dir); !errors.Is(err, ErrNotEnrolled) {
				t.Errorf("identity after a failed enrollment: %v, want ErrNotEnrolled", err)
			}
		})
	}
}

func TestNewNotEnrolled(t *testing.T) {
	_, err := New(Config{DataDir: t.TempDir()})
	if !errors.Is(err, ErrNotEnrolled) {
		t.Errorf("err = %v, want ErrNotEnrolled", err)
	}
}

// TestRestartReusesIdentity starts the agent twice on one data dir with
// no token: both sessions present the enrolled certificate.
func TestRestartReusesIdentity(t *testing.T) {
	f := newFakeController(t)
	dir := f.enroll(t)
	for i := range 2 {
		stop := runAgent(t, dir, nil)
		f.session()
		if err := stop(); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.enrolls != 1 {
		t.Errorf("%d enrollments, want 1", f.enrolls)
	}
	for i, c := range f.peerCerts {
		if id, _ := pki.NodeID(c); id != testNode {
			t.Errorf("session %d: certificate names %q, want %q", i, id, testNode)
		}
	}
	if got := f.hellos[0]; got.GetHostname() != Hostname(fixtureRoot(t)) || got.GetAgentVersion() != "test" {
		t.Errorf("hello %v", got)
	}
}

// TestAuditCommandRunsOnce runs an audit command, then redelivers it on
// a new session: it is acknowledged and not run again.
func TestAuditCommandRunsOnce(t *testing.T) {
	f := newFakeController(t)
	dir := f.enroll(t)
	runAgent(t, dir, nil)

	s := f.session()
	s.command("cmd-1", "os", "packages")
	f.wait("ack", "cmd-1")
	f.wait("upload", "cmd-1")
	f.wait("result", "cmd-1")

	f.mu.Lock()
	if len(f.audits) != 1 {
		t.Fatalf("%d audits uploaded, want 1", len(f.audits))
	}
	a := f.audits[0]
	want := &agentv1.CommandResult{CommandId: "cmd-1", Ok: true, AuditId: a.GetHashes().GetDocument()}
	if diff := cmp.Diff(want, f.results[0], protocmp.Transform()); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if a.GetPackages() == nil || a.GetOs() == nil || a.GetHeader().GetRoot() != fixtureRoot(t) {
		t.Errorf("uploaded audit lacks the fixture's os and packages: header %v", a.GetHeader())
	}
	id, err := LoadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.GetHeader().GetNodeId(); got == "" || got != id.NodeID {
		t.Errorf("uploaded audit names node %q, want the agent's node %q", got, id.NodeID)
	}
	f.mu.Unlock()
	waitOutboxEmpty(t, dir)

	close(s.drop)
	s = f.session()
	f.mu.Lock()
	hello := f.hellos[len(f.hellos)-1]
	f.mu.Unlock()
	if !slices.Contains(hello.GetCompletedCommands(), "cmd-1") {
		t.Errorf("hello after reconnect lists %v, want cmd-1", hello.GetCompletedCommands())
	}
	s.command("cmd-1", "os", "packages")
	f.wait("ack", "cmd-1")
	// A later command proves the agent went past the redelivered one.
	s.command("cmd-2", "os")
	f.wait("result", "cmd-2")

	f.mu.Lock()
	defer f.mu.Unlock()
	if diff := cmp.Diff([]string{"cmd-1", "cmd-2"}, f.uploadCmds); diff != "" {
		t.Errorf("uploads (-want +got):\n%s", diff)
	}
	var resultIDs []string
	for _, r := range f.results {
		resultIDs = append(resultIDs, r.GetCommandId())
	}
	if diff := cmp.Diff([]string{"cmd-1", "cmd-2"}, resultIDs); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
}

// TestOutboxResentAfterReconnect drops the session after the result and
// before the ResultAck: the result comes again on the next session, and
// the outbox empties once the controller acknowledges it.
func TestOutboxResentAfterReconnect(t *testing.T) {
	f := newFakeController(t)
	f.noAck = true
	dir := f.enroll(t)
	stop := runAgent(t, dir, nil)

	s := f.session()
	s.command("cmd-1", "os")
	f.wait("result", "cmd-1")
	f.mu.Lock()
	auditID := f.results[0].GetAuditId()
	f.mu.Unlock()
	want := []*agentv1.CommandResult{{CommandId: "cmd-1", Ok: true, AuditId: auditID}}
	if diff := cmp.Diff(want, outboxResults(t, dir), protocmp.Transform()); diff != "" {
		t.Errorf("outbox before the ack (-want +got):\n%s", diff)
	}

	f.locked(func() { f.noAck = false })
	close(s.drop)
	f.session()
	f.wait("result", "cmd-1")
	waitOutboxEmpty(t, dir)

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.results) != 2 || !cmp.Equal(f.results[0], f.results[1], protocmp.Transform()) {
		t.Errorf("results %v, want the same result twice", f.results)
	}
	if len(f.uploadCmds) != 1 {
		t.Errorf("%d uploads, want 1: the command ran again", len(f.uploadCmds))
	}
}

// TestOutboxSurvivesRestart stops the agent before the ResultAck: a new
// agent process resends the result.
func TestOutboxSurvivesRestart(t *testing.T) {
	f := newFakeController(t)
	f.noAck = true
	dir := f.enroll(t)
	stop := runAgent(t, dir, nil)
	f.session().command("cmd-1", "os")
	f.wait("result", "cmd-1")
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	f.locked(func() { f.noAck = false })
	runAgent(t, dir, nil)
	s := f.session()
	f.wait("result", "cmd-1")
	s.command("cmd-1", "os") // redelivered as well: acknowledged, not run
	f.wait("ack", "cmd-1")
	waitOutboxEmpty(t, dir)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.uploadCmds) != 1 {
		t.Errorf("%d uploads, want 1", len(f.uploadCmds))
	}
}

func TestFailedAuditIsAResult(t *testing.T) {
	f := newFakeController(t)
	dir := f.enroll(t)
	runAgent(t, dir, nil)
	f.session().command("cmd-1", "no-such-collector")
	f.wait("result", "cmd-1")
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.results[0]
	if r.GetOk() || !strings.Contains(r.GetError(), "unknown collector") {
		t.Errorf("result %v, want a failure naming the unknown collector", r)
	}
}

// TestRefusedStops: a refusal of the node's identity stops the agent
// instead of a retry, and it is recognised by its reason, not its text:
// a revoked node whose message does not say "revoked" is ErrRevoked, and
// a message that says "revoked" without the reason is not.
func TestRefusedStops(t *testing.T) {
	for _, tc := range []struct {
		name    string
		refusal error
		want    error
		not     error
	}{
		{"revoked, by reason", refusal.Errorf(codes.PermissionDenied, refusal.NodeRevoked, "node node-1 was taken out of service"), ErrRevoked, nil},
		{"revoked, by text only", status.Error(codes.PermissionDenied, "node node-1 is revoked"), ErrRefused, ErrRevoked},
		{"unknown node", refusal.Errorf(codes.Unauthenticated, refusal.NodeUnknown, "node node-1 is not enrolled"), ErrRefused, ErrRevoked},
		{"certificate from a retired CA", refusal.Errorf(codes.PermissionDenied, refusal.CertificateRetired, "certificate issued by a retired CA"), ErrRefused, ErrRevoked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeController(t)
			dir := f.enroll(t)
			f.locked(func() { f.sessionRefusal = tc.refusal })
			a, err := New(Config{DataDir: dir, Logger: testLogger(t), ReconnectBase: time.Millisecond, ReconnectMax: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), waitFor)
			defer cancel()
			err = a.Run(ctx)
			if !errors.Is(err, tc.want) || (tc.not != nil && errors.Is(err, tc.not)) {
				t.Fatalf("Run = %v, want %v (and not %v)", err, tc.want, tc.not)
			}
			if ctx.Err() != nil {
				t.Errorf("Run retried until the deadline instead of stopping")
			}
		})
	}
}

// TestReconnectsWhenControllerComesBack stops the controller under a
// connected agent and starts it again on the same address.
func TestReconnectsWhenControllerComesBack(t *testing.T) {
	f := newFakeController(t)
	dir := f.enroll(t)
	stop := runAgent(t, dir, nil)
	f.session()
	f.stop()
	time.Sleep(30 * time.Millisecond) // a few failed attempts
	f.start(f.addr)
	s := f.session()
	s.command("cmd-1", "os")
	f.wait("result", "cmd-1")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestUnreachableControllerRunsUntilStopped(t *testing.T) {
	f := newFakeController(t)
	dir := f.enroll(t)
	a, err := New(Config{DataDir: dir, Controller: "127.0.0.1:1", Logger: testLogger(t), ReconnectBase: time.Millisecond, ReconnectMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := a.Run(ctx); err != nil {
		t.Errorf("Run against an unreachable controller = %v, want nil when ctx ends", err)
	}
}

// TestRenewal gives the agent a certificate past two thirds of its
// lifetime: it renews over the session and reconnects with the new one.
func TestRenewal(t *testing.T) {
	f := newFakeController(t)
	f.validity = time.Minute // with the 5-minute backdating, already due
	dir := f.enroll(t)
	before, err := LoadCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, dir, func(c *Config) { c.RenewCheck = 10 * time.Millisecond })

	f.session()
	f.wait("renew", "")
	f.session()

	after, err := LoadCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	if after.Leaf.SerialNumber.Cmp(before.Leaf.SerialNumber) == 0 {
		t.Fatal("node.pem still holds the old certificate")
	}
	if !after.Leaf.NotAfter.After(before.Leaf.NotAfter) {
		t.Errorf("renewed certificate expires %v, not after the old %v", after.Leaf.NotAfter, before.Leaf.NotAfter)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.renewals != 1 {
		t.Errorf("%d renewals, want 1", f.renewals)
	}
	if got := f.peerCerts[len(f.peerCerts)-1]; !got.Equal(after.Leaf) {
		t.Errorf("second session presented serial %s, want the renewed %s", pki.SerialHex(got), pki.SerialHex(after.Leaf))
	}
	for _, name := range []string{KeyFile, CertFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s after renewal: %v, %v", name, fi.Mode(), err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, KeyFile+pendingSuffix)); err == nil {
		t.Errorf("pending key left behind")
	}
}

func waitOutboxEmpty(t *testing.T, dir string) {
	t.Helper()
	eventually(t, "the outbox emptied", func() bool { return outboxLen(t, dir) == 0 })
}

// outboxResults opens the agent's journal (waiting while the agent holds
// it) and returns the command results in its outbox.
func outboxResults(t *testing.T, dir string) []*agentv1.CommandResult {
	t.Helper()
	items := outboxItems(t, dir)
	var out []*agentv1.CommandResult
	for i := range items {
		if items[i].Kind == journal.KindCommandResult {
			out = append(out, storedResult(&items[i]))
		}
	}
	return out
}
