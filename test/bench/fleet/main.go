// Command fleet is Cairn's fleet-scale benchmark: a load generator that
// runs N simulated agents in one process against a real cairn-controller,
// over the real protocol, TLS and enrollment, and reports what a fleet of
// that size costs the controller.
//
// Each simulated agent has its own identity: it generates its key, sends a
// CSR to Enrollment.Enroll with a shared multi-use join token, and then
// holds its own mutual-TLS connection (one grpc.ClientConn per agent, as
// real agents do) with one Agent.Session stream, a 30 s keepalive and a
// reconnect loop with full-jitter backoff (200 ms base, 5 s cap). On an
// audit command it acknowledges, uploads a small pre-sealed audit (the
// debian-a software fixture, os and packages, with the agent's hostname so
// that every node's document is distinct) through Agent.UploadAudit and
// reports the result.
//
// For each N the benchmark starts a fresh controller as a subprocess (so
// that its resident memory can be read from /proc) and measures:
//
//  1. the time to enroll all N agents, and the time until the controller
//     lists all N as connected;
//  2. the controller's resident memory before the sessions open and after
//     all are connected and idle, per agent (target ≤ 100 KB);
//  3. the time from Audits.RunAudit (a selector matching the whole fleet)
//     until every agent's result is acknowledged, confirmed afterwards
//     through Audits.GetCommand (target ≤ 10 s for 1,000 agents);
//  4. the time for every agent to reconnect after the controller is
//     stopped with SIGTERM and started again on the same port and data
//     directory, and how many failed to (target ≤ 30 s, none failed).
//
// A missed target is printed as MISSED; the program exits non-zero only
// when the benchmark itself fails.
//
// With -rollout the benchmark measures a rollout instead. The simulated
// agents then also answer deploy commands as cairn-agent does: they
// acknowledge, fetch the command's artifacts with Agent.FetchArtifact
// (verifying each sha256), and report every step of the release as
// changed in an agent/apply Report (a PlanReport for a dry run). Their
// audits come from two real directory trees audited by the real
// collectors for each command's collectors and tracked files: the
// debian-a software and host-a hardware fixtures as enrolled, and a copy
// with release.yaml's changes made (its file written, nginx's version
// bumped), which an agent reports after it applied the release (and no
// longer after a rollback). For each N it then:
//
//  1. enrolls and connects N agents to a fresh controller;
//  2. audits them and accepts every audit as the node's CMS baseline;
//  3. creates four users (release manager, tester, approver, operator)
//     and takes release.yaml from draft to approved through the
//     Releases API, each step by the user whose duty it is, as cairnctl
//     does;
//  4. starts a rollout of it to the fleet as the operator (strategy
//     waves, -waves and -max-parallel) and follows it with ListRollouts
//     until it ends, sampling the controller's resident memory;
//  5. reports the total time (StartRollout to the final state), each
//     wave's time as the controller recorded it, the node durations, and
//     the controller's RSS before, at its peak during and after the
//     rollout. All N nodes must pass.
//
// Run it from anywhere in the repository; run.sh builds the binaries first:
//
//	test/bench/fleet/run.sh                # N = 1000
//	test/bench/fleet/run.sh -n 1000,5000   # one fresh controller per N
//	test/bench/fleet/run.sh -rollout -n 1000
//	test/bench/fleet/run.sh -rollout -n 1000 -waves 1,10%,100% -max-parallel 200
//
// It raises its open-file limit to the hard limit, which the controller
// inherits; 5,000 agents need about 10,000 descriptors on one machine.
// The load generator and the controller share the machine's CPUs, so on a
// small machine the figures include the generator's own TLS work.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is the benchmark's configuration, from flags.
type config struct {
	sizes     []int
	root      string // repository root
	bin       string // directory holding cairn-controller
	enrollPar int
	idle      time.Duration
	deadline  time.Duration
	keepData  bool

	rollout     bool
	waves       []string
	maxParallel string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(2)
	}
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	sizes := fs.String("n", "1000", "number of simulated agents; a comma-separated list runs each in turn with a fresh controller")
	root := fs.String("root", ".", "repository root (for bin/ and the audit fixture)")
	bin := fs.String("bin", "", "directory holding cairn-controller (default ROOT/bin)")
	par := fs.Int("enroll-concurrency", 32, "enrollments in flight at once")
	idle := fs.Duration("idle", 5*time.Second, "how long the connected fleet idles before the memory reading")
	deadline := fs.Duration("deadline", 3*time.Minute, "longest wait for any one phase")
	keep := fs.Bool("keep", false, "keep the controller's data directory and log")
	rollout := fs.Bool("rollout", false, "benchmark a rollout of release.yaml to the fleet instead of audits and reconnects")
	waves := fs.String("waves", "1,10%,50%,100%", "with -rollout: the waves, cumulative sizes N or N%")
	maxPar := fs.String("max-parallel", "100", "with -rollout: nodes deploying at once, N or N%")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: fleet [-n 1000,5000] [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	cfg := config{
		root: *root, bin: *bin, enrollPar: *par, idle: *idle, deadline: *deadline, keepData: *keep,
		rollout: *rollout, waves: strings.Split(*waves, ","), maxParallel: *maxPar,
	}
	for s := range strings.SplitSeq(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return config{}, fmt.Errorf("-n %q: want positive numbers separated by commas", *sizes)
		}
		cfg.sizes = append(cfg.sizes, n)
	}
	if cfg.enrollPar <= 0 {
		return config{}, errors.New("-enroll-concurrency must be positive")
	}
	abs, err := filepath.Abs(cfg.root)
	if err != nil {
		return config{}, err
	}
	cfg.root = abs
	if cfg.bin == "" {
		cfg.bin = filepath.Join(cfg.root, "bin")
	}
	return cfg, nil
}

func run(ctx context.Context, cfg config) error {
	limit, err := raiseFileLimit()
	if err != nil {
		return err
	}
	fmt.Printf("open-file limit: %d\n", limit)
	for _, n := range cfg.sizes {
		// Each agent holds a socket here and one in the controller.
		if need := uint64(2*n + 200); limit < need {
			return fmt.Errorf("N=%d needs about %d open files, the hard limit is %d (raise it with ulimit -Hn as root)", n, need, limit)
		}
	}
	if cfg.rollout {
		return runRollouts(ctx, cfg)
	}
	base, err := baseAudit(ctx, cfg.root)
	if err != nil {
		return err
	}
	var results []*result
	for _, n := range cfg.sizes {
		fmt.Printf("\n=== N = %d ===\n", n)
		r, err := benchmark(ctx, cfg, base, n)
		if r != nil {
			results = append(results, r)
		}
		if err != nil {
			printSummary(os.Stdout, results)
			return fmt.Errorf("N=%d: %w", n, err)
		}
	}
	printSummary(os.Stdout, results)
	return nil
}

// runRollouts runs the rollout benchmark for each N.
func runRollouts(ctx context.Context, cfg config) error {
	var results []*rolloutResult
	for _, n := range cfg.sizes {
		fmt.Printf("\n=== rollout to N = %d ===\n", n)
		r, err := rolloutBenchmark(ctx, cfg, n)
		if r != nil {
			results = append(results, r)
		}
		if err != nil {
			printRolloutSummary(os.Stdout, results)
			return fmt.Errorf("rollout to N=%d: %w", n, err)
		}
	}
	printRolloutSummary(os.Stdout, results)
	return nil
}

// raiseFileLimit raises the soft open-file limit to the hard limit and
// returns it.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("read open-file limit: %w", err)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("raise open-file limit to %d: %w", lim.Max, err)
	}
	return lim.Cur, nil
}
