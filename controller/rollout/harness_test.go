package rollout

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cairn-ops/cairn/controller/blob"
	"github.com/cairn-ops/cairn/controller/dml"
	ctlrelease "github.com/cairn-ops/cairn/controller/release"
	"github.com/cairn-ops/cairn/controller/rollout/state"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/audit"
	"github.com/cairn-ops/cairn/internal/manifest"
	signed "github.com/cairn-ops/cairn/internal/release"
	"github.com/cairn-ops/cairn/internal/stamp"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// The test world: a real store (memory or a bbolt file), a real blob
// directory and DML, a release created, sealed, tested and approved with
// controller/release, a fake fleet, and a fake agent per node that
// answers commands the way controller/fleet records them: an audit of
// the node's simulated host stored as a sealed document blob and an
// AuditRecord, a deploy result as its agentv1.ApplyReport.

const (
	confPath    = "/etc/webshop/webshop.conf"
	testRelease = "webshop@2.4.0"
	manualStep  = "check-balancer"
	// rollbackStep is the release's rollback step.
	rollbackStep = "remove"
	// long is how long a test waits for the engine before it fails.
	long = 20 * time.Second
)

var (
	confBefore = sum("port=8080\n")
	confAfter  = sum("port=8080\nworkers=4\n")
	rm         = "user:release-manager"
	tester     = "user:tester"
	approver   = "user:approver"
	operator   = "user:operator"
)

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// Behaviours of a host's deployment.
const (
	deployGood = iota
	// deployFails: the install step fails, nothing changes.
	deployFails
	// deployFailsRolledBack: the install step changed the host, verify
	// failed, the agent undid the deployment itself.
	deployFailsRolledBack
	// deployExtra: succeeds, and installs an undeclared package.
	deployExtra
	// deployNoFile: succeeds without writing the expected file.
	deployNoFile
	// deployInterrupted: the agent restarted with the install step cut
	// off; the deployment reports itself interrupted.
	deployInterrupted
)

// host is one simulated node.
type host struct {
	name     string
	packages map[string]string
	files    map[string]string
	services map[string]string
	behavior int
	// manual: the deployment asks for the manual step's confirmation.
	manual bool
	// manualRollback: the rollback asks for the confirmation of its
	// step rollbackStep.
	manualRollback bool
	// hold: deploy apply commands wait until released.
	hold bool
	// deaf: no command of the node is answered until it is cleared.
	deaf bool
	// rollbackFails: the rollback's steps fail and change nothing.
	rollbackFails bool
	// broken names a collector that fails in every audit.
	broken string
	saved  *host
}

func newHost(name string) *host {
	return &host{
		name:     name,
		packages: map[string]string{"webshop": "2.3.1", "libc6": "2.36-9"},
		files:    map[string]string{confPath: confBefore},
		services: map[string]string{"webshop.service": "enabled"},
	}
}

func (h *host) snapshot() *host {
	return &host{packages: clone(h.packages), files: clone(h.files), services: clone(h.services)}
}

