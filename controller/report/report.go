package report

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-ops/cairn/controller/release"
	"github.com/cairn-ops/cairn/controller/rollout/state"
	"github.com/cairn-ops/cairn/internal/compare"
	"github.com/cairn-ops/cairn/internal/diff"
	"github.com/cairn-ops/cairn/internal/manifest"
	"github.com/cairn-ops/cairn/internal/stamp"
	"github.com/cairn-ops/cairn/internal/termsafe"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// Input is everything a rollout's management report is drawn from.
type Input struct {
	// Rollout with its nodes filled in.
	Rollout *controllerv1.RolloutRecord
	Release *controllerv1.ReleaseRecord
	// Manifest is the release's manifest, parsed (SLA, known errors).
	Manifest *manifest.Manifest
	// Log holds the audit-log entries about the rollout, oldest first.
	Log         []*controllerv1.AuditLogEntry
	GeneratedAt time.Time
	// Location is the time zone the report shows times in (the
	// controller's); nil is UTC.
	Location *time.Location
}

// titlePrefix starts every report's title.
const titlePrefix = "Rollout report: "

// Report formats.
const (
	FormatText     = "text"
	FormatJSON     = "json"
	FormatMarkdown = "markdown"
	FormatHTML     = "html"
)

// Formats are the formats Render accepts.
var Formats = []string{FormatText, FormatJSON, FormatMarkdown, FormatHTML}

// Report is the management report on a rollout: what the JSON format
// encodes, and what the text, Markdown and HTML formats are rendered
// from. Times are shown to the second in the controller's time zone,
// with the zone's name ("2026-12-07 14:03:12 CET", internal/stamp.Human),
// the same in every format; durations are Go durations in words ("6m0s")
// with the seconds alongside.
type Report struct {
	// Title is "Rollout report: NAME@VERSION".
	Title       string `json:"title"`
	GeneratedAt string `json:"generated_at,omitempty"`
	// Digest is the report file's digest (see digest.go), set as the
	// report is rendered.
	Digest      string       `json:"digest"`
	Summary     Summary      `json:"summary"`
	Waves       []Wave       `json:"waves"`
	Nodes       []Node       `json:"nodes"`
	SLA         SLA          `json:"sla"`
	KnownErrors []KnownError `json:"known_errors"`
	AuditTrail  []LogEntry   `json:"audit_trail"`
}

// Summary is the rollout at a glance.
type Summary struct {
	// Release is NAME@VERSION; ReleaseDigest the digest its approvals
	// are bound to.
	Release       string `json:"release"`
	ReleaseDigest string `json:"release_digest,omitempty"`
	RolloutID     string `json:"rollout_id"`
	State         string `json:"state"`
	// Reason says why the rollout is paused, halted, aborted or rolled
	// back; WaitingFor what a running rollout waits for.
	Reason     string `json:"reason,omitempty"`
	WaitingFor string `json:"waiting_for,omitempty"`
	CreatedBy  string `json:"created_by,omitempty"`
	CreatedAt  string `json:"created_at,omitempty"`
	FinishedAt string `json:"finished_at,omitempty"`
	// Duration is from creation to the end, or to GeneratedAt ("so
	// far") while the rollout has not finished.
	Duration        string  `json:"duration,omitempty"`
	DurationSeconds float64 `json:"duration_seconds"`
	Finished        bool    `json:"finished"`
	// Testers recorded the release's passing tests; Approvers approved
	// it (those the rollout's start was bound to, else the release's).
	Testers   []string `json:"testers,omitempty"`
	Approvers []string `json:"approvers,omitempty"`
	// RollbackRequestedBy is set when a rollback was requested, by
	// policy or by an operator, at RollbackStartedAt.
	RollbackRequestedBy string `json:"rollback_requested_by,omitempty"`
	RollbackStartedAt   string `json:"rollback_started_at,omitempty"`
	// Strategy is the spec in one line.
	Strategy string `json:"strategy"`
	Spec     Spec   `json:"spec"`
	Counts   Counts `json:"counts"`
	// Outcome is the counts in words: "5 nodes: 1 passed, 1 failed, ...".
	Outcome string `json:"outcome"`
}

// Spec is how the rollout was asked for, defaults filled in.
type Spec struct {
	// Targets is "service shop" or "selector env=prod,role=web".
	Targets        string   `json:"targets"`
	Strategy       string   `json:"strategy,omitempty"`
	Waves          []string `json:"waves,omitempty"`
	MaxParallel    string   `json:"max_parallel,omitempty"`
	MaxFailures    string   `json:"max_failures,omitempty"`
	Unreachable    string   `json:"unreachable,omitempty"`
	LostAfter      string   `json:"lost_after,omitempty"`
	Bake           string   `json:"bake,omitempty"`
	GatesAfterWave []uint32 `json:"gates_after_wave,omitempty"`
	Window         string   `json:"window,omitempty"`
	OnFailure      string   `json:"on_failure,omitempty"`
}

