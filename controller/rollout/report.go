package rollout

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-ops/cairn/controller/rollout/state"
	"github.com/cairn-ops/cairn/internal/compare"
	"github.com/cairn-ops/cairn/internal/diff"
	"github.com/cairn-ops/cairn/internal/manifest"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// The report is drawn from stored records only (BuildReport), then
// rendered (RenderReport). Its unexported names start with "rep": it
// shares the package with the engine, and they keep out of its way.

// ReportInput is everything a rollout's management report is drawn from.
type ReportInput struct {
	// Rollout with its nodes filled in.
	Rollout *controllerv1.RolloutRecord
	Release *controllerv1.ReleaseRecord
	// Manifest is the release's manifest, parsed (SLA, known errors).
	Manifest *manifest.Manifest
	// Log holds the audit-log entries about the rollout, oldest first.
	Log         []*controllerv1.AuditLogEntry
	GeneratedAt time.Time
}

// Report formats.
const (
	FormatText     = "text"
	FormatJSON     = "json"
	FormatMarkdown = "markdown"
	FormatHTML     = "html"
)

// ReportFormats are the formats RenderReport accepts.
var ReportFormats = []string{FormatText, FormatJSON, FormatMarkdown, FormatHTML}

// Report is the management report on a rollout: what the JSON format
// encodes, and what the text, Markdown and HTML formats are rendered
// from. Times are RFC 3339 as stored; durations are Go durations in
// words ("6m0s") with the seconds alongside.
type Report struct {
	// Title is "Rollout report: NAME@VERSION".
	Title       string             `json:"title"`
	GeneratedAt string             `json:"generated_at,omitempty"`
	Summary     ReportSummary      `json:"summary"`
	Waves       []ReportWave       `json:"waves"`
	Nodes       []ReportNode       `json:"nodes"`
	SLA         ReportSLA          `json:"sla"`
	KnownErrors []ReportKnownError `json:"known_errors"`
	AuditTrail  []ReportLogEntry   `json:"audit_trail"`
}

// ReportSummary is the rollout at a glance.
type ReportSummary struct {
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
	Duration        string   `json:"duration,omitempty"`
	DurationSeconds float64  `json:"duration_seconds"`
	Finished        bool     `json:"finished"`
	Approvers       []string `json:"approvers,omitempty"`
	// RollbackRequestedBy is set when a rollback was requested, by
	// policy or by an operator, at RollbackStartedAt.
	RollbackRequestedBy string `json:"rollback_requested_by,omitempty"`
	RollbackStartedAt   string `json:"rollback_started_at,omitempty"`
	// Strategy is the spec in one line.
	Strategy string       `json:"strategy"`
	Spec     ReportSpec   `json:"spec"`
	Counts   ReportCounts `json:"counts"`
	// Outcome is the counts in words: "5 nodes: 1 passed, 1 failed, ...".
	Outcome string `json:"outcome"`
}