func clone(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// audit is the host as an audit document, tracking paths.
func (h *host) audit(nodeID string, track []string, seq int) *inventoryv1.Audit {
	ok := inventoryv1.CollectorStatus_STATE_OK
	a := &inventoryv1.Audit{
		SchemaVersion: 1,
		Header:        &inventoryv1.Header{AgentVersion: "test", Root: "/", CollectedAt: time.Now().UTC().Format(time.RFC3339Nano), DurationMs: int64(seq), NodeId: nodeID},
		Os:            &inventoryv1.OS{Hostname: h.name, Id: "debian", VersionId: "12"},
		Packages:      &inventoryv1.Packages{Managers: []string{"dpkg"}},
		Services:      &inventoryv1.Services{ActiveStateKnown: true},
		Files:         &inventoryv1.Files{Patterns: track},
		Collectors: []*inventoryv1.CollectorStatus{
			{Name: "files", Section: "files", State: ok},
			{Name: "os", Section: "os", State: ok},
			{Name: "packages", Section: "packages", State: ok},
			{Name: "services", Section: "services", State: ok},
		},
	}
	for _, c := range a.Collectors {
		if c.GetName() == h.broken {
			c.State, c.Message = inventoryv1.CollectorStatus_STATE_ERROR, "permission denied"
		}
	}
	for _, name := range sortedKeys(h.packages) {
		a.Packages.Packages = append(a.Packages.Packages, &inventoryv1.Package{
			Key: "dpkg/" + name + "/amd64", Manager: "dpkg", Name: name, Version: h.packages[name], Architecture: "amd64",
		})
	}
	for _, name := range sortedKeys(h.services) {
		a.Services.Units = append(a.Services.Units, &inventoryv1.Service{
			Key: name, Name: name, Type: "service", UnitFileState: h.services[name], ActiveState: "active",
		})
	}
	for _, p := range sortedKeys(h.files) {
		if !slices.ContainsFunc(track, func(t string) bool { return p == t || strings.HasPrefix(p, t+"/") }) {
			continue
		}
		a.Files.Files = append(a.Files.Files, &inventoryv1.File{
			Key: p, Path: p, Type: "file", Size: 20, Mode: "0644", Owner: "root", Group: "root", Sha256: h.files[p],
		})
	}
	return a
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// testClock is the engine's clock: real time, unless a test fixes it.
type testClock struct {
	mu    sync.Mutex
	fixed time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fixed.IsZero() {
		return time.Now()
	}
	return c.fixed
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	c.fixed = t
	c.mu.Unlock()
}

// fakeFleet is the engine's Fleet: connections the test sets, and the
// notifications and confirmations it got.
type fakeFleet struct {
	mu        sync.Mutex
	connected map[string]bool
	confirms  []*agentv1.Confirmation
	agent     *fakeAgent
}

func (f *fakeFleet) Notify(nodeID string) { f.agent.wake() }

func (f *fakeFleet) IsConnected(nodeID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connected[nodeID]
}

func (f *fakeFleet) Confirm(nodeID string, c *agentv1.Confirmation) bool {
	if !f.IsConnected(nodeID) {
		return false
	}
	f.mu.Lock()
	f.confirms = append(f.confirms, c)
	f.mu.Unlock()
	f.agent.confirm(c)
	return true
}

func (f *fakeFleet) setConnected(nodeID string, up bool) {
	f.mu.Lock()
	f.connected[nodeID] = up
	f.mu.Unlock()
}

func (f *fakeFleet) confirmations() []*agentv1.Confirmation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.confirms)
}

// fakeAgent answers the commands of connected nodes.
type fakeAgent struct {
	w     *world
	mu    sync.Mutex
	hosts map[string]*host
	taken map[string]bool
	// runs counts executions by command ID; done lists "node action" in
	// the order deployments and rollbacks ran.
	runs      map[string]int
	done      []string
	seq       int
	waiting   map[string]chan *agentv1.Confirmation
	early     map[string]*agentv1.Confirmation
	poke      chan struct{}
	wg        sync.WaitGroup
	cancelled context.Context
}

func (a *fakeAgent) wake() {
	select {
	case a.poke <- struct{}{}:
	default:
	}
}

func (a *fakeAgent) confirm(c *agentv1.Confirmation) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ch := a.waiting[c.GetCommandId()]; ch != nil {
		select {
		case ch <- c:
		default:
		}
		return
	}
	a.early[c.GetCommandId()] = c
}

func (a *fakeAgent) host(nodeID string) *host {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hosts[nodeID]
}

// update changes a host under the agent's lock.
func (a *fakeAgent) update(nodeID string, fn func(h *host)) {
	a.mu.Lock()
	fn(a.hosts[nodeID])
	a.mu.Unlock()
	a.wake()
}

func (a *fakeAgent) history() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.done)
}

func (a *fakeAgent) executions(cmdID string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.runs[cmdID]
}

