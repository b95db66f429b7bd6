package session

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/agent/apply"
	"github.com/cairn-ops/cairn/agent/journal"
	"github.com/cairn-ops/cairn/internal/manifest"
	"github.com/cairn-ops/cairn/internal/release"
	"github.com/cairn-ops/cairn/plugins/sdk"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
)

// testHost starts in-process plugins by name; the process boundary is
// covered by test/integration.
type testHost struct {
	plugins map[string]*testPlugin
}

var _ apply.Host = (*testHost)(nil)

func (h *testHost) Start(_ context.Context, name string) (apply.Instance, error) {
	p, ok := h.plugins[name]
	if !ok {
		return apply.Instance{}, fmt.Errorf("plugin %q: unknown plugin", name)
	}
	return apply.Instance{Plugin: p, Close: func() {}}, nil
}

func newTestHost() *testHost {
	return &testHost{plugins: map[string]*testPlugin{
		"copy":   {name: "copy"},
		"manual": {name: "manual", confirm: true},
		"hang":   {name: "hang", notIdempotent: true, hanging: make(chan struct{}, 10)},
	}}
}

// testPlugin: "copy" copies the artifact named by params.artifact to
// params.to under the root and puts back what was there on Rollback;
// "manual" needs a confirmation and changes nothing; "hang" is not
// idempotent and runs until its context ends, saying so on hanging.
type testPlugin struct {
	name          string
	confirm       bool
	notIdempotent bool
	hanging       chan struct{}

	mu    sync.Mutex
	calls []string
}

var _ sdk.Plugin = (*testPlugin)(nil)

func (p *testPlugin) record(call string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, call)
}

func (p *testPlugin) Calls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.calls...)
}

func (p *testPlugin) Describe(context.Context) (*sdk.Description, error) {
	return &sdk.Description{Name: p.name, Version: "1.0.0", Idempotent: !p.notIdempotent, NeedsConfirmation: p.confirm}, nil
}

func (p *testPlugin) Validate(context.Context, *sdk.StepContext) ([]*sdk.FieldError, error) {
	return nil, nil
}

func (p *testPlugin) Plan(_ context.Context, sc *sdk.StepContext) (*sdk.Plan, error) {
	p.record("plan " + sc.GetStep())
	return &sdk.Plan{WouldChange: p.name == "copy", Actions: []string{"would " + sc.GetStep()}}, nil
}

type copied struct {
	Path    string `json:"path"`
	Existed bool   `json:"existed"`
	Old     []byte `json:"old,omitempty"`
}