// Counts counts the nodes by state, each node in one count
// (controller/rollout/state.Count): they add up to Nodes. Running is
// every node in flight (auditing, deploying, waiting for a confirmation,
// rolling back, being resolved); Unreachable and Skipped are the nodes
// that could not be reached under the fail or wait policy and under the
// skip policy.
type Counts struct {
	Nodes          int `json:"nodes"`
	Passed         int `json:"passed"`
	Failed         int `json:"failed"`
	Unreachable    int `json:"unreachable"`
	Skipped        int `json:"skipped"`
	Interrupted    int `json:"interrupted"`
	RolledBack     int `json:"rolled_back"`
	RollbackFailed int `json:"rollback_failed"`
	Resolved       int `json:"resolved"`
	Aborted        int `json:"aborted"`
	Pending        int `json:"pending"`
	Running        int `json:"running"`
}

// Wave is one wave.
type Wave struct {
	Index uint32 `json:"index"`
	// Nodes are the wave's nodes by hostname (else ID).
	Nodes      []string `json:"nodes"`
	State      string   `json:"state"`
	StartedAt  string   `json:"started_at,omitempty"`
	FinishedAt string   `json:"finished_at,omitempty"`
	// Failures counts the wave's nodes that counted against its budget
	// (failed, unreachable under the fail or wait policy, interrupted):
	// as they were when the wave closed, or so far while it is open.
	// MaxFailures is the wave's budget.
	Failures    int    `json:"failures"`
	MaxFailures uint32 `json:"max_failures"`
	OverBudget  bool   `json:"over_budget"`
	GateAfter   bool   `json:"gate_after,omitempty"`
}

// Node is one node's deployment.
type Node struct {
	NodeID   string `json:"node_id"`
	Hostname string `json:"hostname,omitempty"`
	Wave     uint32 `json:"wave"`
	// State is the node's outcome, or where it is while in progress.
	State string `json:"state"`
	Error string `json:"error,omitempty"`
	// InterruptedStep is the step a crash cut off (LIST/NAME), for an
	// interrupted deployment.
	InterruptedStep string `json:"interrupted_step,omitempty"`
	// Retries counts the operator's retries of the node.
	Retries         uint32  `json:"retries,omitempty"`
	StartedAt       string  `json:"started_at,omitempty"`
	FinishedAt      string  `json:"finished_at,omitempty"`
	Duration        string  `json:"duration,omitempty"`
	DurationSeconds float64 `json:"duration_seconds"`
	SLABreached     bool    `json:"sla_breached,omitempty"`
	// Changed is set when the deployment's steps changed the node.
	Changed bool  `json:"changed,omitempty"`
	Drift   Drift `json:"drift"`
	// KnownErrors are the release's known errors whose signature matched
	// the node, "ID: summary".
	KnownErrors   []string       `json:"known_errors,omitempty"`
	Confirmations []Confirmation `json:"confirmations,omitempty"`
	// WaitingStep and WaitingInstructions are set while the node waits
	// for a manual step's confirmation.
	WaitingStep         string `json:"waiting_step,omitempty"`
	WaitingInstructions string `json:"waiting_instructions,omitempty"`
	// Deployment is the agent's report of the steps and verify checks.
	Deployment *Run `json:"deployment,omitempty"`
	// Comparison is the before/after diff classified against the
	// release's expected changes.
	Comparison *compare.Result `json:"comparison,omitempty"`
	// Rollback is set for a node that was (or is being) rolled back.
	Rollback *Rollback `json:"rollback,omitempty"`
	// Resolution is set for a node an operator resolved by hand.
	Resolution *Resolution `json:"resolution,omitempty"`
	// Problems are stored results the report could not read.
	Problems []string `json:"problems,omitempty"`
}

// Drift is what the pre-check against the CMS baseline found.
// Checked is false until the node's pre-audit was taken.
type Drift struct {
	Checked     bool   `json:"checked"`
	HasBaseline bool   `json:"has_baseline"`
	Changes     uint32 `json:"changes"`
	Summary     string `json:"summary,omitempty"`
	// PathsNotCompared counts the tracked paths only the baseline or only
	// the pre-audit tracked: not drift, and not "matches" either.
	PathsNotCompared uint32 `json:"paths_not_compared,omitempty"`
}

// Confirmation is an operator's confirmation of a manual step.
type Confirmation struct {
	Step string `json:"step"`
	By   string `json:"by"`
	Note string `json:"note,omitempty"`
	At   string `json:"at,omitempty"`
}

