package rollout

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-ops/cairn/controller/auditlog"
	"github.com/cairn-ops/cairn/controller/cms"
	ctlrelease "github.com/cairn-ops/cairn/controller/release"
	"github.com/cairn-ops/cairn/controller/store"
	"github.com/cairn-ops/cairn/internal/manifest"
	"github.com/cairn-ops/cairn/internal/stamp"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// prepared is a validated rollout request: the parsed spec, its nodes in
// order, divided into waves, and the approved release.
type prepared struct {
	params *Params
	nodes  []*controllerv1.NodeRecord
	waves  [][]*controllerv1.NodeRecord
	rel    *releaseInfo
}

// prepare checks spec and resolves everything a plan or a start needs.
func (e *Engine) prepare(ctx context.Context, spec *controllerv1.RolloutSpec) (*prepared, error) {
	if spec == nil {
		return nil, fmt.Errorf("%w: no rollout spec", ErrInvalid)
	}
	if ref := spec.GetRelease(); ref.GetName() == "" || ref.GetVersion() == "" {
		return nil, fmt.Errorf("%w: release %q: name the release as NAME@VERSION", ErrInvalid, refString(ref))
	}
	nodes, err := e.selectNodes(ctx, spec)
	if err != nil {
		return nil, err
	}
	params, err := Normalize(spec, len(nodes))
	if err != nil {
		return nil, err
	}
	rel, err := e.approvedRelease(ctx, spec.GetRelease())
	if err != nil {
		return nil, err
	}
	pr := &prepared{params: params, nodes: nodes, rel: rel}
	done := 0
	for _, upto := range params.Waves {
		pr.waves = append(pr.waves, nodes[done:upto])
		done = upto
	}
	return pr, nil
}

