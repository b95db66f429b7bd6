package ctl

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/google/go-cmp/cmp"

	"github.com/cairn-ops/cairn/internal/manifest"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// fakeReleases is the fake controller's release store: it follows the
// lifecycle states, not the separation of duties (the real controller's
// tests and the integration test cover those).
type fakeReleases struct {
	controllerv1.UnimplementedReleasesServer

	mu      sync.Mutex
	records map[string]*controllerv1.ReleaseRecord
	// problems make VerifyRelease fail.
	problems []string
}

func (f *fakeReleases) get(ref *controllerv1.ReleaseRef) (*controllerv1.ReleaseRecord, error) {
	r, ok := f.records[refString(ref)]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "release %s not found", refString(ref))
	}
	return r, nil
}

func (f *fakeReleases) CreateRelease(_ context.Context, req *controllerv1.CreateReleaseRequest) (*controllerv1.ReleaseRecord, error) {
	m, err := manifest.Parse(req.GetManifestYaml(), req.GetFilename())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	key := m.Name + "@" + m.Version
	if _, ok := f.records[key]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "release %s exists", key)
	}
	if req.GetCheckOnly() {
		return &controllerv1.ReleaseRecord{Name: m.Name, Version: m.Version, State: controllerv1.ReleaseRecord_STATE_DRAFT}, nil
	}
	r := &controllerv1.ReleaseRecord{Name: m.Name, Version: m.Version, State: controllerv1.ReleaseRecord_STATE_DRAFT,
		ManifestYaml: req.GetManifestYaml(), CreatedBy: "user:admin", CreatedAt: ts(0), ApprovalsRequired: 1}
	for _, c := range m.Components {
		d := c.Digest
		if d == "" {
			d = req.GetComponentDigests()[c.Name]
		}
		if d == "" {
			return nil, status.Errorf(codes.InvalidArgument, "component %s has no digest", c.Name)
		}
		r.Components = append(r.Components, &controllerv1.ReleaseComponent{Name: c.Name, Kind: c.Kind, Digest: d, SizeBytes: 3})
	}
	f.records[key] = r
	return r, nil
}

func (f *fakeReleases) transition(ref *controllerv1.ReleaseRef, from, to controllerv1.ReleaseRecord_State, change func(*controllerv1.ReleaseRecord)) (*controllerv1.ReleaseRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.get(ref)
	if err != nil {
		return nil, err
	}
	if r.GetState() != from {
		return nil, status.Errorf(codes.FailedPrecondition, "release %s is %s, not %s", refString(ref), enumName(r.GetState()), enumName(from))
	}
	change(r)
	r.State = to
	return r, nil
}

func (f *fakeReleases) SealRelease(_ context.Context, ref *controllerv1.ReleaseRef) (*controllerv1.ReleaseRecord, error) {
	return f.transition(ref, controllerv1.ReleaseRecord_STATE_DRAFT, controllerv1.ReleaseRecord_STATE_SEALED, func(r *controllerv1.ReleaseRecord) {
		r.Digest, r.Signature, r.SealedBy, r.SealedAt = strings.Repeat("d", 64), []byte{0xab, 0xcd, 1, 2, 3, 4, 5, 6, 7, 8}, "user:admin", ts(0)
	})
}

func (f *fakeReleases) RecordTest(_ context.Context, req *controllerv1.RecordTestRequest) (*controllerv1.ReleaseRecord, error) {
	return f.transition(req.GetRelease(), controllerv1.ReleaseRecord_STATE_SEALED, controllerv1.ReleaseRecord_STATE_TESTED, func(r *controllerv1.ReleaseRecord) {
		r.Tests = append(r.Tests, &controllerv1.TestRecord{Tester: "user:qa", Result: req.GetResult(), Note: req.GetNote(), Evidence: req.GetEvidence(), RecordedAt: ts(0)})
	})
}

