package ctl

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-ops/cairn/internal/audit"
	"github.com/cairn-ops/cairn/internal/diff"
	"github.com/cairn-ops/cairn/internal/pki"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// Tokens the fake controller knows.
const (
	adminToken  = "cairn_u_admin-test-token"
	viewerToken = "cairn_u_viewer-test-token" // authenticated, but every call is forbidden
)

// testNow is the clock of every command test, so relative times are stable.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func ts(d time.Duration) string { return testNow.Add(-d).Format(time.RFC3339Nano) }

// fake is an in-process controller: a real gRPC server with real TLS on
// 127.0.0.1, serving the operator API from canned data. It records every
// request so tests can check what cairnctl sent.
type fake struct {
	addr   string
	caPath string

	mu       sync.Mutex
	requests []proto.Message
	tokens   []string
	// polls counts GetCommand calls per command ID.
	polls map[string]int
	// logBroken makes Verify report a broken chain.
	logBroken bool

	audits map[string]*inventoryv1.Audit
	// auditA and auditB are two audits of web1; B adds a package.
	auditA, auditB string
	entries        []*controllerv1.AuditLogEntry
	artifacts      *fakeArtifacts
	releases       *fakeReleases
	// issued are the reports the fake issued, by digest.
	issued map[string]*controllerv1.IssuedReport
}

// record notes a request.
func (f *fake) record(m proto.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, proto.Clone(m))
}

// last returns the last recorded request.
func (f *fake) last() proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		return nil
	}
	return f.requests[len(f.requests)-1]
}

func (f *fake) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests, f.tokens, f.polls, f.logBroken = nil, nil, map[string]int{}, false
}

// authorize checks the bearer token like the real controller's
// interceptor: none or unknown → Unauthenticated, viewer → PermissionDenied.
func (f *fake) authorize(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	var token string
	if v := md.Get("authorization"); len(v) == 1 {
		token = strings.TrimPrefix(v[0], "Bearer ")
	}
	f.mu.Lock()
	f.tokens = append(f.tokens, token)
	f.mu.Unlock()
	switch token {
	case adminToken:
		if m, ok := req.(proto.Message); ok {
			f.record(m)
		}
		return handler(ctx, req)
	case viewerToken:
		return nil, status.Errorf(codes.PermissionDenied, "%s needs role operator", info.FullMethod)
	case "":
		return nil, status.Error(codes.Unauthenticated, "no bearer token")
	default:
		return nil, status.Error(codes.Unauthenticated, "unknown token")
	}
}

// newAudit returns a sealed audit of host with the given dpkg packages.
func newAudit(t *testing.T, host, collectedAt string, packages ...string) *inventoryv1.Audit {
	t.Helper()
	a := &inventoryv1.Audit{
		SchemaVersion: audit.SchemaVersion,
		Header:        &inventoryv1.Header{AgentVersion: "0.3.0", Root: "/", CollectedAt: collectedAt, DurationMs: 120},
		Os:            &inventoryv1.OS{Hostname: host, Id: "debian", VersionId: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)", Architecture: "amd64"},
		Packages:      &inventoryv1.Packages{Managers: []string{"dpkg"}},
		Collectors: []*inventoryv1.CollectorStatus{
			{Name: "os", Section: "os", State: inventoryv1.CollectorStatus_STATE_OK},
			{Name: "packages", Section: "packages", State: inventoryv1.CollectorStatus_STATE_OK},
		},
	}
	for _, p := range packages {
		name, version, _ := strings.Cut(p, "=")
		a.Packages.Packages = append(a.Packages.Packages, &inventoryv1.Package{
			Key: "dpkg/" + name + "/amd64", Manager: "dpkg", Name: name, Version: version, Architecture: "amd64",
		})
	}
	if err := audit.Seal(a); err != nil {
		t.Fatal(err)
	}
	return a
}

