package ctl

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-ops/cairn/controller/rollout/state"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// How rollouts print for people: the plan, the status view (also what
// watch redraws on a terminal) and the lines watch prints otherwise.

// isTerminal reports whether w (or the writer a termsafe.Writer escapes
// into) is a terminal, a character device: rollout watch then redraws the
// status view instead of printing lines.
func isTerminal(w io.Writer) bool {
	f, ok := raw(w).(interface{ Stat() (os.FileInfo, error) })
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// raw returns the writer under a termsafe.Writer (w itself otherwise),
// for cairnctl's own control sequences.
func raw(w io.Writer) io.Writer {
	if u, ok := w.(interface{ Unwrap() io.Writer }); ok {
		return u.Unwrap()
	}
	return w
}

// plural renders "1 node", "3 nodes".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// progressBar renders "[#####-----] 3/6".
func progressBar(done, total int) string {
	const width = 10
	filled := 0
	if total > 0 {
		filled = min(width, done*width/total)
	}
	return fmt.Sprintf("[%s%s] %d/%d", strings.Repeat("#", filled), strings.Repeat("-", width-filled), done, total)
}

// shortDigest renders a digest's first 12 hex digits.
func shortDigest(d string) string {
	if d == "" {
		return "-"
	}
	return "sha256:" + d[:min(12, len(d))]
}

// noneIfEmpty renders an empty string as "none".
func noneIfEmpty(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// targets renders what a spec deploys to.
func targets(spec *controllerv1.RolloutSpec) string {
	if spec.GetService() != "" {
		return "service " + spec.GetService()
	}
	return "selector " + kvList(spec.GetSelector())
}

// stateWithReason renders "halted: wave 2 exceeded its failure budget".
func stateWithReason(rec *controllerv1.RolloutRecord) string {
	if rec.GetReason() == "" {
		return state.Name(rec.GetState())
	}
	return state.Name(rec.GetState()) + ": " + rec.GetReason()
}

// field writes one "label:  value" line of a header, the values aligned
// whatever labels a view has.
func field(b *strings.Builder, label, value string) {
	fmt.Fprintf(b, "%-14s%s\n", label+":", cmp.Or(value, "-"))
}

// planText renders a plan: settings, waves with their nodes in order,
// each node's details and the warnings.
func planText(p *controllerv1.RolloutPlan) string {
	spec := p.GetSpec()
	var b strings.Builder
	fmt.Fprintf(&b, "rollout plan of %s (%s)\n", refString(spec.GetRelease()), shortDigest(p.GetReleaseDigest()))
	field(&b, "summary", p.GetSummary())
	field(&b, "nodes", targets(spec))
	field(&b, "strategy", spec.GetStrategy()+", waves "+strings.Join(spec.GetWaves(), ","))
	field(&b, "max parallel", strconv.Itoa(int(p.GetMaxParallel())))
	field(&b, "max failures", spec.GetMaxFailures()+" per wave")
	field(&b, "unreachable", spec.GetUnreachable())
	if spec.GetLostAfter() != "" {
		field(&b, "lost after", spec.GetLostAfter())
	}
	field(&b, "bake", noneIfEmpty(spec.GetBake()))
	var gates []string
	for _, g := range spec.GetGatesAfterWave() {
		gates = append(gates, "after wave "+strconv.Itoa(int(g)))
	}
	field(&b, "gates", noneIfEmpty(strings.Join(gates, ", ")))
	window := "any time"
	if spec.GetWindow() != "" {
		window = spec.GetWindow()
		switch next := p.GetNextWindow(); next {
		case "":
		case "now":
			window += " (open now)"
		default:
			window += " (opens " + next + ")"
		}
	}
	field(&b, "window", window)
	field(&b, "on failure", spec.GetOnFailure())
	onDrift := spec.GetOnDrift()
	if onDrift == "" {
		onDrift = "block" // the controller's default
	}
	field(&b, "on drift", onDrift)

	nodes := map[string]*controllerv1.NodePlan{}
	for _, n := range p.GetNodes() {
		nodes[n.GetNodeId()] = n
	}
	for _, w := range p.GetWaves() {
		fmt.Fprintf(&b, "\nwave %d: %s, max failures %d", w.GetIndex(), plural(len(w.GetNodeIds()), "node"), w.GetMaxFailures())
		if w.GetBake() != "" && w.GetBake() != "0s" {
			fmt.Fprintf(&b, ", then bake %s", w.GetBake())
		}
		if w.GetGateAfter() {
			b.WriteString(", then a gate ('rollout resume')")
		}
		b.WriteString("\n")
		t := newTable(&b)
		t.row("  HOSTNAME", "NODE", "CONNECTED", "DRIFT", "DRY RUN", "KNOWN ERRORS")
		for _, id := range w.GetNodeIds() {
			n, ok := nodes[id]
			if !ok {
				t.row("  "+id, id, "", "", "", "")
				continue
			}
			t.row("  "+cmp.Or(n.GetHostname(), id), id, yesNo(n.GetConnected()), planDrift(n), planDryRun(n, spec.GetSkipDryRun()), knownErrorIDs(n.GetKnownErrors()))
		}
		t.flush()
	}

	var details strings.Builder
	for _, w := range p.GetWaves() {
		for _, id := range w.GetNodeIds() {
			n, ok := nodes[id]
			if !ok {
				continue
			}
			var lines []string
			if n.GetDryRunDone() && !n.GetDryRunOk() {
				lines = append(lines, "dry run failed: "+n.GetDryRunError())
			}
			for _, a := range n.GetActions() {
				lines = append(lines, "action: "+a)
			}
			for _, c := range n.GetChanges() {
				lines = append(lines, "change: "+c)
			}
			if (n.GetDriftChanges() > 0 || n.GetDriftPathsNotCompared() > 0) && n.GetDriftSummary() != "" {
				lines = append(lines, "drift: "+n.GetDriftSummary())
			}
			for _, k := range n.GetKnownErrors() {
				lines = append(lines, "known error "+k)
			}
			if len(lines) == 0 {
				continue
			}
			fmt.Fprintf(&details, "  %s (%s, wave %d):\n", cmp.Or(n.GetHostname(), id), id, n.GetWave())
			for _, l := range lines {
				fmt.Fprintf(&details, "    %s\n", l)
			}
		}
	}
	if details.Len() > 0 {
		b.WriteString("\nnodes:\n" + details.String())
	}
	if len(p.GetWarnings()) > 0 {
		b.WriteString("\nwarnings:\n")
		for _, w := range p.GetWarnings() {
			fmt.Fprintf(&b, "  ! %s\n", w)
		}
	}
	return b.String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// planDrift renders a node's drift from its baseline.
func planDrift(n *controllerv1.NodePlan) string {
	switch {
	case !n.GetHasBaseline():
		return "no baseline"
	case n.GetDriftChanges() == 0 && n.GetDriftPathsNotCompared() > 0:
		return fmt.Sprintf("none; %d not compared", n.GetDriftPathsNotCompared())
	case n.GetDriftChanges() == 0:
		return "none"
	default:
		return plural(int(n.GetDriftChanges()), "change")
	}
}

// planDryRun renders a node's dry-run result.
func planDryRun(n *controllerv1.NodePlan, skipped bool) string {
	switch {
	case !n.GetDryRunDone() && skipped:
		return "skipped"
	case !n.GetDryRunDone():
		return "no answer"
	case !n.GetDryRunOk():
		return "failed"
	case n.GetWouldChange():
		return "would change"
	default:
		return "no change"
	}
}

// knownErrorIDs renders the IDs of "ID: summary" entries.
func knownErrorIDs(entries []string) string {
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i], _, _ = strings.Cut(e, ":")
	}
	return strings.Join(ids, ",")
}

// nodeDuration renders how long a node's deployment took, or has taken
// so far.
func nodeDuration(n *controllerv1.RolloutNode, now time.Time) string {
	var d time.Duration
	switch {
	case n.GetDurationSeconds() > 0:
		d = time.Duration(n.GetDurationSeconds() * float64(time.Second))
	case n.GetStartedAt() != "" && n.GetFinishedAt() == "":
		t, err := time.Parse(time.RFC3339Nano, n.GetStartedAt())
		if err != nil {
			return ""
		}
		d = now.Sub(t)
	default:
		return ""
	}
	if d < time.Second {
		return "<1s"
	}
	return d.Round(time.Second).String()
}

// nodeDetail is what a node's row says besides its state. lost is how
// long a node in flight may stay disconnected before it is unreachable
// (0: unknown).
func nodeDetail(n *controllerv1.RolloutNode, now time.Time, lost time.Duration) string {
	var parts []string
	st := n.GetState()
	if st == state.NodeWaitingConfirmation && n.GetWaitingStep() != "" {
		s := "waits at step " + n.GetWaitingStep()
		if n.GetWaitingInstructions() != "" {
			s += ": " + n.GetWaitingInstructions()
		}
		parts = append(parts, s)
	}
	if st == state.NodeInterrupted && n.GetInterruptedStep() != "" {
		parts = append(parts, "step "+n.GetInterruptedStep()+" was cut off")
	}
	if n.GetError() != "" {
		parts = append(parts, n.GetError())
	}
	if since := n.GetUnreachableSince(); since != "" {
		switch {
		case state.NodeInFlight(st):
			s := "disconnected since " + ago(now, since)
			if t, err := time.Parse(time.RFC3339Nano, since); err == nil && lost > 0 {
				s += ", unreachable at " + t.Add(lost).In(now.Location()).Format("15:04:05") + " unless it reconnects"
			}
			parts = append(parts, s)
		case st == state.NodePending:
			parts = append(parts, "waiting to reconnect since "+ago(now, since))
		}
	}
	if r := n.GetRetries(); r > 0 {
		parts = append(parts, plural(int(r), "retry"))
	}
	if n.GetResolvedBy() != "" {
		parts = append(parts, "resolved by "+n.GetResolvedBy()+": "+n.GetResolvedNote())
	}
	if n.GetSlaBreached() {
		parts = append(parts, "SLA breached")
	}
	return strings.Join(parts, "; ")
}

// lostAfter is how long a rollout lets a node in flight stay
// disconnected before it is unreachable: wait:D's D, else lost_after; 0
// when the spec does not say.
func lostAfter(spec *controllerv1.RolloutSpec) time.Duration {
	if d, ok := strings.CutPrefix(spec.GetUnreachable(), "wait:"); ok {
		v, _ := time.ParseDuration(d)
		return v
	}
	v, _ := time.ParseDuration(spec.GetLostAfter())
	return v
}

// waveNodes groups a rollout's nodes by wave.
func waveNodes(rec *controllerv1.RolloutRecord) map[uint32][]*controllerv1.RolloutNode {
	m := map[uint32][]*controllerv1.RolloutNode{}
	for _, n := range rec.GetNodes() {
		m[n.GetWave()] = append(m[n.GetWave()], n)
	}
	return m
}

// waveCounts counts a wave's nodes by state (state.Count).
func waveCounts(nodes []*controllerv1.RolloutNode) *controllerv1.RolloutCounts {
	return state.Count(nodes)
}

// countsLine says every count of a rollout that is not zero, passed and
// failed always: "3 nodes: 1 passed, 1 failed, 1 unreachable".
func countsLine(c *controllerv1.RolloutCounts) string {
	parts := []string{fmt.Sprintf("%d passed", c.GetPassed()), fmt.Sprintf("%d failed", c.GetFailed())}
	for _, o := range []struct {
		n    uint32
		word string
	}{
		{c.GetUnreachable(), "unreachable"}, {c.GetSkipped(), "skipped"}, {c.GetInterrupted(), "interrupted"},
		{c.GetRolledBack(), "rolled back"}, {c.GetRollbackFailed(), "rollback failed"}, {c.GetResolved(), "resolved"},
		{c.GetAborted(), "aborted"}, {c.GetRunning(), "running"}, {c.GetPending(), "pending"},
	} {
		if o.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", o.n, o.word))
		}
	}
	return plural(int(c.GetNodes()), "node") + ": " + strings.Join(parts, ", ")
}

