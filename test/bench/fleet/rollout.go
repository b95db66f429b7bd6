package main

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/cairn-ops/cairn/controller/rollout/state"
	"github.com/cairn-ops/cairn/internal/manifest"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// releaseYAML is the release the rollout benchmark deploys.
//
//go:embed release.yaml
var releaseYAML []byte

// waveTime is one wave's size and duration as the controller recorded it.
type waveTime struct {
	nodes int
	took  time.Duration
}

// rolloutResult is what one rollout benchmark measured.
type rolloutResult struct {
	n int

	enroll, connect time.Duration
	baseline        time.Duration // audit + accept, not part of the rollout
	memConnected    memory        // all connected, before the baselines
	memIdle         memory        // baselines accepted, before the rollout
	memAfter        memory        // the rollout finished
	memPeak         int64         // highest RSS sampled during the rollout

	spec      *controllerv1.RolloutSpec // as the controller normalized it
	state     string
	reason    string
	total     time.Duration // StartRollout called → final state seen
	ctlTotal  time.Duration // the record's created_at → finished_at
	waves     []waveTime
	counts    *controllerv1.RolloutCounts
	ctlCPU    time.Duration // the controller's CPU time during the rollout
	genCPU    time.Duration // the load generator's
	nodeP50   time.Duration // median node duration
	nodeMax   time.Duration
	deploys   int64
	compared  int // passed nodes whose comparison is recorded
	polls     int
	slowPoll  time.Duration
	sessErrs  int64
	logIssues int
}

// roleUsers are the benchmark's operators, one per duty: the controller
// requires the author, the tester and the approver of a release to be
// different people.
var roleUsers = []struct{ name, role string }{
	{"fleet-rm", "release-manager"},
	{"fleet-qa", "tester"},
	{"fleet-boss", "approver"},
	{"fleet-ops", "operator"},
}

// rolloutBenchmark enrolls and connects n simulated agents, accepts
// their baselines, signs off release.yaml with three users and rolls it
// out in waves, measuring the rollout and the controller's memory.
func rolloutBenchmark(ctx context.Context, cfg config, n int) (*rolloutResult, error) {
	r := &rolloutResult{n: n}
	m, err := manifest.Parse(releaseYAML, "release.yaml")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "cairn-fleet-rollout-")
	if err != nil {
		return nil, err
	}
	if cfg.keepData {
		fmt.Printf("data and log kept in %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	fix, err := newFixture(ctx, cfg.root, filepath.Join(dir, "fixture"), m)
	if err != nil {
		return nil, err
	}
	ctl, err := startController(ctx, cfg.bin, dir)
	if err != nil {
		return nil, err
	}
	defer ctl.close()
	fmt.Printf("controller pid %d listening on %s\n", ctl.cmd.Process.Pid, ctl.addr)

	c := newCounters()
	res := &result{}
	agents, err := enrollAll(ctx, ctl, n, cfg.enrollPar, c, res)
	if err != nil {
		return nil, err
	}
	r.enroll = res.enroll
	for _, a := range agents {
		a.fix, a.state = fix, stateBefore
	}
	actx, stopAgents := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stopAgents()
		wg.Wait()
	}()
	t0 := time.Now()
	for _, a := range agents {
		wg.Go(func() { a.run(actx) })
	}
	if err := waitConnected(ctx, ctl, n, time.Time{}, cfg.deadline, c); err != nil {
		return r, fmt.Errorf("connect: %w", err)
	}
	r.connect = time.Since(t0)
	fmt.Printf("connected all %d in %s\n", n, r.connect.Round(time.Millisecond))

	sleep(ctx, cfg.idle)
	if r.memConnected, err = ctl.memory(); err != nil {
		return r, err
	}
	fmt.Printf("controller RSS with %d idle sessions: %s\n", n, mib(r.memConnected.rss))

	users, err := ctl.roleConns(ctx)
	if err != nil {
		return r, err
	}
	defer func() {
		for _, conn := range users {
			conn.Close()
		}
	}()
	ops := users["operator"]
	if err := acceptBaselines(ctx, ctl, controllerv1.NewCMSClient(ops), m, n, cfg.deadline, c, r); err != nil {
		return r, err
	}
	if err := signOff(ctx, users, m); err != nil {
		return r, err
	}

	sleep(ctx, cfg.idle)
	if r.memIdle, err = ctl.memory(); err != nil {
		return r, err
	}
	fmt.Printf("controller RSS before the rollout: %s\n", mib(r.memIdle.rss))

	if err := runRollout(ctx, cfg, ctl, controllerv1.NewRolloutsClient(ops), m, n, c, r); err != nil {
		return r, err
	}
	sleep(ctx, 2*time.Second)
	if r.memAfter, err = ctl.memory(); err != nil {
		return r, err
	}
	r.deploys = c.deploys.Load()
	r.sessErrs = c.sessionErrors.Load()
	stopAgents()
	wg.Wait()
	if err := ctl.close(); err != nil {
		return r, err
	}
	problems, err := ctl.logProblems()
	if err != nil {
		return r, err
	}
	r.logIssues = len(problems)
	if len(problems) > 0 {
		fmt.Printf("controller log: %d warning/error lines, the first:\n", len(problems))
		for _, p := range problems[:min(len(problems), 8)] {
			fmt.Println("  " + p)
		}
	}
	return r, nil
}