// startFake starts the fake controller and returns it.
func startFake(t *testing.T) *fake {
	t.Helper()
	ca, err := pki.NewCA("cairn test CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueServer([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	caPath := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caPath, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	a := newAudit(t, "web1", ts(48*time.Hour), "bash=5.2.15-2", "openssl=3.0.11-1")
	b := newAudit(t, "web1", ts(10*time.Minute), "bash=5.2.15-2", "nginx=1.22.1-9", "openssl=3.0.11-1")
	f := &fake{
		addr:   lis.Addr().String(),
		caPath: caPath,
		polls:  map[string]int{},
		audits: map[string]*inventoryv1.Audit{a.GetHashes().GetDocument(): a, b.GetHashes().GetDocument(): b},
		auditA: a.GetHashes().GetDocument(),
		auditB: b.GetHashes().GetDocument(),
	}
	f.artifacts = newFakeArtifacts()
	f.releases = &fakeReleases{records: map[string]*controllerv1.ReleaseRecord{}}
	for i, action := range []string{"user.create", "enroll-token.create", "node.enroll", "baseline.accept", "node.label"} {
		f.entries = append(f.entries, &controllerv1.AuditLogEntry{
			Sequence: uint64(i + 1),
			Time:     ts(time.Duration(5-i) * time.Hour),
			Actor:    "user:admin",
			Action:   action,
			Object:   "node/n-web1",
			Details:  map[string]string{"n": string(rune('a' + i))},
			Hash:     strings.Repeat(string(rune('a'+i)), 64),
		})
	}

	s := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})),
		grpc.UnaryInterceptor(f.authorize),
	)
	controllerv1.RegisterEnrollTokensServer(s, fakeEnrollTokens{fake: f})
	controllerv1.RegisterNodesServer(s, fakeNodes{fake: f})
	controllerv1.RegisterAuditsServer(s, fakeAudits{fake: f})
	controllerv1.RegisterCMSServer(s, fakeCMS{fake: f})
	controllerv1.RegisterServicesServer(s, fakeServices{fake: f})
	controllerv1.RegisterUsersServer(s, fakeUsers{fake: f})
	controllerv1.RegisterAuditLogServer(s, fakeAuditLog{fake: f})
	controllerv1.RegisterArtifactsServer(s, f.artifacts)
	controllerv1.RegisterReleasesServer(s, f.releases)
	controllerv1.RegisterKnownErrorsServer(s, fakeKnownErrors{})
	controllerv1.RegisterRolloutsServer(s, fakeRollouts{fake: f})
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return f
}

// nodes is the fake's node registry.
func (f *fake) nodes() []*controllerv1.NodeRecord {
	return []*controllerv1.NodeRecord{
		{
			Id: "n-web1", Hostname: "web1", Labels: map[string]string{"env": "prod", "role": "web"},
			AgentVersion: "0.3.0", State: controllerv1.NodeRecord_STATE_CONNECTED,
			EnrolledAt: ts(72 * time.Hour), LastSeen: ts(12 * time.Second),
			LastAuditId: f.auditB, LastAuditAt: ts(10 * time.Minute),
			CertSerial: "0a1b2c", CertNotAfter: testNow.Add(29 * 24 * time.Hour).Format(time.RFC3339),
		},
		{
			Id: "n-db1", Hostname: "db1", Labels: map[string]string{"env": "prod"},
			AgentVersion: "0.3.0", State: controllerv1.NodeRecord_STATE_LOST,
			EnrolledAt: ts(72 * time.Hour), LastSeen: ts(3 * time.Hour),
		},
	}
}

