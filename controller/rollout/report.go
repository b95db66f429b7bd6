package rollout

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

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
	Bake           string   `json:"bake,omitempty"`
	GatesAfterWave []uint32 `json:"gates_after_wave,omitempty"`
	Window         string   `json:"window,omitempty"`
	OnFailure      string   `json:"on_failure,omitempty"`
}

// ReportCounts counts the nodes by outcome. Unreachable nodes are
// counted apart from failed ones; Running is every node between pending
// and an outcome (auditing, deploying, waiting for a confirmation,
// rolling back).
type ReportCounts struct {
	Nodes          int `json:"nodes"`
	Passed         int `json:"passed"`
	Failed         int `json:"failed"`
	Unreachable    int `json:"unreachable"`
	Skipped        int `json:"skipped"`
	RolledBack     int `json:"rolled_back"`
	RollbackFailed int `json:"rollback_failed"`
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
	// Failures counts the wave's nodes that failed, were unreachable or
	// failed to roll back, and the nodes rolled back after an error;
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
	State           string  `json:"state"`
	Error           string  `json:"error,omitempty"`
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
	s.State = ro.GetState()
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
			Index: w.GetIndex(), State: w.GetState(), StartedAt: w.GetStartedAt(), FinishedAt: w.GetFinishedAt(),
			MaxFailures: w.GetMaxFailures(), GateAfter: w.GetGateAfter(), Nodes: []string{},
		}
		for _, id := range w.GetNodeIds() {
			rw.Nodes = append(rw.Nodes, repOr(names[id], id))
		}
		for _, n := range nodes {
			if n.GetWave() == w.GetIndex() && repWaveFailure(n) {
				rw.Failures++
			}
		}
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

// repWaveFailure reports whether a node counts against its wave's
// failure budget: it failed, was unreachable, failed to roll back, or
// was rolled back or aborted after an error.
func repWaveFailure(n *controllerv1.RolloutNode) bool {
	switch n.GetState() {
	case NodeFailed, NodeUnreachable, NodeRollbackFailed:
		return true
	case NodeRolledBack, NodeRollingBack:
		return n.GetError() != ""
	case NodeAborted:
		// A node aborted before it started (pending when the rollout was
		// aborted or rolled back) did not fail.
		return n.GetError() != "" && n.GetStartedAt() != ""
	}
	return false
}

