package rollout

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// normalized is what a test checks of Params.
type normalized struct {
	Strategy        string
	SpecWaves       []string
	Waves           []int
	MaxParallel     int
	SpecParallel    string
	MaxFailures     string
	Unreachable     string
	UnreachableWait time.Duration
	Bake            time.Duration
	Gates           []int
	Window          string
	OnFailure       string
	OnDrift         string
}

func project(p *Params) normalized {
	n := normalized{
		Strategy:        p.Spec.GetStrategy(),
		SpecWaves:       p.Spec.GetWaves(),
		Waves:           p.Waves,
		MaxParallel:     p.MaxParallel,
		SpecParallel:    p.Spec.GetMaxParallel(),
		MaxFailures:     p.MaxFailures.String(),
		Unreachable:     p.Unreachable,
		UnreachableWait: p.UnreachableWait,
		Bake:            p.Bake,
		Gates:           p.Gates,
		OnFailure:       p.OnFailure,
		OnDrift:         p.OnDrift,
	}
	if p.Window != nil {
		n.Window = p.Window.String()
	}
	return n
}

// defaults is a normalized spec with every default, for nodes nodes.
func defaults(waves []int, parallel int) normalized {
	return normalized{
		Strategy: StrategyCanary, SpecWaves: []string{"1", "10%", "50%", "100%"}, Waves: waves,
		MaxParallel: parallel, SpecParallel: strconv.Itoa(parallel), MaxFailures: "0", Unreachable: UnreachableFail, OnFailure: OnFailureStop,
		OnDrift: OnDriftBlock,
	}
}