func (f *fake) node(name string) (*controllerv1.NodeRecord, error) {
	for _, n := range f.nodes() {
		if n.GetId() == name || n.GetHostname() == name {
			return n, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "node %q not found", name)
}

type fakeEnrollTokens struct {
	controllerv1.UnimplementedEnrollTokensServer
	*fake
}

func (fakeEnrollTokens) CreateEnrollToken(_ context.Context, req *controllerv1.CreateEnrollTokenRequest) (*controllerv1.CreateEnrollTokenResponse, error) {
	if req.GetTtlSeconds() > 86400 {
		return nil, status.Error(codes.InvalidArgument, "ttl above 24h")
	}
	return &controllerv1.CreateEnrollTokenResponse{
		Token: "cairn_e_join-me", Id: "et-1",
		ExpiresAt: testNow.Add(time.Duration(req.GetTtlSeconds()) * time.Second).Format(time.RFC3339),
		Uses:      req.GetUses(),
	}, nil
}

type fakeNodes struct {
	controllerv1.UnimplementedNodesServer
	*fake
}

func (f fakeNodes) ListNodes(_ context.Context, req *controllerv1.ListNodesRequest) (*controllerv1.ListNodesResponse, error) {
	var out []*controllerv1.NodeRecord
	for _, n := range f.nodes() {
		match := true
		for k, v := range req.GetSelector() {
			if n.GetLabels()[k] != v {
				match = false
			}
		}
		if match {
			out = append(out, n)
		}
	}
	return &controllerv1.ListNodesResponse{Nodes: out}, nil
}

func (f fakeNodes) GetNode(_ context.Context, req *controllerv1.GetNodeRequest) (*controllerv1.NodeRecord, error) {
	return f.node(req.GetNode())
}

func (f fakeNodes) LabelNode(_ context.Context, req *controllerv1.LabelNodeRequest) (*controllerv1.NodeRecord, error) {
	n, err := f.node(req.GetNode())
	if err != nil {
		return nil, err
	}
	for k, v := range req.GetSet() {
		if v == "" {
			delete(n.Labels, k)
		} else {
			n.Labels[k] = v
		}
	}
	return n, nil
}

func (f fakeNodes) RevokeNode(_ context.Context, req *controllerv1.RevokeNodeRequest) (*controllerv1.NodeRecord, error) {
	n, err := f.node(req.GetNode())
	if err != nil {
		return nil, err
	}
	n.State = controllerv1.NodeRecord_STATE_REVOKED
	return n, nil
}

type fakeAudits struct {
	controllerv1.UnimplementedAuditsServer
	*fake
}

// RunAudit makes one command per node. The commands of n-web1 succeed on
// the second poll; those of n-db1 fail on the first, and a node called
// "offline" never answers.
func (f fakeAudits) RunAudit(_ context.Context, req *controllerv1.RunAuditRequest) (*controllerv1.RunAuditResponse, error) {
	var nodes []string
	if req.GetNode() != "" {
		if req.GetNode() == "offline" {
			nodes = []string{"n-offline"}
		} else {
			n, err := f.node(req.GetNode())
			if err != nil {
				return nil, err
			}
			nodes = []string{n.GetId()}
		}
	} else {
		resp, _ := fakeNodes{fake: f.fake}.ListNodes(context.Background(), &controllerv1.ListNodesRequest{Selector: req.GetSelector()})
		for _, n := range resp.GetNodes() {
			nodes = append(nodes, n.GetId())
		}
	}
	var out []*controllerv1.CommandRecord
	for _, n := range nodes {
		out = append(out, &controllerv1.CommandRecord{Id: "cmd-" + n, NodeId: n, Kind: "audit", State: controllerv1.CommandRecord_STATE_PENDING})
	}
	return &controllerv1.RunAuditResponse{Commands: out}, nil
}

func (f fakeAudits) GetCommand(_ context.Context, req *controllerv1.GetCommandRequest) (*controllerv1.CommandRecord, error) {
	f.mu.Lock()
	f.polls[req.GetId()]++
	n := f.polls[req.GetId()]
	f.mu.Unlock()
	node := strings.TrimPrefix(req.GetId(), "cmd-")
	c := &controllerv1.CommandRecord{Id: req.GetId(), NodeId: node, Kind: "audit"}
	switch {
	case node == "n-db1":
		c.State, c.Error = controllerv1.CommandRecord_STATE_FAILED, "collector packages: dpkg status unreadable"
	case node == "n-offline":
		c.State = controllerv1.CommandRecord_STATE_PENDING
	case n == 1:
		c.State = controllerv1.CommandRecord_STATE_ACKNOWLEDGED
	default:
		c.State, c.AuditId = controllerv1.CommandRecord_STATE_SUCCEEDED, f.auditB
	}
	return c, nil
}

func (f fakeAudits) auditRecord(id string, cmd string) *controllerv1.AuditRecord {
	a := f.audits[id]
	return &controllerv1.AuditRecord{
		Id: id, NodeId: "n-web1", Hostname: "web1", CollectedAt: a.GetHeader().GetCollectedAt(),
		StoredAt: a.GetHeader().GetCollectedAt(), ContentHash: a.GetHashes().GetContent(),
		SizeBytes: 48 << 10, CommandId: cmd, Blob: id,
	}
}

func (f fakeAudits) ListAudits(_ context.Context, req *controllerv1.ListAuditsRequest) (*controllerv1.ListAuditsResponse, error) {
	n, err := f.node(req.GetNode())
	if err != nil {
		return nil, err
	}
	if n.GetId() != "n-web1" {
		return &controllerv1.ListAuditsResponse{}, nil
	}
	b := f.auditRecord(f.auditB, "cmd-n-web1")
	b.FailedCollectors = []string{"hardware.gpu"}
	return &controllerv1.ListAuditsResponse{Audits: []*controllerv1.AuditRecord{f.auditRecord(f.auditA, ""), b}}, nil
}

func (f fakeAudits) GetAudit(_ context.Context, req *controllerv1.GetAuditRequest) (*controllerv1.GetAuditResponse, error) {
	if req.GetId() == "tampered" {
		a := proto.Clone(f.audits[f.auditA]).(*inventoryv1.Audit)
		a.Os.Hostname = "evil"
		return &controllerv1.GetAuditResponse{Record: f.auditRecord(f.auditA, ""), Audit: a}, nil
	}
	a, ok := f.audits[req.GetId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "audit %s not found", req.GetId())
	}
	return &controllerv1.GetAuditResponse{Record: f.auditRecord(req.GetId(), ""), Audit: a}, nil
}

