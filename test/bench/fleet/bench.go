package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// fleetLabels are the enrollment token's labels; the audit selects them.
var fleetLabels = map[string]string{"bench": "fleet"}

// result is what one benchmark run measured.
type result struct {
	n int

	enroll  time.Duration
	connect time.Duration

	memStart, memEnrolled, memIdle memory

	audit          time.Duration
	auditSucceeded int // commands the controller records as succeeded
	auditNodes     int // nodes whose last audit is set

	stop            time.Duration // SIGTERM to exit
	reconnect       time.Duration // new process start to all connected
	reconnectFailed int

	sessionErrors, uploadErrors int64
	logProblems                 int
}

// perAgent is the controller's resident memory per connected idle agent:
// the growth from before the sessions opened to after.
func (r *result) perAgent() int64 {
	return (r.memIdle.rss - r.memEnrolled.rss) / int64(r.n)
}

// benchmark runs every phase for n agents against a fresh controller.
func benchmark(ctx context.Context, cfg config, base *inventoryv1.Audit, n int) (*result, error) {
	r := &result{n: n}
	dir, err := os.MkdirTemp("", "cairn-fleet-")
	if err != nil {
		return nil, err
	}
	if cfg.keepData {
		fmt.Printf("data and log kept in %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	ctl, err := startController(ctx, cfg.bin, dir)
	if err != nil {
		return nil, err
	}
	defer ctl.close()
	fmt.Printf("controller pid %d listening on %s\n", ctl.cmd.Process.Pid, ctl.addr)
	sleep(ctx, time.Second)
	if r.memStart, err = ctl.memory(); err != nil {
		return nil, err
	}

	// Audits first, so their sealing is not timed with anything.
	audits := make([][]byte, n)
	for i := range audits {
		if audits[i], err = auditFor(base, hostname(i)); err != nil {
			return nil, err
		}
	}
	fmt.Printf("audit document: %d bytes per agent\n", len(audits[0]))

	c := newCounters()
	agents, err := enrollAll(ctx, ctl, n, cfg.enrollPar, c, r)
	if err != nil {
		return nil, err
	}
	for i, a := range agents {
		a.audit = audits[i]
	}
	sleep(ctx, 2*time.Second)
	if r.memEnrolled, err = ctl.memory(); err != nil {
		return nil, err
	}

	// Connect the whole fleet at once.
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
	if r.memIdle, err = ctl.memory(); err != nil {
		return r, err
	}
	fmt.Printf("controller RSS: %s at start, %s enrolled, %s with %d idle sessions → %s per agent\n",
		mib(r.memStart.rss), mib(r.memEnrolled.rss), mib(r.memIdle.rss), n, kib(r.perAgent()))

	if err := auditAll(ctx, ctl, n, cfg.deadline, c, r); err != nil {
		return r, err
	}

	if err := restartAll(ctx, ctl, n, cfg.deadline, c, r); err != nil {
		return r, err
	}

	r.sessionErrors, r.uploadErrors = c.sessionErrors.Load(), c.uploadErrors.Load()
	stopAgents()
	wg.Wait()
	if err := ctl.close(); err != nil {
		return r, err
	}
	problems, err := ctl.logProblems()
	if err != nil {
		return r, err
	}
	r.logProblems = len(problems)
	if len(problems) > 0 {
		fmt.Printf("controller log: %d warning/error lines, the first:\n", len(problems))
		for _, p := range problems[:min(len(problems), 8)] {
			fmt.Println("  " + p)
		}
	}
	if len(c.lastErrors) > 0 {
		fmt.Println("session errors seen by the agents (count, message):")
		for msg, k := range c.lastErrors {
			fmt.Printf("  %6d  %s\n", k, msg)
		}
	}
	return r, nil
}

// enrollAll creates one enrollment token for n agents and enrolls them,
// at most par at a time.
func enrollAll(ctx context.Context, ctl *controller, n, par int, c *counters, r *result) ([]*simAgent, error) {
	tok, err := ctl.enrollT.CreateEnrollToken(ctx, &controllerv1.CreateEnrollTokenRequest{
		TtlSeconds: int64(time.Hour / time.Second), Uses: uint32(n), Labels: fleetLabels,
	})
	if err != nil {
		return nil, fmt.Errorf("create enrollment token: %w", err)
	}
	agents := make([]*simAgent, n)
	ectx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	t0 := time.Now()
	for range par {
		wg.Go(func() {
			for i := range next {
				a, err := enroll(ectx, ctl.addr, ctl.roots, tok.GetToken(), hostname(i), c)
				if err != nil {
					cancel(err)
					continue
				}
				agents[i] = a
			}
		})
	}
	for i := range n {
		select {
		case next <- i:
		case <-ectx.Done():
		}
		if ectx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ectx); err != nil {
		return nil, err
	}
	r.enroll = time.Since(t0)
	fmt.Printf("enrolled %d in %s (%.0f/s)\n", n, r.enroll.Round(time.Millisecond), float64(n)/r.enroll.Seconds())
	return agents, nil
}

// auditAll runs one audit on the whole fleet and waits until every
// agent's result is acknowledged, then checks the controller's records.
func auditAll(ctx context.Context, ctl *controller, n int, deadline time.Duration, c *counters, r *result) error {
	before := c.resultsAcked.Load()
	t0 := time.Now()
	resp, err := ctl.audits.RunAudit(ctx, &controllerv1.RunAuditRequest{Selector: fleetLabels, Collectors: []string{"os", "packages"}})
	if err != nil {
		return fmt.Errorf("run audit: %w", err)
	}
	created := time.Since(t0)
	if got := len(resp.GetCommands()); got != n {
		return fmt.Errorf("run audit: %d commands created, want %d", got, n)
	}
	last := time.Now()
	var first time.Duration // until the first result is acknowledged
	for c.resultsAcked.Load()-before < int64(n) {
		if first == 0 && c.resultsAcked.Load() > before {
			first = time.Since(t0)
		}
		if time.Since(t0) > deadline {
			return fmt.Errorf("audit: only %d of %d results acknowledged after %s", c.resultsAcked.Load()-before, n, deadline)
		}
		if time.Since(last) > 5*time.Second {
			fmt.Printf("  audit: %d of %d results acknowledged\n", c.resultsAcked.Load()-before, n)
			last = time.Now()
		}
		if !sleep(ctx, 20*time.Millisecond) {
			return ctx.Err()
		}
	}
	r.audit = time.Since(t0)
	fmt.Printf("audited all %d in %s (RunAudit returned after %s, first result acknowledged after %s)\n",
		n, r.audit.Round(time.Millisecond), created.Round(time.Millisecond), first.Round(time.Millisecond))

	// Confirm with the controller's records.
	ids := make(chan string)
	var (
		mu        sync.Mutex
		succeeded int
		firstErr  error
		wg        sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for id := range ids {
				rec, err := ctl.audits.GetCommand(ctx, &controllerv1.GetCommandRequest{Id: id})
				mu.Lock()
				switch {
				case err != nil && firstErr == nil:
					firstErr = fmt.Errorf("get command %s: %w", id, err)
				case err == nil && rec.GetState() == controllerv1.CommandRecord_STATE_SUCCEEDED:
					succeeded++
				}
				mu.Unlock()
			}
		})
	}
	for _, cmd := range resp.GetCommands() {
		ids <- cmd.GetId()
	}
	close(ids)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	r.auditSucceeded = succeeded
	nodes, err := ctl.nodes.ListNodes(ctx, &controllerv1.ListNodesRequest{Selector: fleetLabels})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	for _, node := range nodes.GetNodes() {
		if node.GetLastAuditId() != "" {
			r.auditNodes++
		}
	}
	fmt.Printf("controller: %d of %d commands succeeded, %d nodes have a stored audit\n", succeeded, n, r.auditNodes)
	return nil
}