func TestNormalize(t *testing.T) {
	with := func(n normalized, change func(*normalized)) normalized {
		change(&n)
		return n
	}
	tests := []struct {
		name  string
		spec  *controllerv1.RolloutSpec
		nodes int
		want  normalized
	}{
		{name: "defaults, one node", nodes: 1, want: defaults([]int{1}, 1)},
		{name: "defaults, three nodes: a new node per wave", nodes: 3, want: defaults([]int{1, 2, 3}, 1)},
		{name: "defaults, ten nodes: 10% rounds to the canary, so one more", nodes: 10, want: defaults([]int{1, 2, 5, 10}, 1)},
		{name: "defaults, 30 nodes: percentages round up", nodes: 30, want: defaults([]int{1, 3, 15, 30}, 3)},
		{name: "defaults, 100 nodes", nodes: 100, want: defaults([]int{1, 10, 50, 100}, 10)},
		{name: "defaults, 2000 nodes: max parallel is at most 50", nodes: 2000, want: defaults([]int{1, 200, 1000, 2000}, 50)},
		{name: "nil spec", spec: nil, nodes: 2, want: defaults([]int{1, 2}, 1)},
		{
			name: "strategy waves", nodes: 20,
			spec: &controllerv1.RolloutSpec{Strategy: StrategyWaves},
			want: with(defaults([]int{2, 10, 20}, 2), func(n *normalized) {
				n.Strategy, n.SpecWaves = StrategyWaves, []string{"10%", "50%", "100%"}
			}),
		},
		{
			name: "all at once", nodes: 7,
			spec: &controllerv1.RolloutSpec{Strategy: StrategyAllAtOnce},
			want: with(defaults([]int{7}, 1), func(n *normalized) {
				n.Strategy, n.SpecWaves = StrategyAllAtOnce, []string{"100%"}
			}),
		},
		{
			name: "waves not ending at 100% get a last wave", nodes: 10,
			spec: &controllerv1.RolloutSpec{Waves: []string{"2", "50%"}},
			want: with(defaults([]int{2, 5, 10}, 1), func(n *normalized) { n.SpecWaves = []string{"2", "50%", "100%"} }),
		},
		{
			name: "waves larger than the fleet are dropped", nodes: 3,
			spec: &controllerv1.RolloutSpec{Waves: []string{"2", "5", "100%"}},
			want: with(defaults([]int{2, 3}, 1), func(n *normalized) { n.SpecWaves = []string{"2", "5", "100%"} }),
		},
		{
			name: "every field given", nodes: 40,
			spec: &controllerv1.RolloutSpec{
				Strategy: StrategyCanary, Waves: []string{"1", "25%", "100%"}, MaxParallel: "25%", MaxFailures: "10%",
				Unreachable: "wait:10m", Bake: "30m", GatesAfterWave: []uint32{2, 1, 2}, Window: "Sat 22:00-Sun 04:00", OnFailure: OnFailureRollback, OnDrift: OnDriftIgnore,
			},
			want: normalized{
				Strategy: StrategyCanary, SpecWaves: []string{"1", "25%", "100%"}, Waves: []int{1, 10, 40},
				MaxParallel: 10, SpecParallel: "25%", MaxFailures: "10%", Unreachable: UnreachableWait, UnreachableWait: 10 * time.Minute,
				Bake: 30 * time.Minute, Gates: []int{1, 2}, Window: "Sat 22:00-Sun 04:00", OnFailure: OnFailureRollback, OnDrift: OnDriftIgnore,
			},
		},
		{
			name: "counts", nodes: 4,
			spec: &controllerv1.RolloutSpec{MaxParallel: "3", MaxFailures: "1", Unreachable: "skip", OnFailure: "continue"},
			want: with(defaults([]int{1, 2, 3, 4}, 3), func(n *normalized) {
				n.SpecParallel, n.MaxFailures, n.Unreachable, n.OnFailure = "3", "1", UnreachableSkip, OnFailureContinue
			}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Normalize(tt.spec, tt.nodes)
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			if diff := cmp.Diff(tt.want, project(p)); diff != "" {
				t.Errorf("Normalize (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNormalizeDoesNotChangeSpec(t *testing.T) {
	spec := &controllerv1.RolloutSpec{Waves: []string{"1"}}
	if _, err := Normalize(spec, 5); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"1"}, spec.GetWaves()); diff != "" || spec.GetStrategy() != "" {
		t.Errorf("Normalize changed its argument: waves (-want +got):\n%s strategy %q", diff, spec.GetStrategy())
	}
}

func TestWaveMaxFailures(t *testing.T) {
	tests := []struct {
		maxFailures string
		size, want  int
	}{
		{"0", 10, 0},
		{"2", 10, 2},
		{"10%", 25, 2}, // rounded down
		{"10%", 9, 0},
		{"10%", 30, 3},
		{"100%", 4, 4},
	}
	for _, tt := range tests {
		p, err := Normalize(&controllerv1.RolloutSpec{MaxFailures: tt.maxFailures}, 100)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.WaveMaxFailures(tt.size); got != tt.want {
			t.Errorf("max_failures %s of a wave of %d = %d, want %d", tt.maxFailures, tt.size, got, tt.want)
		}
	}
}

func TestNormalizeInvalid(t *testing.T) {
	tests := []struct {
		name string
		spec *controllerv1.RolloutSpec
		// says are the parts of the message: the field and the value.
		says []string
	}{
		{name: "strategy", spec: &controllerv1.RolloutSpec{Strategy: "blue-green"}, says: []string{`strategy "blue-green"`, "canary, waves or all-at-once"}},
		{name: "zero wave", spec: &controllerv1.RolloutSpec{Waves: []string{"0", "100%"}}, says: []string{`waves[0] "0"`, "at least 1"}},
		{name: "wave not a number", spec: &controllerv1.RolloutSpec{Waves: []string{"some"}}, says: []string{`waves[0] "some"`}},
		{name: "wave over 100%", spec: &controllerv1.RolloutSpec{Waves: []string{"150%"}}, says: []string{`waves[0] "150%"`, "more than 100%"}},
		{name: "waves shrink", spec: &controllerv1.RolloutSpec{Waves: []string{"50%", "10%"}}, says: []string{`waves[1] "10%"`, "cumulative"}},
		{name: "all at once with waves", spec: &controllerv1.RolloutSpec{Strategy: StrategyAllAtOnce, Waves: []string{"1", "100%"}}, says: []string{`waves "1,100%"`}},
		{name: "max parallel zero", spec: &controllerv1.RolloutSpec{MaxParallel: "0"}, says: []string{`max_parallel "0"`}},
		{name: "max parallel word", spec: &controllerv1.RolloutSpec{MaxParallel: "lots"}, says: []string{`max_parallel "lots"`}},
		{name: "max failures negative", spec: &controllerv1.RolloutSpec{MaxFailures: "-1"}, says: []string{`max_failures "-1"`}},
		{name: "unreachable", spec: &controllerv1.RolloutSpec{Unreachable: "maybe"}, says: []string{`unreachable "maybe"`, "fail, skip or wait:DURATION"}},
		{name: "unreachable wait without duration", spec: &controllerv1.RolloutSpec{Unreachable: "wait:soon"}, says: []string{`unreachable "wait:soon"`}},
		{name: "unreachable wait negative", spec: &controllerv1.RolloutSpec{Unreachable: "wait:-1m"}, says: []string{`unreachable "wait:-1m"`}},
		{name: "bake", spec: &controllerv1.RolloutSpec{Bake: "a while"}, says: []string{`bake "a while"`}},
		// Durations are bounded (internal/limits): 2562047h is the largest
		// time.Duration, a rollout that would bake for 292 years.
		{name: "bake 292 years", spec: &controllerv1.RolloutSpec{Bake: "2562047h"}, says: []string{`bake "2562047h"`, "at most 168h0m0s"}},
		{name: "unreachable wait over a week", spec: &controllerv1.RolloutSpec{Unreachable: "wait:169h"}, says: []string{`unreachable "wait:169h"`, "at most 168h0m0s"}},
		{name: "gate after a wave that does not exist", spec: &controllerv1.RolloutSpec{GatesAfterWave: []uint32{5}}, says: []string{`gates_after_wave "5"`, "3 waves"}},
		{name: "gate zero", spec: &controllerv1.RolloutSpec{GatesAfterWave: []uint32{0}}, says: []string{`gates_after_wave "0"`}},
		{name: "window", spec: &controllerv1.RolloutSpec{Window: "Sat 25:00-Sun 04:00"}, says: []string{`window "Sat 25:00-Sun 04:00"`, `"25:00"`}},
		{name: "on failure", spec: &controllerv1.RolloutSpec{OnFailure: "panic"}, says: []string{`on_failure "panic"`}},
		{name: "on drift", spec: &controllerv1.RolloutSpec{OnDrift: "shrug"}, says: []string{`on_drift "shrug": use block or ignore`}},
		{
			name: "every problem at once",
			spec: &controllerv1.RolloutSpec{Strategy: "x", Bake: "y", OnFailure: "z"},
			says: []string{`strategy "x"`, `bake "y"`, `on_failure "z"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Normalize(tt.spec, 3)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Normalize: %v, want ErrInvalid", err)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}