type fakeCMS struct {
	controllerv1.UnimplementedCMSServer
	*fake
}

func (f fakeCMS) baselines() []*controllerv1.BaselineRecord {
	return []*controllerv1.BaselineRecord{
		{NodeId: "n-web1", Version: 1, AuditId: f.auditA, AcceptedBy: "user:admin", AcceptedAt: ts(47 * time.Hour), Reason: "initial baseline",
			Tracked: []string{"/etc/nginx/nginx.conf", "/etc/ssh/sshd_config"}, Untracked: []string{"/etc/nginx/old.conf"}},
	}
}

func (f fakeCMS) AcceptBaseline(_ context.Context, req *controllerv1.AcceptBaselineRequest) (*controllerv1.BaselineRecord, error) {
	n, err := f.node(req.GetNode())
	if err != nil {
		return nil, err
	}
	id := req.GetAuditId()
	if id == "" {
		id = n.GetLastAuditId()
	}
	return &controllerv1.BaselineRecord{NodeId: n.GetId(), Version: 2, AuditId: id, AcceptedBy: "user:admin", AcceptedAt: testNow.Format(time.RFC3339), Reason: req.GetReason()}, nil
}

func (f fakeCMS) BaselineHistory(_ context.Context, req *controllerv1.BaselineHistoryRequest) (*controllerv1.BaselineHistoryResponse, error) {
	n, err := f.node(req.GetNode())
	if err != nil {
		return nil, err
	}
	if n.GetId() != "n-web1" {
		return &controllerv1.BaselineHistoryResponse{}, nil
	}
	return &controllerv1.BaselineHistoryResponse{Baselines: f.baselines()}, nil
}

