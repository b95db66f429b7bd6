package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Targets from the issue, stated for 1,000 agents. Time targets are
// scaled linearly for other fleet sizes.
const (
	targetPerAgent  = 100_000 // bytes of controller memory per idle agent
	targetAudit     = 10 * time.Second
	targetReconnect = 30 * time.Second
	targetFleet     = 1000
)

// printSummary writes one table row per measurement and fleet size, with
// the target and whether it was met.
func printSummary(w io.Writer, results []*result) {
	if len(results) == 0 {
		return
	}
	fmt.Fprintln(w, "\n=== Summary ===")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "N\tmeasurement\tvalue\ttarget\t")
	for _, r := range results {
		scale := max(1, float64(r.n)/targetFleet)
		row := func(what, value, target string, met bool) {
			verdict := ""
			if target != "" && !met {
				verdict = "MISSED"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", r.n, what, value, target, verdict)
		}
		row("enroll all", dur(r.enroll), "", true)
		row("connect all", dur(r.connect), "", true)
		row("controller RSS at start", mib(r.memStart.rss), "", true)
		row("controller RSS enrolled, no sessions", mib(r.memEnrolled.rss), "", true)
		row("controller RSS all connected, idle", fmt.Sprintf("%s (anon %s, file %s)", mib(r.memIdle.rss), mib(r.memIdle.anon), mib(r.memIdle.file)), "", true)
		row("RSS per connected idle agent", kib(r.perAgent()), "≤ 100 KB", r.perAgent() <= targetPerAgent)
		at := time.Duration(float64(targetAudit) * scale)
		row("audit all (RunAudit → all results acked)", dur(r.audit), "≤ "+dur(at)+scaled(r.n), r.audit > 0 && r.audit <= at)
		row("audit commands succeeded / nodes with audit", fmt.Sprintf("%d / %d", r.auditSucceeded, r.auditNodes), fmt.Sprint(r.n), r.auditSucceeded == r.n && r.auditNodes == r.n)
		row("controller stop after SIGTERM", dur(r.stop), "", true)
		rt := time.Duration(float64(targetReconnect) * scale)
		row("reconnect all after restart", dur(r.reconnect), "≤ "+dur(rt)+scaled(r.n), r.reconnect > 0 && r.reconnect <= rt)
		row("agents failed to reconnect", fmt.Sprint(r.reconnectFailed), "0", r.reconnectFailed == 0)
		row("agent session errors / upload errors", fmt.Sprintf("%d / %d", r.sessionErrors, r.uploadErrors), "", true)
		row("controller log warnings+errors", fmt.Sprint(r.logProblems), "", true)
	}
	tw.Flush()
}

func scaled(n int) string {
	if n <= targetFleet {
		return ""
	}
	return fmt.Sprintf(" (scaled from N=%d)", targetFleet)
}

func dur(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.Round(time.Millisecond).String()
}

// printRolloutSummary writes one table row per measurement of each
// rollout benchmark.
func printRolloutSummary(w io.Writer, results []*rolloutResult) {
	if len(results) == 0 {
		return
	}
	fmt.Fprintln(w, "\n=== Rollout summary ===")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "N\tmeasurement\tvalue\t")
	for _, r := range results {
		row := func(what, value string) { fmt.Fprintf(tw, "%d\t%s\t%s\t\n", r.n, what, value) }
		row("enroll / connect all (setup)", dur(r.enroll)+" / "+dur(r.connect))
		row("baseline audit + accept all (setup)", dur(r.baseline))
		if r.spec != nil {
			row("rollout spec", fmt.Sprintf("strategy %s, waves %s, max parallel %s, max failures %s",
				r.spec.GetStrategy(), strings.Join(r.spec.GetWaves(), ","), r.spec.GetMaxParallel(), r.spec.GetMaxFailures()))
		}
		row("rollout outcome", r.state+": "+countsLine(r.counts))
		row("rollout total (StartRollout → final state seen)", dur(r.total))
		row("rollout total (controller created → finished)", dur(r.ctlTotal))
		for i, wt := range r.waves {
			row(fmt.Sprintf("  wave %d (%d nodes)", i+1, wt.nodes), dur(wt.took))
		}
		row("node duration median / max", dur(r.nodeP50)+" / "+dur(r.nodeMax))
		row("CPU time during the rollout: controller / load generator", fmt.Sprintf("%s / %s (%d cores)",
			r.ctlCPU.Round(10*time.Millisecond), r.genCPU.Round(10*time.Millisecond), runtime.NumCPU()))
		row("passed nodes with a stored comparison", fmt.Sprint(r.compared))
		row("deploy commands run by the agents", fmt.Sprint(r.deploys))
		row("controller RSS all connected, idle", mib(r.memConnected.rss))
		row("controller RSS before rollout (after the baselines)", mib(r.memIdle.rss))
		row("controller RSS peak during rollout (sampled)", mib(r.memPeak))
		row("controller RSS after rollout", fmt.Sprintf("%s (anon %s)", mib(r.memAfter.rss), mib(r.memAfter.anon)))
		row("ListRollouts polls / slowest", fmt.Sprintf("%d / %s", r.polls, dur(r.slowPoll)))
		row("agent session errors / controller log warnings+errors", fmt.Sprintf("%d / %d", r.sessErrs, r.logIssues))
	}
	tw.Flush()
}