// ReportSpec is how the rollout was asked for, defaults filled in.
type ReportSpec struct {
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

// ReportCounts counts the nodes by state, each node in one count
// (controller/rollout/state.Count): they add up to Nodes. Running is
// every node in flight (auditing, deploying, waiting for a confirmation,
// rolling back, being resolved); Unreachable and Skipped are the nodes
// that could not be reached under the fail or wait policy and under the
// skip policy.
type ReportCounts struct {
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

// ReportWave is one wave.
type ReportWave struct {
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

// ReportNode is one node's deployment.
type ReportNode struct {
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
	Changed bool        `json:"changed,omitempty"`
	Drift   ReportDrift `json:"drift"`
	// KnownErrors are the release's known errors whose signature matched
	// the node, "ID: summary".
	KnownErrors   []string             `json:"known_errors,omitempty"`
	Confirmations []ReportConfirmation `json:"confirmations,omitempty"`
	// WaitingStep and WaitingInstructions are set while the node waits
	// for a manual step's confirmation.
	WaitingStep         string `json:"waiting_step,omitempty"`
	WaitingInstructions string `json:"waiting_instructions,omitempty"`
	// Deployment is the agent's report of the steps and verify checks.
	Deployment *ReportRun `json:"deployment,omitempty"`
	// Comparison is the before/after diff repClassified against the
	// release's expected changes.
	Comparison *compare.Result `json:"comparison,omitempty"`
	// Rollback is set for a node that was (or is being) rolled back.
	Rollback *ReportRollback `json:"rollback,omitempty"`
	// Resolution is set for a node an operator resolved by hand.
	Resolution *ReportResolution `json:"resolution,omitempty"`
	// Problems are stored results the report could not read.
	Problems []string `json:"problems,omitempty"`
}

// ReportDrift is what the pre-check against the CMS baseline found.
// Checked is false until the node's pre-audit was taken.
type ReportDrift struct {
	Checked     bool   `json:"checked"`
	HasBaseline bool   `json:"has_baseline"`
	Changes     uint32 `json:"changes"`
	Summary     string `json:"summary,omitempty"`
}

// ReportConfirmation is an operator's confirmation of a manual step.
type ReportConfirmation struct {
	Step string `json:"step"`
	By   string `json:"by"`
	Note string `json:"note,omitempty"`
	At   string `json:"at,omitempty"`
}

// ReportRun is the agent's report of one run of a release's steps (the
// deployment, or the rollback).
type ReportRun struct {
	State           string       `json:"state,omitempty"`
	Error           string       `json:"error,omitempty"`
	Duration        string       `json:"duration,omitempty"`
	DurationSeconds float64      `json:"duration_seconds"`
	Steps           []ReportStep `json:"steps,omitempty"`
}

// ReportStep is one step, verify check or rollback step. List is steps,
// verify, rollback, or undo (a plugin undoing a step it applied).
type ReportStep struct {
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

// ReportRollback is a node's rollback and its proof: the audit after the
// rollback compared with the audit before the deployment.
type ReportRollback struct {
	Run *ReportRun `json:"run,omitempty"`
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

// ReportResolution is an operator's resolution of a node repaired by
// hand, and the audit taken then compared with the pre-audit.
type ReportResolution struct {
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
	repSLAMet      = "met"
	repSLABreached = "breached"
	repSLAPending  = "pending"
	repSLANone     = "no target"
)

// ReportSLA is the rollout measured against the release's SLA.
type ReportSLA struct {
	// Targets has node_duration, rollout_duration and success_rate, in
	// that order, each measured whether or not the release sets a
	// target.
	Targets []ReportSLATarget `json:"targets"`
	// Breached is set when any target is breached.
	Breached bool `json:"breached"`
}

// ReportSLATarget is one SLA target. Status is met, breached, pending
// (not measurable yet) or "no target". Node duration is measured over
// the nodes that ran their deployment (unreachable and skipped nodes
// are left out). The success rate is passed nodes over the nodes that
// finished (passed, failed, unreachable, rolled back or failed to roll
// back; unreachable nodes count as failures).
type ReportSLATarget struct {
	Kind     string `json:"kind"`
	Name     string `json:"name"`
	Target   string `json:"target,omitempty"`
	Measured string `json:"measured"`
	Status   string `json:"status"`
	// BreachedBy names the nodes over the node duration target.
	BreachedBy []string `json:"breached_by,omitempty"`
}

// ReportKnownError is a known error of the release and the nodes whose
// inventory matched its signature.
type ReportKnownError struct {
	ID         string   `json:"id"`
	Summary    string   `json:"summary"`
	Status     string   `json:"status,omitempty"`
	Symptom    string   `json:"symptom,omitempty"`
	Workaround string   `json:"workaround,omitempty"`
	Nodes      []string `json:"nodes,omitempty"`
}

// ReportLogEntry is one audit-log entry about the rollout. Details are
// "key=value" pairs sorted by key.
type ReportLogEntry struct {
	Sequence uint64 `json:"sequence"`
	Time     string `json:"time"`
	Actor    string `json:"actor"`
	Action   string `json:"action"`
	Object   string `json:"object,omitempty"`
	Details  string `json:"details,omitempty"`
}

// RenderReport renders the report as text, json, markdown or html and
// returns it with its MIME type. An empty format is text.
func RenderReport(in ReportInput, format string) ([]byte, string, error) {
	if in.Rollout == nil {
		return nil, "", fmt.Errorf("%w: report without a rollout", ErrInvalid)
	}
	var render func(*Report) ([]byte, error)
	var mime string
	switch format {
	case "", FormatText:
		render, mime = repRenderText, "text/plain; charset=utf-8"
	case FormatJSON:
		render, mime = repRenderJSON, "application/json"
	case FormatMarkdown:
		render, mime = repRenderMarkdown, "text/markdown; charset=utf-8"
	case FormatHTML:
		render, mime = repRenderHTML, "text/html; charset=utf-8"
	default:
		return nil, "", fmt.Errorf("%w: report format %q: want one of %s", ErrInvalid, format, strings.Join(ReportFormats, ", "))
	}
	r := BuildReport(in)
	out, err := render(r)
	if err != nil {
		return nil, "", fmt.Errorf("render %s report of rollout %s: %w", repOr(format, FormatText), in.Rollout.GetId(), err)
	}
	return out, mime, nil
}

// repOr is s, or def when s is empty.
func repOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// BuildReport draws the report from in. Stored results it cannot decode
// are listed as the node's problems, not errors: the report is still
// rendered.
func BuildReport(in ReportInput) *Report {
	ro := in.Rollout
	ref := ro.GetRelease().GetName() + "@" + ro.GetRelease().GetVersion()
	r := &Report{
		Title:       "Rollout report: " + ref,
		Waves:       []ReportWave{},
		Nodes:       []ReportNode{},
		KnownErrors: []ReportKnownError{},
		AuditTrail:  []ReportLogEntry{},
	}
	if !in.GeneratedAt.IsZero() {
		r.GeneratedAt = in.GeneratedAt.UTC().Format(time.RFC3339)
	}

	nodes := slices.Clone(ro.GetNodes())
	slices.SortStableFunc(nodes, func(a, b *controllerv1.RolloutNode) int {
		if a.GetWave() != b.GetWave() {
			return int(a.GetWave()) - int(b.GetWave())
		}
		return strings.Compare(repNodeName(a), repNodeName(b))
	})
	names := map[string]string{}
	for _, n := range nodes {
		names[n.GetNodeId()] = repNodeName(n)
		r.Nodes = append(r.Nodes, repNode(n))
	}

	s := &r.Summary
	s.Release = ref
	s.ReleaseDigest = repOr(ro.GetReleaseDigest(), in.Release.GetDigest())
	s.RolloutID = ro.GetId()
	s.State = state.Name(ro.GetState())
	s.Reason = ro.GetReason()
	s.WaitingFor = ro.GetWaitingFor()
	s.CreatedBy = ro.GetCreatedBy()
	s.CreatedAt = ro.GetCreatedAt()
	s.FinishedAt = ro.GetFinishedAt()
	s.Finished = ro.GetFinishedAt() != ""
	s.Approvers = ro.GetApprovers()
	if len(s.Approvers) == 0 {
		for _, d := range in.Release.GetDecisions() {
			if d.GetDecision() == "approve" && !slices.Contains(s.Approvers, d.GetBy()) {
				s.Approvers = append(s.Approvers, d.GetBy())
			}
		}
	}
	s.RollbackRequestedBy = ro.GetRollbackRequestedBy()
	s.RollbackStartedAt = ro.GetRollbackStartedAt()
	end := ro.GetFinishedAt()
	if end == "" && r.GeneratedAt != "" {
		end = r.GeneratedAt
	}
	if d, ok := repBetween(ro.GetCreatedAt(), end); ok {
		s.DurationSeconds = d.Seconds()
		s.Duration = repDuration(d)
		if !s.Finished {
			s.Duration += " so far"
		}
	}
	s.Spec = repSpec(ro.GetSpec(), ro.GetMaxParallel())
	s.Strategy = repStrategyLine(s.Spec)
	s.Counts = repCountNodes(nodes, ro.GetCounts())
	s.Outcome = repOutcomeLine(s.Counts)

	for _, w := range ro.GetWaves() {
		rw := ReportWave{
			Index: w.GetIndex(), State: state.Name(w.GetState()), StartedAt: w.GetStartedAt(), FinishedAt: w.GetFinishedAt(),
			MaxFailures: w.GetMaxFailures(), GateAfter: w.GetGateAfter(), Nodes: []string{},
		}
		for _, id := range w.GetNodeIds() {
			rw.Nodes = append(rw.Nodes, repOr(names[id], id))
		}
		rw.Failures = int(state.WaveFailures(w, nodes))
		rw.OverBudget = rw.Failures > int(rw.MaxFailures)
		r.Waves = append(r.Waves, rw)
	}

	var sla manifest.SLA
	if in.Manifest != nil {
		sla = in.Manifest.SLA
	}
	r.SLA = repMeasureSLA(sla, r.Nodes, s)

	if in.Manifest != nil {
		for _, k := range in.Manifest.KnownErrors {
			ke := ReportKnownError{ID: k.ID, Summary: k.Summary, Status: k.Status, Symptom: k.Symptom, Workaround: k.Workaround}
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
		r.AuditTrail = append(r.AuditTrail, ReportLogEntry{
			Sequence: e.GetSequence(), Time: e.GetTime(), Actor: e.GetActor(), Action: e.GetAction(),
			Object: e.GetObject(), Details: strings.Join(details, " "),
		})
	}
	return r
}

// repNodeName names a node by hostname, else ID.
func repNodeName(n *controllerv1.RolloutNode) string {
	return repOr(n.GetHostname(), n.GetNodeId())
}

func (n ReportNode) name() string { return repOr(n.Hostname, n.NodeID) }

// repCountNodes counts nodes by state (state.Count); with no nodes (a
// rollout listed without them) it takes the stored counts.
func repCountNodes(nodes []*controllerv1.RolloutNode, stored *controllerv1.RolloutCounts) ReportCounts {
	c := stored
	if len(nodes) > 0 {
		c = state.Count(nodes)
	}
	return ReportCounts{
		Nodes: int(c.GetNodes()), Passed: int(c.GetPassed()), Failed: int(c.GetFailed()),
		Unreachable: int(c.GetUnreachable()), Skipped: int(c.GetSkipped()), Interrupted: int(c.GetInterrupted()),
		RolledBack: int(c.GetRolledBack()), RollbackFailed: int(c.GetRollbackFailed()), Resolved: int(c.GetResolved()),
		Aborted: int(c.GetAborted()), Pending: int(c.GetPending()), Running: int(c.GetRunning()),
	}
}

// repOutcomeLine says the counts in words, always naming passed, failed,
// unreachable and skipped, and the others when there are any.
func repOutcomeLine(c ReportCounts) string {
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

// repSpec is the rollout's spec for the report; maxParallel is the
// number the engine settled on.
func repSpec(sp *controllerv1.RolloutSpec, maxParallel uint32) ReportSpec {
	out := ReportSpec{
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

// repStrategyLine is the spec in one line: "canary; waves 1, 10%, 100%; max
// parallel 5; max failures 0 per wave; unreachable fail; on failure
// stop; bake 5m; gates after waves 1; window Sat 22:00-Sun 04:00".
func repStrategyLine(s ReportSpec) string {
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

// repDecodeRun reads an agent's apply.Report JSON (applyReport).
func repDecodeRun(b []byte) (*ReportRun, error) {
	var a applyReport
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, err
	}
	run := &ReportRun{State: a.State, Error: a.Error, DurationSeconds: a.Duration.Seconds()}
	if a.Duration > 0 {
		run.Duration = repDuration(a.Duration)
	}
	for _, st := range a.Steps {
		rs := ReportStep{
			List: st.List, Name: st.Name, Plugin: st.Plugin, Outcome: st.Outcome,
			DurationSeconds: st.Duration.Seconds(), Attempts: st.Attempts, Error: st.Error,
		}
		if st.Duration > 0 {
			rs.Duration = repDuration(st.Duration)
		}
		for _, c := range st.Changes {
			rs.Changes = append(rs.Changes, c.String())
		}
		run.Steps = append(run.Steps, rs)
	}
	return run, nil
}

// repNode is a node's part of the report, its stored JSON results
// decoded.
func repNode(n *controllerv1.RolloutNode) ReportNode {
	rn := ReportNode{
		NodeID: n.GetNodeId(), Hostname: n.GetHostname(), Wave: n.GetWave(), State: state.Name(n.GetState()),
		Error: n.GetError(), InterruptedStep: n.GetInterruptedStep(), Retries: n.GetRetries(),
		StartedAt: n.GetStartedAt(), FinishedAt: n.GetFinishedAt(),
		SLABreached: n.GetSlaBreached(), Changed: n.GetChanged(),
		Drift: ReportDrift{
			Checked:     n.GetPreAuditId() != "" || n.GetDriftChanges() > 0 || n.GetDriftSummary() != "",
			HasBaseline: n.GetHasBaseline(), Changes: n.GetDriftChanges(), Summary: n.GetDriftSummary(),
		},
		KnownErrors: n.GetKnownErrors(), WaitingStep: n.GetWaitingStep(), WaitingInstructions: n.GetWaitingInstructions(),
	}
	if d, ok := repNodeDuration(n); ok {
		rn.DurationSeconds = d.Seconds()
		rn.Duration = repDuration(d)
	}
	for _, c := range n.GetConfirmations() {
		rn.Confirmations = append(rn.Confirmations, ReportConfirmation{Step: c.GetStep(), By: c.GetBy(), Note: c.GetNote(), At: c.GetAt()})
	}
	if b := n.GetDeployReportJson(); len(b) > 0 {
		run, err := repDecodeRun(b)
		if err != nil {
			rn.Problems = append(rn.Problems, "deployment report unreadable: "+err.Error())
		}
		rn.Deployment = run
	}
	if b := n.GetComparisonJson(); len(b) > 0 {
		var res compare.Result
		if err := json.Unmarshal(b, &res); err != nil {
			rn.Problems = append(rn.Problems, "before/after comparison unreadable: "+err.Error())
		} else {
			rn.Comparison = &res
		}
	}
	rolledBack := slices.Contains([]state.Node{NodeRollingBack, NodeRolledBack, NodeRollbackFailed}, n.GetState())
	if rolledBack || len(n.GetRollbackReportJson()) > 0 || len(n.GetRollbackDiffJson()) > 0 {
		rn.Rollback = repRollbackProof(n, &rn)
	}
	if n.GetResolvedBy() != "" {
		rn.Resolution = repResolution(n, &rn)
	}
	return rn
}

// repResolution reads an operator's resolution of a node and the diff
// from its pre-audit to the audit taken then.
func repResolution(n *controllerv1.RolloutNode, rn *ReportNode) *ReportResolution {
	res := &ReportResolution{By: n.GetResolvedBy(), Note: n.GetResolvedNote(), At: n.GetResolvedAt(), AuditID: n.GetResolveAuditId()}
	switch {
	case n.GetState() == NodeResolving:
		res.Verdict = "audit being taken"
		return res
	case len(n.GetResolveDiffJson()) == 0:
		res.Verdict = "audited; no pre-audit to compare with"
		return res
	}
	var d diff.Report
	if err := json.Unmarshal(n.GetResolveDiffJson(), &d); err != nil {
		rn.Problems = append(rn.Problems, "resolution diff unreadable: "+err.Error())
		res.Verdict = "the resolution diff is unreadable"
		return res
	}
	for _, s := range d.Sections {
		if !s.Comparable && !s.Skipped {
			res.NotComparable = append(res.NotComparable, s.Name+": "+s.Reason)
		}
		for _, ch := range s.Changes {
			res.Differences = append(res.Differences, compare.Describe(s.Name, ch))
		}
	}
	switch {
	case len(res.Differences) > 0:
		res.Verdict = "differs from the pre-audit: " + d.Summary
	case len(res.NotComparable) > 0:
		res.Verdict = "not fully comparable with the pre-audit: " + d.Summary
	default:
		res.Verdict = "equals the pre-audit"
	}
	return res
}

// repRollbackProof reads a node's rollback report and the diff from its
// pre-audit to its after-rollback audit.
func repRollbackProof(n *controllerv1.RolloutNode, rn *ReportNode) *ReportRollback {
	rb := &ReportRollback{}
	if b := n.GetRollbackReportJson(); len(b) > 0 {
		run, err := repDecodeRun(b)
		if err != nil {
			rn.Problems = append(rn.Problems, "rollback report unreadable: "+err.Error())
		}
		rb.Run = run
	}
	b := n.GetRollbackDiffJson()
	if len(b) == 0 {
		rb.Verdict = "not proven: no after-rollback audit yet"
		if n.GetState() == NodeRollbackFailed {
			rb.Verdict = "not proven: the rollback failed before its audit"
		}
		return rb
	}
	var d diff.Report
	if err := json.Unmarshal(b, &d); err != nil {
		rn.Problems = append(rn.Problems, "rollback diff unreadable: "+err.Error())
		rb.Verdict = "not proven: the rollback diff is unreadable"
		return rb
	}
	for _, s := range d.Sections {
		if !s.Comparable && !s.Skipped {
			rb.NotComparable = append(rb.NotComparable, s.Name+": "+s.Reason)
		}
		for _, ch := range s.Changes {
			rb.Differences = append(rb.Differences, compare.Describe(s.Name, ch))
		}
	}
	switch {
	case len(rb.Differences) > 0:
		rb.Verdict = "after-state differs from the pre-audit: " + d.Summary
	case len(rb.NotComparable) > 0:
		rb.Verdict = "not proven: " + d.Summary
	default:
		rb.Proven = true
		rb.Verdict = "after-state equals pre-audit"
	}
	return rb
}

// repNodeDuration is how long a finished node took: its stored duration,
// else from its start to its finish.
func repNodeDuration(n *controllerv1.RolloutNode) (time.Duration, bool) {
	if s := n.GetDurationSeconds(); s > 0 {
		return time.Duration(s * float64(time.Second)), true
	}
	return repBetween(n.GetStartedAt(), n.GetFinishedAt())
}

// repBetween is b - a for two RFC 3339 times, false when either is missing
// or unreadable or b is before a.
func repBetween(a, b string) (time.Duration, bool) {
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

// repDuration is a duration for people: whole seconds, or milliseconds below
// ten seconds ("6m0s", "1.25s", "0s").
func repDuration(d time.Duration) string {
	if d < 10*time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// repFinished reports whether a node reached an outcome that counts for
// the success rate: its deployment ran and ended (skipped and aborted
// nodes never ran theirs).
func repFinished(s state.Node) bool {
	switch s {
	case NodePassed, NodeFailed, NodeUnreachable, NodeInterrupted, NodeRolledBack, NodeRollbackFailed, NodeResolved:
		return true
	}
	return false
}

// repMeasureSLA measures the rollout against the release's SLA.
func repMeasureSLA(sla manifest.SLA, nodes []ReportNode, s *ReportSummary) ReportSLA {
	out := ReportSLA{}

	// Node duration.
	nd := ReportSLATarget{Kind: BreachNodeDuration, Name: "Node duration", Status: repSLANone}
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
			repDuration(repSeconds(slowestSec)), slowest, repDuration(repSeconds(repMedian(durs))), len(durs), repPlural(len(durs), "node", "nodes"))
	}
	if sla.MaxNodeDuration > 0 {
		nd.Target = "<= " + sla.MaxNodeDuration.String()
		switch {
		case len(nd.BreachedBy) > 0:
			nd.Status = repSLABreached
		case len(durs) == 0:
			nd.Status = repSLAPending
		default:
			nd.Status = repSLAMet
		}
	}

	// Rollout duration.
	rd := ReportSLATarget{Kind: BreachRolloutDuration, Name: "Rollout duration", Status: repSLANone, Measured: repOr(s.Duration, "unknown")}
	if sla.MaxRolloutDuration > 0 {
		rd.Target = "<= " + sla.MaxRolloutDuration.String()
		switch {
		case s.Duration == "":
			rd.Status = repSLAPending
		case s.DurationSeconds > sla.MaxRolloutDuration.Seconds():
			rd.Status = repSLABreached
		case s.Finished:
			rd.Status = repSLAMet
		default:
			rd.Status = repSLAPending
		}
	}

	// Success rate.
	sr := ReportSLATarget{Kind: BreachSuccessRate, Name: "Success rate", Status: repSLANone}
	passed, finished, unreachable := 0, 0, 0
	for _, n := range nodes {
		st, _ := state.ParseNode(n.State)
		if !repFinished(st) {
			continue
		}
		finished++
		switch st {
		case NodePassed:
			passed++
		case NodeUnreachable:
			unreachable++
		}
	}
	var rate float64
	if finished == 0 {
		sr.Measured = "no node has finished"
	} else {
		rate = float64(passed) / float64(finished)
		sr.Measured = fmt.Sprintf("%s (%d of %d finished %s passed", repPercent(rate), passed, finished, repPlural(finished, "node", "nodes"))
		if unreachable > 0 {
			sr.Measured += fmt.Sprintf("; %d unreachable counted as failed", unreachable)
		}
		sr.Measured += ")"
		if !s.Finished {
			sr.Measured += " so far"
		}
	}
	if sla.MinSuccessRate > 0 {
		sr.Target = ">= " + repPercent(sla.MinSuccessRate)
		switch {
		case finished == 0:
			sr.Status = repSLAPending
		case rate < sla.MinSuccessRate:
			sr.Status = repSLABreached
		default:
			sr.Status = repSLAMet
		}
	}

	out.Targets = []ReportSLATarget{nd, rd, sr}
	for _, t := range out.Targets {
		if t.Status == repSLABreached {
			out.Breached = true
		}
	}
	return out
}

func repSeconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// repMedian is the median of sorted values.
func repMedian(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// repPercent is a fraction as a percentage with up to one decimal: "95%",
// "33.3%".
func repPercent(f float64) string {
	v := math.Round(f*1000) / 10
	return strconv.FormatFloat(v, 'f', -1, 64) + "%"
}

func repPlural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// ---- JSON ----

// repRenderJSON writes r as indented JSON, the report's documented form.
func repRenderJSON(r *Report) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("encode json: %w", err)
	}
	return b.Bytes(), nil
}