func (f fakeCMS) Drift(_ context.Context, req *controllerv1.DriftRequest) (*controllerv1.DriftResponse, error) {
	if req.GetService() != "" && req.GetService() != "shop" {
		return nil, status.Errorf(codes.NotFound, "service %q not found", req.GetService())
	}
	r := diff.Compare(f.audits[f.auditA], f.audits[f.auditB])
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	// api1's baseline did not track a file its latest audit tracked.
	files := func(patterns ...string) *inventoryv1.Audit {
		a := &inventoryv1.Audit{
			Header:     &inventoryv1.Header{CollectedAt: "2025-06-01T11:00:00Z"},
			Os:         &inventoryv1.OS{Hostname: "api1"},
			Files:      &inventoryv1.Files{Patterns: patterns},
			Collectors: []*inventoryv1.CollectorStatus{{Name: "files", Section: "files", State: inventoryv1.CollectorStatus_STATE_OK}},
		}
		for _, p := range patterns {
			a.Files.Files = append(a.Files.Files, &inventoryv1.File{Key: p, Path: p, Type: "file", Mode: "0644"})
		}
		return a
	}
	nc := diff.Compare(files("/etc/api.conf"), files("/etc/api.conf", "/etc/app.conf"))
	ncb, err := json.Marshal(nc)
	if err != nil {
		return nil, err
	}
	return &controllerv1.DriftResponse{
		Nodes: []*controllerv1.NodeDrift{
			{NodeId: "n-web1", Hostname: "web1", HasBaseline: true, BaselineAuditId: f.auditA, LatestAuditId: f.auditB, ReportJson: b, Summary: r.Summary, Changes: 1},
			{NodeId: "n-db1", Hostname: "db1", Summary: "no baseline"},
			{NodeId: "n-api1", Hostname: "api1", HasBaseline: true, BaselineAuditId: "sha256:base", LatestAuditId: "sha256:latest", ReportJson: ncb, Summary: nc.Summary, PathsNotCompared: 1},
		},
		NodesDrifted: 1, NodesWithoutBaseline: 1, TotalChanges: 1, TotalPathsNotCompared: 1,
	}, nil
}

func (f fakeCMS) Export(context.Context, *controllerv1.ExportRequest) (*controllerv1.ExportResponse, error) {
	return &controllerv1.ExportResponse{
		Nodes:     f.nodes(),
		Services:  []*controllerv1.ServiceRecord{{Name: "shop", Selector: map[string]string{"role": "web"}, Description: "web shop"}},
		Baselines: f.baselines(),
	}, nil
}

func (f fakeCMS) Import(_ context.Context, req *controllerv1.ImportRequest) (*controllerv1.ImportResponse, error) {
	resp := &controllerv1.ImportResponse{ServicesCreated: uint32(len(req.GetServices()))}
	for _, n := range req.GetNodes() {
		if _, err := f.node(n.GetId()); err != nil {
			resp.Skipped = append(resp.Skipped, "node "+n.GetId()+": not enrolled")
			continue
		}
		resp.NodesUpdated++
	}
	return resp, nil
}

type fakeServices struct {
	controllerv1.UnimplementedServicesServer
	*fake
}

func (fakeServices) CreateService(_ context.Context, req *controllerv1.CreateServiceRequest) (*controllerv1.ServiceRecord, error) {
	if req.GetName() == "shop" {
		return nil, status.Error(codes.AlreadyExists, `service "shop" exists`)
	}
	return &controllerv1.ServiceRecord{Name: req.GetName(), Selector: req.GetSelector(), Description: req.GetDescription(), CreatedBy: "user:admin", CreatedAt: testNow.Format(time.RFC3339)}, nil
}