// roleConns creates the users of roleUsers, a token for each, and one
// connection per user, by role.
func (c *controller) roleConns(ctx context.Context) (map[string]*grpc.ClientConn, error) {
	usersC := controllerv1.NewUsersClient(c.conn)
	conns := map[string]*grpc.ClientConn{}
	for _, u := range roleUsers {
		if _, err := usersC.CreateUser(ctx, &controllerv1.CreateUserRequest{Name: u.name, Roles: []string{u.role}}); err != nil {
			return conns, fmt.Errorf("create user %s: %w", u.name, err)
		}
		tok, err := usersC.CreateToken(ctx, &controllerv1.CreateTokenRequest{User: u.name, TtlSeconds: int64(24 * time.Hour / time.Second)})
		if err != nil {
			return conns, fmt.Errorf("create a token for %s: %w", u.name, err)
		}
		conn, err := c.dial(tok.GetToken())
		if err != nil {
			return conns, fmt.Errorf("connect as %s: %w", u.name, err)
		}
		conns[u.role] = conn
	}
	return conns, nil
}

// acceptBaselines audits the fleet (every collector, the release's files
// tracked, as a rollout's audits) and makes each node's audit its CMS
// baseline, as an operator would before a first rollout.
func acceptBaselines(ctx context.Context, ctl *controller, cms controllerv1.CMSClient, m *manifest.Manifest, n int, deadline time.Duration, c *counters, r *rolloutResult) error {
	t0 := time.Now()
	before := c.resultsAcked.Load()
	resp, err := ctl.audits.RunAudit(ctx, &controllerv1.RunAuditRequest{Selector: fleetLabels, Track: trackOf(m)})
	if err != nil {
		return fmt.Errorf("baseline audit: %w", err)
	}
	if got := len(resp.GetCommands()); got != n {
		return fmt.Errorf("baseline audit: %d commands created, want %d", got, n)
	}
	for c.resultsAcked.Load()-before < int64(n) {
		if time.Since(t0) > deadline {
			return fmt.Errorf("baseline audit: %d of %d results acknowledged after %s", c.resultsAcked.Load()-before, n, deadline)
		}
		if !sleep(ctx, 20*time.Millisecond) {
			return ctx.Err()
		}
	}
	ids := make(chan string)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for id := range ids {
				_, err := cms.AcceptBaseline(ctx, &controllerv1.AcceptBaselineRequest{Node: id, Reason: "fleet benchmark: initial build"})
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("accept the baseline of %s: %w", id, err)
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, cmd := range resp.GetCommands() {
		ids <- cmd.GetNodeId()
	}
	close(ids)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	r.baseline = time.Since(t0)
	fmt.Printf("audited the fleet and accepted %d baselines in %s\n", n, r.baseline.Round(time.Millisecond))
	return nil
}

// trackOf returns the paths of m's file expectations and file steps.
func trackOf(m *manifest.Manifest) []string {
	var track []string
	for _, f := range m.Expect.Files {
		track = append(track, f.Path)
	}
	for _, st := range m.Steps {
		if p, ok := st.Params["path"].(string); ok && st.Plugin == "file" {
			track = append(track, p)
		}
	}
	return track
}

// signOff takes the release from draft to approved, each step by the
// user whose duty it is.
func signOff(ctx context.Context, users map[string]*grpc.ClientConn, m *manifest.Manifest) error {
	ref := &controllerv1.ReleaseRef{Name: m.Name, Version: m.Version}
	rm := controllerv1.NewReleasesClient(users["release-manager"])
	if _, err := rm.CreateRelease(ctx, &controllerv1.CreateReleaseRequest{ManifestYaml: releaseYAML, Filename: "release.yaml"}); err != nil {
		return fmt.Errorf("create release: %w", err)
	}
	if _, err := rm.SealRelease(ctx, ref); err != nil {
		return fmt.Errorf("seal release: %w", err)
	}
	if _, err := controllerv1.NewReleasesClient(users["tester"]).RecordTest(ctx, &controllerv1.RecordTestRequest{
		Release: ref, Result: "pass", Note: "fleet benchmark",
	}); err != nil {
		return fmt.Errorf("record test: %w", err)
	}
	rec, err := controllerv1.NewReleasesClient(users["approver"]).ApproveRelease(ctx, &controllerv1.DecisionRequest{Release: ref, Note: "fleet benchmark"})
	if err != nil {
		return fmt.Errorf("approve release: %w", err)
	}
	fmt.Printf("release %s@%s %s by three users, digest %.12s\n", m.Name, m.Version, rec.GetState(), rec.GetDigest())
	return nil
}

// runRollout starts the rollout and follows it with ListRollouts (the
// record without its nodes, so that following costs the controller
// little) until it ends, sampling the controller's memory; then it reads
// the nodes once.
func runRollout(ctx context.Context, cfg config, ctl *controller, api controllerv1.RolloutsClient, m *manifest.Manifest, n int, c *counters, r *rolloutResult) error {
	spec := &controllerv1.RolloutSpec{
		Release:     &controllerv1.ReleaseRef{Name: m.Name, Version: m.Version},
		Selector:    fleetLabels,
		Strategy:    "waves",
		Waves:       cfg.waves,
		MaxParallel: cfg.maxParallel,
	}
	fmt.Printf("rollout: waves %v, max parallel %s\n", cfg.waves, cfg.maxParallel)
	cpu0, err := ctl.cpu()
	if err != nil {
		return err
	}
	gen0 := selfCPU()
	t0 := time.Now()
	rec, err := api.StartRollout(ctx, spec)
	if err != nil {
		return fmt.Errorf("start rollout: %w", err)
	}
	fmt.Printf("StartRollout returned after %s: rollout %s, %d waves, max parallel %d\n",
		time.Since(t0).Round(time.Millisecond), rec.GetId(), len(rec.GetWaves()), rec.GetMaxParallel())
	r.spec = rec.GetSpec()
	last := time.Now()
	for {
		p0 := time.Now()
		list, err := api.ListRollouts(ctx, &controllerv1.ListRolloutsRequest{Release: m.Name + "@" + m.Version})
		r.slowPoll = max(r.slowPoll, time.Since(p0))
		r.polls++
		if err != nil {
			return fmt.Errorf("list rollouts: %w", err)
		}
		for _, x := range list.GetRollouts() {
			if x.GetId() == rec.GetId() {
				rec = x
			}
		}
		if mem, err := ctl.memory(); err == nil {
			r.memPeak = max(r.memPeak, mem.rss)
		}
		if state.Stopped(rec) {
			break
		}
		if time.Since(t0) > cfg.deadline {
			return fmt.Errorf("rollout %s still %s after %s: %s", rec.GetId(), state.Name(rec.GetState()), cfg.deadline, countsLine(rec.GetCounts()))
		}
		if time.Since(last) > 2*time.Second {
			fmt.Printf("  %s: %s, %s\n", time.Since(t0).Round(time.Second), state.Name(rec.GetState()), countsLine(rec.GetCounts()))
			last = time.Now()
		}
		if !sleep(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
	r.total = time.Since(t0)
	r.genCPU = selfCPU() - gen0
	if cpu1, err := ctl.cpu(); err == nil {
		r.ctlCPU = cpu1 - cpu0
	}
	r.state, r.reason, r.counts = state.Name(rec.GetState()), rec.GetReason(), rec.GetCounts()
	r.ctlTotal = between(rec.GetCreatedAt(), rec.GetFinishedAt())
	for _, w := range rec.GetWaves() {
		r.waves = append(r.waves, waveTime{nodes: len(w.GetNodeIds()), took: between(w.GetStartedAt(), w.GetFinishedAt())})
	}
	fmt.Printf("rollout %s %s after %s (controller: %s): %s; CPU time: controller %s, load generator %s\n", rec.GetId(), r.state,
		r.total.Round(time.Millisecond), r.ctlTotal.Round(time.Millisecond), countsLine(r.counts),
		r.ctlCPU.Round(10*time.Millisecond), r.genCPU.Round(10*time.Millisecond))
	if r.reason != "" {
		fmt.Printf("  reason: %s\n", r.reason)
	}
	for i, w := range r.waves {
		fmt.Printf("  wave %d: %d nodes in %s\n", i+1, w.nodes, w.took.Round(time.Millisecond))
	}

	full, err := api.GetRollout(ctx, &controllerv1.RolloutRef{Id: rec.GetId()})
	if err != nil {
		return fmt.Errorf("get rollout: %w", err)
	}
	var durs []time.Duration
	failures := map[string]int{}
	for _, node := range full.GetNodes() {
		durs = append(durs, time.Duration(node.GetDurationSeconds()*float64(time.Second)))
		if node.GetState() == state.NodePassed && len(node.GetComparisonJson()) > 0 {
			r.compared++
		}
		if e := node.GetError(); e != "" && len(failures) < 5 {
			failures[e]++
		}
	}
	if len(durs) > 0 {
		slices.Sort(durs)
		r.nodeP50, r.nodeMax = durs[len(durs)/2], durs[len(durs)-1]
	}
	for e, k := range failures {
		fmt.Printf("  %d node(s) failed: %s\n", k, e)
	}
	if rec.GetState() != state.RolloutCompleted || r.counts.GetPassed() != uint32(n) {
		return fmt.Errorf("rollout %s ended %s with %s, want all %d passed", rec.GetId(), r.state, countsLine(r.counts), n)
	}
	return nil
}

func countsLine(c *controllerv1.RolloutCounts) string {
	return fmt.Sprintf("%d passed, %d running, %d pending, %d failed, %d unreachable", c.GetPassed(), c.GetRunning(), c.GetPending(), c.GetFailed(), c.GetUnreachable())
}

// between is the time from one RFC 3339 stamp to another (0 when either
// is missing).
func between(from, to string) time.Duration {
	a, err1 := time.Parse(time.RFC3339Nano, from)
	b, err2 := time.Parse(time.RFC3339Nano, to)
	if err1 != nil || err2 != nil {
		return 0
	}
	return b.Sub(a)
}