func (f *fakeReleases) ApproveRelease(_ context.Context, req *controllerv1.DecisionRequest) (*controllerv1.ReleaseRecord, error) {
	return f.transition(req.GetRelease(), controllerv1.ReleaseRecord_STATE_TESTED, controllerv1.ReleaseRecord_STATE_APPROVED, func(r *controllerv1.ReleaseRecord) {
		r.Decisions = append(r.Decisions, &controllerv1.Decision{By: "user:boss", Decision: "approve", Note: req.GetNote(), At: ts(0), ReleaseDigest: r.GetDigest()})
	})
}

func (f *fakeReleases) RejectRelease(_ context.Context, req *controllerv1.DecisionRequest) (*controllerv1.ReleaseRecord, error) {
	return f.transition(req.GetRelease(), controllerv1.ReleaseRecord_STATE_TESTED, controllerv1.ReleaseRecord_STATE_REJECTED, func(r *controllerv1.ReleaseRecord) {
		r.Decisions = append(r.Decisions, &controllerv1.Decision{By: "user:boss", Decision: "reject", Note: req.GetNote(), At: ts(0)})
	})
}

func (f *fakeReleases) GetRelease(_ context.Context, ref *controllerv1.ReleaseRef) (*controllerv1.ReleaseRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.get(ref)
}

func (f *fakeReleases) ListReleases(context.Context, *controllerv1.ListReleasesRequest) (*controllerv1.ListReleasesResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &controllerv1.ListReleasesResponse{}
	for _, r := range f.records {
		resp.Releases = append(resp.Releases, r)
	}
	return resp, nil
}

func (f *fakeReleases) VerifyRelease(_ context.Context, ref *controllerv1.ReleaseRef) (*controllerv1.VerifyReleaseResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, err := f.get(ref)
	if err != nil {
		return nil, err
	}
	return &controllerv1.VerifyReleaseResponse{Ok: len(f.problems) == 0, Problems: f.problems, Digest: r.GetDigest()}, nil
}

func (f *fakeReleases) render(req *controllerv1.RenderRequest, what string) (*controllerv1.RenderResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.get(req.GetRelease()); err != nil {
		return nil, err
	}
	return &controllerv1.RenderResponse{Content: []byte(what + " of " + refString(req.GetRelease()) + " as " + req.GetFormat() + "\n")}, nil
}

func (f *fakeReleases) ReleaseNotes(_ context.Context, req *controllerv1.RenderRequest) (*controllerv1.RenderResponse, error) {
	return f.render(req, "notes")
}

func (f *fakeReleases) ReleaseDossier(_ context.Context, req *controllerv1.RenderRequest) (*controllerv1.RenderResponse, error) {
	return f.render(req, "dossier")
}

type fakeKnownErrors struct {
	controllerv1.UnimplementedKnownErrorsServer
}

func (fakeKnownErrors) ListKnownErrors(_ context.Context, req *controllerv1.ListKnownErrorsRequest) (*controllerv1.ListKnownErrorsResponse, error) {
	resp := &controllerv1.ListKnownErrorsResponse{}
	if req.GetRelease() != "none" {
		resp.KnownErrors = []*controllerv1.KnownErrorEntry{{Release: "webshop@1.0.0", Id: "KE-1", Summary: "homepage check fails", Symptom: "refused", Workaround: "serve the site", Status: "workaround"}}
	}
	return resp, nil
}