func (a *fakeAgent) run(ctx context.Context) {
	for {
		a.scan(ctx)
		select {
		case <-ctx.Done():
			return
		case <-a.poke:
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// scan starts every new command of a connected node.
func (a *fakeAgent) scan(ctx context.Context) {
	a.mu.Lock()
	ids := make([]string, 0, len(a.hosts))
	for id := range a.hosts {
		ids = append(ids, id)
	}
	a.mu.Unlock()
	sort.Strings(ids)
	for _, id := range ids {
		if !a.w.fleet.IsConnected(id) {
			continue
		}
		var cmds []*controllerv1.CommandRecord
		a.w.busy.RLock()
		err := a.w.store().View(ctx, func(tx store.Tx) error {
			var err error
			cmds, err = tx.NodeCommands(id)
			return err
		})
		a.w.busy.RUnlock()
		if err != nil {
			continue
		}
		for _, c := range cmds {
			if c.GetState() != controllerv1.CommandRecord_STATE_PENDING && c.GetState() != controllerv1.CommandRecord_STATE_ACKNOWLEDGED {
				continue
			}
			a.mu.Lock()
			h := a.hosts[id]
			skip := a.taken[c.GetId()] || h.deaf || (h.hold && c.GetDeploy().GetAction() == agentv1.ActionApply)
			if !skip {
				a.taken[c.GetId()] = true
			}
			a.mu.Unlock()
			if skip {
				continue
			}
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				a.execute(ctx, id, c)
			}()
		}
	}
}

func (a *fakeAgent) execute(ctx context.Context, nodeID string, c *controllerv1.CommandRecord) {
	w := a.w
	w.busy.RLock()
	defer w.busy.RUnlock()
	a.mu.Lock()
	a.runs[c.GetId()]++
	a.seq++
	seq := a.seq
	a.mu.Unlock()
	w.setCommand(ctx, c.GetId(), func(r *controllerv1.CommandRecord) {
		if r.GetState() == controllerv1.CommandRecord_STATE_PENDING {
			r.State = controllerv1.CommandRecord_STATE_ACKNOWLEDGED
		}
	})
	switch c.GetKind() {
	case controllerv1.CommandKindAudit:
		a.mu.Lock()
		doc := a.hosts[nodeID].audit(nodeID, c.GetTrack(), seq)
		a.mu.Unlock()
		id := w.storeAudit(ctx, nodeID, c.GetId(), doc)
		w.finishCommand(ctx, nodeID, c.GetId(), true, "", id, nil)
	case controllerv1.CommandKindDeploy:
		switch c.GetDeploy().GetAction() {
		case agentv1.ActionPlan:
			w.finishCommand(ctx, nodeID, c.GetId(), true, "", "", a.plan(nodeID))
		case agentv1.ActionApply:
			if a.host(nodeID).manual && !a.awaitConfirmation(ctx, nodeID, c.GetId(), manualStep) {
				return
			}
			ok, msg, rep := a.apply(nodeID)
			w.finishCommand(ctx, nodeID, c.GetId(), ok, msg, "", rep)
		case agentv1.ActionRollback:
			if a.host(nodeID).manualRollback && !a.awaitConfirmation(ctx, nodeID, c.GetId(), rollbackStep) {
				return
			}
			ok, msg, rep := a.rollback(nodeID)
			w.finishCommand(ctx, nodeID, c.GetId(), ok, msg, "", rep)
		}
	}
}

// awaitConfirmation asks the engine for the manual step's confirmation
// and waits for it.
func (a *fakeAgent) awaitConfirmation(ctx context.Context, nodeID, cmdID, step string) bool {
	ch := make(chan *agentv1.Confirmation, 1)
	a.mu.Lock()
	a.waiting[cmdID] = ch
	if c := a.early[cmdID]; c != nil {
		ch <- c
	}
	a.mu.Unlock()
	a.w.engine().ConfirmationRequested(nodeID, cmdID, step, "drain the node in the load balancer")
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}

func (a *fakeAgent) plan(nodeID string) *agentv1.PlanReport {
	a.mu.Lock()
	old := a.hosts[nodeID].packages["webshop"]
	a.mu.Unlock()
	return &agentv1.PlanReport{DeploymentId: "d-" + nodeID, Release: testRelease, Root: "/", Steps: []*agentv1.StepPlan{
		{List: "steps", Name: "install", Plugin: "dpkg", WouldChange: old != "2.4.0",
			Actions: []string{"install webshop 2.4.0 (now " + old + ")"},
			Changes: []*agentv1.Change{{Kind: "package", Name: "webshop", State: "present", Version: "2.4.0"}, {Kind: "file", Name: confPath, State: "present", Sha256: confAfter}}},
		{List: "steps", Name: manualStep, Plugin: "manual", NeedsConfirmation: true},
		{List: "rollback", Name: "remove", Plugin: "dpkg"},
	}}
}

// apply runs the host's deployment behaviour.
func (a *fakeAgent) apply(nodeID string) (bool, string, *agentv1.ApplyReport) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h := a.hosts[nodeID]
	h.saved = h.snapshot()
	a.done = append(a.done, nodeID+" apply")
	install := &agentv1.StepResult{List: "steps", Name: "install", Plugin: "dpkg", Outcome: agentv1.OutcomeChanged,
		Changes: []*agentv1.Change{{Kind: "package", Name: "webshop", State: "present", Version: "2.4.0"}}}
	rep := &agentv1.ApplyReport{DeploymentId: "d-" + nodeID, Release: testRelease, Root: "/", State: agentv1.StateSucceeded}
	switch h.behavior {
	case deployFails:
		install.Outcome, install.Error = agentv1.OutcomeFailed, "dpkg: dependency problems prevent configuration of webshop"
		rep.State, rep.Error = agentv1.StateFailed, "step steps[0] (install) failed"
		rep.Steps = []*agentv1.StepResult{install}
		return false, rep.Error, rep
	case deployInterrupted:
		// The first attempt installed the package, then the agent died.
		h.packages["webshop"] = "2.4.0"
		rep.State, rep.Interrupted = agentv1.StateInterrupted, "steps/install"
		rep.Error = "step steps/install of deployment d-" + nodeID + " was interrupted while it ran"
		return false, rep.Error, rep
	case deployFailsRolledBack:
		rep.State, rep.Error = agentv1.StateRolledBack, "verify homepage failed (rolled back)"
		rep.Steps = []*agentv1.StepResult{install,
			{List: "verify", Name: "homepage", Plugin: "httpcheck", Outcome: agentv1.OutcomeFailed, Error: "status 500"},
			{List: agentv1.ListUndo, Name: "install", Plugin: "dpkg", Outcome: agentv1.OutcomeRolledBack}}
		return false, rep.Error, rep
	}
	h.packages["webshop"] = "2.4.0"
	if h.behavior != deployNoFile {
		h.files[confPath] = confAfter
	}
	if h.behavior == deployExtra {
		h.packages["curl"] = "7.88.1-10"
	}
	rep.Steps = []*agentv1.StepResult{install}
	if h.manual {
		rep.Steps = append(rep.Steps, &agentv1.StepResult{List: "steps", Name: manualStep, Plugin: "manual", Outcome: agentv1.OutcomeUnchanged})
	}
	return true, "", rep
}

// rollback puts the host back as it was before its deployment (unless
// its rollback fails).
func (a *fakeAgent) rollback(nodeID string) (bool, string, *agentv1.ApplyReport) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h := a.hosts[nodeID]
	if h.rollbackFails {
		a.done = append(a.done, nodeID+" rollback failed")
		rep := &agentv1.ApplyReport{DeploymentId: "d-" + nodeID, Release: testRelease, Root: "/", State: agentv1.StateFailed,
			Error: "undo steps/install: dpkg: cannot remove webshop", Steps: []*agentv1.StepResult{
				{List: agentv1.ListUndo, Name: "install", Plugin: "dpkg", Outcome: agentv1.OutcomeFailed, Error: "dpkg: cannot remove webshop"}}}
		return false, rep.Error, rep
	}
	if h.saved != nil {
		h.packages, h.files, h.services = h.saved.packages, h.saved.files, h.saved.services
	}
	a.done = append(a.done, nodeID+" rollback")
	rep := &agentv1.ApplyReport{DeploymentId: "d-" + nodeID, Release: testRelease, Root: "/", State: agentv1.StateSucceeded, Steps: []*agentv1.StepResult{
		{List: agentv1.ListUndo, Name: "install", Plugin: "dpkg", Outcome: agentv1.OutcomeRolledBack},
		{List: "rollback", Name: "remove", Plugin: "dpkg", Outcome: agentv1.OutcomeChanged},
	}}
	return true, "", rep
}

