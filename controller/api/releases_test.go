package api_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/controller/api"
	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/controller/auth/authtest"
	"github.com/cairn-ops/cairn/controller/blob"
	"github.com/cairn-ops/cairn/controller/store"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// releaseEnv serves the Releases and KnownErrors services over TLS on a
// memory store holding two artifacts, with users of each role.
type releaseEnv struct {
	st        store.Store
	blobs     *blob.Store
	pub       ed25519.PublicKey
	conn      *grpc.ClientConn
	rel       controllerv1.ReleasesClient
	ke        controllerv1.KnownErrorsClient
	ctx       map[string]context.Context
	site, doc string
}

func newReleaseEnv(t *testing.T) *releaseEnv {
	t.Helper()
	e := &releaseEnv{st: store.NewMemory(), ctx: map[string]context.Context{}}
	var err error
	if e.blobs, err = blob.Open(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	e.pub = pub
	srv := authtest.Start(t, e.st, func(s *grpc.Server) {
		api.Register(s, api.Deps{Store: e.st, Blobs: e.blobs, Now: func() time.Time { return now },
			ReleaseKeys: oneKey(key)})
	})
	e.conn = srv.Dial(t, nil)
	e.rel, e.ke = controllerv1.NewReleasesClient(e.conn), controllerv1.NewKnownErrorsClient(e.conn)
	for user, roles := range map[string][]string{
		"rm":        {auth.RoleReleaseManager},
		"tester":    {auth.RoleTester},
		"approver":  {auth.RoleApprover},
		"approver2": {auth.RoleApprover},
		"auditor":   {auth.RoleAuditor},
		// boss holds every release role, so only segregation of duties
		// stops them; multi tests and approves.
		"boss":  {auth.RoleReleaseManager, auth.RoleTester, auth.RoleApprover},
		"multi": {auth.RoleTester, auth.RoleApprover},
	} {
		e.ctx[user] = authtest.WithToken(context.Background(), authtest.AddUser(t, e.st, user, roles...))
	}
	e.site = e.artifact(t, "site.tar.gz", "application", "the site")
	e.doc = e.artifact(t, "notes.txt", "documentation", "the notes")
	return e
}

func (e *releaseEnv) artifact(t *testing.T, name, kind, content string) string {
	t.Helper()
	digest, size, err := e.blobs.Put(t.Context(), strings.NewReader(content), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.Update(t.Context(), func(tx store.Tx) error {
		return tx.PutArtifact(&controllerv1.ArtifactRecord{Digest: digest, Name: name, Kind: kind, SizeBytes: size})
	}); err != nil {
		t.Fatal(err)
	}
	return digest
}

func (e *releaseEnv) create(user, version string, approvals int) (*controllerv1.ReleaseRecord, error) {
	y := fmt.Sprintf(`apiVersion: cairn/v1
kind: Release
name: webshop
version: %s
components:
  - {name: site, kind: application, path: site.tar.gz}
  - {name: docs, kind: documentation, digest: %s}
steps:
  - {name: unpack, plugin: archive, params: {artifact: site, dest: /srv/webshop}}
known_errors:
  - {id: KE-1, summary: slow first request, workaround: wait a second, status: workaround}
  - {id: KE-2, summary: old bug, status: resolved}
notes: |
  Faster checkout.
approvals:
  required: %d
`, version, e.doc, approvals)
	return e.rel.CreateRelease(e.ctx[user], &controllerv1.CreateReleaseRequest{
		ManifestYaml: []byte(y), Filename: "release.yaml", ComponentDigests: map[string]string{"site": e.site},
	})
}

func rref(version string) *controllerv1.ReleaseRef {
	return &controllerv1.ReleaseRef{Name: "webshop", Version: version}
}

func (e *releaseEnv) test(user, version, result string) (*controllerv1.ReleaseRecord, error) {
	return e.rel.RecordTest(e.ctx[user], &controllerv1.RecordTestRequest{Release: rref(version), Result: result, Note: "suite", Evidence: []string{e.doc}})
}

func (e *releaseEnv) approve(user, version string) (*controllerv1.ReleaseRecord, error) {
	return e.rel.ApproveRelease(e.ctx[user], &controllerv1.DecisionRequest{Release: rref(version), Note: "ok"})
}

// dump is every record of the store and the audit log.
func (e *releaseEnv) dump(t *testing.T) []proto.Message {
	t.Helper()
	var out []proto.Message
	if err := e.st.View(t.Context(), func(tx store.Tx) error {
		rels, err := tx.Releases()
		if err != nil {
			return err
		}
		arts, err := tx.Artifacts()
		if err != nil {
			return err
		}
		users, err := tx.Users()
		if err != nil {
			return err
		}
		log, err := tx.LogEntries(0, 0)
		for _, m := range rels {
			out = append(out, m)
		}
		for _, m := range arts {
			out = append(out, m)
		}
		for _, m := range users {
			out = append(out, m)
		}
		for _, m := range log {
			out = append(out, m)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// refused asserts that call fails with code and msg and changes nothing.
func (e *releaseEnv) refused(t *testing.T, name string, code codes.Code, msg string, call func() error) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		before := e.dump(t)
		checkCode(t, call(), code, msg)
		if diff := cmp.Diff(before, e.dump(t), protocmp.Transform()); diff != "" {
			t.Errorf("store changed by a refused call (-before +after):\n%s", diff)
		}
	})
}

// must fails the test on an error: must(t)(call()).
func must(t *testing.T) func(*controllerv1.ReleaseRecord, error) *controllerv1.ReleaseRecord {
	return func(rec *controllerv1.ReleaseRecord, err error) *controllerv1.ReleaseRecord {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
}

func TestReleaseLifecycle(t *testing.T) {
	e := newReleaseEnv(t)
	e.refused(t, "bad manifest", codes.InvalidArgument, "release.yaml:", func() error {
		_, err := e.rel.CreateRelease(e.ctx["boss"], &controllerv1.CreateReleaseRequest{ManifestYaml: []byte("name: x\nversoin: 1\n"), Filename: "release.yaml"})
		return err
	})
	badInput := []struct{ name, yaml, msg string }{
		{"invalid yaml", "name: [unclosed\n", "release.yaml:"},
		{"unknown field", "apiVersion: cairn/v1\nkind: Release\nname: webshop\nversion: 9.0.0\ncolour: red\n", "colour"},
		{"unknown plugin", "apiVersion: cairn/v1\nkind: Release\nname: webshop\nversion: 9.0.0\nsteps:\n  - {name: s, plugin: teleport, params: {}}\n", `unknown plugin "teleport"`},
		{"params against the plugin's schema", "apiVersion: cairn/v1\nkind: Release\nname: webshop\nversion: 9.0.0\nsteps:\n  - name: s\n    plugin: exec\n    params: {env: {A: b}}\n", "release.yaml:8: steps[0].params.argv"},
		{"missing artifact", "apiVersion: cairn/v1\nkind: Release\nname: webshop\nversion: 9.0.0\ncomponents:\n  - {name: site, kind: application, path: site.tar.gz}\n", "site"},
	}
	for _, tt := range badInput {
		e.refused(t, tt.name, codes.InvalidArgument, tt.msg, func() error {
			_, err := e.rel.CreateRelease(e.ctx["boss"], &controllerv1.CreateReleaseRequest{ManifestYaml: []byte(tt.yaml), Filename: "release.yaml"})
			return err
		})
	}
	e.refused(t, "tester creates", codes.PermissionDenied, "", func() error {
		_, err := e.create("tester", "1.0.0", 1)
		return err
	})

	rec := must(t)(e.create("boss", "1.0.0", 1))
	if rec.GetState() != controllerv1.ReleaseRecord_STATE_DRAFT || rec.GetCreatedBy() != "user:boss" {
		t.Fatalf("created: %v", rec)
	}
	e.refused(t, "duplicate version", codes.AlreadyExists, "new version", func() error {
		_, err := e.create("rm", "1.0.0", 1)
		return err
	})
	e.refused(t, "test on a draft", codes.FailedPrecondition, "draft", func() error {
		_, err := e.test("tester", "1.0.0", "pass")
		return err
	})

	rec = must(t)(e.rel.SealRelease(e.ctx["boss"], rref("1.0.0")))
	if rec.GetState() != controllerv1.ReleaseRecord_STATE_SEALED || !ed25519.Verify(e.pub, []byte(rec.GetDigest()), rec.GetSignature()) {
		t.Fatalf("sealed: %v", rec)
	}
	e.refused(t, "seal twice", codes.FailedPrecondition, "only a draft", func() error {
		_, err := e.rel.SealRelease(e.ctx["boss"], rref("1.0.0"))
		return err
	})
	e.refused(t, "approve before test", codes.FailedPrecondition, "passing test", func() error {
		_, err := e.approve("approver", "1.0.0")
		return err
	})
	e.refused(t, "author records test", codes.PermissionDenied, "the release's author cannot test it", func() error {
		_, err := e.test("boss", "1.0.0", "pass")
		return err
	})
	e.refused(t, "approver records test", codes.PermissionDenied, "", func() error {
		_, err := e.test("approver", "1.0.0", "pass")
		return err
	})

	rec = must(t)(e.test("multi", "1.0.0", "pass"))
	if rec.GetState() != controllerv1.ReleaseRecord_STATE_TESTED {
		t.Fatalf("tested: %v", rec.GetState())
	}
	e.refused(t, "author approves", codes.PermissionDenied, "author", func() error {
		_, err := e.approve("boss", "1.0.0")
		return err
	})
	e.refused(t, "tester approves", codes.PermissionDenied, "tester", func() error {
		_, err := e.approve("multi", "1.0.0")
		return err
	})
	rec = must(t)(e.approve("approver", "1.0.0"))
	if rec.GetState() != controllerv1.ReleaseRecord_STATE_APPROVED {
		t.Fatalf("approved: %v", rec.GetState())
	}
	e.refused(t, "approve twice", codes.FailedPrecondition, "", func() error {
		_, err := e.approve("approver", "1.0.0")
		return err
	})

	v, err := e.rel.VerifyRelease(e.ctx["auditor"], rref("1.0.0"))
	if err != nil || !v.GetOk() || v.GetDigest() != rec.GetDigest() {
		t.Errorf("VerifyRelease = %v, %v; want ok", v, err)
	}

	// Notes and dossier in every format.
	for _, tc := range []struct {
		dossier bool
		format  string
		want    []string
	}{
		{false, "markdown", []string{"# Release notes: webshop@1.0.0", e.site, "KE-1 [workaround]: slow first request; workaround: wait a second", "Faster checkout."}},
		{false, "html", []string{"<!DOCTYPE html>", "<h2>Known errors</h2>", e.doc}},
		{false, "json", []string{`"webshop"`, `"STATE_APPROVED"`}},
		{true, "markdown", []string{"# Release dossier", rec.GetDigest(), "user:boss release.create", "user:multi release.test", "user:approver release.approve", "none yet", "evidence " + e.doc}},
		{true, "html", []string{"<!DOCTYPE html>", "<h2>Deployments</h2>"}},
	} {
		req := &controllerv1.RenderRequest{Release: rref("1.0.0"), Format: tc.format}
		var resp *controllerv1.RenderResponse
		if tc.dossier {
			resp, err = e.rel.ReleaseDossier(e.ctx["auditor"], req)
		} else {
			resp, err = e.rel.ReleaseNotes(e.ctx["tester"], req)
		}
		if err != nil {
			t.Fatalf("render %v %s: %v", tc.dossier, tc.format, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(string(resp.GetContent()), w) {
				t.Errorf("render dossier=%v %s: missing %q in\n%s", tc.dossier, tc.format, w, resp.GetContent())
			}
		}
	}
	_, err = e.rel.ReleaseNotes(e.ctx["tester"], &controllerv1.RenderRequest{Release: rref("1.0.0"), Format: "pdf"})
	checkCode(t, err, codes.InvalidArgument, "pdf")

	ke, err := e.ke.ListKnownErrors(e.ctx["auditor"], &controllerv1.ListKnownErrorsRequest{OpenOnly: true, Release: "webshop"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ke.GetKnownErrors()) != 1 || ke.GetKnownErrors()[0].GetId() != "KE-1" || ke.GetKnownErrors()[0].GetRelease() != "webshop@1.0.0" {
		t.Errorf("ListKnownErrors open only: %v", ke)
	}
	list, err := e.rel.ListReleases(e.ctx["auditor"], &controllerv1.ListReleasesRequest{})
	if err != nil || len(list.GetReleases()) != 1 {
		t.Errorf("ListReleases = %v, %v", list, err)
	}
}

func TestReleaseTwoApprovers(t *testing.T) {
	e := newReleaseEnv(t)
	must(t)(e.create("rm", "2.0.0", 2))
	must(t)(e.rel.SealRelease(e.ctx["rm"], rref("2.0.0")))
	must(t)(e.test("tester", "2.0.0", "pass"))
	if rec := must(t)(e.approve("approver", "2.0.0")); rec.GetState() != controllerv1.ReleaseRecord_STATE_TESTED {
		t.Fatalf("after one of two approvals: %v", rec.GetState())
	}
	e.refused(t, "same approver again", codes.FailedPrecondition, "counts once", func() error {
		_, err := e.approve("approver", "2.0.0")
		return err
	})
	if rec := must(t)(e.approve("approver2", "2.0.0")); rec.GetState() != controllerv1.ReleaseRecord_STATE_APPROVED {
		t.Fatalf("after two approvals: %v", rec.GetState())
	}
}

func TestReleaseReject(t *testing.T) {
	e := newReleaseEnv(t)
	must(t)(e.create("rm", "1.0.0", 1))
	must(t)(e.rel.SealRelease(e.ctx["rm"], rref("1.0.0")))
	rec := must(t)(e.rel.RejectRelease(e.ctx["approver"], &controllerv1.DecisionRequest{Release: rref("1.0.0"), Note: "no"}))
	if rec.GetState() != controllerv1.ReleaseRecord_STATE_REJECTED {
		t.Fatalf("rejected: %v", rec.GetState())
	}
	e.refused(t, "test a rejected release", codes.FailedPrecondition, "", func() error {
		_, err := e.test("tester", "1.0.0", "pass")
		return err
	})
}

// TestReleaseVerifyTampered changes the stored canonical manifest and
// swaps an artifact's blob: VerifyRelease reports both.
func TestReleaseVerifyTampered(t *testing.T) {
	e := newReleaseEnv(t)
	must(t)(e.create("rm", "1.0.0", 1))
	must(t)(e.rel.SealRelease(e.ctx["rm"], rref("1.0.0")))
	if err := e.st.Update(t.Context(), func(tx store.Tx) error {
		rec, err := tx.Release("webshop", "1.0.0")
		if err != nil {
			return err
		}
		rec.ManifestCanonical = []byte(strings.Replace(string(rec.ManifestCanonical), "webshop", "webshap", 1))
		return tx.PutRelease(rec)
	}); err != nil {
		t.Fatal(err)
	}
	var path string
	filepath.Walk(e.blobs.Dir(), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && strings.Contains(filepath.Base(p), e.site) {
			path = p
		}
		return nil
	})
	if path == "" {
		t.Fatal("no blob file for the site")
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("the SITE"), 0o400); err != nil {
		t.Fatal(err)
	}
	v, err := e.rel.VerifyRelease(e.ctx["auditor"], rref("1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(v.GetProblems(), "\n")
	if v.GetOk() || !strings.Contains(all, "digest mismatch") || !strings.Contains(all, "component site") {
		t.Errorf("VerifyRelease of a tampered release = %v", v)
	}
}

// TestCreateReleaseCheckOnly: check_only answers whether the caller may
// create the release and whether it is new, without component digests,
// and stores nothing either way.
func TestCreateReleaseCheckOnly(t *testing.T) {
	e := newReleaseEnv(t)
	y := []byte("apiVersion: cairn/v1\nkind: Release\nname: webshop\nversion: 1.0.0\ncomponents:\n  - {name: site, kind: application, path: site.tar.gz}\n")
	check := func(user string) error {
		_, err := e.rel.CreateRelease(e.ctx[user], &controllerv1.CreateReleaseRequest{ManifestYaml: y, Filename: "release.yaml", CheckOnly: true})
		return err
	}
	e.refused(t, "tester", codes.PermissionDenied, "", func() error { return check("tester") })
	before := e.dump(t)
	if err := check("rm"); err != nil {
		t.Fatalf("check_only by a release manager: %v", err)
	}
	if diff := cmp.Diff(before, e.dump(t), protocmp.Transform()); diff != "" {
		t.Errorf("check_only changed the store (-before +after):\n%s", diff)
	}
	must(t)(e.create("rm", "1.0.0", 1))
	e.refused(t, "existing release", codes.AlreadyExists, "new version", func() error { return check("rm") })
}