func (p *testPlugin) Apply(ctx context.Context, sc *sdk.StepContext, _ sdk.Reporter) (*sdk.Result, error) {
	p.record("apply " + sc.GetStep())
	if p.name == "hang" {
		p.hanging <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if p.name == "manual" {
		return &sdk.Result{Outputs: map[string]string{"confirmed_by": sc.GetConfirmation().GetBy()}}, nil
	}
	params := sdk.Params(sc)
	src := sc.GetArtifacts()[fmt.Sprint(params["artifact"])]
	data, err := os.ReadFile(src)
	if err != nil {
		return nil, err
	}
	c := copied{Path: filepath.Join(sc.GetRootDir(), fmt.Sprint(params["to"]))}
	if old, err := os.ReadFile(c.Path); err == nil {
		c.Existed, c.Old = true, old
	}
	if err := os.MkdirAll(filepath.Dir(c.Path), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(c.Path, data, 0o644); err != nil {
		return nil, err
	}
	rec, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return &sdk.Result{Changed: true, RollbackRecord: rec}, nil
}

func (p *testPlugin) Verify(context.Context, *sdk.StepContext) (*sdk.Verification, error) {
	return &sdk.Verification{Passed: true}, nil
}

func (p *testPlugin) Rollback(_ context.Context, sc *sdk.StepContext, record []byte) (*sdk.RollbackResult, error) {
	p.record("rollback " + sc.GetStep())
	var c copied
	if err := json.Unmarshal(record, &c); err != nil {
		return nil, err
	}
	if c.Existed {
		return &sdk.RollbackResult{Changed: true}, os.WriteFile(c.Path, c.Old, 0o644)
	}
	return &sdk.RollbackResult{Changed: true}, os.Remove(c.Path)
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// deployment is a signed release for the fake controller to send.
type deployment struct {
	yaml   []byte
	bundle []byte
	refs   []*agentv1.ArtifactRef
}

// newDeployment writes a release of one DML component (content) with the
// given steps, signed with key and approved.
func newDeployment(t *testing.T, key ed25519.PrivateKey, content []byte, steps string) deployment {
	t.Helper()
	return newRelease(t, key, "1.0.0", content, steps)
}

// newRelease is newDeployment of the given version of shop.
func newRelease(t *testing.T, key ed25519.PrivateKey, version string, content []byte, steps string) deployment {
	t.Helper()
	digest := digestOf(content)
	yaml := []byte("apiVersion: cairn/v1\nkind: Release\nname: shop\nversion: " + version + "\ncomponents:\n  - {name: site, kind: application, digest: " + digest + "}\n" + steps)
	m, err := manifest.Parse(yaml, "shop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	canon, err := m.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	b := &release.Bundle{Name: "shop", Version: version, ManifestCanonical: canon, ApprovalsRequired: 1, State: release.StateApproved,
		Components: []release.Component{{Name: "site", Digest: digest}}}
	release.Sign(b, key)
	b.Approvals = []release.Approval{{By: "approver", ReleaseDigest: b.Digest}}
	bj, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return deployment{yaml: yaml, bundle: bj, refs: []*agentv1.ArtifactRef{{Component: "site", Digest: digest, SizeBytes: int64(len(content))}}}
}

func (s *fakeSession) deploy(id, action string, d deployment) {
	s.send <- &agentv1.ControllerMessage{Msg: &agentv1.ControllerMessage_Command{Command: &agentv1.Command{
		Id: id,
		Kind: &agentv1.Command_Deploy{Deploy: &agentv1.DeployCommand{
			RolloutId: "r-1", Action: action, ManifestYaml: d.yaml, ManifestFile: "shop.yaml", BundleJson: d.bundle, Artifacts: d.refs,
		}},
	}}}
}

// rollback sends a rollback of the deployment of apply command undo.
func (s *fakeSession) rollback(id, undo string, d deployment) {
	s.send <- &agentv1.ControllerMessage{Msg: &agentv1.ControllerMessage_Command{Command: &agentv1.Command{
		Id: id,
		Kind: &agentv1.Command_Deploy{Deploy: &agentv1.DeployCommand{
			RolloutId: "r-1", Action: agentv1.ActionRollback, ManifestYaml: d.yaml, ManifestFile: "shop.yaml", BundleJson: d.bundle, Artifacts: d.refs,
			UndoCommandId: undo,
		}},
	}}}
}

func (s *fakeSession) confirm(commandID, step string) {
	s.send <- &agentv1.ControllerMessage{Msg: &agentv1.ControllerMessage_Confirmation{Confirmation: &agentv1.Confirmation{
		CommandId: commandID, Step: step, By: "alice", Note: "rack checked", At: "2026-11-26T12:00:00Z",
	}}}
}

// result returns the last result the fake holds for a command.
func (f *fakeController) result(id string) *agentv1.CommandResult {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.results) - 1; i >= 0; i-- {
		if f.results[i].GetCommandId() == id {
			return f.results[i]
		}
	}
	f.t.Fatalf("no result for %s", id)
	return nil
}

func readTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		rel, _ := filepath.Rel(root, path)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// deployAgent enrolls an agent with f and runs it with a test plugin
// host on a fresh root that holds etc/hostname.
func deployAgent(t *testing.T, f *fakeController) (dir, root string, host *testHost, stop func() error) {
	t.Helper()
	dir = f.enroll(t)
	root = t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "hostname"), []byte("web1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	host = newTestHost()
	stop = runAgent(t, dir, func(c *Config) {
		c.Root = root
		c.Plugins = host
	})
	return dir, root, host, stop
}

const deploySteps = `steps:
  - {name: install, plugin: copy, params: {artifact: site, to: srv/www/index.html}}
  - {name: rack, plugin: manual, params: {instructions: check the rack}}
`

func TestDeployApplyRollbackPlan(t *testing.T) {
	f := newFakeController(t)
	content := []byte(strings.Repeat("<html>shop 1.0.0</html>\n", 200)) // several chunks
	d := newDeployment(t, f.releaseKey, content, deploySteps)
	f.artifacts[d.refs[0].GetDigest()] = content
	dir, root, host, _ := deployAgent(t, f)
	before := readTree(t, root)
	s := f.session()

	s.deploy("cmd-apply", agentv1.ActionApply, d)
	f.wait("ack", "cmd-apply")
	f.wait("confirm", "cmd-apply/rack")
	s.confirm("cmd-apply", "rack")
	f.wait("result", "cmd-apply")

	r := f.result("cmd-apply")
	if !r.GetOk() || r.GetError() != "" {
		t.Fatalf("apply result: ok %v, error %q", r.GetOk(), r.GetError())
	}
	rep := r.GetApplyReport()
	if rep == nil || len(r.GetReportJson()) > 0 {
		t.Fatalf("apply result: report %v, report_json %q; want the typed report only", rep, r.GetReportJson())
	}
	if diff := cmp.Diff([]string{"steps/install:changed", "steps/rack:unchanged"}, outcomesOf(rep)); diff != "" {
		t.Errorf("apply report (-want +got):\n%s", diff)
	}
	if rep.Steps[1].Outputs["confirmed_by"] != "alice" || rep.Root != root {
		t.Errorf("report: confirmed by %q, root %q", rep.Steps[1].Outputs["confirmed_by"], rep.Root)
	}
	applied := map[string]string{"etc/hostname": "web1\n", "srv/www/index.html": string(content)}
	if diff := cmp.Diff(applied, readTree(t, root)); diff != "" {
		t.Errorf("root after apply (-want +got):\n%s", diff)
	}
	cached, err := os.ReadFile(filepath.Join(dir, ArtifactsDir, "sha256", d.refs[0].GetDigest()))
	if err != nil || string(cached) != string(content) {
		t.Errorf("artifact cache: %v, %d bytes", err, len(cached))
	}
	// The step results and the deployment result came through the outbox.
	f.wait("outbox", "")
	eventually(t, "the outbox drained", func() bool {
		f.mu.Lock()
		n := len(f.outbox)
		f.mu.Unlock()
		return n >= 3 && outboxLen(t, dir) == 0
	})

	// Redelivered: acknowledged, not run again.
	s.deploy("cmd-apply", agentv1.ActionApply, d)
	f.wait("ack", "cmd-apply")

	s.deploy("cmd-plan", agentv1.ActionPlan, d)
	f.wait("result", "cmd-plan")
	r = f.result("cmd-plan")
	plan := r.GetPlanReport()
	if plan == nil || !r.GetOk() {
		t.Fatalf("plan result: ok %v, error %q, report %v", r.GetOk(), r.GetError(), r.GetReport())
	}
	if len(plan.Steps) != 2 || plan.Steps[0].Actions[0] != "would install" {
		t.Errorf("plan report %v", plan)
	}

	s.rollback("cmd-rollback", "cmd-apply", d)
	f.wait("result", "cmd-rollback")
	r = f.result("cmd-rollback")
	if !r.GetOk() || r.GetApplyReport().GetState() != agentv1.StateRolledBack {
		t.Fatalf("rollback result: ok %v, error %q, report %v", r.GetOk(), r.GetError(), r.GetReport())
	}
	if diff := cmp.Diff(before, readTree(t, root)); diff != "" {
		t.Errorf("root after rollback (-want +got):\n%s", diff)
	}

	if diff := cmp.Diff([]string{"apply install", "plan install", "rollback install"}, host.plugins["copy"].Calls()); diff != "" {
		t.Errorf("copy plugin calls (-want +got):\n%s", diff)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// One fetch: plan and rollback used the cache.
	if diff := cmp.Diff([]int64{0}, f.offsets); diff != "" {
		t.Errorf("fetch offsets (-want +got):\n%s", diff)
	}
}

// TestDeployRollForwardToAnEarlierRelease: 2.0.1, then 2.0.2, then 2.0.1
// again (a roll forward to a known-good release) runs 2.0.1's steps
// again, as a new deployment; a rollback undoes the deployment of the
// apply command it names; a rollback naming none is refused.
func TestDeployRollForwardToAnEarlierRelease(t *testing.T) {
	f := newFakeController(t)
	const steps = "steps:\n  - {name: install, plugin: copy, params: {artifact: site, to: srv/www/index.html}}\n"
	v1, v2 := []byte("<html>2.0.1</html>"), []byte("<html>2.0.2</html>")
	r1, r2 := newRelease(t, f.releaseKey, "2.0.1", v1, steps), newRelease(t, f.releaseKey, "2.0.2", v2, steps)
	f.artifacts[digestOf(v1)], f.artifacts[digestOf(v2)] = v1, v2
	dir, root, host, _ := deployAgent(t, f)
	s := f.session()
	run := func(id string, send func()) (*agentv1.CommandResult, []string) {
		t.Helper()
		send()
		f.wait("result", id)
		r := f.result(id)
		if r.GetApplyReport() == nil {
			t.Fatalf("%s: no report: %v", id, r)
		}
		return r, outcomesOf(r.GetApplyReport())
	}
	installed := func() string { return readTree(t, root)["srv/www/index.html"] }

	steps1 := []string{"steps/install:changed"}
	for _, c := range []struct {
		id   string
		d    deployment
		want string
	}{{"cmd-1", r1, string(v1)}, {"cmd-2", r2, string(v2)}, {"cmd-3", r1, string(v1)}} {
		r, got := run(c.id, func() { s.deploy(c.id, agentv1.ActionApply, c.d) })
		if !r.GetOk() {
			t.Fatalf("%s: %s", c.id, r.GetError())
		}
		if diff := cmp.Diff(steps1, got); diff != "" {
			t.Errorf("%s outcomes (-want +got):\n%s", c.id, diff)
		}
		if got := installed(); got != c.want {
			t.Errorf("after %s the root holds %q, want %q", c.id, got, c.want)
		}
	}

	// The rollback of cmd-3 puts back what cmd-3 replaced: 2.0.2.
	r, got := run("cmd-4", func() { s.rollback("cmd-4", "cmd-3", r1) })
	if !r.GetOk() {
		t.Fatalf("rollback: %s", r.GetError())
	}
	if diff := cmp.Diff([]string{"undo/install:rolled back"}, got); diff != "" {
		t.Errorf("rollback outcomes (-want +got):\n%s", diff)
	}
	if got := installed(); got != string(v2) {
		t.Errorf("after the rollback of cmd-3 the root holds %q, want 2.0.2's", got)
	}

	before := readTree(t, root)
	calls := host.plugins["copy"].Calls()
	s.deploy("cmd-5", agentv1.ActionRollback, r1)
	f.wait("result", "cmd-5")
	if r := f.result("cmd-5"); r.GetOk() || !strings.Contains(r.GetError(), "rollback command cmd-5 names no deployment to undo (undo_command_id is empty): nothing was rolled back") {
		t.Errorf("rollback without undo_command_id: ok %v, error %q", r.GetOk(), r.GetError())
	}
	if diff := cmp.Diff(before, readTree(t, root)); diff != "" {
		t.Errorf("a refused rollback changed the root (-want +got):\n%s", diff)
	}
	if got := host.plugins["copy"].Calls(); len(got) != len(calls) {
		t.Errorf("a refused rollback called the plugin: %v", got[len(calls):])
	}

	j, err := journal.Open(dir, journal.Options{Timeout: waitFor})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ds, err := j.Deployments(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	byCommand := map[string]string{}
	for _, d := range ds {
		byCommand[d.CommandID] = d.Manifest + " " + string(d.State)
		if d.ID != apply.CommandDeploymentID(d.CommandID, root) {
			t.Errorf("deployment %s of command %s is not named after the command", d.ID, d.CommandID)
		}
	}
	want := map[string]string{"cmd-1": "shop@2.0.1 succeeded", "cmd-2": "shop@2.0.2 succeeded", "cmd-3": "shop@2.0.1 rolled-back"}
	if diff := cmp.Diff(want, byCommand); diff != "" {
		t.Errorf("journaled deployments by command (-want +got):\n%s", diff)
	}
}

func outcomesOf(rep *agentv1.ApplyReport) []string {
	var out []string
	for _, st := range rep.Steps {
		out = append(out, st.List+"/"+st.Name+":"+st.Outcome)
	}
	return out
}

// TestUndoTarget: a rollback undoes its apply command's deployment, or
// the same manifest's deployment journaled without a command by an
// agent from before deployments were named after commands.
func TestUndoTarget(t *testing.T) {
	tests := []struct {
		name    string
		journal []journal.Deployment
		want    string
	}{
		{"the command's deployment", []journal.Deployment{{ID: "by-command", CommandID: "c"}, {ID: "legacy"}}, "by-command"},
		{"only a legacy deployment", []journal.Deployment{{ID: "legacy"}}, "legacy"},
		{"the manifest's deployment belongs to a command", []journal.Deployment{{ID: "legacy", CommandID: "other"}}, "by-command"},
		{"neither", nil, "by-command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := journal.Open(t.TempDir(), journal.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			for _, d := range tt.journal {
				if _, _, err := j.Begin(t.Context(), d, nil); err != nil {
					t.Fatal(err)
				}
			}
			got, err := undoTarget(t.Context(), j, "by-command", "legacy")
			if err != nil || got != tt.want {
				t.Errorf("undoTarget = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestInterruptedDeploymentIsReportedAtStart: the agent stops while a
// step of a plugin that is not idempotent runs. When it starts again it
// tells the controller at once, before any deployment, with a
// deployment_interrupted outbox item, and logs it with the way out.
func TestInterruptedDeploymentIsReportedAtStart(t *testing.T) {
	f := newFakeController(t)
	d := newRelease(t, f.releaseKey, "2.0.1", []byte("site"), "steps:\n  - {name: migrate, plugin: hang}\n")
	f.artifacts[d.refs[0].GetDigest()] = []byte("site")
	dir, root, host, stop := deployAgent(t, f)
	f.session().deploy("cmd-1", agentv1.ActionApply, d)
	select {
	case <-host.plugins["hang"].hanging:
	case <-time.After(waitFor):
		t.Fatal("the step never ran")
	}
	if err := stop(); err != nil { // the step is left running, as by a crash
		t.Fatal(err)
	}

	var logs syncBuffer
	runAgent(t, dir, func(c *Config) {
		c.Root, c.Plugins = root, host
		c.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(&logs, t.Output()), nil))
	})
	dep := apply.CommandDeploymentID("cmd-1", root)
	id := dep + "/interrupted/steps/migrate/1"
	f.wait("outbox", id)
	var item *agentv1.OutboxItem
	f.locked(func() {
		for _, it := range f.outbox {
			if it.GetId() == id {
				item = it
			}
		}
	})
	if item.GetKind() != "deployment_interrupted" || item.GetDeploymentId() != dep || len(item.GetPayload()) > 0 {
		t.Fatalf("outbox item: kind %q, deployment %q, payload %s; want an interruption without a JSON payload", item.GetKind(), item.GetDeploymentId(), item.GetPayload())
	}
	want := &agentv1.Interruption{CommandId: "cmd-1", DeploymentId: dep, Release: "shop@2.0.1", Step: "steps/migrate", Plugin: "hang", State: agentv1.StateInterrupted}
	if diff := cmp.Diff(want, item.GetInterruption(), protocmp.Transform()); diff != "" {
		t.Errorf("interruption (-want +got):\n%s", diff)
	}
	if line := "level=WARN msg=\"step was running when the agent stopped; not idempotent, marked interrupted: it may or may not have taken effect\" node=" + testNode +
		" deployment=" + dep + " step=steps/migrate plugin=hang command=cmd-1 hint=\"reported to the controller"; !strings.Contains(logs.String(), line) {
		t.Errorf("agent log lacks\n%s\n%s", line, logs.String())
	}
	f.locked(func() {
		if len(f.results) != 0 {
			t.Errorf("results before any command: %v", f.results)
		}
	})
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// outboxItems opens the agent's journal (waiting while the agent holds
// it) and returns the outbox.
func outboxItems(t *testing.T, dir string) []journal.OutboxItem {
	t.Helper()
	j, err := journal.Open(dir, journal.Options{Timeout: waitFor})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	items, err := j.List(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// outboxLen counts the agent's outbox.
func outboxLen(t *testing.T, dir string) int {
	t.Helper()
	return len(outboxItems(t, dir))
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDeployRefusesAnUnverifiedRelease(t *testing.T) {
	content := []byte("site")
	tests := []struct {
		name   string
		change func(f *fakeController, d *deployment)
		says   string
	}{
		{name: "signed by another key", change: func(_ *fakeController, d *deployment) {
			_, priv, _ := ed25519.GenerateKey(nil)
			*d = newDeployment(t, priv, content, deploySteps)
		}, says: "was not signed by the controller's release key"},
		{name: "tampered artifact", change: func(f *fakeController, d *deployment) {
			f.artifacts[d.refs[0].GetDigest()] = []byte("evil")
		}, says: "hashes to " + digestOf([]byte("evil"))},
		{name: "not a bundle", change: func(_ *fakeController, d *deployment) { d.bundle = []byte("nope") }, says: "is not a release bundle"},
		{name: "unknown action", change: func(*fakeController, *deployment) {}, says: `unknown deploy action "upgrade"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeController(t)
			d := newDeployment(t, f.releaseKey, content, deploySteps)
			f.artifacts[d.refs[0].GetDigest()] = content
			tt.change(f, &d)
			dir, root, host, _ := deployAgent(t, f)
			before := readTree(t, root)
			s := f.session()
			action := agentv1.ActionApply
			if tt.name == "unknown action" {
				action = "upgrade"
			}
			s.deploy("cmd-1", action, d)
			f.wait("result", "cmd-1")
			r := f.result("cmd-1")
			if r.GetOk() || !strings.Contains(r.GetError(), tt.says) {
				t.Errorf("result: ok %v, error %q; want a failure saying %q", r.GetOk(), r.GetError(), tt.says)
			}
			for name, p := range host.plugins {
				if calls := p.Calls(); len(calls) != 0 {
					t.Errorf("plugin %s was called: %v", name, calls)
				}
			}
			if diff := cmp.Diff(before, readTree(t, root)); diff != "" {
				t.Errorf("root changed (-want +got):\n%s", diff)
			}
			entries, _ := os.ReadDir(filepath.Join(dir, ArtifactsDir, "sha256"))
			for _, e := range entries {
				if content, _ := os.ReadFile(filepath.Join(dir, ArtifactsDir, "sha256", e.Name())); string(content) == "evil" {
					t.Errorf("the tampered artifact was kept as %s", e.Name())
				}
			}
		})
	}
}

func TestDeployResumesAfterTheSessionDropsWhileAStepWaits(t *testing.T) {
	f := newFakeController(t)
	content := []byte("<html>shop</html>")
	d := newDeployment(t, f.releaseKey, content, deploySteps)
	f.artifacts[d.refs[0].GetDigest()] = content
	_, root, host, _ := deployAgent(t, f)
	s := f.session()
	s.deploy("cmd-1", agentv1.ActionApply, d)
	f.wait("confirm", "cmd-1/rack")
	close(s.drop)

	s = f.session()
	f.locked(func() {
		h := f.hellos[len(f.hellos)-1]
		if len(h.GetCompletedCommands()) != 0 {
			t.Errorf("Hello after the drop lists completed commands %v; cmd-1 did not complete", h.GetCompletedCommands())
		}
		if len(f.results) != 0 {
			t.Errorf("results before the command completed: %v", f.results)
		}
	})
	s.deploy("cmd-1", agentv1.ActionApply, d) // redelivered on the new session
	f.wait("confirm", "cmd-1/rack")
	s.confirm("cmd-1", "rack")
	f.wait("result", "cmd-1")
	if r := f.result("cmd-1"); !r.GetOk() {
		t.Fatalf("result after redelivery: %q", r.GetError())
	}
	// install ran once: the journal skipped it the second time.
	if diff := cmp.Diff([]string{"apply install"}, host.plugins["copy"].Calls()); diff != "" {
		t.Errorf("copy plugin calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"apply rack"}, host.plugins["manual"].Calls()); diff != "" {
		t.Errorf("manual plugin calls (-want +got):\n%s", diff)
	}
	if got := readTree(t, root)["srv/www/index.html"]; got != string(content) {
		t.Errorf("installed file %q", got)
	}
}

func TestOutboxDrainsUntilAcknowledged(t *testing.T) {
	f := newFakeController(t)
	dir := f.enroll(t)
	j, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"dep/steps/a/1", "dep/deployment/1"} {
		if err := j.Put(t.Context(), journal.OutboxItem{ID: id, Kind: "step_result", DeploymentID: "dep", Payload: json.RawMessage(`{"n":1}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	f.noOutboxAck = true
	runAgent(t, dir, nil)
	s := f.session()
	f.wait("outbox", "dep/steps/a/1")
	f.wait("outbox", "dep/deployment/1")
	if n := outboxLen(t, dir); n != 2 {
		t.Fatalf("outbox holds %d items without acknowledgements, want 2", n)
	}
	f.locked(func() { f.noOutboxAck = false })
	close(s.drop)
	f.session()
	f.wait("outbox", "dep/steps/a/1")
	f.wait("outbox", "dep/deployment/1")
	eventually(t, "the outbox emptied", func() bool { return outboxLen(t, dir) == 0 })
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, it := range f.outbox {
		ids = append(ids, it.GetId())
	}
	if diff := cmp.Diff([]string{"dep/steps/a/1", "dep/deployment/1", "dep/steps/a/1", "dep/deployment/1"}, ids); diff != "" {
		t.Errorf("items sent (-want +got):\n%s", diff)
	}
}

// cacheClient connects to f with the agent's node certificate from dir.
func cacheClient(t *testing.T, f *fakeController, dir string) agentv1.AgentClient {
	t.Helper()
	creds, err := LoadCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	conf := clientTLS(loadTrust(t, dir).Pool(time.Now()), "127.0.0.1", func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &creds.Cert, nil })
	conn, err := grpc.NewClient(f.addr, grpc.WithTransportCredentials(credentials.NewTLS(conf)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return agentv1.NewAgentClient(conn)
}

func TestArtifactCache(t *testing.T) {
	content := []byte(strings.Repeat("0123456789", 350)) // 3500 bytes: four chunks
	digest := digestOf(content)
	tests := []struct {
		name        string
		serve       []byte // what the controller has for the digest; nil: nothing
		cached      string // a file already in the cache
		partial     string // a partial file already there
		cutAfter    int
		wantOffsets []int64
		wantErr     string
		wantCode    codes.Code // of a transient error
		wantPartial string     // the partial file left behind
	}{
		{name: "fetched", serve: content, wantOffsets: []int64{0}},
		{name: "already cached", serve: content, cached: string(content), wantOffsets: nil},
		{name: "corrupt cache fetched again", serve: content, cached: "rotten", wantOffsets: []int64{0}},
		{name: "partial resumed", serve: content, partial: string(content[:1234]), wantOffsets: []int64{1234}},
		{name: "partial longer than the artifact", serve: content, partial: string(content) + "extra", wantOffsets: []int64{3505, 0}},
		{name: "cut off keeps the partial", serve: content, cutAfter: 1500, wantOffsets: []int64{0},
			wantCode: codes.Unavailable, wantPartial: string(content[:1500])},
		{name: "bad sha256 removed", serve: []byte("something else"), wantOffsets: []int64{0},
			wantErr: "hashes to " + digestOf([]byte("something else")) + "; it was discarded"},
		{name: "bad partial removed", serve: content, partial: "XXXXX", wantOffsets: []int64{5},
			wantErr: "it was discarded"},
		{name: "refused", wantOffsets: []int64{0}, wantErr: "has no unfinished deploy command", wantCode: codes.PermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeController(t)
			dir := f.enroll(t)
			if tt.serve != nil {
				f.artifacts[digest] = tt.serve
			}
			f.cutAfter = tt.cutAfter
			cache := newArtifactCache(dir, testLogger(t))
			if err := os.MkdirAll(cache.dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if tt.cached != "" {
				if err := os.WriteFile(cache.path(digest), []byte(tt.cached), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tt.partial != "" {
				if err := os.WriteFile(cache.path(digest)+partialSuffix, []byte(tt.partial), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			path, err := cache.fetch(t.Context(), cacheClient(t, f, dir), &agentv1.ArtifactRef{Component: "site", Digest: digest, SizeBytes: int64(len(tt.serve))})
			f.locked(func() {
				if diff := cmp.Diff(tt.wantOffsets, f.offsets); diff != "" {
					t.Errorf("fetch offsets (-want +got):\n%s", diff)
				}
			})
			partial, _ := os.ReadFile(cache.path(digest) + partialSuffix)
			if string(partial) != tt.wantPartial {
				t.Errorf("partial file holds %d bytes, want %d", len(partial), len(tt.wantPartial))
			}
			if tt.wantErr != "" || tt.wantCode != codes.OK {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("fetch: %v, want an error containing %q", err, tt.wantErr)
				}
				if tt.wantCode != codes.OK && status.Code(err) != tt.wantCode {
					t.Errorf("fetch: %v, want code %v", err, tt.wantCode)
				}
				if wantTransient := tt.wantCode == codes.Unavailable; transient(t.Context(), err) != wantTransient {
					t.Errorf("fetch: %v is transient: %v, want %v", err, !wantTransient, wantTransient)
				}
				if _, err := os.Stat(cache.path(digest)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("a failed fetch left the artifact in the cache: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != string(content) || path != cache.path(digest) {
				t.Errorf("fetched %s (%d bytes, %v), want the artifact at %s", path, len(got), err, cache.path(digest))
			}
		})
	}
}

func TestArtifactCacheResumesAcrossAttempts(t *testing.T) {
	content := []byte(strings.Repeat("abcdefghij", 500))
	digest := digestOf(content)
	f := newFakeController(t)
	dir := f.enroll(t)
	f.artifacts[digest] = content
	f.cutAfter = 2000
	cache := newArtifactCache(dir, testLogger(t))
	c := cacheClient(t, f, dir)
	ref := &agentv1.ArtifactRef{Component: "site", Digest: digest}
	var err error
	for range 3 {
		_, err = cache.fetch(t.Context(), c, ref)
		if !transient(t.Context(), err) {
			break
		}
	}
	if err != nil {
		t.Fatalf("fetch after three attempts: %v", err)
	}
	f.locked(func() {
		if diff := cmp.Diff([]int64{0, 2000, 4000}, f.offsets); diff != "" {
			t.Errorf("fetch offsets (-want +got):\n%s", diff)
		}
	})
	got, _ := os.ReadFile(cache.path(digest))
	if string(got) != string(content) {
		t.Errorf("fetched %d bytes, want %d", len(got), len(content))
	}
}