// Run is the agent's report of one run of a release's steps (the
// deployment, or the rollback).
type Run struct {
	State           string  `json:"state,omitempty"`
	Error           string  `json:"error,omitempty"`
	Duration        string  `json:"duration,omitempty"`
	DurationSeconds float64 `json:"duration_seconds"`
	Steps           []Step  `json:"steps,omitempty"`
}

// Step is one step, verify check or rollback step. List is steps,
// verify, rollback, or undo (a plugin undoing a step it applied).
type Step struct {
	List            string  `json:"list"`
	Name            string  `json:"name"`
	Plugin          string  `json:"plugin"`
	Outcome         string  `json:"outcome"`
	Duration        string  `json:"duration,omitempty"`
	DurationSeconds float64 `json:"duration_seconds"`
	Attempts        int     `json:"attempts,omitempty"`
	Error           string  `json:"error,omitempty"`
	// Changes are the changes the step's plugin reported, in words.
	Changes []string `json:"changes,omitempty"`
}

// Rollback is a node's rollback and its proof: the audit after the
// rollback compared with the audit before the deployment.
type Rollback struct {
	Run *Run `json:"run,omitempty"`
	// Proven is set when the after-rollback audit equals the pre-audit
	// in every section.
	Proven bool `json:"proven"`
	// Verdict is "after-state equals pre-audit", or what differs.
	Verdict string `json:"verdict"`
	// Differences are the changes from the pre-audit that remain, in
	// words; NotComparable the sections that could not be compared.
	Differences   []string `json:"differences,omitempty"`
	NotComparable []string `json:"not_comparable,omitempty"`
}

// Resolution is an operator's resolution of a node repaired by
// hand, and the audit taken then compared with the pre-audit.
type Resolution struct {
	By   string `json:"by"`
	Note string `json:"note"`
	At   string `json:"at"`
	// AuditID is the audit taken after the resolution; empty while it is
	// being taken.
	AuditID string `json:"audit_id,omitempty"`
	// Verdict says whether the node is back at its pre-audit.
	Verdict string `json:"verdict"`
	// Differences are the changes from the pre-audit, in words.
	Differences   []string `json:"differences,omitempty"`
	NotComparable []string `json:"not_comparable,omitempty"`
}

// SLA statuses.
const (
	slaMet      = "met"
	slaBreached = "breached"
	slaPending  = "pending"
	slaNone     = "no target"
)

// SLA is the rollout measured against the release's SLA.
type SLA struct {
	// Targets has node_duration, rollout_duration and success_rate, in
	// that order, each measured whether or not the release sets a
	// target.
	Targets []SLATarget `json:"targets"`
	// Breached is set when any target is breached.
	Breached bool `json:"breached"`
}

// SLATarget is one SLA target. Status is met, breached, pending
// (not measurable yet) or "no target". Node duration is measured over
// the nodes that ran their deployment (unreachable and skipped nodes
// are left out). The success rate is passed nodes over the nodes that
// finished (passed, failed, unreachable, rolled back or failed to roll
// back; unreachable nodes count as failures).
type SLATarget struct {
	Kind     string `json:"kind"`
	Name     string `json:"name"`
	Target   string `json:"target,omitempty"`
	Measured string `json:"measured"`
	Status   string `json:"status"`
	// BreachedBy names the nodes over the node duration target.
	BreachedBy []string `json:"breached_by,omitempty"`
}

// KnownError is a known error of the release and the nodes whose
// inventory matched its signature.
type KnownError struct {
	ID         string   `json:"id"`
	Summary    string   `json:"summary"`
	Status     string   `json:"status,omitempty"`
	Symptom    string   `json:"symptom,omitempty"`
	Workaround string   `json:"workaround,omitempty"`
	Nodes      []string `json:"nodes,omitempty"`
}

// LogEntry is one audit-log entry about the rollout. Details are
// "key=value" pairs sorted by key.
type LogEntry struct {
	Sequence uint64 `json:"sequence"`
	Time     string `json:"time"`
	Actor    string `json:"actor"`
	Action   string `json:"action"`
	Object   string `json:"object,omitempty"`
	Details  string `json:"details,omitempty"`
}

// Render renders the report as text, json, markdown or html, with its
// digest, and returns it with its MIME type. An empty format is text.
func Render(in Input, format string) ([]byte, string, error) {
	out, mime, _, err := render(in, format)
	return out, mime, err
}

// render is Render, also returning the report's digest. The content
// passes internal/termsafe before it is sealed, so that printing it
// (cairnctl escapes what it prints with termsafe) changes no byte of it.
func render(in Input, format string) (content []byte, mime, digest string, err error) {
	if in.Rollout == nil {
		return nil, "", "", errors.New("report without a rollout")
	}
	write, mime, err := renderer(format)
	if err != nil {
		return nil, "", "", err
	}
	r := Build(in)
	r.Digest = placeholder()
	out, err := write(r)
	if err == nil {
		out, digest, err = seal([]byte(termsafe.String(string(out))), r.Digest)
	}
	if err != nil {
		return nil, "", "", fmt.Errorf("render %s report of rollout %s: %w", cmp.Or(format, FormatText), in.Rollout.GetId(), err)
	}
	return out, mime, digest, nil
}