// statusText renders the status view of a rollout with its nodes.
func statusText(rec *controllerv1.RolloutRecord, now time.Time) string {
	var b strings.Builder
	c := rec.GetCounts()
	field(&b, "rollout", rec.GetId())
	field(&b, "release", refString(rec.GetRelease())+" ("+shortDigest(rec.GetReleaseDigest())+")")
	field(&b, "nodes", targets(rec.GetSpec()))
	field(&b, "state", stateWithReason(rec))
	if w := rec.GetWaitingFor(); w != "" {
		field(&b, "waiting for", w)
	}
	if by := rec.GetRollbackRequestedBy(); by != "" {
		s := "requested by " + by
		if at := rec.GetRollbackStartedAt(); at != "" {
			s += ", started " + ago(now, at)
		}
		field(&b, "rollback", s)
	}
	if rec.GetCreatedAt() != "" {
		field(&b, "created", ago(now, rec.GetCreatedAt())+" by "+cmp.Or(rec.GetCreatedBy(), "-"))
	}
	if rec.GetFinishedAt() != "" {
		field(&b, "finished", ago(now, rec.GetFinishedAt()))
	}
	field(&b, "progress", progressBar(int(c.GetPassed()), int(c.GetNodes()))+" nodes passed")

	byWave := waveNodes(rec)
	b.WriteString("\nwaves:\n")
	t := newTable(&b)
	t.row("  WAVE", "STATE", "PROGRESS", "FAILURES", "UNREACHABLE", "MAX FAILURES", "NOTE")
	for _, w := range rec.GetWaves() {
		nodes := byWave[w.GetIndex()]
		total := max(len(w.GetNodeIds()), len(nodes))
		var note []string
		if w.GetState() == state.WaveBaking && w.GetBakeUntil() != "" {
			note = append(note, "baking until "+clock(w.GetBakeUntil(), now))
		}
		if w.GetGateAfter() {
			note = append(note, "gate after")
		}
		wc := waveCounts(nodes)
		failures := state.WaveFailures(w, nodes)
		if failures > w.GetMaxFailures() {
			note = append(note, "over budget")
		}
		t.row("  "+strconv.Itoa(int(w.GetIndex())), state.Name(w.GetState()), progressBar(int(state.Finished(wc)), total),
			strconv.Itoa(int(failures)), strconv.Itoa(int(wc.GetUnreachable()+wc.GetSkipped())),
			strconv.Itoa(int(w.GetMaxFailures())), strings.Join(note, ", "))
	}
	t.flush()

	if len(rec.GetNodes()) > 0 {
		nodes := slices.Clone(rec.GetNodes())
		slices.SortStableFunc(nodes, func(x, y *controllerv1.RolloutNode) int { return cmp.Compare(x.GetWave(), y.GetWave()) })
		b.WriteString("\nnodes:\n")
		t := newTable(&b)
		t.row("  HOSTNAME", "WAVE", "STATE", "DURATION", "DETAIL")
		lost := lostAfter(rec.GetSpec())
		for _, n := range nodes {
			t.row("  "+n.Name(), strconv.Itoa(int(n.GetWave())), state.Name(n.GetState()), nodeDuration(n, now), nodeDetail(n, now, lost))
		}
		t.flush()
	}
	fmt.Fprintf(&b, "\ncounts: %s\n", countsLine(c))
	return b.String()
}

