package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReleaseLifecycle takes the example release from create to approved
// with three users — a release manager, a tester and an approver — through
// real processes, shows every forbidden shortcut refused, renders the
// notes and the dossier in every format, and catches a tampered artifact
// with release verify after a controller restart.
func TestReleaseLifecycle(t *testing.T) {
	c := startController(t)
	const rel = "webshop@1.0.0"
	tokens := map[string]string{}
	// rm and qa also hold the roles of the later steps, so that what
	// refuses their shortcuts is the separation of duties, not only RBAC.
	for user, role := range map[string]string{"rm": "release-manager,tester,approver", "qa": "tester,approver", "boss": "approver"} {
		c.mustCtl(t, "user", "create", user, "--role", role)
		var tok struct {
			Token string `json:"token"`
		}
		c.ctlJSON(t, &tok, "token", "create", "--user", user)
		tokens[user] = tok.Token
	}
	as := func(user string, args ...string) result {
		t.Helper()
		return c.ctlAs(t, tokens[user], args...)
	}
	must := func(user string, args ...string) string {
		t.Helper()
		r := as(user, args...)
		if r.code != 0 {
			t.Fatalf("%s: cairnctl %s: exit %d\nstdout: %s\nstderr: %s", user, strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r.stdout
	}
	// refused requires exit 1 (the lifecycle refuses) or 3 (the role
	// lacks permission) and a message saying why, containing because.
	refused := func(what, because, user string, args ...string) {
		t.Helper()
		r := as(user, args...)
		_, reason, _ := strings.Cut(r.stderr, "cairnctl: ")
		if (r.code != 1 && r.code != 3) || !strings.Contains(reason, because) {
			t.Errorf("%s (%s: cairnctl %s): exit %d, stderr %q; want exit 1 or 3 saying %q", what, user, strings.Join(args, " "), r.code, r.stderr, because)
			return
		}
		t.Logf("refused: %s: exit %d: %s", what, r.code, strings.TrimSpace(reason))
	}
	state := func(rel string) string {
		t.Helper()
		out := must("rm", "release", "show", rel)
		for _, line := range strings.Split(out, "\n") {
			if s, ok := strings.CutPrefix(line, "state:"); ok {
				return strings.TrimSpace(s)
			}
		}
		t.Fatalf("release show has no state line:\n%s", out)
		return ""
	}

	example := filepath.Join("..", "..", "examples", "sandbox-release", "release.yaml")
	if out := must("rm", "release", "create", "-f", example); !strings.Contains(out, "release webshop@1.0.0 created (draft): 2 components") {
		t.Errorf("release create printed %q", out)
	}
	refused("create the same version again", "exists", "rm", "release", "create", "-f", example)
	refused("the approver creates a release", "needs one of", "boss", "release", "create", "-f", example)
	refused("record a test of a draft", "draft", "qa", "release", "test", "record", rel, "--result", "pass", "--note", "too early")
	if out := must("rm", "release", "seal", rel); !strings.Contains(out, "sealed: digest sha256:") {
		t.Errorf("release seal printed %q", out)
	}
	if got := state(rel); got != "sealed" {
		t.Fatalf("state after seal: %q, want sealed", got)
	}

	refused("the author records a test", "author", "rm", "release", "test", "record", rel, "--result", "pass", "--note", "my own release works")
	refused("the approver records a test", "needs one of", "boss", "release", "test", "record", rel, "--result", "pass", "--note", "looks fine")
	refused("the approver approves an untested release", "passing test", "boss", "release", "approve", rel, "--note", "ship it")
	if got := state(rel); got != "sealed" {
		t.Fatalf("state after refused shortcuts: %q, want sealed", got)
	}

	evidence := filepath.Join(t.TempDir(), "staging-report.txt")
	if err := os.WriteFile(evidence, []byte("staging run 42: all checks green\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	must("qa", "release", "test", "record", rel, "--result", "pass", "--evidence", evidence, "--note", "staging run 42 green")
	if got := state(rel); got != "tested" {
		t.Fatalf("state after a passing test: %q, want tested", got)
	}
	refused("the tester approves", "tester", "qa", "release", "approve", rel, "--note", "ship it")
	refused("the author approves a tested release", "author", "rm", "release", "approve", rel, "--note", "ship it")
	if out := must("boss", "release", "approve", rel, "--note", "CHG-1042"); !strings.Contains(out, "approved") {
		t.Errorf("release approve printed %q", out)
	}
	if got := state(rel); got != "approved" {
		t.Fatalf("state after approval: %q, want approved", got)
	}
	refused("the approver approves an approved release", "approved", "boss", "release", "approve", rel, "--note", "twice")
	show := must("rm", "release", "show", rel)
	for _, want := range []string{"approvals:  1 of 1 required", "user:qa", "user:boss", "CHG-1042", "staging run 42 green"} {
		if !strings.Contains(show, want) {
			t.Errorf("release show lacks %q:\n%s", want, show)
		}
	}

	if out := must("boss", "release", "verify", rel); !strings.Contains(out, "release webshop@1.0.0 verifies: signature and 2 artifact digests") {
		t.Errorf("release verify printed %q", out)
	}

	var rec struct {
		Components []struct{ Name, Digest string }
	}
	c.ctlJSON(t, &rec, "release", "show", rel)
	if len(rec.Components) != 2 {
		t.Fatalf("release show -o json: components %+v", rec.Components)
	}
	digest := rec.Components[0].Digest
	for _, render := range [][]string{
		{"notes", "markdown"}, {"notes", "html"},
		{"dossier", "json"}, {"dossier", "markdown"}, {"dossier", "html"},
	} {
		out := must("boss", "release", render[0], rel, "-o", render[1])
		if !strings.Contains(out, "webshop") || !strings.Contains(out, digest) {
			t.Errorf("release %s -o %s lacks the name or the digest %s:\n%.600s", render[0], render[1], digest, out)
		}
	}
	// The notes' declared changes include what the steps' plugins
	// declare (the archive's files), merged into the manifest's expect at
	// create by the controller.
	if out := must("boss", "release", "notes", rel, "-o", "markdown"); !strings.Contains(out, "/srv/webshop/style.css") {
		t.Errorf("release notes lack the files the archive step declares:\n%.1200s", out)
	}
	if out := must("qa", "knownerror", "list"); !strings.Contains(out, "KE-1") || !strings.Contains(out, "the homepage check fails without a web server") {
		t.Errorf("knownerror list:\n%s", out)
	}

	// One approver counts once: a version that needs two approvals.
	example2 := filepath.Join(t.TempDir(), "release.yaml")
	data, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.Replace(strings.Replace(string(data), "version: 1.0.0", "version: 1.0.1", 1), "required: 1", "required: 2", 1))
	if err := os.WriteFile(example2, data, 0o644); err != nil {
		t.Fatal(err)
	}
	const rel2 = "webshop@1.0.1"
	must("rm", "release", "create", "-f", example2, "--artifacts", filepath.Dir(example))
	must("rm", "release", "seal", rel2)
	must("qa", "release", "test", "record", rel2, "--result", "pass", "--note", "staging run 43 green")
	if out := must("boss", "release", "approve", rel2, "--note", "CHG-1043"); !strings.Contains(out, "(1 of 2 approvals); state tested") {
		t.Errorf("first of two approvals printed %q", out)
	}
	refused("the approver approves twice", "counts once", "boss", "release", "approve", rel2, "--note", "again")
	if got := state(rel2); got != "tested" {
		t.Errorf("state after one approver approved twice: %q, want tested", got)
	}

	// Tamper: swap the content of one component's blob on disk.
	var site string
	for _, comp := range rec.Components {
		if comp.Name == "site" {
			site = comp.Digest
		}
	}
	c.stop(t)
	blob := filepath.Join(c.dataDir, "blobs", site[:2], site)
	if err := os.Chmod(blob, 0o644); err != nil {
		t.Fatalf("the site artifact's blob: %v", err)
	}
	if err := os.WriteFile(blob, []byte("not the site you are looking for\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.start(t)
	r := as("boss", "release", "verify", rel)
	if r.code != 1 || !strings.Contains(r.stdout+r.stderr, "component site") {
		t.Errorf("release verify of a tampered artifact: exit %d\nstdout: %s\nstderr: %s\nwant exit 1 naming component site", r.code, r.stdout, r.stderr)
	}
}

// TestReleaseCreateRefusedUploadsNothing: a caller who may not create a
// release, or a release that exists, is refused before a byte goes to the
// DML: a tester (who may push evidence) used to upload every component
// first and leave it behind.
func TestReleaseCreateRefusedUploadsNothing(t *testing.T) {
	c := startController(t)
	tokens := map[string]string{}
	for user, role := range map[string]string{"rm": "release-manager", "qa": "tester"} {
		c.mustCtl(t, "user", "create", user, "--role", role)
		var tok struct {
			Token string `json:"token"`
		}
		c.ctlJSON(t, &tok, "token", "create", "--user", user)
		tokens[user] = tok.Token
	}
	artifacts := func() int {
		t.Helper()
		var list struct{ Artifacts []struct{ Digest string } }
		c.ctlJSON(t, &list, "artifact", "list")
		return len(list.Artifacts)
	}
	example := filepath.Join("..", "..", "examples", "sandbox-release", "release.yaml")
	r := c.ctlAs(t, tokens["qa"], "release", "create", "-f", example)
	if r.code != 3 || !strings.Contains(r.stderr, "nothing uploaded") || strings.Contains(r.stderr, "pushing") {
		t.Errorf("a tester's release create: exit %d, stderr %q; want exit 3, nothing pushed", r.code, r.stderr)
	}
	if n := artifacts(); n != 0 {
		t.Errorf("after a tester's refused release create the DML holds %d artifacts, want 0", n)
	}
	if r := c.ctlAs(t, tokens["rm"], "release", "create", "-f", example); r.code != 0 {
		t.Fatalf("release create: exit %d: %s", r.code, r.stderr)
	}
	before := artifacts()
	r = c.ctlAs(t, tokens["rm"], "release", "create", "-f", example)
	if r.code != 1 || !strings.Contains(r.stderr, "exists") || strings.Contains(r.stderr, "pushing") {
		t.Errorf("release create of an existing release: exit %d, stderr %q; want exit 1, nothing pushed", r.code, r.stderr)
	}
	if n := artifacts(); n != before {
		t.Errorf("the DML holds %d artifacts after a refused create, %d before", n, before)
	}
}