// restartAll stops the controller with SIGTERM, starts it again and waits
// until every agent has reconnected.
func restartAll(ctx context.Context, ctl *controller, n int, deadline time.Duration, c *counters, r *result) error {
	var err error
	var started time.Time
	if r.stop, started, err = ctl.restart(ctx); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	fmt.Printf("controller stopped in %s after SIGTERM, started again (pid %d)\n", r.stop.Round(time.Millisecond), ctl.cmd.Process.Pid)
	// Sessions after the restart write a last-seen time after started.
	if err := waitConnected(ctx, ctl, n, started, deadline, c); err != nil {
		got, _ := ctl.connected(ctx, fleetLabels, started)
		r.reconnectFailed = n - got
		fmt.Printf("reconnect: %v\n", err)
	} else {
		r.reconnect = time.Since(started)
		r.reconnectFailed = c.failures()
	}
	fmt.Printf("reconnected %d of %d in %s; %d agents gave up\n", n-r.reconnectFailed, n, r.reconnect.Round(time.Millisecond), c.failures())
	return nil
}

// waitConnected polls the controller until n fleet nodes are connected
// with a last-seen time at or after since. Errors count as "not yet"
// while the controller restarts.
func waitConnected(ctx context.Context, ctl *controller, n int, since time.Time, deadline time.Duration, c *counters) error {
	t0 := time.Now()
	last := t0
	got, polls := 0, 0
	var (
		lastErr error
		slowest time.Duration // the slowest ListNodes poll, which bounds the precision
	)
	for {
		p0 := time.Now()
		k, err := ctl.connected(ctx, fleetLabels, since)
		slowest = max(slowest, time.Since(p0))
		if err == nil {
			got = k
			if got >= n {
				fmt.Printf("  (%d ListNodes polls, the slowest took %s; the last agent sent its Hello after %s)\n",
					polls+1, slowest.Round(time.Millisecond), time.Unix(0, c.lastOpened.Load()).Sub(t0).Round(time.Millisecond))
				return nil
			}
		} else {
			lastErr = err
		}
		if time.Since(t0) > deadline {
			return fmt.Errorf("only %d of %d connected after %s (agent sessions open: %d, gave up: %d, last error: %v)",
				got, n, deadline, c.live.Load(), c.failures(), lastErr)
		}
		if time.Since(last) > 5*time.Second {
			fmt.Printf("  %s: %d of %d connected (agent sessions open: %d)\n", time.Since(t0).Round(time.Second), got, n, c.live.Load())
			last = time.Now()
		}
		polls++
		if !sleep(ctx, 250*time.Millisecond) {
			return ctx.Err()
		}
	}
}

func hostname(i int) string { return fmt.Sprintf("bench-%05d", i) }

// sleep waits for d; it returns false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
func kib(b int64) string { return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10)) }
