package rollout

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cairn-ops/cairn/internal/limits"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// Strategies.
const (
	StrategyCanary    = "canary"
	StrategyWaves     = "waves"
	StrategyAllAtOnce = "all-at-once"
)

// What happens when a wave exceeds its failure budget (on_failure).
const (
	OnFailureStop     = "stop"
	OnFailureContinue = "continue"
	OnFailureRollback = "rollback"
)

// What drift from the CMS baseline does to a node (on_drift): block fails
// the node before anything is deployed to it, ignore only reports it.
const (
	OnDriftBlock  = "block"
	OnDriftIgnore = "ignore"
)

// What happens to a node that is not connected when its turn comes
// (unreachable): fail counts it as a failure, skip records it without
// counting it, wait:DURATION waits that long for it first and then
// counts it.
const (
	UnreachableFail = "fail"
	UnreachableSkip = "skip"
	UnreachableWait = "wait"
)

// defaultWaves are each strategy's cumulative waves.
var defaultWaves = map[string][]string{
	StrategyCanary:    {"1", "10%", "50%", "100%"},
	StrategyWaves:     {"10%", "50%", "100%"},
	StrategyAllAtOnce: {"100%"},
}

// Default max_parallel: 10% of the nodes, at most 50, at least 1.
const (
	defaultParallelPercent = 10
	defaultParallelMax     = 50
)

// Params is a rollout spec with its defaults filled in and every field
// parsed, for a given number of nodes.
type Params struct {
	// Spec is a copy of the spec with the defaults written in.
	Spec *controllerv1.RolloutSpec
	// Waves are the cumulative node counts of the waves: wave i deploys
	// to nodes Waves[i-1] (0 for the first) up to Waves[i]. The last is
	// every node.
	Waves       []int
	MaxParallel int
	// MaxFailures is per wave; see WaveMaxFailures.
	MaxFailures Quantity
	// Unreachable is fail, skip or wait; UnreachableWait the wait.
	Unreachable     string
	UnreachableWait time.Duration
	Bake            time.Duration
	// LostAfter is how long a node in flight may stay disconnected before
	// the unreachable policy applies; 0: the engine's default.
	LostAfter time.Duration
	// Gates are the waves (1-based) after which the rollout pauses.
	Gates []int
	// Window is nil when any time will do.
	Window    *Window
	OnFailure string
	OnDrift   string
}

// Quantity is "N" or "N%" of something.
type Quantity struct {
	N       int
	Percent float64
	// IsPercent: Percent holds the value, else N.
	IsPercent bool
}

func (q Quantity) String() string {
	if q.IsPercent {
		return strconv.FormatFloat(q.Percent, 'f', -1, 64) + "%"
	}
	return strconv.Itoa(q.N)
}

// ceil is q of total rounded up.
func (q Quantity) ceil(total int) int {
	if !q.IsPercent {
		return q.N
	}
	// Round away float noise before rounding up: 10% of 30 is 3.
	return int(math.Ceil(math.Round(q.Percent*float64(total)*1e6)/1e8 - 1e-9))
}

// floor is q of total rounded down.
func (q Quantity) floor(total int) int {
	if !q.IsPercent {
		return q.N
	}
	return int(math.Floor(math.Round(q.Percent*float64(total)*1e6)/1e8 + 1e-9))
}

// WaveMaxFailures is how many failures a wave of size nodes may have
// without failing: max_failures, a percentage of the wave rounded down.
func (p *Params) WaveMaxFailures(size int) int {
	return p.MaxFailures.floor(size)
}

// gate reports whether the rollout pauses after wave (1-based).
func (p *Params) gate(wave int) bool {
	return slices.Contains(p.Gates, wave)
}

// problems collects what is wrong with a spec.
type problems []string

func (ps *problems) add(field, value, format string, args ...any) {
	*ps = append(*ps, fmt.Sprintf("%s %s: %s", field, limits.Quote(value), fmt.Sprintf(format, args...)))
}