// renderer returns the function that renders format, and its MIME type;
// an unknown format is ErrFormat.
func renderer(format string) (func(*Report) ([]byte, error), string, error) {
	switch format {
	case "", FormatText:
		return renderText, "text/plain; charset=utf-8", nil
	case FormatJSON:
		return renderJSON, "application/json", nil
	case FormatMarkdown:
		return renderMarkdown, "text/markdown; charset=utf-8", nil
	case FormatHTML:
		return renderHTML, "text/html; charset=utf-8", nil
	}
	return nil, "", fmt.Errorf("%w %q: want one of %s", ErrFormat, format, strings.Join(Formats, ", "))
}

// Build draws the report from in. Stored results it cannot decode
// are listed as the node's problems, not errors: the report is still
// rendered.
func Build(in Input) *Report {
	ro := in.Rollout
	ref := ro.GetRelease().GetName() + "@" + ro.GetRelease().GetVersion()
	r := &Report{
		Title:       titlePrefix + ref,
		Waves:       []Wave{},
		Nodes:       []Node{},
		KnownErrors: []KnownError{},
		AuditTrail:  []LogEntry{},
	}
	loc := in.Location
	if !in.GeneratedAt.IsZero() {
		r.GeneratedAt = stamp.HumanTime(in.GeneratedAt, loc)
	}

	nodes := slices.Clone(ro.GetNodes())
	slices.SortStableFunc(nodes, func(a, b *controllerv1.RolloutNode) int {
		if a.GetWave() != b.GetWave() {
			return int(a.GetWave()) - int(b.GetWave())
		}
		return strings.Compare(a.Name(), b.Name())
	})
	names := map[string]string{}
	for _, n := range nodes {
		names[n.GetNodeId()] = n.Name()
		r.Nodes = append(r.Nodes, buildNode(n, loc))
	}

	s := &r.Summary
	s.Release = ref
	s.ReleaseDigest = cmp.Or(ro.GetReleaseDigest(), in.Release.GetDigest())
	s.RolloutID = ro.GetId()
	s.State = state.Name(ro.GetState())
	s.Reason = ro.GetReason()
	s.WaitingFor = ro.GetWaitingFor()
	s.CreatedBy = ro.GetCreatedBy()
	s.CreatedAt = stamp.Human(ro.GetCreatedAt(), loc)
	s.FinishedAt = stamp.Human(ro.GetFinishedAt(), loc)
	s.Finished = ro.GetFinishedAt() != ""
	s.Approvers = ro.GetApprovers()
	if len(s.Approvers) == 0 {
		for _, d := range in.Release.GetDecisions() {
			if d.GetDecision() == release.DecisionApprove && !slices.Contains(s.Approvers, d.GetBy()) {
				s.Approvers = append(s.Approvers, d.GetBy())
			}
		}
	}
	s.RollbackRequestedBy = ro.GetRollbackRequestedBy()
	s.Testers = testers(in.Release)
	s.RollbackStartedAt = stamp.Human(ro.GetRollbackStartedAt(), loc)
	end := ro.GetFinishedAt()
	if end == "" && !in.GeneratedAt.IsZero() {
		end = stamp.Format(in.GeneratedAt)
	}
	if d, ok := between(ro.GetCreatedAt(), end); ok {
		s.DurationSeconds = d.Seconds()
		s.Duration = showDuration(d)
		if !s.Finished {
			s.Duration += " so far"
		}
	}
	s.Spec = buildSpec(ro.GetSpec(), ro.GetMaxParallel())
	s.Strategy = strategyLine(s.Spec)
	s.Counts = countNodes(nodes, ro.GetCounts())
	s.Outcome = outcomeLine(s.Counts)

	for _, w := range ro.GetWaves() {
		rw := Wave{
			Index: w.GetIndex(), State: state.Name(w.GetState()), StartedAt: stamp.Human(w.GetStartedAt(), loc), FinishedAt: stamp.Human(w.GetFinishedAt(), loc),
			MaxFailures: w.GetMaxFailures(), GateAfter: w.GetGateAfter(), Nodes: []string{},
		}
		for _, id := range w.GetNodeIds() {
			rw.Nodes = append(rw.Nodes, cmp.Or(names[id], id))
		}
		rw.Failures = int(state.WaveFailures(w, nodes))
		rw.OverBudget = rw.Failures > int(rw.MaxFailures)
		r.Waves = append(r.Waves, rw)
	}

	var sla manifest.SLA
	if in.Manifest != nil {
		sla = in.Manifest.SLA
	}
	r.SLA = measureSLA(sla, r.Nodes, s)

	if in.Manifest != nil {
		for _, k := range in.Manifest.KnownErrors {
			ke := KnownError{ID: k.ID, Summary: k.Summary, Status: k.Status, Symptom: k.Symptom, Workaround: k.Workaround}
			for _, n := range r.Nodes {
				if slices.ContainsFunc(n.KnownErrors, func(e string) bool { return e == k.ID || strings.HasPrefix(e, k.ID+":") }) {
					ke.Nodes = append(ke.Nodes, n.name())
				}
			}
			r.KnownErrors = append(r.KnownErrors, ke)
		}
	}

	for _, e := range in.Log {
		var details []string
		for _, k := range slices.Sorted(maps.Keys(e.GetDetails())) {
			details = append(details, k+"="+e.GetDetails()[k])
		}
		r.AuditTrail = append(r.AuditTrail, LogEntry{
			Sequence: e.GetSequence(), Time: stamp.Human(e.GetTime(), loc), Actor: e.GetActor(), Action: e.GetAction(),
			Object: e.GetObject(), Details: strings.Join(details, " "),
		})
	}
	return r
}