func (fakeServices) ListServices(context.Context, *controllerv1.ListServicesRequest) (*controllerv1.ListServicesResponse, error) {
	return &controllerv1.ListServicesResponse{Services: []*controllerv1.ServiceRecord{
		{Name: "shop", Selector: map[string]string{"role": "web", "env": "prod"}, Description: "web shop", CreatedBy: "user:admin", CreatedAt: ts(24 * time.Hour)},
		{Name: "billing", Selector: map[string]string{"app": "billing"}, CreatedBy: "user:alice", CreatedAt: ts(90 * time.Minute)},
	}}, nil
}

func (fakeServices) DeleteService(_ context.Context, req *controllerv1.DeleteServiceRequest) (*controllerv1.DeleteServiceResponse, error) {
	if req.GetName() != "shop" {
		return nil, status.Errorf(codes.NotFound, "service %q not found", req.GetName())
	}
	return &controllerv1.DeleteServiceResponse{}, nil
}

type fakeUsers struct {
	controllerv1.UnimplementedUsersServer
	*fake
}

func (fakeUsers) CreateUser(_ context.Context, req *controllerv1.CreateUserRequest) (*controllerv1.UserRecord, error) {
	for _, r := range req.GetRoles() {
		if !slices.Contains([]string{"admin", "release-manager", "tester", "approver", "operator", "auditor"}, r) {
			return nil, status.Errorf(codes.InvalidArgument, "unknown role %q", r)
		}
	}
	return &controllerv1.UserRecord{Name: req.GetName(), Roles: req.GetRoles(), CreatedBy: "user:admin", CreatedAt: testNow.Format(time.RFC3339)}, nil
}

func (fakeUsers) ListUsers(context.Context, *controllerv1.ListUsersRequest) (*controllerv1.ListUsersResponse, error) {
	return &controllerv1.ListUsersResponse{Users: []*controllerv1.UserRecord{
		{Name: "admin", Roles: []string{"admin"}, CreatedBy: "system", CreatedAt: ts(72 * time.Hour)},
		{Name: "alice", Roles: []string{"release-manager", "tester"}, CreatedBy: "user:admin", CreatedAt: ts(2 * time.Hour), Disabled: true},
	}}, nil
}

func (fakeUsers) CreateToken(_ context.Context, req *controllerv1.CreateTokenRequest) (*controllerv1.CreateTokenResponse, error) {
	if req.GetUser() != "alice" {
		return nil, status.Errorf(codes.NotFound, "user %q not found", req.GetUser())
	}
	return &controllerv1.CreateTokenResponse{Token: "cairn_u_alice-secret", Id: "tok-7", Issuers: []string{"admin"}}, nil
}

func (f fakeUsers) ListTokens(_ context.Context, req *controllerv1.ListTokensRequest) (*controllerv1.ListTokensResponse, error) {
	f.record(req)
	all := []*controllerv1.APIToken{
		{Id: "tok_admin", User: "admin", State: controllerv1.APIToken_STATE_ACTIVE, CreatedBy: "system", CreatedAt: ts(72 * time.Hour), LastUsedAt: ts(time.Minute)},
		{Id: "tok-7", User: "alice", State: controllerv1.APIToken_STATE_REVOKED, CreatedBy: "user:admin", CreatedAt: ts(48 * time.Hour),
			ExpiresAt: ts(-30 * 24 * time.Hour), Issuers: []string{"admin"}, RevokedAt: ts(2 * time.Hour), RevokedBy: "user:admin"},
		{Id: "tok-8", User: "alice", State: controllerv1.APIToken_STATE_EXPIRED, CreatedBy: "user:admin", CreatedAt: ts(48 * time.Hour), ExpiresAt: ts(24 * time.Hour)},
		{Id: "tok-9", User: "bob", State: controllerv1.APIToken_STATE_USER_DISABLED, CreatedBy: "user:admin", CreatedAt: ts(3 * time.Hour)},
	}
	resp := &controllerv1.ListTokensResponse{}
	for _, t := range all {
		if req.GetUser() == "" || t.GetUser() == req.GetUser() {
			resp.Tokens = append(resp.Tokens, t)
		}
	}
	return resp, nil
}