// Normalize fills in spec's defaults for a rollout to nodes nodes and
// parses every field. A malformed field is an ErrInvalid naming every
// field that is wrong and its value. spec is not changed.
//
// Waves are cumulative counts ("1") or percentages of the nodes ("10%",
// rounded up); each wave gets at least one node more than the one
// before, waves left empty (the fleet is smaller than the list) are
// dropped, and a list that does not end at 100% gets a last wave of
// every remaining node.
func Normalize(spec *controllerv1.RolloutSpec, nodes int) (*Params, error) {
	s := &controllerv1.RolloutSpec{}
	if spec != nil {
		s = proto.Clone(spec).(*controllerv1.RolloutSpec)
	}
	p := &Params{Spec: s}
	var ps problems

	switch s.Strategy {
	case "":
		s.Strategy = StrategyCanary
	case StrategyCanary, StrategyWaves, StrategyAllAtOnce:
	default:
		ps.add("strategy", s.Strategy, "use canary, waves or all-at-once")
	}
	p.normalizeWaves(&ps, nodes)
	p.normalizeParallel(&ps, nodes)

	if s.MaxFailures == "" {
		s.MaxFailures = "0"
	}
	if q, msg := parseQuantity(s.MaxFailures, true); msg != "" {
		ps.add("max_failures", s.MaxFailures, "%s", msg)
	} else {
		p.MaxFailures = q
	}

	switch u := s.Unreachable; {
	case u == "":
		s.Unreachable = UnreachableFail
		p.Unreachable = UnreachableFail
	case u == UnreachableFail, u == UnreachableSkip:
		p.Unreachable = u
	case strings.HasPrefix(u, UnreachableWait+":"):
		d, err := time.ParseDuration(strings.TrimPrefix(u, UnreachableWait+":"))
		if err != nil || d <= 0 {
			ps.add("unreachable", u, "wait needs a positive duration, e.g. wait:10m")
			break
		}
		if d > limits.UnreachableWait {
			ps.add("unreachable", u, "wait at most %s", limits.UnreachableWait)
			break
		}
		p.Unreachable, p.UnreachableWait = UnreachableWait, d
	default:
		ps.add("unreachable", u, "use fail, skip or wait:DURATION (e.g. wait:10m)")
	}

	if s.Bake == "" {
		s.Bake = "0s"
	}
	switch d, err := time.ParseDuration(s.Bake); {
	case err != nil || d < 0:
		ps.add("bake", s.Bake, "not a duration (e.g. 30m, 1h)")
	case d > limits.Bake:
		ps.add("bake", s.Bake, "bake at most %s between waves", limits.Bake)
	default:
		p.Bake = d
	}

	if s.LostAfter != "" {
		switch d, err := time.ParseDuration(s.LostAfter); {
		case err != nil || d <= 0:
			ps.add("lost_after", s.LostAfter, "not a positive duration (e.g. 2m)")
		case d > limits.UnreachableWait:
			ps.add("lost_after", s.LostAfter, "at most %s", limits.UnreachableWait)
		default:
			p.LostAfter = d
		}
	}

	gates := slices.Clone(s.GatesAfterWave)
	slices.Sort(gates)
	gates = slices.Compact(gates)
	for _, g := range gates {
		if g < 1 || int(g) > len(p.Waves) {
			ps.add("gates_after_wave", strconv.Itoa(int(g)), "there are %d waves for %d nodes (gates are 1-based)", len(p.Waves), nodes)
			continue
		}
		p.Gates = append(p.Gates, int(g))
	}
	s.GatesAfterWave = gates

	if s.Window != "" {
		w, err := ParseWindow(s.Window)
		if err != nil {
			ps = append(ps, err.Error())
		} else {
			p.Window = w
		}
	}

	switch s.OnFailure {
	case "":
		s.OnFailure = OnFailureStop
	case OnFailureStop, OnFailureContinue, OnFailureRollback:
	default:
		ps.add("on_failure", s.OnFailure, "use stop, continue or rollback")
	}
	p.OnFailure = s.OnFailure

	switch s.OnDrift {
	case "":
		s.OnDrift = OnDriftBlock
	case OnDriftBlock, OnDriftIgnore:
	default:
		ps.add("on_drift", s.OnDrift, "use block or ignore")
	}
	p.OnDrift = s.OnDrift

	if len(ps) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, strings.Join(ps, "; "))
	}
	return p, nil
}

