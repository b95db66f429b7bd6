package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-ops/cairn/agent/apply"
	"github.com/cairn-ops/cairn/agent/inventory"
	"github.com/cairn-ops/cairn/internal/audit"
	"github.com/cairn-ops/cairn/internal/manifest"
	agentv1 "github.com/cairn-ops/cairn/proto/agent/v1"
	inventoryv1 "github.com/cairn-ops/cairn/proto/inventory/v1"
)

// The simulated host's states: as enrolled, and with the release applied.
const (
	stateBefore = "before"
	stateAfter  = "after"
)

// fixture is the host every simulated agent of a rollout benchmark
// pretends to be, in its two states: two real directory trees (the
// debian-a software fixture with the host-a hardware fixture, and a copy
// with the release's changes made), audited by the real collectors. An
// agent's audit is the document of its state for the command's collectors
// and tracked files, with the agent's hostname, node ID and time, sealed.
type fixture struct {
	roots map[string]string // state → directory

	mu   sync.Mutex
	docs map[string]*inventoryv1.Audit // by state, collectors and track
}

// newFixture builds the two trees under dir: the "after" tree is the
// "before" tree with m's changes made (see applyRelease).
func newFixture(ctx context.Context, repo, dir string, m *manifest.Manifest) (*fixture, error) {
	f := &fixture{roots: map[string]string{}, docs: map[string]*inventoryv1.Audit{}}
	for _, st := range []string{stateBefore, stateAfter} {
		root := filepath.Join(dir, st)
		if err := os.MkdirAll(root, 0o755); err != nil {
			return nil, err
		}
		// cp -a keeps the fixture's modes and symlinks exactly.
		if out, err := exec.CommandContext(ctx, "cp", "-a", filepath.Join(repo, "agent/collector/testdata/sw/debian-a")+"/.", root).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("copy the software fixture: %w: %s", err, out)
		}
		if err := os.RemoveAll(filepath.Join(root, "sys")); err != nil {
			return nil, err
		}
		if out, err := exec.CommandContext(ctx, "tar", "-xpzf", filepath.Join(repo, "agent/collector/testdata/hw/host-a.tar.gz"), "-C", root).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("unpack the hardware fixture: %w: %s", err, out)
		}
		f.roots[st] = root
	}
	if err := applyRelease(f.roots[stateAfter], m); err != nil {
		return nil, fmt.Errorf("make the after-state of %s@%s: %w", m.Name, m.Version, err)
	}
	return f, nil
}

// applyRelease makes in root what m declares: the content of its file
// steps (inline content only) and the versions of its expected packages
// (dpkg status). It is the simulated deployment's effect, so the
// post-audit differs from the pre-audit by exactly the declared changes.
func applyRelease(root string, m *manifest.Manifest) error {
	for _, st := range m.Steps {
		if st.Plugin != "file" {
			continue
		}
		p, _ := st.Params["path"].(string)
		content, ok := st.Params["content"].(string)
		if p == "" || !ok {
			return fmt.Errorf("step %s: the simulation writes only files with inline content", st.Ref())
		}
		path := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return err
		}
	}
	status := filepath.Join(root, "var/lib/dpkg/status")
	data, err := os.ReadFile(status)
	if err != nil {
		return err
	}
	for _, pe := range m.Expect.Packages {
		v := strings.TrimSpace(strings.TrimLeft(pe.Version, "<>=! "))
		if v == "" {
			continue
		}
		re := regexp.MustCompile(`(?m)^(Package: ` + regexp.QuoteMeta(pe.Name) + `\n(?:[^\n]+\n)*?Version: )[^\n]*`)
		if !re.Match(data) {
			return fmt.Errorf("package %s is not in the fixture's dpkg status", pe.Name)
		}
		data = re.ReplaceAll(data, []byte("${1}"+v))
	}
	return os.WriteFile(status, data, 0o644)
}

// document returns the audit of state for collectors and track, taking
// it with the real collectors the first time.
func (f *fixture) document(ctx context.Context, state string, collectors, track []string) (*inventoryv1.Audit, error) {
	key := state + "|" + strings.Join(collectors, ",") + "|" + strings.Join(track, "\x00")
	f.mu.Lock()
	defer f.mu.Unlock()
	if doc, ok := f.docs[key]; ok {
		return doc, nil
	}
	doc, err := inventory.Collect(ctx, inventory.Options{
		Root:         f.roots[state],
		Collectors:   collectors,
		Track:        track,
		AgentVersion: agentVersion,
	})
	if err != nil {
		return nil, fmt.Errorf("audit the %s fixture: %w", state, err)
	}
	if failed := audit.Failed(doc); len(failed) > 0 {
		return nil, fmt.Errorf("audit the %s fixture: collectors failed: %v", state, failed)
	}
	f.docs[key] = doc
	return doc, nil
}

// auditFor returns the agent's sealed audit for cmd in its current state.
func (a *simAgent) auditFor(ctx context.Context, cmd *agentv1.AuditCommand) ([]byte, error) {
	if a.fix == nil {
		return a.audit, nil
	}
	t0 := time.Now()
	base, err := a.fix.document(ctx, a.state, cmd.GetCollectors(), cmd.GetTrack())
	if err != nil {
		return nil, err
	}
	doc := proto.Clone(base).(*inventoryv1.Audit)
	if doc.Os == nil {
		doc.Os = &inventoryv1.OS{}
	}
	doc.Os.Hostname = a.hostname
	if doc.Header == nil {
		doc.Header = &inventoryv1.Header{}
	}
	doc.Header.NodeId = a.nodeID
	doc.Header.CollectedAt = t0.UTC().Format(time.RFC3339)
	if err := audit.Seal(doc); err != nil {
		return nil, err
	}
	return audit.Marshal(doc)
}