// fakeMetrics and fakeNotifier record what the engine reports.
type fakeMetrics struct {
	mu       sync.Mutex
	outcomes []string
	audits   int
	breaches []string
}

func (m *fakeMetrics) NodeFinished(outcome string, d time.Duration) {
	m.mu.Lock()
	m.outcomes = append(m.outcomes, outcome)
	m.mu.Unlock()
}

func (m *fakeMetrics) AuditFinished(time.Duration) {
	m.mu.Lock()
	m.audits++
	m.mu.Unlock()
}

func (m *fakeMetrics) SLABreach(kind string) {
	m.mu.Lock()
	m.breaches = append(m.breaches, kind)
	m.mu.Unlock()
}

func (m *fakeMetrics) finished() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.Clone(m.outcomes)
	sort.Strings(out)
	return out
}

type fakeNotifier struct {
	mu     sync.Mutex
	events []string
}

func (n *fakeNotifier) Notify(event string, payload any) {
	p := payload.(EventPayload)
	n.mu.Lock()
	defer n.mu.Unlock()
	s := event
	if p.Wave > 0 {
		s += fmt.Sprintf(" %d", p.Wave)
	}
	n.events = append(n.events, s)
}

func (n *fakeNotifier) list() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.events)
}

// world is one test's controller.
type world struct {
	t        *testing.T
	ctx      context.Context
	mu       sync.Mutex
	st       store.Store
	blobs    *blob.Store
	dml      *dml.DML
	pub      ed25519.PublicKey
	priv     ed25519.PrivateKey
	clock    *testClock
	fleet    *fakeFleet
	agent    *fakeAgent
	metrics  *fakeMetrics
	notifier *fakeNotifier
	eng      *Engine
	stop     func()
	// busy is held by the agent while it uses the store, and taken by
	// restart while it swaps the store.
	busy    sync.RWMutex
	nodes   []string
	release *controllerv1.ReleaseRecord
	// boltPath is set for a world on a bbolt file.
	boltPath string
	observe  func(Transition)
}