func (f fakeUsers) RevokeToken(_ context.Context, req *controllerv1.RevokeTokenRequest) (*controllerv1.RevokeTokenResponse, error) {
	f.record(req)
	revoked := func(id, user string) *controllerv1.APIToken {
		return &controllerv1.APIToken{Id: id, User: user, State: controllerv1.APIToken_STATE_REVOKED, RevokedAt: testNow.Format(time.RFC3339), RevokedBy: "user:admin"}
	}
	resp := &controllerv1.RevokeTokenResponse{}
	if req.GetUser() == "alice" {
		resp.Revoked = append(resp.Revoked, revoked("tok-7", "alice"), revoked("tok-8", "alice"))
	}
	for _, id := range req.GetIds() {
		switch id {
		case "tok-7":
			resp.Revoked = append(resp.Revoked, revoked(id, "alice"))
		case "tok-old":
		default:
			return nil, status.Errorf(codes.NotFound, "token %s: not found: nothing was revoked", id)
		}
	}
	return resp, nil
}

func (f fakeUsers) DisableUser(_ context.Context, req *controllerv1.DisableUserRequest) (*controllerv1.UserRecord, error) {
	f.record(req)
	if req.GetName() == "admin" {
		return nil, status.Error(codes.FailedPrecondition, "this would leave no enabled user with the admin role")
	}
	return &controllerv1.UserRecord{Name: req.GetName(), Roles: []string{"tester"}, Disabled: true, DisabledBy: "user:admin", DisabledAt: testNow.Format(time.RFC3339)}, nil
}

func (f fakeUsers) EnableUser(_ context.Context, req *controllerv1.EnableUserRequest) (*controllerv1.UserRecord, error) {
	f.record(req)
	return &controllerv1.UserRecord{Name: req.GetName(), Roles: []string{"tester"}}, nil
}

func (f fakeUsers) SetRoles(_ context.Context, req *controllerv1.SetRolesRequest) (*controllerv1.UserRecord, error) {
	f.record(req)
	return &controllerv1.UserRecord{Name: req.GetName(), Roles: req.GetRoles()}, nil
}

func (fakeUsers) WhoAmI(context.Context, *controllerv1.WhoAmIRequest) (*controllerv1.UserRecord, error) {
	return &controllerv1.UserRecord{Name: "admin", Roles: []string{"admin"}}, nil
}

type fakeAuditLog struct {
	controllerv1.UnimplementedAuditLogServer
	*fake
}

// ListEntries honours since, after_sequence and limit.
func (f fakeAuditLog) ListEntries(_ context.Context, req *controllerv1.ListEntriesRequest) (*controllerv1.ListEntriesResponse, error) {
	var out []*controllerv1.AuditLogEntry
	for _, e := range f.entries {
		if e.GetSequence() <= req.GetAfterSequence() || (req.GetSince() != "" && e.GetTime() < req.GetSince()) {
			continue
		}
		if req.GetLimit() > 0 && len(out) == int(req.GetLimit()) {
			break
		}
		out = append(out, e)
	}
	return &controllerv1.ListEntriesResponse{Entries: out}, nil
}

func (f fakeAuditLog) Verify(context.Context, *controllerv1.VerifyRequest) (*controllerv1.VerifyResponse, error) {
	f.mu.Lock()
	broken := f.logBroken
	f.mu.Unlock()
	if broken {
		return &controllerv1.VerifyResponse{Entries: 5, FirstBadSequence: 3, Problem: "hash does not match its content (edited)"}, nil
	}
	return &controllerv1.VerifyResponse{Ok: true, Entries: 5, HeadHash: f.entries[len(f.entries)-1].GetHash()}, nil
}
