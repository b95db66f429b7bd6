package api_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/agent/inventory"
	"github.com/cairn-ops/cairn/controller/api"
	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/controller/auth/authtest"
	"github.com/cairn-ops/cairn/controller/blob"
	"github.com/cairn-ops/cairn/controller/keyring"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/audit"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// now is the API's clock in these tests.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const stampNow = "2026-03-01T12:00:00.000000000Z"

// dispatcher records Notify calls; the nodes in live have a session.
type dispatcher struct {
	mu    sync.Mutex
	nodes []string
	live  map[string]bool
}

func (d *dispatcher) IsConnected(nodeID string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.live[nodeID]
}

func (d *dispatcher) Notify(nodeID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nodes = append(d.nodes, nodeID)
}

func (d *dispatcher) take() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.nodes
	d.nodes = nil
	return n
}

// env is a controller's operator API over TLS with a memory store.
type env struct {
	st    store.Store
	blobs *blob.Store
	disp  *dispatcher
	conn  *grpc.ClientConn
	// ctx per role ("admin", "operator", "auditor"), carrying its token.
	ctx map[string]context.Context
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{st: store.NewMemory(), disp: &dispatcher{}, ctx: map[string]context.Context{}}
	var err error
	if e.blobs, err = blob.Open(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	srv := authtest.Start(t, e.st, func(s *grpc.Server) {
		api.Register(s, api.Deps{Store: e.st, Blobs: e.blobs, Dispatcher: e.disp, Now: func() time.Time { return now }})
	})
	e.conn = srv.Dial(t, nil)
	for _, role := range []string{auth.RoleAdmin, auth.RoleOperator, auth.RoleAuditor} {
		e.ctx[role] = authtest.WithToken(context.Background(), authtest.AddUser(t, e.st, role+"1", role))
	}
	return e
}

// oneKey is a keyring of one release key that never retires.
func oneKey(key ed25519.PrivateKey) *keyring.Keyring {
	return &keyring.Keyring{ReleaseKeys: []*keyring.ReleaseKey{{Key: key}}}
}

func (e *env) addNode(t *testing.T, id, hostname string, labels map[string]string) {
	t.Helper()
	authtest.AddNode(t, e.st, &controllerv1.NodeRecord{Id: id, Hostname: hostname, Labels: labels, State: controllerv1.NodeRecord_STATE_CONNECTED})
}

// addAudit audits a software fixture as node nodeID at time at and stores
// it as the fleet does; hostname, when set, replaces the audited one.
func (e *env) addAudit(t *testing.T, nodeID, fixture, hostname string, at time.Time) *controllerv1.AuditRecord {
	t.Helper()
	return e.addAuditTracking(t, nodeID, fixture, hostname, at, nil)
}

// addAuditTracking is addAudit with the files collector tracking track
// (when not nil).
func (e *env) addAuditTracking(t *testing.T, nodeID, fixture, hostname string, at time.Time, track []string) *controllerv1.AuditRecord {
	t.Helper()
	ctx := context.Background()
	collectors := []string{"os", "packages", "services"}
	if track != nil {
		collectors = append(collectors, "files")
	}
	a, err := inventory.Collect(ctx, inventory.Options{
		Root:       filepath.Join("..", "..", "agent", "collector", "testdata", "sw", fixture),
		Collectors: collectors,
		Track:      track,
		Now:        func() time.Time { return at },
	})
	if err != nil {
		t.Fatal(err)
	}
	if hostname != "" {
		a.GetOs().Hostname = hostname
		if err := audit.Seal(a); err != nil {
			t.Fatal(err)
		}
	}
	data, err := audit.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	digest, size, err := e.blobs.Put(ctx, bytes.NewReader(data), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	rec := &controllerv1.AuditRecord{
		Id: a.GetHashes().GetDocument(), NodeId: nodeID, Hostname: a.GetOs().GetHostname(),
		StoredAt: at.UTC().Format("2006-01-02T15:04:05.000000000Z"), ContentHash: a.GetHashes().GetContent(),
		SizeBytes: size, Blob: digest,
	}
	if err := e.st.Update(ctx, func(tx store.Tx) error { return tx.PutAudit(rec) }); err != nil {
		t.Fatal(err)
	}
	return rec
}

// checkLog asserts that the audit log verifies through the API and holds
// exactly the given actions, in order.
func (e *env) checkLog(t *testing.T, actions ...string) []*controllerv1.AuditLogEntry {
	t.Helper()
	c := controllerv1.NewAuditLogClient(e.conn)
	v, err := c.Verify(e.ctx[auth.RoleAuditor], &controllerv1.VerifyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !v.GetOk() || v.GetEntries() != uint64(len(actions)) {
		t.Errorf("audit log verify = %v, want ok with %d entries", v, len(actions))
	}
	list, err := c.ListEntries(e.ctx[auth.RoleAuditor], &controllerv1.ListEntriesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, en := range list.GetEntries() {
		got = append(got, en.GetAction())
	}
	if diff := cmp.Diff(actions, got); diff != "" {
		t.Errorf("audit log actions (-want +got):\n%s", diff)
	}
	return list.GetEntries()
}

// checkCode asserts err's code and that its message contains msg.
func checkCode(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	if got := status.Code(err); got != code {
		t.Fatalf("code = %v (%v), want %v", got, err, code)
	}
	if msg != "" && !strings.Contains(status.Convert(err).Message(), msg) {
		t.Errorf("message = %q, want it to contain %q", status.Convert(err).Message(), msg)
	}
}

func TestCreateEnrollToken(t *testing.T) {
	e := newEnv(t)
	c := controllerv1.NewEnrollTokensClient(e.conn)
	tests := []struct {
		name    string
		req     *controllerv1.CreateEnrollTokenRequest
		want    *controllerv1.EnrollTokenRecord
		code    codes.Code
		msg     string
		details map[string]string
	}{
		{
			name:    "defaults",
			req:     &controllerv1.CreateEnrollTokenRequest{},
			want:    &controllerv1.EnrollTokenRecord{CreatedBy: "user:operator1", CreatedAt: stampNow, ExpiresAt: "2026-03-01T12:10:00.000000000Z", UsesLeft: 1},
			details: map[string]string{"expires_at": "2026-03-01T12:10:00.000000000Z", "uses": "1"},
		},
		{
			name:    "ttl, uses and labels",
			req:     &controllerv1.CreateEnrollTokenRequest{TtlSeconds: 86400, Uses: 3, Labels: map[string]string{"env": "prod"}},
			want:    &controllerv1.EnrollTokenRecord{CreatedBy: "user:operator1", CreatedAt: stampNow, ExpiresAt: "2026-03-02T12:00:00.000000000Z", UsesLeft: 3, Labels: map[string]string{"env": "prod"}},
			details: map[string]string{"expires_at": "2026-03-02T12:00:00.000000000Z", "uses": "3", "labels": "env=prod"},
		},
		{name: "ttl over 24h", req: &controllerv1.CreateEnrollTokenRequest{TtlSeconds: 86401}, code: codes.InvalidArgument, msg: "ttl_seconds: 86401 seconds is longer than the maximum of 24h"},
		{name: "negative ttl", req: &controllerv1.CreateEnrollTokenRequest{TtlSeconds: -1}, code: codes.InvalidArgument, msg: "ttl_seconds"},
		// time.Duration(ttl)*time.Second overflows: the message must name
		// the value given, not the wrapped duration.
		{name: "ttl 2^63-1", req: &controllerv1.CreateEnrollTokenRequest{TtlSeconds: math.MaxInt64}, code: codes.InvalidArgument,
			msg: "ttl_seconds: 9223372036854775807 seconds is longer than the maximum of 24h"},
		{name: "uses over the limit", req: &controllerv1.CreateEnrollTokenRequest{Uses: math.MaxUint32}, code: codes.InvalidArgument,
			msg: "uses: 4294967295 is more than the maximum of 10000"},
		{name: "bad label", req: &controllerv1.CreateEnrollTokenRequest{Labels: map[string]string{"env": "a,b"}}, code: codes.InvalidArgument, msg: "labels: label env"},
	}
	var tokens []string
	var wantDetails []map[string]string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := c.CreateEnrollToken(e.ctx[auth.RoleOperator], tt.req)
			checkCode(t, err, tt.code, tt.msg)
			if err != nil {
				return
			}
			if !strings.HasPrefix(resp.GetToken(), "cairn_e_") {
				t.Errorf("token %q, want the cairn_e_ prefix", resp.GetToken())
			}
			var got *controllerv1.EnrollTokenRecord
			if err := e.st.View(context.Background(), func(tx store.Tx) error {
				got, err = tx.EnrollToken(auth.HashToken(resp.GetToken()))
				return err
			}); err != nil {
				t.Fatalf("the token's hash is not stored: %v", err)
			}
			tt.want.Id, tt.want.TokenHash = resp.GetId(), auth.HashToken(resp.GetToken())
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("stored token (-want +got):\n%s", diff)
			}
			if resp.GetExpiresAt() != tt.want.ExpiresAt || resp.GetUses() != tt.want.UsesLeft {
				t.Errorf("response %v does not match the record", resp)
			}
			tokens = append(tokens, resp.GetToken())
			wantDetails = append(wantDetails, tt.details)
		})
	}
	var gotDetails []map[string]string
	for _, en := range e.checkLog(t, "enroll-token.create", "enroll-token.create") {
		gotDetails = append(gotDetails, en.GetDetails())
		for _, tok := range tokens {
			if strings.Contains(en.String(), tok) || strings.Contains(en.String(), auth.HashToken(tok)) {
				t.Errorf("audit log entry %d holds the token or its hash", en.GetSequence())
			}
		}
	}
	if diff := cmp.Diff(wantDetails, gotDetails); diff != "" {
		t.Errorf("audit log details (-want +got):\n%s", diff)
	}
}