// normalizeWaves fills in the strategy's waves and computes their sizes.
func (p *Params) normalizeWaves(ps *problems, nodes int) {
	s := p.Spec
	if len(s.Waves) == 0 {
		s.Waves = slices.Clone(defaultWaves[s.Strategy])
	} else if s.Strategy == StrategyAllAtOnce && !(len(s.Waves) == 1 && s.Waves[0] == "100%") {
		ps.add("waves", strings.Join(s.Waves, ","), "all-at-once deploys to every node in one wave; leave waves out or use strategy waves")
		return
	}
	qs := make([]Quantity, 0, len(s.Waves)+1)
	for i, w := range s.Waves {
		field := fmt.Sprintf("waves[%d]", i)
		q, msg := parseQuantity(w, false)
		if msg != "" {
			ps.add(field, w, "%s", msg)
			continue
		}
		if len(qs) > 0 {
			prev := qs[len(qs)-1]
			if prev.IsPercent == q.IsPercent && ((q.IsPercent && q.Percent <= prev.Percent) || (!q.IsPercent && q.N <= prev.N)) {
				ps.add(field, w, "not more than the wave before (%s); waves are cumulative", prev)
				continue
			}
		}
		qs = append(qs, q)
	}
	if len(qs) == 0 {
		return
	}
	if last := qs[len(qs)-1]; !last.IsPercent || last.Percent != 100 {
		qs = append(qs, Quantity{Percent: 100, IsPercent: true})
		s.Waves = append(s.Waves, "100%")
	}
	done := 0
	for i, q := range qs {
		n := min(q.ceil(nodes), nodes)
		if i == len(qs)-1 {
			n = nodes
		}
		if n <= done {
			n = min(done+1, nodes)
		}
		if n == done {
			continue
		}
		p.Waves = append(p.Waves, n)
		done = n
	}
}

// normalizeParallel fills in and computes max_parallel.
func (p *Params) normalizeParallel(ps *problems, nodes int) {
	s := p.Spec
	if s.MaxParallel == "" {
		d := Quantity{Percent: defaultParallelPercent, IsPercent: true}.ceil(nodes)
		p.MaxParallel = max(1, min(defaultParallelMax, d))
		s.MaxParallel = strconv.Itoa(p.MaxParallel)
		return
	}
	q, msg := parseQuantity(s.MaxParallel, false)
	if msg != "" {
		ps.add("max_parallel", s.MaxParallel, "%s", msg)
		return
	}
	p.MaxParallel = max(1, q.ceil(nodes))
}

// parseQuantity reads "N" or "N%". zero allows 0 (else at least 1, or
// more than 0%). The message says what is wrong, "" when nothing is.
func parseQuantity(s string, zero bool) (Quantity, string) {
	const want = "use a whole number N or a percentage N%"
	if num, ok := strings.CutSuffix(strings.TrimSpace(s), "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		switch {
		case err != nil || math.IsNaN(v) || math.IsInf(v, 0):
			return Quantity{}, want
		case v < 0 || (v == 0 && !zero):
			return Quantity{}, "must be more than 0%"
		case v > 100:
			return Quantity{}, "more than 100% of the nodes"
		}
		return Quantity{Percent: v, IsPercent: true}, ""
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	switch {
	case err != nil:
		return Quantity{}, want
	case n < 0 || (n == 0 && !zero):
		return Quantity{}, "must be at least 1"
	}
	return Quantity{N: n}, ""
}