// TestReleaseLifecycle takes the example release through every command
// against the fake controller, in order: each step depends on the last.
func TestReleaseLifecycle(t *testing.T) {
	f := startFake(t)
	example := filepath.Join("..", "..", "examples", "sandbox-release", "release.yaml")
	evidence := filepath.Join(t.TempDir(), "report.txt")
	if err := os.WriteFile(evidence, []byte("all green\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("all green\n"))
	evidenceDigest := hex.EncodeToString(sum[:])
	outFile := filepath.Join(t.TempDir(), "dossier.html")
	const rel = "webshop@1.0.0"
	ref := &controllerv1.ReleaseRef{Name: "webshop", Version: "1.0.0"}

	steps := []struct {
		name        string
		args        []string
		setup       func()
		code        int
		out, errOut []string
		// req is the last unary request the controller should have received.
		req proto.Message
	}{
		{name: "create no file", args: []string{"release", "create"}, code: ExitUsage, errOut: []string{"-f FILE is required"}},
		{name: "create invalid", args: []string{"release", "create", "-f", "testdata/release/missing-artifact.yaml"}, code: ExitUsage,
			errOut: []string{"does not exist", "invalid release manifest", "nothing uploaded"}},
		{name: "seal before create", args: []string{"release", "seal", rel}, code: ExitFailed, errOut: []string{"seal release webshop@1.0.0: release webshop@1.0.0 not found"}},
		{name: "create", args: []string{"release", "create", "-f", example}, out: []string{"release webshop@1.0.0 created (draft): 2 components"},
			errOut: []string{"pushing component assets", "pushing component site"}},
		{name: "create again", args: []string{"release", "create", "-f", example}, code: ExitFailed, errOut: []string{"release webshop@1.0.0 exists", "nothing uploaded"}},
		{name: "seal bad ref", args: []string{"release", "seal", "webshop"}, code: ExitUsage, errOut: []string{`"webshop" is not a release: want NAME@VERSION`}},
		{name: "seal no ref", args: []string{"release", "seal"}, code: ExitUsage, errOut: []string{"needs NAME@VERSION"}},
		{name: "seal", args: []string{"release", "seal", rel}, out: []string{"release webshop@1.0.0 sealed: digest sha256:dddd", "signed"}, req: ref},
		{name: "approve before test", args: []string{"release", "approve", rel, "--note", "ok"}, code: ExitFailed, errOut: []string{"release webshop@1.0.0 is sealed, not tested"}},
		{name: "test bad result", args: []string{"release", "test", "record", rel, "--result", "maybe", "--note", "x"}, code: ExitUsage, errOut: []string{"--result must be pass or fail"}},
		{name: "test no note", args: []string{"release", "test", "record", rel, "--result", "pass"}, code: ExitUsage, errOut: []string{"--note TEXT is required"}},
		{name: "test missing evidence", args: []string{"release", "test", "record", rel, "--result", "pass", "--note", "x", "--evidence", "nope.txt"}, code: ExitUsage, errOut: []string{"nope.txt"}},
		{
			name: "test record", args: []string{"release", "test", "record", rel, "--result", "pass", "--evidence", evidence, "--note", "staging green"},
			out: []string{"release webshop@1.0.0: test pass recorded with 1 evidence file(s); state tested"},
			req: &controllerv1.RecordTestRequest{Release: ref, Result: "pass", Note: "staging green", Evidence: []string{evidenceDigest}},
		},
		{name: "approve no note", args: []string{"release", "approve", rel}, code: ExitUsage, errOut: []string{"--note TEXT is required"}},
		{name: "approve", args: []string{"release", "approve", rel, "--note", "CHG-1"}, out: []string{"release webshop@1.0.0 approved (1 of 1 approvals); state approved"},
			req: &controllerv1.DecisionRequest{Release: ref, Note: "CHG-1"}},
		{name: "reject approved", args: []string{"release", "reject", rel, "--note", "no"}, code: ExitFailed, errOut: []string{"reject release webshop@1.0.0: release webshop@1.0.0 is approved"}},
		{name: "show", args: []string{"release", "show", rel}, out: []string{"state:      approved", "digest:     sha256:dddd", "signature:  ed25519 abcd010203040506… (10 bytes)",
			"approvals:  1 of 1 required", "assets", "site", "user:qa", "pass", "staging green", "user:boss", "approve", "CHG-1"}},
		{name: "show json", args: []string{"release", "show", rel, "-o", "json"}, out: []string{`"state": "STATE_APPROVED"`, `"manifest_yaml"`}},
		{name: "show bad format", args: []string{"release", "show", rel, "-o", "xml"}, code: ExitUsage},
		{name: "list", args: []string{"release", "list"}, out: []string{"RELEASE", "webshop@1.0.0  approved  2           1      1/1        dddddddddddd"}},
		{name: "list yaml", args: []string{"release", "list", "-o", "yaml"}, out: []string{"name: webshop"}},
		{name: "verify", args: []string{"release", "verify", rel}, out: []string{"release webshop@1.0.0 verifies: signature and 2 artifact digests"}, req: ref},
		{
			name: "verify tampered", args: []string{"release", "verify", rel}, code: ExitFailed,
			setup:  func() { f.releases.problems = []string{"component site: artifact content does not match its digest"} },
			out:    []string{"webshop@1.0.0: component site: artifact content does not match its digest"},
			errOut: []string{"release webshop@1.0.0 does not verify: 1 problem(s)"},
		},
		{name: "notes", args: []string{"release", "notes", rel}, out: []string{"notes of webshop@1.0.0 as markdown"},
			req: &controllerv1.RenderRequest{Release: ref, Format: "markdown"}},
		{name: "notes html", args: []string{"release", "notes", rel, "-o", "html"}, out: []string{"notes of webshop@1.0.0 as html"}},
		{name: "notes json", args: []string{"release", "notes", rel, "-o", "json"}, code: ExitUsage, errOut: []string{"use markdown or html"}},
		{name: "dossier", args: []string{"release", "dossier", rel}, out: []string{"dossier of webshop@1.0.0 as json"}},
		{name: "dossier md", args: []string{"release", "dossier", rel, "-o", "md"}, out: []string{"dossier of webshop@1.0.0 as markdown"}},
		{name: "dossier to file", args: []string{"release", "dossier", rel, "-o", "html", "--out", outFile}, out: []string{outFile + ": release dossier of webshop@1.0.0 (html"}},
		{name: "knownerror list", args: []string{"knownerror", "list", "--open", "--release", "webshop"}, out: []string{"webshop@1.0.0  KE-1  workaround  homepage check fails  serve the site"},
			req: &controllerv1.ListKnownErrorsRequest{OpenOnly: true, Release: "webshop"}},
		{name: "knownerror list none", args: []string{"knownerror", "list", "--release", "none"}, out: []string{"no known errors"}},
		{name: "knownerror list json", args: []string{"knownerror", "list", "-o", "json"}, out: []string{`"id": "KE-1"`}},
		{name: "forbidden", args: []string{"release", "list"}, code: ExitDenied, errOut: []string{"refused; see 'cairnctl whoami'"}},
	}
	for _, st := range steps {
		if !t.Run(st.name, func(t *testing.T) {
			if st.setup != nil {
				st.setup()
			}
			var env map[string]string
			if st.name == "forbidden" {
				env = map[string]string{"CAIRN_TOKEN": viewerToken}
			}
			r := f.run(t, env, "", st.args...)
			if r.code != st.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, st.code, r.stdout, r.stderr)
			}
			for _, s := range st.out {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
				}
			}
			for _, s := range st.errOut {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
				}
			}
			if st.req != nil {
				if diff := cmp.Diff(st.req, f.last(), protocmp.Transform()); diff != "" {
					t.Errorf("request (-want +got):\n%s", diff)
				}
			}
		}) {
			t.FailNow() // later steps depend on this one
		}
	}
	if a := f.artifacts.artifacts[evidenceDigest]; a.GetKind() != "documentation" || a.GetName() != "report.txt" {
		t.Errorf("evidence pushed as %v, want report.txt of kind documentation", a)
	}
	if b, err := os.ReadFile(outFile); err != nil || string(b) != "dossier of webshop@1.0.0 as html\n" {
		t.Errorf("--out wrote %q, %v", b, err)
	}
}

// TestReleaseReject: a rejection is reported in the past tense, with the
// state it leaves.
func TestReleaseReject(t *testing.T) {
	f := startFake(t)
	f.releases.mu.Lock()
	f.releases.records["webshop@1.0.0"] = &controllerv1.ReleaseRecord{Name: "webshop", Version: "1.0.0", State: controllerv1.ReleaseRecord_STATE_TESTED, ApprovalsRequired: 1}
	f.releases.mu.Unlock()
	r := f.run(t, nil, "", "release", "reject", "webshop@1.0.0", "--note", "fails CHG-7")
	if r.code != ExitOK {
		t.Fatalf("exit %d\nstderr:\n%s", r.code, r.stderr)
	}
	if want := "release webshop@1.0.0 rejected (0 of 1 approvals); state rejected\n"; r.stdout != want {
		t.Errorf("stdout %q, want %q", r.stdout, want)
	}
}
