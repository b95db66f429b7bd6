// Package inventory takes an audit: it runs the collectors concurrently,
// each in its own goroutine with its own timeout, records every
// collector's outcome in the audit's collector status, and seals the
// result. A collector that fails or hangs costs only its own section.
package inventory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cairn-ops/cairn/agent/collector"
	"github.com/cairn-ops/cairn/internal/audit"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// Defaults for Options fields left zero.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultMaxFiles     = 10000
	DefaultMaxHashBytes = 256 << 20
)

// ErrUnknownCollector is returned for a collector name not in the registry.
var ErrUnknownCollector = errors.New("unknown collector")

// Options says what to audit and how.
type Options struct {
	// Root is the directory to audit; "" or "/" is the running host.
	Root string
	// Collectors names the collectors to run; empty runs them all.
	Collectors []string
	// Track lists file paths and glob patterns for the files collector.
	Track []string
	// Timeout bounds each collector separately.
	Timeout      time.Duration
	MaxFiles     int
	MaxHashBytes int64
	// AgentVersion is written into the audit header.
	AgentVersion string
	// NodeID, when the agent is enrolled, is written into the header.
	NodeID string
	// Now is the clock; nil means time.Now. Tests fix it for golden output.
	Now func() time.Time
	// Logger receives one line per failed collector; nil discards.
	Logger *slog.Logger
	// Registry replaces collector.Registry(), for tests.
	Registry map[string]collector.Collector
}

// Collect takes an audit as opts says and seals it. It fails only when
// the options are wrong (an unknown collector, a root that is not a
// directory) or ctx is cancelled; a collector's failure is recorded in the
// audit instead.
func Collect(ctx context.Context, opts Options) (*inventoryv1.Audit, error) {
	if err := setDefaults(&opts); err != nil {
		return nil, err
	}
	names, err := selectCollectors(opts.Registry, opts.Collectors)
	if err != nil {
		return nil, err
	}
	env := collector.Env{
		Root:         opts.Root,
		Track:        opts.Track,
		MaxFiles:     opts.MaxFiles,
		MaxHashBytes: opts.MaxHashBytes,
	}

	start := opts.Now()
	results := make([]result, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = run(ctx, name, opts.Registry[name], env, opts)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("audit cancelled: %w", err)
	}

	a := &inventoryv1.Audit{
		SchemaVersion: audit.SchemaVersion,
		Header: &inventoryv1.Header{
			AgentVersion: opts.AgentVersion,
			Root:         opts.Root,
			CollectedAt:  start.UTC().Format(time.RFC3339),
			DurationMs:   opts.Now().Sub(start).Milliseconds(),
			NodeId:       opts.NodeID,
		},
	}
	for _, r := range results {
		a.Collectors = append(a.Collectors, r.status)
		if r.status.GetState() == inventoryv1.CollectorStatus_STATE_OK {
			proto.Merge(a, r.out)
		} else {
			opts.Logger.Warn("collector failed", "collector", r.status.GetName(),
				"state", audit.StateName(r.status.GetState()), "error", r.status.GetMessage())
		}
	}
	if err := audit.Seal(a); err != nil {
		return nil, err
	}
	return a, nil
}

func setDefaults(opts *Options) error {
	if opts.Root == "" {
		opts.Root = "/"
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return fmt.Errorf("root %s: %w", opts.Root, err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("root: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("root %s is not a directory", root)
	}
	opts.Root = root
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxFiles <= 0 {
		opts.MaxFiles = DefaultMaxFiles
	}
	if opts.MaxHashBytes <= 0 {
		opts.MaxHashBytes = DefaultMaxHashBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = collector.Registry()
	}
	return nil
}

// selectCollectors returns the requested names, deduplicated and sorted,
// or every registered name when none is requested.
func selectCollectors(reg map[string]collector.Collector, want []string) ([]string, error) {
	seen := map[string]bool{}
	var names []string
	for _, n := range want {
		n = strings.TrimSpace(n)
		if n == "" || seen[n] {
			continue
		}
		if _, ok := reg[n]; !ok {
			valid := make([]string, 0, len(reg))
			for k := range reg {
				valid = append(valid, k)
			}
			sort.Strings(valid)
			return nil, fmt.Errorf("%w %q (valid: %s)", ErrUnknownCollector, n, strings.Join(valid, ", "))
		}
		seen[n] = true
		names = append(names, n)
	}
	if len(names) == 0 {
		for n := range reg {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

type result struct {
	status *inventoryv1.CollectorStatus
	out    *inventoryv1.Audit
}

// run runs one collector under its own timeout. The collector works on a
// private audit, so one that overruns its timeout and keeps going cannot
// race with the others or with the assembled audit.
func run(ctx context.Context, name string, c collector.Collector, env collector.Env, opts Options) result {
	st := &inventoryv1.CollectorStatus{Name: name, Section: c.Section()}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()

	var mu sync.Mutex
	var warnings []string
	env.Warn = func(msg string) {
		mu.Lock()
		defer mu.Unlock()
		if len(warnings) < 100 {
			warnings = append(warnings, msg)
		}
	}

	out := &inventoryv1.Audit{}
	done := make(chan error, 1)
	start := opts.Now()
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("panic: %v\n%s", p, debug.Stack())
			}
		}()
		done <- c.Collect(ctx, env, out)
	}()

	var err error
	select {
	case err = <-done:
		if err == nil && ctx.Err() != nil {
			err = ctx.Err()
		}
	case <-ctx.Done():
		err = ctx.Err()
	}
	st.DurationUs = opts.Now().Sub(start).Microseconds()
	mu.Lock()
	st.Warnings = append([]string(nil), warnings...)
	mu.Unlock()

	switch {
	case errors.Is(err, context.DeadlineExceeded):
		st.State = inventoryv1.CollectorStatus_STATE_TIMEOUT
		st.Message = fmt.Sprintf("did not finish within %s", opts.Timeout)
		return result{status: st}
	case err != nil:
		st.State = inventoryv1.CollectorStatus_STATE_ERROR
		st.Message = err.Error()
		return result{status: st}
	}
	if stray := strayFields(out, c.Section()); stray != "" {
		st.State = inventoryv1.CollectorStatus_STATE_ERROR
		st.Message = fmt.Sprintf("collector wrote section %s, outside its own section %s", stray, c.Section())
		return result{status: st}
	}
	st.State = inventoryv1.CollectorStatus_STATE_OK
	return result{status: st, out: out}
}

// strayFields returns the first section other than own that out fills.
func strayFields(out *inventoryv1.Audit, own string) string {
	for _, s := range audit.Sections {
		if s.Name != own && s.Get(out) != nil {
			return s.Name
		}
	}
	return ""
}