func (n Node) name() string { return cmp.Or(n.Hostname, n.NodeID) }

// testers are the users who recorded a passing test of the release, in
// the order they did.
func testers(rel *controllerv1.ReleaseRecord) []string {
	var out []string
	for _, t := range rel.GetTests() {
		if t.GetResult() == release.ResultPass && !slices.Contains(out, t.GetTester()) {
			out = append(out, t.GetTester())
		}
	}
	return out
}

// countNodes counts nodes by state (state.Count); with no nodes (a
// rollout listed without them) it takes the stored counts.
func countNodes(nodes []*controllerv1.RolloutNode, stored *controllerv1.RolloutCounts) Counts {
	c := stored
	if len(nodes) > 0 {
		c = state.Count(nodes)
	}
	return Counts{
		Nodes: int(c.GetNodes()), Passed: int(c.GetPassed()), Failed: int(c.GetFailed()),
		Unreachable: int(c.GetUnreachable()), Skipped: int(c.GetSkipped()), Interrupted: int(c.GetInterrupted()),
		RolledBack: int(c.GetRolledBack()), RollbackFailed: int(c.GetRollbackFailed()), Resolved: int(c.GetResolved()),
		Aborted: int(c.GetAborted()), Pending: int(c.GetPending()), Running: int(c.GetRunning()),
	}
}

// outcomeLine says the counts in words, always naming passed, failed,
// unreachable and skipped, and the others when there are any.
func outcomeLine(c Counts) string {
	parts := []string{
		fmt.Sprintf("%d passed", c.Passed),
		fmt.Sprintf("%d failed", c.Failed),
		fmt.Sprintf("%d unreachable", c.Unreachable),
		fmt.Sprintf("%d skipped", c.Skipped),
	}
	for _, o := range []struct {
		n    int
		word string
	}{{c.Interrupted, "interrupted"}, {c.RolledBack, "rolled back"}, {c.RollbackFailed, "rollback failed"}, {c.Resolved, "resolved"},
		{c.Aborted, "aborted"}, {c.Running, "running"}, {c.Pending, "pending"}} {
		if o.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", o.n, o.word))
		}
	}
	noun := "nodes"
	if c.Nodes == 1 {
		noun = "node"
	}
	return fmt.Sprintf("%d %s: %s", c.Nodes, noun, strings.Join(parts, ", "))
}

// buildSpec is the rollout's spec for the report; maxParallel is the
// number the engine settled on.
func buildSpec(sp *controllerv1.RolloutSpec, maxParallel uint32) Spec {
	out := Spec{
		Strategy: sp.GetStrategy(), Waves: sp.GetWaves(), MaxParallel: sp.GetMaxParallel(),
		MaxFailures: sp.GetMaxFailures(), Unreachable: sp.GetUnreachable(), LostAfter: sp.GetLostAfter(), Bake: sp.GetBake(),
		GatesAfterWave: sp.GetGatesAfterWave(), Window: sp.GetWindow(), OnFailure: sp.GetOnFailure(),
	}
	if maxParallel > 0 {
		mp := strconv.FormatUint(uint64(maxParallel), 10)
		if out.MaxParallel != "" && out.MaxParallel != mp {
			mp += " (" + out.MaxParallel + ")"
		}
		out.MaxParallel = mp
	}
	switch {
	case sp.GetService() != "":
		out.Targets = "service " + sp.GetService()
	case len(sp.GetSelector()) > 0:
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(sp.GetSelector())) {
			kv = append(kv, k+"="+sp.GetSelector()[k])
		}
		out.Targets = "selector " + strings.Join(kv, ",")
	default:
		out.Targets = "(not recorded)"
	}
	return out
}