// selectNodes returns the nodes spec names, without revoked ones, by
// hostname, then ID.
func (e *Engine) selectNodes(ctx context.Context, spec *controllerv1.RolloutSpec) ([]*controllerv1.NodeRecord, error) {
	sel, svc := spec.GetSelector(), spec.GetService()
	switch {
	case len(sel) > 0 && svc != "":
		return nil, fmt.Errorf("%w: selector and service: give a selector or a service, not both", ErrInvalid)
	case len(sel) == 0 && svc == "":
		return nil, fmt.Errorf("%w: selector: name the nodes with a selector (k=v) or a service", ErrInvalid)
	}
	for k := range sel {
		if k == "" {
			return nil, fmt.Errorf("%w: selector: a label name is empty", ErrInvalid)
		}
	}
	var nodes []*controllerv1.NodeRecord
	what := "selector " + formatSelector(sel)
	err := e.cfg.Store.View(ctx, func(tx store.Tx) error {
		if svc != "" {
			s, err := tx.Service(svc)
			if err != nil {
				return fmt.Errorf("service %s: %w", svc, err)
			}
			sel = s.GetSelector()
			what = fmt.Sprintf("service %s (selector %s)", svc, formatSelector(sel))
		}
		all, err := tx.Nodes()
		if err != nil {
			return err
		}
		nodes = cms.Select(all, sel, false)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("%w: no node that is not revoked matches %s", ErrNoNodes, what)
	}
	slices.SortFunc(nodes, func(a, b *controllerv1.NodeRecord) int {
		return cmp.Or(cmp.Compare(a.GetHostname(), b.GetHostname()), cmp.Compare(a.GetId(), b.GetId()))
	})
	return nodes, nil
}

func formatSelector(sel map[string]string) string {
	parts := make([]string, 0, len(sel))
	for k, v := range sel {
		parts = append(parts, k+"="+v)
	}
	slices.Sort(parts)
	if len(parts) == 0 {
		return "(every node)"
	}
	return strings.Join(parts, ",")
}

// Plan computes the plan of spec without creating a rollout: the waves,
// each node's connection, drift from its CMS baseline and matching known
// errors, and (unless spec.skip_dry_run) every connected node's dry run
// of the release, waited for up to Config.PlanTimeout.
func (e *Engine) Plan(ctx context.Context, actor string, spec *controllerv1.RolloutSpec) (*controllerv1.RolloutPlan, error) {
	pr, err := e.prepare(ctx, spec)
	if err != nil {
		return nil, err
	}
	now := e.cfg.Now()
	plan := &controllerv1.RolloutPlan{
		Spec:          pr.params.Spec,
		ReleaseDigest: pr.rel.rec.GetDigest(),
		MaxParallel:   uint32(pr.params.MaxParallel),
	}
	var nps []*controllerv1.NodePlan
	for i, w := range pr.waves {
		pw := &controllerv1.PlannedWave{
			Index:       uint32(i + 1),
			MaxFailures: uint32(pr.params.WaveMaxFailures(len(w))),
			GateAfter:   pr.params.gate(i + 1),
			Bake:        pr.params.Spec.GetBake(),
		}
		for _, n := range w {
			pw.NodeIds = append(pw.NodeIds, n.GetId())
			nps = append(nps, &controllerv1.NodePlan{
				NodeId:    n.GetId(),
				Hostname:  n.GetHostname(),
				Wave:      uint32(i + 1),
				Connected: e.cfg.Fleet != nil && e.cfg.Fleet.IsConnected(n.GetId()),
			})
		}
		plan.Waves = append(plan.Waves, pw)
	}
	plan.Nodes = nps

	if e.cfg.Blobs != nil {
		drift, err := cms.Drift(ctx, e.cfg.Store, e.cfg.Blobs, pr.nodes)
		if err != nil {
			return nil, fmt.Errorf("drift pre-check: %w", err)
		}
		for i, d := range drift {
			nps[i].HasBaseline = d.GetHasBaseline()
			nps[i].DriftChanges = d.GetChanges()
			nps[i].DriftSummary = d.GetSummary()
			nps[i].DriftPathsNotCompared = d.GetPathsNotCompared()
		}
	}

	audits := map[string]*inventoryv1.Audit{}
	latest := func(id string) *inventoryv1.Audit {
		a, ok := audits[id]
		if !ok {
			var err error
			if a, err = e.latestAudit(ctx, id); err != nil {
				e.log.Warn("read latest audit for the plan", "node_id", id, "err", err)
			}
			audits[id] = a
		}
		return a
	}
	if hasSignatures(pr.rel.manifest.KnownErrors) {
		for _, np := range nps {
			np.KnownErrors = matchKnownErrors(pr.rel.manifest.KnownErrors, latest(np.GetNodeId()))
		}
	}

	var reports map[string]*agentv1.PlanReport
	if !pr.params.Spec.GetSkipDryRun() {
		if reports, err = e.dryRun(ctx, actor, pr.rel, nps); err != nil {
			return nil, err
		}
	}
	plan.Summary = summarize(nps, reports, pr.rel.expect, latest)
	if w := pr.params.Window; w != nil {
		local := now.In(e.cfg.Location)
		if w.Open(local) {
			plan.NextWindow = "now"
		} else {
			plan.NextWindow = w.Next(local).Format(time.RFC3339)
		}
	}
	plan.Warnings = warnings(pr, nps, plan.GetNextWindow())
	err = e.cfg.Store.View(ctx, func(tx store.Tx) error {
		ids := make([]string, len(pr.nodes))
		for i, n := range pr.nodes {
			ids[i] = n.GetId()
		}
		busy, err := overlap(tx, ids, "")
		if busy != "" {
			plan.Warnings = append(plan.Warnings, busy+"; starting this rollout is refused until it ends")
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("check other rollouts: %w", err)
	}
	return plan, nil
}

func hasSignatures(kes []manifest.KnownError) bool {
	for _, ke := range kes {
		if ke.Signature != nil {
			return true
		}
	}
	return false
}

// dryRun sends every connected node a deploy command with action plan,
// waits for the answers up to PlanTimeout, and fills in the nodes'
// dry-run fields. Commands left unanswered are marked failed so that a
// node connecting later does not run a stale dry run. It returns the
// decoded reports by node ID.
func (e *Engine) dryRun(ctx context.Context, actor string, rel *releaseInfo, nps []*controllerv1.NodePlan) (map[string]*agentv1.PlanReport, error) {
	now := e.cfg.Now()
	cmds := map[string]*controllerv1.CommandRecord{}
	var order []string
	for _, np := range nps {
		if !np.GetConnected() {
			np.DryRunError = "not connected"
			continue
		}
		id := newID("cmd_", 8)
		cmds[np.GetNodeId()] = &controllerv1.CommandRecord{
			Id:        id,
			NodeId:    np.GetNodeId(),
			Kind:      controllerv1.CommandKindDeploy,
			State:     controllerv1.CommandRecord_STATE_PENDING,
			CreatedBy: actor,
			CreatedAt: stamp.Format(now),
			UpdatedAt: stamp.Format(now),
			Deploy:    rel.deployCommand("", agentv1.ActionPlan),
		}
		order = append(order, np.GetNodeId())
	}
	if len(cmds) == 0 {
		return nil, nil
	}
	err := e.cfg.Store.Update(ctx, func(tx store.Tx) error {
		for _, id := range order {
			if err := tx.PutCommand(cmds[id]); err != nil {
				return fmt.Errorf("store dry-run command for node %s: %w", id, err)
			}
		}
		_, err := auditlog.Append(tx, now, actor, "rollout.plan", ctlrelease.Object(rel.rec.GetName(), rel.rec.GetVersion()), map[string]string{
			"nodes":    strconv.Itoa(len(nps)),
			"dry_runs": strconv.Itoa(len(order)),
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	woken, stop := e.commandWaiter()
	defer stop()
	for _, id := range order {
		e.cfg.Fleet.Notify(id)
	}

	deadline := time.NewTimer(e.cfg.PlanTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(e.cfg.Tick)
	defer tick.Stop()
	results := map[string]*controllerv1.CommandRecord{}
wait:
	for {
		err := e.cfg.Store.View(ctx, func(tx store.Tx) error {
			for _, id := range order {
				if results[id] != nil {
					continue
				}
				c, err := tx.Command(cmds[id].GetId())
				if err != nil {
					return fmt.Errorf("dry-run command %s: %w", cmds[id].GetId(), err)
				}
				if finished(c) {
					results[id] = c
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(results) == len(order) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			break wait
		case <-woken:
		case <-tick.C:
		}
	}
	if err := e.expireDryRuns(ctx, order, cmds, results); err != nil {
		return nil, err
	}

	reports := map[string]*agentv1.PlanReport{}
	for _, np := range nps {
		c := results[np.GetNodeId()]
		switch {
		case c != nil:
			reports[np.GetNodeId()] = fillDryRun(np, c)
		case cmds[np.GetNodeId()] != nil:
			np.DryRunError = fmt.Sprintf("no answer within %s", e.cfg.PlanTimeout)
		}
	}
	return reports, nil
}

// expireDryRuns marks the dry-run commands that got no answer failed.
func (e *Engine) expireDryRuns(ctx context.Context, order []string, cmds, results map[string]*controllerv1.CommandRecord) error {
	var late []string
	for _, id := range order {
		if results[id] == nil {
			late = append(late, cmds[id].GetId())
		}
	}
	if len(late) == 0 {
		return nil
	}
	now := e.cfg.Now()
	return e.cfg.Store.Update(ctx, func(tx store.Tx) error {
		for _, id := range late {
			c, err := tx.Command(id)
			if err != nil {
				return fmt.Errorf("dry-run command %s: %w", id, err)
			}
			if finished(c) {
				continue
			}
			c.State = controllerv1.CommandRecord_STATE_FAILED
			c.Error = fmt.Sprintf("dry run expired: no answer within %s", e.cfg.PlanTimeout)
			c.UpdatedAt = stamp.Format(now)
			if err := tx.PutCommand(c); err != nil {
				return fmt.Errorf("expire dry-run command %s: %w", id, err)
			}
		}
		return nil
	})
}

// fillDryRun records a node's answered dry run in its plan.
func fillDryRun(np *controllerv1.NodePlan, c *controllerv1.CommandRecord) *agentv1.PlanReport {
	np.DryRunDone = true
	rep := c.GetPlanReport()
	ok := c.GetState() == controllerv1.CommandRecord_STATE_SUCCEEDED && rep != nil && rep.OK()
	np.DryRunOk = ok
	if !ok {
		msg := joinErr(append([]string{c.GetError()}, rep.Problems()...)...)
		if msg == "" {
			msg = "the dry run failed"
		}
		np.DryRunError = msg
	}
	if rep == nil {
		return nil
	}
	index := map[string]int{}
	for _, s := range rep.GetSteps() {
		i := index[s.GetList()]
		index[s.GetList()]++
		if s.GetWouldChange() {
			np.WouldChange = true
		}
		for _, a := range s.GetActions() {
			np.Actions = append(np.Actions, fmt.Sprintf("%s[%d] %s: %s", s.GetList(), i, s.GetName(), a))
		}
		for _, ch := range s.GetChanges() {
			np.Changes = append(np.Changes, ch.Text())
		}
	}
	return rep
}

// summarize is the plan's one line: the package versions that change
// (old versions from the nodes' latest audits, new ones from the dry
// runs' declared changes, else from the release's expectations) and how
// many files change over all nodes; else how many nodes would change.
func summarize(nps []*controllerv1.NodePlan, reports map[string]*agentv1.PlanReport, exp manifest.Expect, latest func(string) *inventoryv1.Audit) string {
	head := plural(len(nps), "node", "nodes")
	type pkg struct{ old, new map[string]bool }
	pkgs := map[string]*pkg{}
	var names []string
	note := func(name, old, new string) {
		p := pkgs[name]
		if p == nil {
			p = &pkg{old: map[string]bool{}, new: map[string]bool{}}
			pkgs[name] = p
			names = append(names, name)
		}
		p.old[old] = true
		p.new[new] = true
	}
	installed := func(a *inventoryv1.Audit, name string) string {
		for _, q := range a.GetPackages().GetPackages() {
			if q.GetName() == name {
				return q.GetVersion()
			}
		}
		return ""
	}
	files, changing, answered := 0, 0, 0
	for _, np := range nps {
		rep := reports[np.GetNodeId()]
		if rep == nil {
			continue
		}
		answered++
		if np.GetWouldChange() {
			changing++
		}
		for _, s := range rep.GetSteps() {
			for _, c := range s.GetChanges() {
				switch c.GetKind() {
				case "package":
					new := c.GetVersion()
					if c.GetState() == manifest.StateAbsent {
						new = "removed"
					}
					note(c.GetName(), installed(latest(np.GetNodeId()), c.GetName()), new)
				case "file":
					files++
				}
			}
		}
	}
	if answered == 0 {
		for _, p := range exp.Packages {
			new := strings.TrimSpace(strings.TrimLeft(p.Version, "="))
			if p.State == manifest.StateAbsent {
				new = "removed"
			}
			for _, np := range nps {
				note(p.Name, installed(latest(np.GetNodeId()), p.Name), new)
			}
		}
	}
	var parts []string
	for _, name := range names {
		p := pkgs[name]
		olds, news := keys(p.old), keys(p.new)
		if len(olds) == 1 && len(news) == 1 && olds[0] == news[0] {
			continue // already at that version everywhere
		}
		for i, o := range olds {
			if o == "" {
				olds[i] = "(not installed)"
			}
		}
		for i, n := range news {
			if n == "" {
				news[i] = "(any version)"
			}
		}
		parts = append(parts, fmt.Sprintf("%s %s → %s", name, strings.Join(olds, ", "), strings.Join(news, ", ")))
	}
	if files > 0 {
		parts = append(parts, plural(files, "file", "files")+" changed")
	}
	switch {
	case len(parts) > 0:
		return head + ": " + strings.Join(parts, "; ")
	case answered > 0:
		return fmt.Sprintf("%s: %d would change, %d unchanged", head, changing, answered-changing)
	}
	return head + ": no dry run"
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// warnings lists what an operator should know before starting.
func warnings(pr *prepared, nps []*controllerv1.NodePlan, nextWindow string) []string {
	const limit = 10
	var out []string
	var disconnected, drifted, unbaselined, failed []string
	matches := map[string][]string{}
	var kes []string
	for _, np := range nps {
		name := np.GetHostname()
		if name == "" {
			name = np.GetNodeId()
		}
		if !np.GetConnected() {
			disconnected = append(disconnected, name)
		}
		switch {
		case !np.GetHasBaseline():
			unbaselined = append(unbaselined, name)
		case np.GetDriftChanges() > 0:
			drifted = append(drifted, fmt.Sprintf("%s (%s)", name, plural(int(np.GetDriftChanges()), "change", "changes")))
		}
		if np.GetDryRunDone() && !np.GetDryRunOk() {
			failed = append(failed, fmt.Sprintf("%s: %s", name, np.GetDryRunError()))
		}
		for _, ke := range np.GetKnownErrors() {
			if matches[ke] == nil {
				kes = append(kes, ke)
			}
			matches[ke] = append(matches[ke], name)
		}
	}
	if len(disconnected) > 0 {
		out = append(out, fmt.Sprintf("%s not connected: %s", plural(len(disconnected), "node is", "nodes are"), nameList(disconnected, limit)))
	}
	if len(drifted) > 0 {
		what := "drift blocks their deployment (on_drift block)"
		if pr.params.OnDrift == OnDriftIgnore {
			what = "reported only (on_drift ignore)"
		}
		out = append(out, fmt.Sprintf("%s drifted from the CMS baseline, %s: %s", plural(len(drifted), "node has", "nodes have"), what, nameList(drifted, limit)))
	}
	if len(unbaselined) > 0 {
		out = append(out, fmt.Sprintf("%s no CMS baseline to check drift against: %s", plural(len(unbaselined), "node has", "nodes have"), nameList(unbaselined, limit)))
	}
	for _, ke := range kes {
		out = append(out, fmt.Sprintf("known error %s matches %s", ke, nameList(matches[ke], limit)))
	}
	for i, f := range failed {
		if i == limit {
			out = append(out, fmt.Sprintf("the dry run failed on %d more nodes", len(failed)-limit))
			break
		}
		out = append(out, "dry run failed on "+f)
	}
	if w := pr.params.Window; w != nil && nextWindow != "now" {
		out = append(out, fmt.Sprintf("the window %q is closed now; it opens at %s", w.String(), nextWindow))
	}
	return out
}