type worldOptions struct {
	nodes int
	bolt  bool
	// step: the engine's loop does not run; the test drives it with
	// Engine.Step.
	step bool
	// observe receives the engine's transitions.
	observe func(Transition)
	// manifest is the release manifest's file in testdata.
	manifest string
}

// newWorld builds a controller with n nodes web1..webN (labels
// service=webshop), all connected, and an approved release webshop
// 2.4.0, and starts the engine and the agents.
func newWorld(t *testing.T, opts worldOptions) *world {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w := &world{t: t, ctx: ctx, clock: &testClock{}, metrics: &fakeMetrics{}, notifier: &fakeNotifier{}}
	if opts.bolt {
		w.boltPath = filepath.Join(t.TempDir(), "controller.db")
		st, err := store.OpenBolt(w.boltPath, store.BoltOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w.st = st
	} else {
		w.st = store.NewMemory()
	}
	t.Cleanup(func() { w.store().Close() })
	var err error
	if w.blobs, err = blob.Open(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if w.dml, err = dml.New(w.st, w.blobs, dml.Options{}); err != nil {
		t.Fatal(err)
	}
	if w.pub, w.priv, err = ed25519.GenerateKey(nil); err != nil {
		t.Fatal(err)
	}
	w.agent = &fakeAgent{w: w, hosts: map[string]*host{}, taken: map[string]bool{}, runs: map[string]int{},
		waiting: map[string]chan *agentv1.Confirmation{}, early: map[string]*agentv1.Confirmation{}, poke: make(chan struct{}, 1)}
	w.fleet = &fakeFleet{connected: map[string]bool{}, agent: w.agent}
	for i := 1; i <= max(opts.nodes, 1); i++ {
		id, name := fmt.Sprintf("node-%02d", i), fmt.Sprintf("web%d", i)
		w.nodes = append(w.nodes, id)
		w.agent.hosts[id] = newHost(name)
		w.fleet.connected[id] = true
		err := w.st.Update(ctx, func(tx store.Tx) error {
			return tx.PutNode(&controllerv1.NodeRecord{Id: id, Hostname: name, Labels: map[string]string{"service": "webshop", "env": "prod"}, State: controllerv1.NodeRecord_STATE_CONNECTED})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	manifestFile := opts.manifest
	if manifestFile == "" {
		manifestFile = "release.yaml"
	}
	w.release = w.createRelease(manifestFile, true)

	agentCtx, stopAgent := context.WithCancel(ctx)
	w.agent.cancelled = agentCtx
	go w.agent.run(agentCtx)
	t.Cleanup(func() {
		stopAgent()
		w.agent.wg.Wait()
	})
	w.observe = opts.observe
	if opts.step {
		w.eng = w.newEngine()
		return w
	}
	w.startEngine()
	t.Cleanup(func() { w.stopEngine() })
	return w
}

// newEngine is an engine on the world's store and fakes.
func (w *world) newEngine() *Engine {
	return New(Config{
		Store: w.st, Blobs: w.blobs, DML: w.dml, Fleet: w.fleet, ReleaseKeys: staticKeys{w.pub},
		Notifier: w.notifier, Metrics: w.metrics, Now: w.clock.now, Tick: 5 * time.Millisecond,
		PlanTimeout: long, ReconnectGrace: -1, Location: time.UTC, Observe: w.observe,
	})
}

func (w *world) store() store.Store {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st
}

func (w *world) engine() *Engine {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.eng
}

// startEngine starts a new engine on the world's store.
func (w *world) startEngine() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.eng = w.newEngine()
	ctx, cancel := context.WithCancel(w.ctx)
	done := make(chan error, 1)
	eng := w.eng
	go func() { done <- eng.Run(ctx) }()
	w.stop = func() {
		cancel()
		if err := <-done; err != nil {
			w.t.Errorf("Run: %v", err)
		}
	}
}

func (w *world) stopEngine() {
	w.mu.Lock()
	stop := w.stop
	w.stop = nil
	w.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// restart stops the engine, closes and reopens the bbolt file, and
// starts a new engine on it: a controller restart.
func (w *world) restart() {
	w.t.Helper()
	w.stopEngine()
	w.busy.Lock()
	defer w.busy.Unlock()
	w.mu.Lock()
	if err := w.st.Close(); err != nil {
		w.t.Fatal(err)
	}
	st, err := store.OpenBolt(w.boltPath, store.BoltOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	w.st = st
	if w.dml, err = dml.New(st, w.blobs, dml.Options{}); err != nil {
		w.t.Fatal(err)
	}
	w.mu.Unlock()
	w.startEngine()
}

// createRelease pushes the component into the DML and creates webshop
// 2.4.0 from testdata/NAME; approved takes it through seal, test and
// approval.
func (w *world) createRelease(name string, approved bool) *controllerv1.ReleaseRecord {
	t := w.t
	yaml, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Parse(yaml, name)
	if err != nil {
		t.Fatal(err)
	}
	content := []byte("webshop 2.4.0 package for " + name)
	up, err := w.dml.BeginUpload(w.ctx, rm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.dml.Declare(w.ctx, up.ID, dml.Meta{Name: "webshop_2.4.0_all.deb", Kind: "application", Size: int64(len(content))}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.dml.Write(w.ctx, up.ID, 0, content); err != nil {
		t.Fatal(err)
	}
	art, _, err := w.dml.Complete(w.ctx, up.ID, rm)
	if err != nil {
		t.Fatal(err)
	}
	expect, err := json.Marshal(m.Expect)
	if err != nil {
		t.Fatal(err)
	}
	var rec *controllerv1.ReleaseRecord
	now := time.Now()
	err = w.store().Update(w.ctx, func(tx store.Tx) error {
		r, err := ctlrelease.Create(tx, now, rm, m, yaml, map[string]string{"webshop-deb": art.GetDigest()}, nil)
		if err != nil {
			return err
		}
		r.ExpectJson = expect
		if err := tx.PutRelease(r); err != nil {
			return err
		}
		if rec, err = ctlrelease.Seal(tx, now, rm, m.Name, m.Version, w.priv); err != nil || !approved {
			return err
		}
		ref := &controllerv1.ReleaseRef{Name: m.Name, Version: m.Version}
		if _, err := ctlrelease.RecordTest(tx, now, tester, ref, ctlrelease.ResultPass, "all green", nil); err != nil {
			return err
		}
		rec, err = ctlrelease.Approve(tx, now, approver, ref, "go")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// spec is a rollout of the release to every node.
func (w *world) spec(change func(s *controllerv1.RolloutSpec)) *controllerv1.RolloutSpec {
	s := &controllerv1.RolloutSpec{
		Release:  &controllerv1.ReleaseRef{Name: w.release.GetName(), Version: w.release.GetVersion()},
		Selector: map[string]string{"service": "webshop"},
	}
	if change != nil {
		change(s)
	}
	return s
}

// start starts a rollout and fails the test if it cannot.
func (w *world) start(change func(s *controllerv1.RolloutSpec)) *controllerv1.RolloutRecord {
	w.t.Helper()
	ro, err := w.engine().Start(w.ctx, operator, w.spec(change))
	if err != nil {
		w.t.Fatalf("Start: %v", err)
	}
	return ro
}

// get reads a rollout with its nodes.
func (w *world) get(id string) *controllerv1.RolloutRecord {
	w.t.Helper()
	ro, err := w.engine().Get(w.ctx, id)
	if err != nil {
		w.t.Fatalf("Get: %v", err)
	}
	return ro
}

// waitFor polls the rollout until ok says yes, and fails the test when
// it does not within long.
func (w *world) waitFor(id, what string, ok func(ro *controllerv1.RolloutRecord) bool) *controllerv1.RolloutRecord {
	w.t.Helper()
	deadline := time.Now().Add(long)
	for {
		ro := w.get(id)
		if ok(ro) {
			return ro
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("rollout %s: gave up waiting for %s; it is %s (%s), waiting for %q, nodes:\n%s", id, what, ro.GetState(), ro.GetReason(), ro.GetWaitingFor(), describeNodes(ro))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitState waits for the rollout's state.
func (w *world) waitState(id string, want state.Rollout) *controllerv1.RolloutRecord {
	w.t.Helper()
	return w.waitFor(id, "state "+state.Name(want), func(ro *controllerv1.RolloutRecord) bool { return ro.GetState() == want })
}

func describeNodes(ro *controllerv1.RolloutRecord) string {
	var b strings.Builder
	for _, n := range ro.GetNodes() {
		fmt.Fprintf(&b, "  wave %d %s %s %s\n", n.GetWave(), n.GetHostname(), n.GetState(), n.GetError())
	}
	return b.String()
}

// nodeOf returns the rollout's node with hostname.
func nodeOf(t *testing.T, ro *controllerv1.RolloutRecord, hostname string) *controllerv1.RolloutNode {
	t.Helper()
	for _, n := range ro.GetNodes() {
		if n.GetHostname() == hostname {
			return n
		}
	}
	t.Fatalf("rollout %s has no node %s", ro.GetId(), hostname)
	return nil
}

// states maps hostname → node state.
func states(ro *controllerv1.RolloutRecord) map[string]state.Node {
	out := map[string]state.Node{}
	for _, n := range ro.GetNodes() {
		out[n.GetHostname()] = n.GetState()
	}
	return out
}

// rolloutCommands returns the commands the rollout issued to a node, by
// kind and action ("audit", "deploy apply").
func (w *world) rolloutCommands(rolloutID, nodeID string) []string {
	w.t.Helper()
	var out []string
	err := w.store().View(w.ctx, func(tx store.Tx) error {
		cmds, err := tx.NodeCommands(nodeID)
		for _, c := range cmds {
			if c.GetRolloutId() != rolloutID {
				continue
			}
			what := c.GetKind()
			if a := c.GetDeploy().GetAction(); a != "" {
				what += " " + a
			}
			out = append(out, what)
		}
		return err
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return out
}

// setCommand changes a stored command, as the fleet does.
func (w *world) setCommand(ctx context.Context, id string, change func(c *controllerv1.CommandRecord)) {
	err := w.store().Batch(ctx, func(tx store.Tx) error {
		c, err := tx.Command(id)
		if err != nil {
			return err
		}
		change(c)
		c.UpdatedAt = stamp.Format(time.Now())
		return tx.PutCommand(c)
	})
	if err != nil && ctx.Err() == nil {
		w.t.Errorf("update command %s: %v", id, err)
	}
}

// finishCommand records a command's result as the fleet does and tells
// the engine.
func (w *world) finishCommand(ctx context.Context, nodeID, id string, ok bool, msg, auditID string, report proto.Message) {
	w.setCommand(ctx, id, func(c *controllerv1.CommandRecord) {
		if finished(c) {
			return
		}
		c.State = controllerv1.CommandRecord_STATE_FAILED
		if ok {
			c.State = controllerv1.CommandRecord_STATE_SUCCEEDED
		}
		c.Error, c.AuditId = msg, auditID
		switch r := report.(type) {
		case *agentv1.ApplyReport:
			c.Report = &controllerv1.CommandRecord_ApplyReport{ApplyReport: r}
		case *agentv1.PlanReport:
			c.Report = &controllerv1.CommandRecord_PlanReport{PlanReport: r}
		}
	})
	w.engine().CommandFinished(nodeID, id)
}

// storeAudit seals an audit and stores it as controller/fleet stores an
// upload: the canonical document as a blob, and its record.
func (w *world) storeAudit(ctx context.Context, nodeID, commandID string, doc *inventoryv1.Audit) string {
	fail := func(format string, args ...any) string {
		if ctx.Err() == nil {
			w.t.Errorf(format, args...)
		}
		return ""
	}
	if err := audit.Seal(doc); err != nil {
		return fail("seal audit: %v", err)
	}
	canon, err := audit.Marshal(doc)
	if err != nil {
		return fail("encode audit: %v", err)
	}
	digest, size, err := w.blobs.Put(ctx, bytes.NewReader(canon), int64(len(canon)))
	if err != nil {
		return fail("store audit: %v", err)
	}
	rec := &controllerv1.AuditRecord{
		Id: doc.GetHashes().GetDocument(), NodeId: nodeID, Hostname: doc.GetOs().GetHostname(),
		CollectedAt: doc.GetHeader().GetCollectedAt(), StoredAt: stamp.Format(time.Now()), ContentHash: doc.GetHashes().GetContent(),
		SizeBytes: size, CommandId: commandID, Blob: digest,
	}
	err = w.store().Update(ctx, func(tx store.Tx) error {
		if err := tx.PutAudit(rec); err != nil {
			return err
		}
		n, err := tx.Node(nodeID)
		if err != nil {
			return err
		}
		n.LastAuditId, n.LastAuditAt = rec.GetId(), rec.GetCollectedAt()
		return tx.PutNode(n)
	})
	if err != nil {
		return fail("record audit: %v", err)
	}
	return rec.GetId()
}

// baseline audits a node now (tracking the release's files) and makes
// the audit its CMS baseline, as an operator would.
func (w *world) baseline(nodeID string) *controllerv1.AuditRecord {
	w.t.Helper()
	id := w.auditNow(nodeID)
	var rec *controllerv1.AuditRecord
	err := w.store().Update(w.ctx, func(tx store.Tx) error {
		var err error
		if rec, err = tx.Audit(id); err != nil {
			return err
		}
		prev, err := tx.Baselines(nodeID)
		if err != nil {
			return err
		}
		return tx.PutBaseline(&controllerv1.BaselineRecord{NodeId: nodeID, Version: uint32(len(prev)) + 1, AuditId: id, AcceptedBy: "user:auditor", Reason: "initial"})
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return rec
}

// baselines returns a node's baselines.
func (w *world) baselines(nodeID string) []*controllerv1.BaselineRecord {
	w.t.Helper()
	var out []*controllerv1.BaselineRecord
	err := w.store().View(w.ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.Baselines(nodeID)
		return err
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return out
}

// logActions returns the actions of the audit-log entries about the
// rollout, in order.
func (w *world) logActions(id string) []string {
	w.t.Helper()
	var out []string
	err := w.store().View(w.ctx, func(tx store.Tx) error {
		all, err := tx.LogEntries(0, 0)
		for _, e := range all {
			if e.GetObject() == object(id) {
				out = append(out, e.GetActor()+" "+e.GetAction())
			}
		}
		return err
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return out
}

// auditNow stores an audit of a node (tracking the release's files), as
// a scheduled audit would.
func (w *world) auditNow(nodeID string) string {
	a := w.agent
	a.mu.Lock()
	a.seq++
	doc := a.hosts[nodeID].audit(nodeID, []string{confPath}, a.seq)
	a.mu.Unlock()
	return w.storeAudit(w.ctx, nodeID, "", doc)
}

// waitEvent waits until the notifier got event: the engine reports
// events and metrics after it commits, so a test that saw the state
// waits for the event before it looks at what came with it.
func (w *world) waitEvent(event string) {
	w.t.Helper()
	deadline := time.Now().Add(long)
	for !slices.Contains(w.notifier.list(), event) {
		if time.Now().After(deadline) {
			w.t.Fatalf("no event %s; got %v", event, w.notifier.list())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// staticKeys is one release public key that never retires.
type staticKeys struct{ pub ed25519.PublicKey }

func (k staticKeys) PublicKeys() signed.Keys { return signed.SingleKey(k.pub) }