// repCountNodes counts nodes by state; with no nodes (a rollout listed
// without them) it takes the stored counts.
func repCountNodes(nodes []*controllerv1.RolloutNode, stored *controllerv1.RolloutCounts) ReportCounts {
	if len(nodes) == 0 {
		return ReportCounts{
			Nodes: int(stored.GetNodes()), Passed: int(stored.GetPassed()), Failed: int(stored.GetFailed()),
			Unreachable: int(stored.GetUnreachable()), Skipped: int(stored.GetSkipped()),
			RolledBack: int(stored.GetRolledBack()), Pending: int(stored.GetPending()), Running: int(stored.GetRunning()),
		}
	}
	c := ReportCounts{Nodes: len(nodes)}
	for _, n := range nodes {
		switch n.GetState() {
		case NodePassed:
			c.Passed++
		case NodeFailed:
			c.Failed++
		case NodeUnreachable:
			c.Unreachable++
		case NodeSkipped:
			c.Skipped++
		case NodeRolledBack:
			c.RolledBack++
		case NodeRollbackFailed:
			c.RollbackFailed++
		case NodeAborted:
			c.Aborted++
		case NodePending, "":
			c.Pending++
		default:
			c.Running++
		}
	}
	return c
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
	}{{c.RolledBack, "rolled back"}, {c.RollbackFailed, "rollback failed"}, {c.Aborted, "aborted"}, {c.Running, "running"}, {c.Pending, "pending"}} {
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
		MaxFailures: sp.GetMaxFailures(), Unreachable: sp.GetUnreachable(), Bake: sp.GetBake(),
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
		NodeID: n.GetNodeId(), Hostname: n.GetHostname(), Wave: n.GetWave(), State: n.GetState(),
		Error: n.GetError(), StartedAt: n.GetStartedAt(), FinishedAt: n.GetFinishedAt(),
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
	rolledBack := slices.Contains([]string{NodeRollingBack, NodeRolledBack, NodeRollbackFailed}, n.GetState())
	if rolledBack || len(n.GetRollbackReportJson()) > 0 || len(n.GetRollbackDiffJson()) > 0 {
		rn.Rollback = repRollbackProof(n, &rn)
	}
	return rn
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
// the success rate.
func repFinished(state string) bool {
	switch state {
	case NodePassed, NodeFailed, NodeUnreachable, NodeRolledBack, NodeRollbackFailed:
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
		if n.Duration == "" || n.State == NodeUnreachable || n.State == NodeSkipped {
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
		if !repFinished(n.State) {
			continue
		}
		finished++
		switch n.State {
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

// ---- Text ----

// repTextWidth is the width the text report fits in.
const repTextWidth = 100

// repClean shows a value on a terminal line: control characters and
// newlines are quoted away, so stored data can neither drive the
// terminal nor break the layout.
func repClean(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) && r != ' ' {
			q := strconv.Quote(s)
			return q[1 : len(q)-1]
		}
	}
	return s
}

// repTextWriter writes the text report, wrapping every line at repTextWidth.
type repTextWriter struct {
	b bytes.Buffer
}

// line writes text after indent, wrapped at repTextWidth with continuation
// lines indented by hang more.
func (w *repTextWriter) line(indent, hang, text string) {
	text = repClean(text)
	width := repTextWidth - utf8.RuneCountInString(indent)
	first := true
	for {
		prefix := indent
		if !first {
			prefix = indent + hang
			width = repTextWidth - utf8.RuneCountInString(prefix)
		}
		if utf8.RuneCountInString(text) <= width {
			w.b.WriteString(strings.TrimRight(prefix+text, " ") + "\n")
			return
		}
		cut := repBreakAt(text, width)
		w.b.WriteString(strings.TrimRight(prefix+text[:cut], " ") + "\n")
		text = strings.TrimLeft(text[cut:], " ")
		first = false
	}
}

// repBreakAt is the byte offset to cut text at so the first part has at
// most width runes: the last space within width, else width runes.
func repBreakAt(text string, width int) int {
	lastSpace, runes := -1, 0
	for i, r := range text {
		if runes == width {
			if lastSpace > 0 {
				return lastSpace
			}
			return i
		}
		if r == ' ' {
			lastSpace = i
		}
		runes++
	}
	return len(text)
}

// field writes "label: value" with the value wrapped under itself.
func (w *repTextWriter) field(label, value string) {
	if value == "" {
		return
	}
	const labelWidth = 14
	pad := labelWidth - utf8.RuneCountInString(label)
	w.line("  ", strings.Repeat(" ", labelWidth), label+strings.Repeat(" ", max(pad, 1))+value)
}

func (w *repTextWriter) heading(s string) {
	w.b.WriteString("\n" + s + "\n" + strings.Repeat("-", utf8.RuneCountInString(s)) + "\n")
}

// table writes rows aligned in columns; each cell is cut to its column's
// limit (0: no limit) so the row fits the width.
func (w *repTextWriter) table(indent string, limits []int, rows [][]string) {
	var tb bytes.Buffer
	tw := tabwriter.NewWriter(&tb, 0, 0, 2, ' ', 0)
	for _, row := range rows {
		cells := make([]string, len(row))
		for i, c := range row {
			c = repClean(c)
			if i < len(limits) && limits[i] > 0 {
				c = repEllipsis(c, limits[i])
			}
			cells[i] = c
		}
		fmt.Fprintln(tw, indent+strings.Join(cells, "\t"))
	}
	tw.Flush()
	for _, l := range strings.SplitAfter(tb.String(), "\n") {
		if l == "" {
			continue
		}
		w.b.WriteString(strings.TrimRight(l, " \n") + "\n")
	}
}

// repEllipsis cuts s to n runes, ending in "…" when cut.
func repEllipsis(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// repNodeList names nodes for a table cell: all of them, or the first ones
// and how many more.
func repNodeList(names []string, limit int) string {
	s := strings.Join(names, ", ")
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	for k := len(names) - 1; k > 0; k-- {
		s = strings.Join(names[:k], ", ") + fmt.Sprintf(" +%d more", len(names)-k)
		if utf8.RuneCountInString(s) <= limit {
			return s
		}
	}
	return fmt.Sprintf("%d nodes", len(names))
}

// repFailuresCell is a wave's failures over its budget: "3/1 OVER BUDGET".
func repFailuresCell(w ReportWave) string {
	s := fmt.Sprintf("%d/%d", w.Failures, w.MaxFailures)
	if w.OverBudget {
		s += " OVER BUDGET"
	}
	return s
}

func repOrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// repClassLabel is the text label of a comparison class, shown in every
// format next to (or instead of) its colour.
func repClassLabel(class string) string {
	switch class {
	case compare.Expected:
		return "EXPECTED"
	case compare.Missing:
		return "MISSING"
	case compare.Unexpected:
		return "UNEXPECTED"
	case compare.Allowed:
		return "ALLOWED"
	}
	return strings.ToUpper(class)
}

// repClassified lists a comparison's items in the order reports show them:
// unexpected and missing first, then expected and allowed.
func repClassified(c *compare.Result) []compare.Item {
	var out []compare.Item
	for _, l := range [][]compare.Item{c.Unexpected, c.Missing, c.Expected, c.Allowed} {
		out = append(out, l...)
	}
	return out
}

// repRenderText writes r for a terminal or a mail, within repTextWidth
// columns.
func repRenderText(r *Report) ([]byte, error) {
	w := &repTextWriter{}
	s := r.Summary
	w.line("", "  ", r.Title)
	w.b.WriteString(strings.Repeat("=", min(utf8.RuneCountInString(r.Title), repTextWidth)) + "\n")
	if r.GeneratedAt != "" {
		w.line("", "  ", "Generated "+r.GeneratedAt)
	}

	w.heading("Summary")
	w.field("Release", s.Release)
	w.field("Digest", s.ReleaseDigest)
	w.field("Rollout", s.RolloutID)
	w.field("State", repJoin(": ", strings.ToUpper(s.State), s.Reason))
	w.field("Waiting for", s.WaitingFor)
	w.field("Created", repJoin(" by ", s.CreatedAt, s.CreatedBy))
	w.field("Finished", s.FinishedAt)
	w.field("Duration", s.Duration)
	w.field("Approvers", strings.Join(s.Approvers, ", "))
	if s.RollbackRequestedBy != "" {
		w.field("Rollback", repJoin(" at ", "requested by "+s.RollbackRequestedBy, s.RollbackStartedAt))
	}
	w.field("Targets", s.Spec.Targets)
	w.field("Strategy", s.Strategy)
	w.field("Nodes", s.Outcome)
	if r.SLA.Breached {
		w.field("SLA", "BREACHED (see SLA compliance)")
	}

	w.heading("Waves")
	if len(r.Waves) == 0 {
		w.line("  ", "", "No waves planned.")
	} else {
		rows := [][]string{{"WAVE", "STATE", "NODES", "STARTED", "FINISHED", "FAILED/BUDGET"}}
		for _, wv := range r.Waves {
			rows = append(rows, []string{strconv.Itoa(int(wv.Index)), wv.State, repNodeList(wv.Nodes, 16),
				repOrDash(wv.StartedAt), repOrDash(wv.FinishedAt), repFailuresCell(wv)})
		}
		// 2 + 4 + 10 + 16 + 20 + 20 + 17 and the gaps: 99 columns.
		w.table("  ", []int{4, 10, 16, 20, 20, 17}, rows)
	}

	w.heading("Nodes")
	if len(r.Nodes) == 0 {
		w.line("  ", "", "No nodes.")
	}
	for i, n := range r.Nodes {
		if i > 0 {
			w.b.WriteString("\n")
		}
		repTextNode(w, n)
	}

	w.heading("SLA compliance")
	for _, t := range r.SLA.Targets {
		status := strings.ToUpper(t.Status)
		text := t.Name + ": " + status
		if t.Target != "" {
			text += "; target " + t.Target
		}
		text += "; measured " + t.Measured
		if len(t.BreachedBy) > 0 {
			text += "; breached by " + strings.Join(t.BreachedBy, ", ")
		}
		w.line("  ", "    ", text)
	}

	w.heading("Known errors")
	if len(r.KnownErrors) == 0 {
		w.line("  ", "", "The release records no known errors.")
	}
	for _, k := range r.KnownErrors {
		w.line("  ", "    ", repJoin(" ", k.ID, "["+k.Status+"]", k.Summary))
		if k.Symptom != "" {
			w.line("    ", "  ", "Symptom: "+k.Symptom)
		}
		if k.Workaround != "" {
			w.line("    ", "  ", "Workaround: "+k.Workaround)
		}
		matched := "none"
		if len(k.Nodes) > 0 {
			matched = strings.Join(k.Nodes, ", ")
		}
		w.line("    ", "  ", "Matched nodes: "+matched)
	}

	w.heading("Audit trail")
	if len(r.AuditTrail) == 0 {
		w.line("  ", "", "No audit-log entries.")
	}
	for _, e := range r.AuditTrail {
		w.line("  ", "    ", repJoin("  ", e.Time, e.Actor, e.Action, e.Object, e.Details))
	}
	return w.b.Bytes(), nil
}

// repJoin joins the non-empty parts with sep.
func repJoin(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}

// repDriftWords is what the pre-check found, in words.
func repDriftWords(d ReportDrift) string {
	switch {
	case !d.Checked:
		return "not checked yet (no pre-audit)"
	case !d.HasBaseline:
		return "not checked: the node has no CMS baseline"
	case d.Changes == 0:
		return "none (matches its CMS baseline)"
	}
	return fmt.Sprintf("%d %s: %s", d.Changes, repPlural(int(d.Changes), "change", "changes"), d.Summary)
}

// repNodeHeadline is a node's title line: "web2 (n-02) · wave 2 ·
// FAILED · 6m5s".
func repNodeHeadline(n ReportNode) string {
	name := n.name()
	if n.Hostname != "" && n.NodeID != "" && n.Hostname != n.NodeID {
		name += " (" + n.NodeID + ")"
	}
	parts := []string{name, fmt.Sprintf("wave %d", n.Wave), strings.ToUpper(n.State)}
	if n.Duration != "" {
		parts = append(parts, n.Duration)
	}
	if n.SLABreached {
		parts = append(parts, "SLA breached")
	}
	return strings.Join(parts, " · ")
}

// repTextNode writes one node's section of the text report.
func repTextNode(w *repTextWriter, n ReportNode) {
	w.line("", "  ", "Node "+repNodeHeadline(n))
	if n.Error != "" {
		w.line("  ", "  ", "Error: "+n.Error)
	}
	if n.StartedAt != "" || n.FinishedAt != "" {
		w.line("  ", "  ", repJoin(", ", repPrefixed("started ", n.StartedAt), repPrefixed("finished ", n.FinishedAt)))
	}
	w.line("  ", "  ", "Drift before deploying: "+repDriftWords(n.Drift))
	for _, k := range n.KnownErrors {
		w.line("  ", "  ", "Known error: "+k)
	}
	if n.WaitingStep != "" {
		w.line("  ", "  ", "Waiting for confirmation of step "+n.WaitingStep+": "+n.WaitingInstructions)
	}
	for _, c := range n.Confirmations {
		w.line("  ", "  ", repConfirmation(c))
	}
	if n.Deployment != nil {
		repTextRun(w, "Deployment", n.Deployment)
	}
	if c := n.Comparison; c != nil {
		w.line("  ", "  ", "Before/after: "+c.Summary)
		if c.Diff != nil {
			w.line("    ", "  ", "Diff: "+c.Diff.Summary)
		}
		for _, it := range repClassified(c) {
			w.line("    ", "  ", "["+repClassLabel(it.Class)+"] "+it.What)
			if it.Class == compare.Missing && it.Expectation != "" {
				w.line("      ", "  ", "expected: "+it.Expectation+repDeclaredBy(it))
			}
		}
		for _, nc := range c.NotComparable {
			w.line("    ", "  ", "[NOT COMPARABLE] "+nc)
		}
	}
	if rb := n.Rollback; rb != nil {
		if rb.Run != nil {
			repTextRun(w, "Rollback", rb.Run)
		}
		proof := "Rollback proof: "
		if rb.Proven {
			proof += "PROVEN, "
		}
		w.line("  ", "  ", proof+rb.Verdict)
		for _, d := range rb.Differences {
			w.line("    ", "  ", "- "+d)
		}
		for _, nc := range rb.NotComparable {
			w.line("    ", "  ", "[NOT COMPARABLE] "+nc)
		}
	}
	for _, p := range n.Problems {
		w.line("  ", "  ", "Problem: "+p)
	}
}

func repPrefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

func repDeclaredBy(it compare.Item) string {
	if it.DeclaredBy == "" {
		return ""
	}
	return " (declared by " + it.DeclaredBy + ")"
}

func repConfirmation(c ReportConfirmation) string {
	s := "Confirmed step " + c.Step + " by " + c.By
	if c.At != "" {
		s += " at " + c.At
	}
	if c.Note != "" {
		s += ": " + strconv.Quote(c.Note)
	}
	return s
}

// repAttempts is " (after N attempts)" for a step tried more than once.
func repAttempts(n int) string {
	if n > 1 {
		return fmt.Sprintf(" (after %d attempts)", n)
	}
	return ""
}

func repRunHeadline(label string, run *ReportRun) string {
	return label + ": " + repJoin(", ", repOr(run.State, "state unknown"), run.Duration, run.Error)
}

func repTextRun(w *repTextWriter, label string, run *ReportRun) {
	w.line("  ", "  ", repRunHeadline(label, run))
	if len(run.Steps) == 0 {
		return
	}
	rows := make([][]string, 0, len(run.Steps))
	for _, st := range run.Steps {
		rows = append(rows, []string{st.List, st.Name, st.Plugin, st.Outcome, repOrDash(st.Duration)})
	}
	w.table("    ", []int{8, 24, 12, 16, 10}, rows)
	for _, st := range run.Steps {
		if st.Error != "" {
			w.line("    ", "  ", st.Name+" error"+repAttempts(st.Attempts)+": "+st.Error)
		}
		if len(st.Changes) > 0 {
			// The changes the step's plugin declared: made, or (unchanged)
			// already in place.
			verb := " changed: "
			if st.Outcome != "changed" {
				verb = " declares: "
			}
			w.line("    ", "  ", st.Name+verb+strings.Join(st.Changes, "; "))
		}
	}
}

// ---- Markdown ----

// repMDEscaper escapes text for Markdown, table cells included.
var repMDEscaper = strings.NewReplacer(
	`\`, `\\`, "|", `\|`, "`", "\\`", "*", `\*`, "_", `\_`, "#", `\#`,
	"[", `\[`, "]", `\]`, "<", "&lt;", ">", "&gt;", "&", "&amp;",
	"\r\n", " ", "\n", " ", "\r", " ",
)

func repMD(s string) string { return repMDEscaper.Replace(s) }

func repMDRow(b *bytes.Buffer, cells ...string) {
	b.WriteString("|")
	for _, c := range cells {
		b.WriteString(" " + c + " |")
	}
	b.WriteString("\n")
}

func repMDHeader(b *bytes.Buffer, cells ...string) {
	repMDRow(b, cells...)
	seps := make([]string, len(cells))
	for i := range seps {
		seps[i] = "---"
	}
	repMDRow(b, seps...)
}

// repRenderMarkdown writes r as Markdown: tables and lists.
func repRenderMarkdown(r *Report) ([]byte, error) {
	var b bytes.Buffer
	s := r.Summary
	fmt.Fprintf(&b, "# %s\n\n", repMD(r.Title))
	if r.GeneratedAt != "" {
		fmt.Fprintf(&b, "Generated %s.\n\n", repMD(r.GeneratedAt))
	}
	fmt.Fprintf(&b, "**%s: %s**\n", repMD(strings.ToUpper(s.State)), repMD(s.Outcome))

	b.WriteString("\n## Summary\n\n")
	repMDHeader(&b, "", "")
	for _, kv := range [][2]string{
		{"Release", s.Release}, {"Release digest", s.ReleaseDigest}, {"Rollout", s.RolloutID},
		{"State", repJoin(": ", s.State, s.Reason)}, {"Waiting for", s.WaitingFor},
		{"Created", repJoin(" by ", s.CreatedAt, s.CreatedBy)}, {"Finished", s.FinishedAt},
		{"Duration", s.Duration}, {"Approvers", strings.Join(s.Approvers, ", ")},
		{"Rollback", repJoin(" at ", repPrefixed("requested by ", s.RollbackRequestedBy), s.RollbackStartedAt)},
		{"Targets", s.Spec.Targets}, {"Strategy", s.Strategy}, {"Nodes", s.Outcome},
	} {
		if kv[1] != "" {
			repMDRow(&b, "**"+repMD(kv[0])+"**", repMD(kv[1]))
		}
	}
	c := s.Counts
	b.WriteString("\n")
	repMDHeader(&b, "Nodes", "Passed", "Failed", "Unreachable", "Skipped", "Rolled back", "Rollback failed", "Aborted", "Running", "Pending")
	repMDRow(&b, strconv.Itoa(c.Nodes), strconv.Itoa(c.Passed), strconv.Itoa(c.Failed), strconv.Itoa(c.Unreachable),
		strconv.Itoa(c.Skipped), strconv.Itoa(c.RolledBack), strconv.Itoa(c.RollbackFailed), strconv.Itoa(c.Aborted),
		strconv.Itoa(c.Running), strconv.Itoa(c.Pending))

	b.WriteString("\n## Waves\n\n")
	if len(r.Waves) == 0 {
		b.WriteString("No waves planned.\n")
	} else {
		repMDHeader(&b, "Wave", "State", "Nodes", "Started", "Finished", "Failures / budget", "Gate after")
		for _, w := range r.Waves {
			fail := fmt.Sprintf("%d / %d", w.Failures, w.MaxFailures)
			if w.OverBudget {
				fail += " **over budget**"
			}
			repMDRow(&b, strconv.Itoa(int(w.Index)), repMD(w.State), repMD(strings.Join(w.Nodes, ", ")), repMD(repOrDash(w.StartedAt)),
				repMD(repOrDash(w.FinishedAt)), fail, repYesNo(w.GateAfter))
		}
	}

	b.WriteString("\n## Nodes\n")
	if len(r.Nodes) == 0 {
		b.WriteString("\nNo nodes.\n")
	}
	for _, n := range r.Nodes {
		repMDNode(&b, n)
	}

	b.WriteString("\n## SLA compliance\n\n")
	repMDHeader(&b, "Target", "Goal", "Measured", "Status", "Breached by")
	for _, t := range r.SLA.Targets {
		status := repMD(t.Status)
		if t.Status == repSLABreached {
			status = "**BREACHED**"
		}
		repMDRow(&b, repMD(t.Name), repMD(repOrDash(t.Target)), repMD(t.Measured), status, repMD(strings.Join(t.BreachedBy, ", ")))
	}

	b.WriteString("\n## Known errors\n\n")
	if len(r.KnownErrors) == 0 {
		b.WriteString("The release records no known errors.\n")
	} else {
		repMDHeader(&b, "ID", "Status", "Summary", "Symptom", "Workaround", "Matched nodes")
		for _, k := range r.KnownErrors {
			repMDRow(&b, repMD(k.ID), repMD(k.Status), repMD(k.Summary), repMD(k.Symptom), repMD(k.Workaround), repMD(repOrNone(k.Nodes)))
		}
	}

	b.WriteString("\n## Audit trail\n\n")
	if len(r.AuditTrail) == 0 {
		b.WriteString("No audit-log entries.\n")
	} else {
		repMDHeader(&b, "#", "Time", "Actor", "Action", "Object", "Details")
		for _, e := range r.AuditTrail {
			repMDRow(&b, strconv.FormatUint(e.Sequence, 10), repMD(e.Time), repMD(e.Actor), repMD(e.Action), repMD(e.Object), repMD(e.Details))
		}
	}
	return b.Bytes(), nil
}

func repYesNo(v bool) string {
	if v {
		return "yes"
	}
	return "no"
}

func repOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

// repMDNode writes one node's section of the Markdown report.
func repMDNode(b *bytes.Buffer, n ReportNode) {
	fmt.Fprintf(b, "\n### %s\n\n", repMD(repNodeHeadline(n)))
	if n.Error != "" {
		fmt.Fprintf(b, "- **Error:** %s\n", repMD(n.Error))
	}
	if n.StartedAt != "" || n.FinishedAt != "" {
		fmt.Fprintf(b, "- Started %s, finished %s\n", repMD(repOrDash(n.StartedAt)), repMD(repOrDash(n.FinishedAt)))
	}
	fmt.Fprintf(b, "- Drift before deploying: %s\n", repMD(repDriftWords(n.Drift)))
	for _, k := range n.KnownErrors {
		fmt.Fprintf(b, "- Known error: %s\n", repMD(k))
	}
	if n.WaitingStep != "" {
		fmt.Fprintf(b, "- Waiting for confirmation of step %s: %s\n", repMD(n.WaitingStep), repMD(n.WaitingInstructions))
	}
	for _, c := range n.Confirmations {
		fmt.Fprintf(b, "- %s\n", repMD(repConfirmation(c)))
	}
	for _, p := range n.Problems {
		fmt.Fprintf(b, "- **Problem:** %s\n", repMD(p))
	}
	if n.Deployment != nil {
		repMDRun(b, "Deployment", n.Deployment)
	}
	if c := n.Comparison; c != nil {
		fmt.Fprintf(b, "\n**Before/after: %s**", repMD(c.Summary))
		if c.Diff != nil {
			fmt.Fprintf(b, " (diff: %s)", repMD(c.Diff.Summary))
		}
		b.WriteString("\n\n")
		items := repClassified(c)
		if len(items) > 0 || len(c.NotComparable) > 0 {
			repMDHeader(b, "Class", "Section", "What was found", "Declared expectation")
			for _, it := range items {
				repMDRow(b, "**"+repClassLabel(it.Class)+"**", repMD(it.Section), repMD(it.What), repMD(it.Expectation+repDeclaredBy(it)))
			}
			for _, nc := range c.NotComparable {
				repMDRow(b, "**NOT COMPARABLE**", "", repMD(nc), "")
			}
		}
	}
	if rb := n.Rollback; rb != nil {
		if rb.Run != nil {
			repMDRun(b, "Rollback", rb.Run)
		}
		verdict := repMD(rb.Verdict)
		if rb.Proven {
			verdict = "**PROVEN:** " + verdict
		}
		fmt.Fprintf(b, "\nRollback proof: %s\n", verdict)
		for _, d := range rb.Differences {
			fmt.Fprintf(b, "- %s\n", repMD(d))
		}
		for _, nc := range rb.NotComparable {
			fmt.Fprintf(b, "- not comparable: %s\n", repMD(nc))
		}
	}
}

func repMDRun(b *bytes.Buffer, label string, run *ReportRun) {
	fmt.Fprintf(b, "\n**%s**\n\n", repMD(repRunHeadline(label, run)))
	if len(run.Steps) == 0 {
		return
	}
	repMDHeader(b, "List", "Step", "Plugin", "Outcome", "Duration", "Changes", "Error")
	for _, st := range run.Steps {
		repMDRow(b, repMD(st.List), repMD(st.Name), repMD(st.Plugin), repMD(st.Outcome), repMD(repOrDash(st.Duration)),
			repMD(strings.Join(st.Changes, "; ")), repMD(st.Error))
	}
}

// ---- HTML ----

// repOutcomeClass is the CSS class that colours a rollout, wave or node
// state or an SLA status; the state is always written out as text too.
func repOutcomeClass(state string) string {
	switch state {
	case NodePassed, WaveDone, StateCompleted, repSLAMet:
		return "ok"
	case NodeFailed, NodeRollbackFailed, StateHalted, repSLABreached:
		return "bad"
	case NodeUnreachable, NodeWaitingConfirmation, StatePaused, NodeAborted:
		return "warn"
	case NodeRolledBack, NodeRollingBack:
		return "info"
	}
	return "neutral"
}

// repHTML is one self-contained page: inline styles, no scripts, no
// external fonts, images or links. html/template escapes every value.
var repHTML = func() *template.Template {
	t := template.Must(template.New("report").Funcs(repHTMLFuncs).Parse(repHTMLPage))
	template.Must(t.New("run").Parse(repHTMLRun))
	return t
}()

var repHTMLFuncs = template.FuncMap{
	"upper":      strings.ToUpper,
	"join":       strings.Join,
	"cls":        repOutcomeClass,
	"label":      repClassLabel,
	"classified": repClassified,
	"drift":      repDriftWords,
	"headline":   repNodeHeadline,
	"confirm":    repConfirmation,
	"declaredBy": repDeclaredBy,
	"orDash":     repOrDash,
	"orNone":     repOrNone,
	"name":       func(n ReportNode) string { return n.name() },
	"joinNE":     repJoin,
	"prefixed":   repPrefixed,
	"stepClass":  repStepClass,
	"runArgs":    func(label string, run *ReportRun) repRunArgs { return repRunArgs{Label: label, Run: run} },
}

const repHTMLPage = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
:root { --ok: #116329; --bad: #a40e26; --missing: #8f3f00; --warn: #8a5300; --info: #0b4f8a; --neutral: #444; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 75rem;
  padding: 0 1rem; color: #1b1b1b; line-height: 1.4; }
h1 { font-size: 1.5rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 2px solid #ccc; padding-bottom: 0.2rem; }
h3 { font-size: 1.05rem; margin: 0 0 0.5rem 0; }
h4 { font-size: 0.95rem; margin: 0.8rem 0 0.3rem 0; }
.meta { color: #555; }
p.meta { margin-top: 0; }
table { border-collapse: collapse; width: 100%; margin: 0.3rem 0 0.8rem 0; }
th, td { text-align: left; padding: 0.25rem 0.5rem; border-bottom: 1px solid #ddd; vertical-align: top; }
th { background: #f3f3f3; }
table.kv th { width: 12rem; background: none; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; word-break: break-all; }
.label { display: inline-block; font-weight: 700; font-size: 0.8rem; padding: 0.05rem 0.4rem; border-radius: 0.25rem;
  border: 1px solid currentColor; white-space: nowrap; }
.ok { color: var(--ok); } .bad { color: var(--bad); } .warn { color: var(--warn); }
.info { color: var(--info); } .neutral { color: var(--neutral); }
.label.expected { color: var(--ok); } .label.missing { color: var(--missing); }
.label.unexpected { color: var(--bad); } .label.allowed { color: var(--info); }
tr.expected td:first-child { border-left: 4px solid var(--ok); }
tr.missing td:first-child { border-left: 4px dashed var(--missing); }
tr.unexpected td:first-child { border-left: 4px solid var(--bad); }
tr.allowed td:first-child { border-left: 4px solid var(--info); }
tr.notcomparable td:first-child { border-left: 4px solid var(--warn); }
section.node { border: 1px solid #ccc; border-radius: 0.4rem; padding: 0.8rem 1rem; margin: 1rem 0;
  break-inside: avoid; page-break-inside: avoid; }
ul.facts { margin: 0.3rem 0; padding-left: 1.2rem; }
.headline { font-size: 1.1rem; font-weight: 600; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  h2 { break-after: avoid; page-break-after: avoid; }
  section.node, table.kv, tr { break-inside: avoid; page-break-inside: avoid; }
  .label { border-width: 1.5px; }
  th { background: none; }
}
</style>
</head>
<body>
<header>
<h1>{{.Title}}</h1>
<p class="meta">Rollout <span class="mono">{{.Summary.RolloutID}}</span>{{with .GeneratedAt}} · generated {{.}}{{end}}</p>
<p class="headline"><span class="label {{cls .Summary.State}}">{{upper .Summary.State}}</span> {{.Summary.Outcome}}{{if .SLA.Breached}} · <span class="label bad">SLA BREACHED</span>{{end}}</p>
</header>

<h2>Summary</h2>
{{- with .Summary}}
<table class="kv">
<tr><th>Release</th><td>{{.Release}}</td></tr>
{{- with .ReleaseDigest}}
<tr><th>Release digest</th><td class="mono">{{.}}</td></tr>
{{- end}}
<tr><th>Rollout</th><td class="mono">{{.RolloutID}}</td></tr>
<tr><th>State</th><td><span class="label {{cls .State}}">{{upper .State}}</span>{{with .Reason}} {{.}}{{end}}</td></tr>
{{- with .WaitingFor}}
<tr><th>Waiting for</th><td>{{.}}</td></tr>
{{- end}}
<tr><th>Created</th><td>{{orDash .CreatedAt}}{{with .CreatedBy}} by {{.}}{{end}}</td></tr>
<tr><th>Finished</th><td>{{orDash .FinishedAt}}</td></tr>
<tr><th>Duration</th><td>{{orDash .Duration}}</td></tr>
<tr><th>Approvers</th><td>{{orNone .Approvers}}</td></tr>
{{- if .RollbackRequestedBy}}
<tr><th>Rollback</th><td>requested by {{.RollbackRequestedBy}}{{with .RollbackStartedAt}} at {{.}}{{end}}</td></tr>
{{- end}}
<tr><th>Targets</th><td>{{.Spec.Targets}}</td></tr>
<tr><th>Strategy</th><td>{{.Strategy}}</td></tr>
</table>
<table>
<thead><tr><th>Nodes</th><th>Passed</th><th>Failed</th><th>Unreachable</th><th>Skipped</th><th>Rolled back</th><th>Rollback failed</th><th>Aborted</th><th>Running</th><th>Pending</th></tr></thead>
<tbody><tr><td>{{.Counts.Nodes}}</td><td class="ok">{{.Counts.Passed}}</td><td class="bad">{{.Counts.Failed}}</td><td class="warn">{{.Counts.Unreachable}}</td><td>{{.Counts.Skipped}}</td><td class="info">{{.Counts.RolledBack}}</td><td class="bad">{{.Counts.RollbackFailed}}</td><td>{{.Counts.Aborted}}</td><td>{{.Counts.Running}}</td><td>{{.Counts.Pending}}</td></tr></tbody>
</table>
{{- end}}

<h2>Waves</h2>
{{- if .Waves}}
<table>
<thead><tr><th>Wave</th><th>State</th><th>Nodes</th><th>Started</th><th>Finished</th><th>Failures / budget</th><th>Gate after</th></tr></thead>
<tbody>
{{- range .Waves}}
<tr><td>{{.Index}}</td><td><span class="label {{cls .State}}">{{upper .State}}</span></td><td>{{join .Nodes ", "}}</td><td>{{orDash .StartedAt}}</td><td>{{orDash .FinishedAt}}</td><td>{{.Failures}} / {{.MaxFailures}}{{if .OverBudget}} <span class="label bad">OVER BUDGET</span>{{end}}</td><td>{{if .GateAfter}}yes{{else}}no{{end}}</td></tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p>No waves planned.</p>
{{- end}}

<h2>Nodes</h2>
{{- range .Nodes}}
<section class="node">
<h3>{{name .}}{{if and .Hostname (ne .Hostname .NodeID)}} <span class="mono meta">{{.NodeID}}</span>{{end}} <span class="label {{cls .State}}">{{upper .State}}</span>{{if .SLABreached}} <span class="label bad">SLA BREACHED</span>{{end}}</h3>
<ul class="facts">
<li>Wave {{.Wave}}{{with .Duration}} · duration {{.}}{{end}}{{with .StartedAt}} · started {{.}}{{end}}{{with .FinishedAt}} · finished {{.}}{{end}}</li>
{{- with .Error}}
<li><strong>Error:</strong> {{.}}</li>
{{- end}}
<li>Drift before deploying: {{drift .Drift}}</li>
{{- range .KnownErrors}}
<li>Known error: {{.}}</li>
{{- end}}
{{- if .WaitingStep}}
<li>Waiting for confirmation of step {{.WaitingStep}}: {{.WaitingInstructions}}</li>
{{- end}}
{{- range .Confirmations}}
<li>{{confirm .}}</li>
{{- end}}
{{- range .Problems}}
<li><span class="label warn">PROBLEM</span> {{.}}</li>
{{- end}}
</ul>
{{- with .Deployment}}{{template "run" (runArgs "Deployment" .)}}{{end}}
{{- with .Comparison}}
<h4>Before/after: {{.Summary}}</h4>
{{- with .Diff}}
<p class="meta">Diff: {{.Summary}}</p>
{{- end}}
{{- $items := classified .}}
{{- if or $items .NotComparable}}
<table>
<thead><tr><th>Class</th><th>Section</th><th>What was found</th><th>Declared expectation</th></tr></thead>
<tbody>
{{- range $items}}
<tr class="{{.Class}}"><td><span class="label {{.Class}}">{{label .Class}}</span></td><td class="mono">{{.Section}}</td><td>{{.What}}</td><td>{{.Expectation}}{{declaredBy .}}</td></tr>
{{- end}}
{{- range .NotComparable}}
<tr class="notcomparable"><td><span class="label warn">NOT COMPARABLE</span></td><td></td><td>{{.}}</td><td></td></tr>
{{- end}}
</tbody>
</table>
{{- end}}
{{- end}}
{{- with .Rollback}}
{{- with .Run}}{{template "run" (runArgs "Rollback" .)}}{{end}}
<h4>Rollback proof: {{if .Proven}}<span class="label ok">PROVEN</span> {{else}}<span class="label bad">NOT PROVEN</span> {{end}}{{.Verdict}}</h4>
{{- if or .Differences .NotComparable}}
<ul class="facts">
{{- range .Differences}}
<li><span class="label bad">DIFFERS</span> {{.}}</li>
{{- end}}
{{- range .NotComparable}}
<li><span class="label warn">NOT COMPARABLE</span> {{.}}</li>
{{- end}}
</ul>
{{- end}}
{{- end}}
</section>
{{- else}}
<p>No nodes.</p>
{{- end}}

<h2>SLA compliance</h2>
<table>
<thead><tr><th>Target</th><th>Goal</th><th>Measured</th><th>Status</th><th>Breached by</th></tr></thead>
<tbody>
{{- range .SLA.Targets}}
<tr><td>{{.Name}}</td><td>{{orDash .Target}}</td><td>{{.Measured}}</td><td><span class="label {{cls .Status}}">{{upper .Status}}</span></td><td>{{join .BreachedBy ", "}}</td></tr>
{{- end}}
</tbody>
</table>

<h2>Known errors</h2>
{{- if .KnownErrors}}
<table>
<thead><tr><th>ID</th><th>Status</th><th>Summary</th><th>Symptom</th><th>Workaround</th><th>Matched nodes</th></tr></thead>
<tbody>
{{- range .KnownErrors}}
<tr><td class="mono">{{.ID}}</td><td>{{.Status}}</td><td>{{.Summary}}</td><td>{{.Symptom}}</td><td>{{.Workaround}}</td><td>{{orNone .Nodes}}</td></tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p>The release records no known errors.</p>
{{- end}}

<h2>Audit trail</h2>
{{- if .AuditTrail}}
<table>
<thead><tr><th>#</th><th>Time</th><th>Actor</th><th>Action</th><th>Object</th><th>Details</th></tr></thead>
<tbody>
{{- range .AuditTrail}}
<tr><td>{{.Sequence}}</td><td>{{.Time}}</td><td>{{.Actor}}</td><td>{{.Action}}</td><td class="mono">{{.Object}}</td><td>{{.Details}}</td></tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p>No audit-log entries.</p>
{{- end}}
</body>
</html>
`

// repHTMLRun renders a deployment or rollback run: its state and steps.
const repHTMLRun = `
<h4>{{.Label}}: {{.Run.State}}{{with .Run.Duration}}, {{.}}{{end}}</h4>
{{- with .Run.Error}}
<p><strong>Error:</strong> {{.}}</p>
{{- end}}
{{- if .Run.Steps}}
<table>
<thead><tr><th>List</th><th>Step</th><th>Plugin</th><th>Outcome</th><th>Duration</th><th>Changes</th><th>Error</th></tr></thead>
<tbody>
{{- range .Run.Steps}}
<tr><td>{{.List}}</td><td>{{.Name}}</td><td>{{.Plugin}}</td><td><span class="label {{stepClass .Outcome}}">{{upper .Outcome}}</span></td><td>{{orDash .Duration}}</td><td>{{join .Changes "; "}}</td><td>{{.Error}}</td></tr>
{{- end}}
</tbody>
</table>
{{- end}}`

// repRunArgs passes a run and its label to the "run" template.
type repRunArgs struct {
	Label string
	Run   *ReportRun
}

// repStepClass colours a step outcome (agent/apply's outcomes).
func repStepClass(outcome string) string {
	switch {
	case strings.HasPrefix(outcome, "failed"):
		return "bad"
	case outcome == "changed" || outcome == "passed" || outcome == "unchanged" || outcome == "skipped":
		return "ok"
	case outcome == "rolled back":
		return "info"
	}
	return "neutral"
}

// repRenderHTML writes r as one self-contained HTML page.
func repRenderHTML(r *Report) ([]byte, error) {
	var b bytes.Buffer
	if err := repHTML.Execute(&b, r); err != nil {
		return nil, fmt.Errorf("execute html template: %w", err)
	}
	return b.Bytes(), nil
}