// strategyLine is the spec in one line: "canary; waves 1, 10%, 100%; max
// parallel 5; max failures 0 per wave; unreachable fail; on failure
// stop; bake 5m; gates after waves 1; window Sat 22:00-Sun 04:00".
func strategyLine(s Spec) string {
	var parts []string
	add := func(label, v string) {
		if v != "" {
			parts = append(parts, strings.TrimSpace(label+" "+v))
		}
	}
	add("", s.Strategy)
	add("waves", strings.Join(s.Waves, ", "))
	add("max parallel", s.MaxParallel)
	if s.MaxFailures != "" {
		add("max failures", s.MaxFailures+" per wave")
	}
	add("unreachable", s.Unreachable)
	add("lost after", s.LostAfter)
	add("on failure", s.OnFailure)
	add("bake", s.Bake)
	if len(s.GatesAfterWave) > 0 {
		gates := make([]string, len(s.GatesAfterWave))
		for i, g := range s.GatesAfterWave {
			gates[i] = strconv.FormatUint(uint64(g), 10)
		}
		add("gates after waves", strings.Join(gates, ", "))
	}
	add("window", s.Window)
	if len(parts) == 0 {
		return "(not recorded)"
	}
	return strings.Join(parts, "; ")
}

// agentRun is what the report shows of an agent's report of a
// deployment or a rollback: its steps, their durations and changes in
// words.
func agentRun(a *agentv1.ApplyReport) *Run {
	run := &Run{State: a.GetState(), Error: a.GetError(), DurationSeconds: a.Elapsed().Seconds()}
	if a.Elapsed() > 0 {
		run.Duration = showDuration(a.Elapsed())
	}
	for _, st := range a.GetSteps() {
		rs := Step{
			List: st.GetList(), Name: st.GetName(), Plugin: st.GetPlugin(), Outcome: st.GetOutcome(),
			DurationSeconds: st.Elapsed().Seconds(), Attempts: int(st.GetAttempts()), Error: st.GetError(),
		}
		if st.Elapsed() > 0 {
			rs.Duration = showDuration(st.Elapsed())
		}
		for _, c := range st.GetChanges() {
			rs.Changes = append(rs.Changes, c.Text())
		}
		run.Steps = append(run.Steps, rs)
	}
	return run
}

// unreadableJSON is the problem of a report that a controller before
// schema version 10 stored as JSON and its migration could not read (it
// is kept as it was).
const unreadableJSON = "unreadable: stored as JSON that is not an agent's report"

// buildNode is a node's part of the report, its stored results
// decoded.
func buildNode(n *controllerv1.RolloutNode, loc *time.Location) Node {
	rn := Node{
		NodeID: n.GetNodeId(), Hostname: n.GetHostname(), Wave: n.GetWave(), State: state.Name(n.GetState()),
		Error: n.GetError(), InterruptedStep: n.GetInterruptedStep(), Retries: n.GetRetries(),
		StartedAt: stamp.Human(n.GetStartedAt(), loc), FinishedAt: stamp.Human(n.GetFinishedAt(), loc),
		SLABreached: n.GetSlaBreached(), Changed: n.GetChanged(),
		Drift: Drift{
			Checked:     n.GetPreAuditId() != "" || n.GetDriftChanges() > 0 || n.GetDriftSummary() != "",
			HasBaseline: n.GetHasBaseline(), Changes: n.GetDriftChanges(), Summary: n.GetDriftSummary(),
			PathsNotCompared: n.GetDriftPathsNotCompared(),
		},
		KnownErrors: n.GetKnownErrors(), WaitingStep: n.GetWaitingStep(), WaitingInstructions: n.GetWaitingInstructions(),
	}
	if d, ok := nodeDuration(n); ok {
		rn.DurationSeconds = d.Seconds()
		rn.Duration = showDuration(d)
	}
	for _, c := range n.GetConfirmations() {
		rn.Confirmations = append(rn.Confirmations, Confirmation{Step: c.GetStep(), By: c.GetBy(), Note: c.GetNote(), At: stamp.Human(c.GetAt(), loc)})
	}
	switch {
	case n.GetDeployReport() != nil:
		rn.Deployment = agentRun(n.GetDeployReport())
	case len(n.GetDeployReportJson()) > 0:
		rn.Problems = append(rn.Problems, "deployment report "+unreadableJSON)
	}
	if b := n.GetComparisonJson(); len(b) > 0 {
		var res compare.Result
		if err := json.Unmarshal(b, &res); err != nil {
			rn.Problems = append(rn.Problems, "before/after comparison unreadable: "+err.Error())
		} else {
			rn.Comparison = &res
		}
	}
	rolledBack := slices.Contains([]state.Node{state.NodeRollingBack, state.NodeRolledBack, state.NodeRollbackFailed}, n.GetState())
	if rolledBack || n.GetRollbackReport() != nil || len(n.GetRollbackReportJson()) > 0 || len(n.GetRollbackDiffJson()) > 0 {
		rn.Rollback = rollbackProof(n, &rn)
	}
	if n.GetResolvedBy() != "" {
		rn.Resolution = resolution(n, &rn, loc)
	}
	return rn
}