// clock renders an RFC 3339 time as a wall-clock time in now's location,
// or as it is when it does not parse.
func clock(ts string, now time.Time) string {
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return ts
	}
	return t.In(now.Location()).Format("15:04:05")
}

// watchLine is one change a watch prints, with when it happened.
type watchLine struct {
	at   time.Time
	text string
}

// changeLines says, one line each, what changed from prev to cur (prev
// nil: what cur shows at first): waves starting, nodes changing state,
// waves ending, what the rollout waits for, and its state. Each line
// carries the time the record gives for the change (a node's entry into
// its state, a wave's start or end, the rollout's end), or now where it
// gives none: a watch that joins a rollout late, or one that is over,
// shows when things happened, not when it saw them.
func changeLines(prev, cur *controllerv1.RolloutRecord, now time.Time) []watchLine {
	var lines []watchLine
	add := func(ts, text string) {
		lines = append(lines, watchLine{at: when(ts, now), text: text})
	}
	id := cur.GetId()
	if prev == nil {
		add(cur.GetCreatedAt(), fmt.Sprintf("rollout %s of %s: %s, %s in %s", id, refString(cur.GetRelease()),
			stateWithReason(cur), plural(int(cur.GetCounts().GetNodes()), "node"), plural(len(cur.GetWaves()), "wave")))
		prev = &controllerv1.RolloutRecord{State: cur.GetState(), Reason: cur.GetReason()}
	}
	oldWave := map[uint32]state.Wave{}
	for _, w := range prev.GetWaves() {
		oldWave[w.GetIndex()] = w.GetState()
	}
	oldNode := map[string]*controllerv1.RolloutNode{}
	for _, n := range prev.GetNodes() {
		oldNode[n.GetNodeId()] = n
	}
	nodeLine := func(n *controllerv1.RolloutNode) {
		o := oldNode[n.GetNodeId()]
		newState := n.GetState() != cmp.Or(o.GetState(), state.NodePending)
		if !newState && n.GetWaitingStep() == o.GetWaitingStep() {
			return
		}
		at := n.GetPhaseStartedAt()
		if !newState { // a new step waits in the same state: seen now
			at = ""
		}
		line := fmt.Sprintf("%s wave %d %s", n.Name(), n.GetWave(), state.Name(n.GetState()))
		switch n.GetState() {
		case state.NodePassed, state.NodeRolledBack:
			if d := nodeDuration(n, now); d != "" {
				line += " in " + d
			}
		case state.NodeInterrupted:
			line += ": step " + n.GetInterruptedStep() + " was cut off"
		case state.NodeWaitingConfirmation:
			line += fmt.Sprintf(": step %s: %s (cairnctl rollout confirm %s --node %s --step %s --note TEXT)",
				n.GetWaitingStep(), cmp.Or(n.GetWaitingInstructions(), "no instructions"), id, n.Name(), n.GetWaitingStep())
		}
		if n.GetError() != "" {
			line += ": " + n.GetError()
		}
		add(at, line)
	}
	// Wave by wave: the wave starting, its nodes, the wave ending.
	byWave := waveNodes(cur)
	for _, w := range cur.GetWaves() {
		nodes := byWave[w.GetIndex()]
		delete(byWave, w.GetIndex())
		changed := w.GetState() != cmp.Or(oldWave[w.GetIndex()], state.WavePending)
		if changed && w.GetState() == state.WaveRunning {
			add(w.GetStartedAt(), fmt.Sprintf("wave %d started: %s", w.GetIndex(), plural(len(w.GetNodeIds()), "node")))
		}
		for _, n := range nodes {
			nodeLine(n)
		}
		if !changed || w.GetState() == state.WaveRunning {
			continue
		}
		line, at := fmt.Sprintf("wave %d %s", w.GetIndex(), state.Name(w.GetState())), w.GetFinishedAt()
		switch w.GetState() {
		case state.WaveDone, state.WaveFailed:
			line += fmt.Sprintf(": %s; %d failures, %d allowed", countsLine(waveCounts(nodes)), state.WaveFailures(w, nodes), w.GetMaxFailures())
		case state.WaveBaking:
			at = ""
			if w.GetBakeUntil() != "" {
				line += " until " + clock(w.GetBakeUntil(), now)
			}
		}
		add(at, line)
	}
	for _, n := range cur.GetNodes() {
		if _, ok := byWave[n.GetWave()]; ok { // a wave the record does not list
			nodeLine(n)
		}
	}
	if w := cur.GetWaitingFor(); w != "" && w != prev.GetWaitingFor() {
		add("", "rollout waiting for "+w)
	}
	if cur.GetState() != prev.GetState() || cur.GetReason() != prev.GetReason() {
		line, at := "rollout "+stateWithReason(cur), cur.GetUpdatedAt()
		if state.RolloutOver(cur.GetState()) {
			line += ": " + countsLine(cur.GetCounts())
			at = cmp.Or(cur.GetFinishedAt(), at)
		}
		add(at, line)
	}
	return lines
}

// when parses an RFC 3339 time from a record, or gives now for an empty
// or unreadable one.
func when(ts string, now time.Time) time.Time {
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return now
	}
	return t
}

// watchStamp renders a watch line's time in now's location: the time of
// day, with the date in front when it is not today's.
func watchStamp(t, now time.Time) string {
	t = t.In(now.Location())
	if y, m, d := t.Date(); y != now.Year() || m != now.Month() || d != now.Day() {
		return t.Format("2006-01-02 15:04:05")
	}
	return t.Format("15:04:05")
}