// deploy simulates cairn-agent's handling of a deploy command: it fetches
// the listed artifacts from the DML (verifying each digest), then reports
// every step of the manifest as changed, in an ApplyReport (or a
// PlanReport for a dry run), and moves the agent to the state the action
// leaves behind.
func (a *simAgent) deploy(ctx context.Context, client agentv1.AgentClient, cmd *agentv1.DeployCommand) (*agentv1.CommandResult, error) {
	r := &agentv1.CommandResult{}
	m, err := manifest.Parse(cmd.GetManifestYaml(), cmd.GetManifestFile())
	if err != nil {
		r.Error = err.Error()
		return r, nil
	}
	root := "/"
	id := apply.DeploymentID(m, root)
	release := m.Name + "@" + m.Version
	t0 := time.Now()

	if cmd.GetAction() == agentv1.ActionPlan {
		rep := &agentv1.PlanReport{DeploymentId: id, Release: release, Root: root}
		for _, list := range m.Lists() {
			for _, st := range list {
				rep.Steps = append(rep.Steps, &agentv1.StepPlan{
					List: st.List, Name: st.Name, Plugin: st.Plugin, Line: int32(st.Line),
					WouldChange: st.List == manifest.ListSteps, Changes: simChanges(st),
				})
			}
		}
		r.Ok = true
		r.Report = &agentv1.CommandResult_PlanReport{PlanReport: rep}
		return r, nil
	}

	for _, art := range cmd.GetArtifacts() {
		if err := a.fetch(ctx, client, art); err != nil {
			if ctx.Err() != nil || isTransient(err) {
				return nil, err // the command comes again on the next session
			}
			r.Error = err.Error()
			return r, nil
		}
	}
	rep := &agentv1.ApplyReport{DeploymentId: id, Release: release, Root: root, State: agentv1.StateSucceeded}
	switch cmd.GetAction() {
	case agentv1.ActionApply:
		for _, st := range m.Steps {
			rep.Steps = append(rep.Steps, &agentv1.StepResult{
				List: st.List, Name: st.Name, Plugin: st.Plugin, Outcome: agentv1.OutcomeChanged,
				Attempts: 1, Changes: simChanges(st),
			})
		}
		for _, st := range m.Verify {
			rep.Steps = append(rep.Steps, &agentv1.StepResult{List: st.List, Name: st.Name, Plugin: st.Plugin, Outcome: agentv1.OutcomePassed})
		}
		a.state = stateAfter
	case agentv1.ActionRollback:
		for i := len(m.Steps) - 1; i >= 0; i-- {
			st := m.Steps[i]
			rep.Steps = append(rep.Steps, &agentv1.StepResult{List: agentv1.ListUndo, Name: st.Name, Plugin: st.Plugin, Outcome: agentv1.OutcomeRolledBack})
		}
		for _, st := range m.Rollback {
			rep.Steps = append(rep.Steps, &agentv1.StepResult{List: st.List, Name: st.Name, Plugin: st.Plugin, Outcome: agentv1.OutcomeChanged})
		}
		rep.State = agentv1.StateRolledBack
		a.state = stateBefore
	default:
		r.Error = fmt.Sprintf("unknown deploy action %q", cmd.GetAction())
		return r, nil
	}
	rep.Duration = time.Since(t0).Nanoseconds()
	r.Ok = true
	r.Report = &agentv1.CommandResult_ApplyReport{ApplyReport: rep}
	return r, nil
}

// simChanges is what the step's plugin would declare: the file steps'
// files.
func simChanges(st manifest.Step) []*agentv1.Change {
	if st.Plugin != "file" {
		return nil
	}
	p, _ := st.Params["path"].(string)
	c, _ := st.Params["content"].(string)
	sum := sha256.Sum256([]byte(c))
	return []*agentv1.Change{{Kind: "file", Name: p, State: "present", Sha256: hex.EncodeToString(sum[:])}}
}

// fetch downloads one artifact with FetchArtifact and checks its digest.
// The content is discarded: the simulated agent only pays the transfer.
func (a *simAgent) fetch(ctx context.Context, client agentv1.AgentClient, art *agentv1.ArtifactRef) error {
	stream, err := client.FetchArtifact(ctx, &agentv1.FetchArtifactRequest{Digest: art.GetDigest()})
	if err != nil {
		return fmt.Errorf("fetch %s: %w", art.GetComponent(), err)
	}
	h := sha256.New()
	var n int64
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("fetch %s: %w", art.GetComponent(), err)
		}
		h.Write(chunk.GetData())
		n += int64(len(chunk.GetData()))
	}
	a.c.fetchedBytes.Add(n)
	if got := hex.EncodeToString(h.Sum(nil)); got != art.GetDigest() {
		return fmt.Errorf("fetch %s: got sha256 %s, want %s", art.GetComponent(), got, art.GetDigest())
	}
	return nil
}

// isTransient reports whether err is the connection's, not the command's.
func isTransient(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.Canceled, codes.DeadlineExceeded, codes.Aborted:
		return true
	}
	return false
}