// resolution reads an operator's resolution of a node and the diff
// from its pre-audit to the audit taken then.
func resolution(n *controllerv1.RolloutNode, rn *Node, loc *time.Location) *Resolution {
	res := &Resolution{By: n.GetResolvedBy(), Note: n.GetResolvedNote(), At: stamp.Human(n.GetResolvedAt(), loc), AuditID: n.GetResolveAuditId()}
	switch {
	case n.GetState() == state.NodeResolving:
		res.Verdict = "audit being taken"
		return res
	case len(n.GetResolveDiffJson()) == 0:
		res.Verdict = "audited; no pre-audit to compare with"
		return res
	}
	var summary string
	var err error
	if res.Differences, res.NotComparable, summary, err = fromPreAudit(n.GetResolveDiffJson()); err != nil {
		rn.Problems = append(rn.Problems, "resolution diff unreadable: "+err.Error())
		res.Verdict = "the resolution diff is unreadable"
		return res
	}
	switch {
	case len(res.Differences) > 0:
		res.Verdict = "differs from the pre-audit: " + summary
	case len(res.NotComparable) > 0:
		res.Verdict = "not fully comparable with the pre-audit: " + summary
	default:
		res.Verdict = "equals the pre-audit"
	}
	return res
}

// rollbackProof reads a node's rollback report and the diff from its
// pre-audit to its after-rollback audit.
func rollbackProof(n *controllerv1.RolloutNode, rn *Node) *Rollback {
	rb := &Rollback{}
	switch {
	case n.GetRollbackReport() != nil:
		rb.Run = agentRun(n.GetRollbackReport())
	case len(n.GetRollbackReportJson()) > 0:
		rn.Problems = append(rn.Problems, "rollback report "+unreadableJSON)
	}
	b := n.GetRollbackDiffJson()
	if len(b) == 0 {
		rb.Verdict = "not proven: no after-rollback audit yet"
		if n.GetState() == state.NodeRollbackFailed {
			rb.Verdict = "not proven: the rollback failed before its audit"
		}
		return rb
	}
	var summary string
	var err error
	if rb.Differences, rb.NotComparable, summary, err = fromPreAudit(b); err != nil {
		rn.Problems = append(rn.Problems, "rollback diff unreadable: "+err.Error())
		rb.Verdict = "not proven: the rollback diff is unreadable"
		return rb
	}
	switch {
	case len(rb.Differences) > 0:
		rb.Verdict = "after-state differs from the pre-audit: " + summary
	case len(rb.NotComparable) > 0:
		rb.Verdict = "not proven: " + summary
	default:
		rb.Proven = true
		rb.Verdict = "after-state equals pre-audit"
	}
	return rb
}

// fromPreAudit reads a stored diff from a node's pre-audit (internal/diff's
// Report, JSON) in words: the changes that remain, the sections and the
// tracked paths it could not compare, and its summary.
func fromPreAudit(b []byte) (differences, notComparable []string, summary string, err error) {
	var d diff.Report
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, nil, "", err
	}
	for _, s := range d.Sections {
		if !s.Comparable && !s.Skipped {
			notComparable = append(notComparable, s.Name+": "+s.Reason)
		}
		for _, ch := range s.Changes {
			differences = append(differences, compare.Describe(s.Name, ch))
		}
		for _, p := range s.PathsNotCompared {
			notComparable = append(notComparable, s.Name+": "+p.Path+" not compared: tracked only in the "+p.TrackedBy+" audit")
		}
	}
	return differences, notComparable, d.Summary, nil
}

// nodeDuration is how long a finished node took: its stored duration,
// else from its start to its finish.
func nodeDuration(n *controllerv1.RolloutNode) (time.Duration, bool) {
	if s := n.GetDurationSeconds(); s > 0 {
		return time.Duration(s * float64(time.Second)), true
	}
	return between(n.GetStartedAt(), n.GetFinishedAt())
}

// between is b - a for two RFC 3339 times, false when either is missing
// or unreadable or b is before a.
func between(a, b string) (time.Duration, bool) {
	if a == "" || b == "" {
		return 0, false
	}
	ta, err := time.Parse(time.RFC3339Nano, a)
	if err != nil {
		return 0, false
	}
	tb, err := time.Parse(time.RFC3339Nano, b)
	if err != nil || tb.Before(ta) {
		return 0, false
	}
	return tb.Sub(ta), true
}

// showDuration is a duration for people: whole seconds, or milliseconds below
// ten seconds ("6m0s", "1.25s", "0s").
func showDuration(d time.Duration) string {
	if d < 10*time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// countsForSuccessRate reports whether a node reached an outcome that counts for
// the success rate: its deployment ran and ended (skipped and aborted
// nodes never ran theirs).
func countsForSuccessRate(s state.Node) bool {
	switch s {
	case state.NodePassed, state.NodeFailed, state.NodeUnreachable, state.NodeInterrupted, state.NodeRolledBack, state.NodeRollbackFailed, state.NodeResolved:
		return true
	}
	return false
}

// measureSLA measures the rollout against the release's SLA.
func measureSLA(sla manifest.SLA, nodes []Node, s *Summary) SLA {
	out := SLA{}

	// Node duration.
	nd := SLATarget{Kind: state.BreachNodeDuration, Name: "Node duration", Status: slaNone}
	var durs []float64
	var slowest string
	var slowestSec float64
	for _, n := range nodes {
		if st, _ := state.ParseNode(n.State); n.Duration == "" || state.NodeUnreached(st) {
			continue
		}
		durs = append(durs, n.DurationSeconds)
		if n.DurationSeconds > slowestSec {
			slowestSec, slowest = n.DurationSeconds, n.name()
		}
		over := sla.MaxNodeDuration > 0 && n.DurationSeconds > sla.MaxNodeDuration.Seconds()
		if over || n.SLABreached {
			nd.BreachedBy = append(nd.BreachedBy, n.name())
		}
	}
	if len(durs) == 0 {
		nd.Measured = "no node has finished"
	} else {
		slices.Sort(durs)
		nd.Measured = fmt.Sprintf("max %s (%s), median %s over %d %s",
			showDuration(seconds(slowestSec)), slowest, showDuration(seconds(median(durs))), len(durs), plural(len(durs), "node", "nodes"))
	}
	if sla.MaxNodeDuration > 0 {
		nd.Target = "<= " + sla.MaxNodeDuration.String()
		switch {
		case len(nd.BreachedBy) > 0:
			nd.Status = slaBreached
		case len(durs) == 0:
			nd.Status = slaPending
		default:
			nd.Status = slaMet
		}
	}

	// Rollout duration.
	rd := SLATarget{Kind: state.BreachRolloutDuration, Name: "Rollout duration", Status: slaNone, Measured: cmp.Or(s.Duration, "unknown")}
	if sla.MaxRolloutDuration > 0 {
		rd.Target = "<= " + sla.MaxRolloutDuration.String()
		switch {
		case s.Duration == "":
			rd.Status = slaPending
		case s.DurationSeconds > sla.MaxRolloutDuration.Seconds():
			rd.Status = slaBreached
		case s.Finished:
			rd.Status = slaMet
		default:
			rd.Status = slaPending
		}
	}

	// Success rate.
	sr := SLATarget{Kind: state.BreachSuccessRate, Name: "Success rate", Status: slaNone}
	passed, finished, unreachable := 0, 0, 0
	for _, n := range nodes {
		st, _ := state.ParseNode(n.State)
		if !countsForSuccessRate(st) {
			continue
		}
		finished++
		switch st {
		case state.NodePassed:
			passed++
		case state.NodeUnreachable:
			unreachable++
		}
	}
	var rate float64
	if finished == 0 {
		sr.Measured = "no node has finished"
	} else {
		rate = float64(passed) / float64(finished)
		sr.Measured = fmt.Sprintf("%s (%d of %d finished %s passed", percent(rate), passed, finished, plural(finished, "node", "nodes"))
		if unreachable > 0 {
			sr.Measured += fmt.Sprintf("; %d unreachable counted as failed", unreachable)
		}
		sr.Measured += ")"
		if !s.Finished {
			sr.Measured += " so far"
		}
	}
	if sla.MinSuccessRate > 0 {
		sr.Target = ">= " + percent(sla.MinSuccessRate)
		switch {
		case finished == 0:
			sr.Status = slaPending
		case rate < sla.MinSuccessRate:
			sr.Status = slaBreached
		default:
			sr.Status = slaMet
		}
	}

	out.Targets = []SLATarget{nd, rd, sr}
	for _, t := range out.Targets {
		if t.Status == slaBreached {
			out.Breached = true
		}
	}
	return out
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// median is the median of sorted values.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// percent is a fraction as a percentage with up to one decimal: "95%",
// "33.3%".
func percent(f float64) string {
	v := math.Round(f*1000) / 10
	return strconv.FormatFloat(v, 'f', -1, 64) + "%"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// ---- JSON ----

// renderJSON writes r as indented JSON, the report's documented form.
func renderJSON(r *Report) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("encode json: %w", err)
	}
	return b.Bytes(), nil
}
