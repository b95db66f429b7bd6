package api

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/controller/report"
	"github.com/cairn-ops/cairn/controller/rollout"
	"github.com/cairn-ops/cairn/controller/rollout/state"
	"github.com/cairn-ops/cairn/internal/limits"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// RolloutEngine is what the Rollouts service needs from
// controller/rollout.
type RolloutEngine interface {
	Plan(ctx context.Context, actor string, spec *controllerv1.RolloutSpec) (*controllerv1.RolloutPlan, error)
	Start(ctx context.Context, actor string, spec *controllerv1.RolloutSpec) (*controllerv1.RolloutRecord, error)
	Get(ctx context.Context, id string) (*controllerv1.RolloutRecord, error)
	List(ctx context.Context, release string) ([]*controllerv1.RolloutRecord, error)
	Pause(ctx context.Context, actor, id, note string) (*controllerv1.RolloutRecord, error)
	Resume(ctx context.Context, actor, id, note string) (*controllerv1.RolloutRecord, error)
	Abort(ctx context.Context, actor, id, note string) (*controllerv1.RolloutRecord, error)
	Rollback(ctx context.Context, actor, id, note string) (*controllerv1.RolloutRecord, error)
	Confirm(ctx context.Context, actor, id, node, step, note string) (*controllerv1.RolloutRecord, error)
	Retry(ctx context.Context, actor, id, node, note string) (*controllerv1.RolloutRecord, error)
	Resolve(ctx context.Context, actor, id, node, note string) (*controllerv1.RolloutRecord, error)
	Subscribe(id string) (<-chan struct{}, func())
}

var _ RolloutEngine = (*rollout.Engine)(nil)

// Reports renders the reports on rollouts and confirms the ones it
// issued (controller/report).
type Reports interface {
	Issue(ctx context.Context, actor, id, format string) (*report.Issued, error)
	Confirm(ctx context.Context, digest string) (*controllerv1.IssuedReport, error)
}

var _ Reports = (*report.Service)(nil)

// watchEnds reports whether a watch of rec is over: the rollout is over
// and none of its nodes is in flight (state.Settled).
func watchEnds(rec *controllerv1.RolloutRecord) bool {
	return state.Settled(rec)
}

// defaultReportFormat is RolloutReport's format when the request names none.
const defaultReportFormat = "text"

// rollouts serves rollouts (controller/rollout) to operators.
type rollouts struct {
	controllerv1.UnimplementedRolloutsServer
	*base
}

// errRolloutsDisabled answers every call when the controller runs no
// rollout engine.
var errRolloutsDisabled = status.Error(codes.Unavailable, "rollouts are not enabled")

// engine returns the rollout engine, or Unavailable without one.
func (s *rollouts) engine() (RolloutEngine, error) {
	if s.Rollouts == nil {
		return nil, errRolloutsDisabled
	}
	return s.Rollouts, nil
}

// rolloutError maps the engine's errors to gRPC codes (see rpcError).
func (s *rollouts) rolloutError(method string, err error) error {
	return s.rpcError(method, err)
}

// checkRolloutSpec checks the sizes of what a rollout spec carries; the
// engine checks what the values mean (rollout.Normalize).
func checkRolloutSpec(spec *controllerv1.RolloutSpec) error {
	if spec.GetRelease() != nil {
		if err := checkRef(spec.GetRelease()); err != nil {
			return err
		}
	}
	if err := validateLabels("selector", spec.GetSelector(), false); err != nil {
		return err
	}
	if err := checkOptional("service", limits.ServiceName, spec.GetService()); err != nil {
		return err
	}
	if n := len(spec.GetWaves()); n > limits.Waves {
		return invalid("waves", "%d waves; the limit is %d", n, limits.Waves)
	}
	if n := len(spec.GetGatesAfterWave()); n > limits.Waves {
		return invalid("gates_after_wave", "%d gates; the limit is %d (one per wave)", n, limits.Waves)
	}
	for i, w := range spec.GetWaves() {
		if err := checkText(fmt.Sprintf("waves[%d]", i), limits.Word, w); err != nil {
			return err
		}
	}
	for _, f := range []struct{ name, value string }{
		{"strategy", spec.GetStrategy()}, {"max_parallel", spec.GetMaxParallel()}, {"max_failures", spec.GetMaxFailures()},
		{"unreachable", spec.GetUnreachable()}, {"lost_after", spec.GetLostAfter()}, {"bake", spec.GetBake()}, {"window", spec.GetWindow()},
		{"on_failure", spec.GetOnFailure()}, {"on_drift", spec.GetOnDrift()},
	} {
		if err := checkOptional(f.name, limits.Word, f.value); err != nil {
			return err
		}
	}
	return nil
}

// checkRolloutID checks a rollout ID a request names.
func checkRolloutID(id string) error {
	if id == "" {
		return invalid("id", "required")
	}
	return checkText("id", limits.ObjectID, id)
}

func (s *rollouts) PlanRollout(ctx context.Context, spec *controllerv1.RolloutSpec) (*controllerv1.RolloutPlan, error) {
	eng, err := s.engine()
	if err != nil {
		return nil, err
	}
	if err := checkRolloutSpec(spec); err != nil {
		return nil, s.rolloutError("PlanRollout", err)
	}
	plan, err := eng.Plan(ctx, actor(ctx), spec)
	if err != nil {
		return nil, s.rolloutError("PlanRollout", err)
	}
	return plan, nil
}

func (s *rollouts) StartRollout(ctx context.Context, spec *controllerv1.RolloutSpec) (*controllerv1.RolloutRecord, error) {
	eng, err := s.engine()
	if err != nil {
		return nil, err
	}
	if err := checkRolloutSpec(spec); err != nil {
		return nil, s.rolloutError("StartRollout", err)
	}
	rec, err := eng.Start(ctx, actor(ctx), spec)
	if err != nil {
		return nil, s.rolloutError("StartRollout", err)
	}
	return rec, nil
}

func (s *rollouts) GetRollout(ctx context.Context, req *controllerv1.RolloutRef) (*controllerv1.RolloutRecord, error) {
	eng, err := s.engine()
	if err != nil {
		return nil, err
	}
	if err := checkRolloutID(req.GetId()); err != nil {
		return nil, s.rolloutError("GetRollout", err)
	}
	rec, err := eng.Get(ctx, req.GetId())
	if err != nil {
		return nil, s.rolloutError("GetRollout", err)
	}
	return rec, nil
}

func (s *rollouts) ListRollouts(ctx context.Context, req *controllerv1.ListRolloutsRequest) (*controllerv1.ListRolloutsResponse, error) {
	eng, err := s.engine()
	if err != nil {
		return nil, err
	}
	if err := checkReleaseFilter("release", req.GetRelease()); err != nil {
		return nil, s.rolloutError("ListRollouts", err)
	}
	recs, err := eng.List(ctx, req.GetRelease())
	if err != nil {
		return nil, s.rolloutError("ListRollouts", err)
	}
	return &controllerv1.ListRolloutsResponse{Rollouts: recs}, nil
}

// WatchRollout sends the rollout now and again after every change the
// engine signals, skipping signals that changed neither its revision nor
// a node's state. It ends after sending a final state, or when the
// caller goes away.
func (s *rollouts) WatchRollout(req *controllerv1.RolloutRef, stream grpc.ServerStreamingServer[controllerv1.RolloutRecord]) error {
	eng, err := s.engine()
	if err != nil {
		return err
	}
	id := req.GetId()
	if err := checkRolloutID(id); err != nil {
		return s.rolloutError("WatchRollout", err)
	}
	ctx := stream.Context()
	// Subscribe before the first Get, so that no change between the two
	// goes unseen.
	changes, stop := eng.Subscribe(id)
	defer stop()
	var last *controllerv1.RolloutRecord
	for {
		rec, err := eng.Get(ctx, id)
		if err != nil {
			return s.rolloutError("WatchRollout", err)
		}
		if last == nil || rolloutChanged(last, rec) {
			if err := stream.Send(rec); err != nil {
				return err // the caller went away; gRPC has the status
			}
			last = rec
		}
		if watchEnds(rec) {
			return nil
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case _, ok := <-changes:
			if !ok {
				return status.Error(codes.Unavailable, "the rollout engine stopped: watch again")
			}
		}
	}
}

// rolloutChanged reports whether a watcher should see b after a: a new
// revision, or a node whose state (or the step it waits at) changed.
func rolloutChanged(a, b *controllerv1.RolloutRecord) bool {
	if a.GetRevision() != b.GetRevision() || a.GetState() != b.GetState() || len(a.GetNodes()) != len(b.GetNodes()) {
		return true
	}
	for i, n := range a.GetNodes() {
		m := b.GetNodes()[i]
		if n.GetNodeId() != m.GetNodeId() || n.GetState() != m.GetState() || n.GetWaitingStep() != m.GetWaitingStep() {
			return true
		}
	}
	return false
}

// act runs one of the engine's actions on a rollout for the caller.
func (s *rollouts) act(ctx context.Context, method string, req *controllerv1.RolloutAction,
	do func(e RolloutEngine, ctx context.Context, actor, id, note string) (*controllerv1.RolloutRecord, error)) (*controllerv1.RolloutRecord, error) {
	eng, err := s.engine()
	if err != nil {
		return nil, err
	}
	if err := checkRolloutID(req.GetId()); err != nil {
		return nil, s.rolloutError(method, err)
	}
	if err := checkOptional("note", limits.Note, req.GetNote()); err != nil {
		return nil, s.rolloutError(method, err)
	}
	rec, err := do(eng, ctx, actor(ctx), req.GetId(), req.GetNote())
	if err != nil {
		return nil, s.rolloutError(method, err)
	}
	return rec, nil
}

func (s *rollouts) PauseRollout(ctx context.Context, req *controllerv1.RolloutAction) (*controllerv1.RolloutRecord, error) {
	return s.act(ctx, "PauseRollout", req, RolloutEngine.Pause)
}

func (s *rollouts) ResumeRollout(ctx context.Context, req *controllerv1.RolloutAction) (*controllerv1.RolloutRecord, error) {
	return s.act(ctx, "ResumeRollout", req, RolloutEngine.Resume)
}

func (s *rollouts) AbortRollout(ctx context.Context, req *controllerv1.RolloutAction) (*controllerv1.RolloutRecord, error) {
	return s.act(ctx, "AbortRollout", req, RolloutEngine.Abort)
}

func (s *rollouts) RollbackRollout(ctx context.Context, req *controllerv1.RolloutAction) (*controllerv1.RolloutRecord, error) {
	return s.act(ctx, "RollbackRollout", req, RolloutEngine.Rollback)
}

func (s *rollouts) ConfirmStep(ctx context.Context, req *controllerv1.ConfirmStepRequest) (*controllerv1.RolloutRecord, error) {
	eng, err := s.engine()
	if err != nil {
		return nil, err
	}
	for _, f := range []struct{ name, value string }{
		{"id", req.GetId()}, {"node", req.GetNode()}, {"step", req.GetStep()}, {"note", req.GetNote()},
	} {
		if f.value == "" {
			return nil, s.rolloutError("ConfirmStep", invalid(f.name, "required"))
		}
	}
	for _, err := range []error{
		checkRolloutID(req.GetId()),
		checkText("node", limits.NodeRef, req.GetNode()),
		checkText("step", limits.StepName, req.GetStep()),
		checkText("note", limits.Note, req.GetNote()),
	} {
		if err != nil {
			return nil, s.rolloutError("ConfirmStep", err)
		}
	}
	rec, err := eng.Confirm(ctx, actor(ctx), req.GetId(), req.GetNode(), req.GetStep(), req.GetNote())
	if err != nil {
		return nil, s.rolloutError("ConfirmStep", err)
	}
	return rec, nil
}

// nodeAct runs one of the engine's actions on one node of a rollout for
// the caller; require says whether the note must be given.
func (s *rollouts) nodeAct(ctx context.Context, method string, req *controllerv1.RolloutNodeAction, requireNote bool,
	do func(e RolloutEngine, ctx context.Context, actor, id, node, note string) (*controllerv1.RolloutRecord, error)) (*controllerv1.RolloutRecord, error) {
	eng, err := s.engine()
	if err != nil {
		return nil, err
	}
	required := []struct{ name, value string }{{"id", req.GetId()}, {"node", req.GetNode()}}
	if requireNote {
		required = append(required, struct{ name, value string }{"note", req.GetNote()})
	}
	for _, f := range required {
		if f.value == "" {
			return nil, s.rolloutError(method, invalid(f.name, "required"))
		}
	}
	for _, err := range []error{
		checkRolloutID(req.GetId()),
		checkText("node", limits.NodeRef, req.GetNode()),
		checkOptional("note", limits.Note, req.GetNote()),
	} {
		if err != nil {
			return nil, s.rolloutError(method, err)
		}
	}
	rec, err := do(eng, ctx, actor(ctx), req.GetId(), req.GetNode(), req.GetNote())
	if err != nil {
		return nil, s.rolloutError(method, err)
	}
	return rec, nil
}

func (s *rollouts) RetryRolloutNode(ctx context.Context, req *controllerv1.RolloutNodeAction) (*controllerv1.RolloutRecord, error) {
	return s.nodeAct(ctx, "RetryRolloutNode", req, false, RolloutEngine.Retry)
}

func (s *rollouts) ResolveRolloutNode(ctx context.Context, req *controllerv1.RolloutNodeAction) (*controllerv1.RolloutRecord, error) {
	return s.nodeAct(ctx, "ResolveRolloutNode", req, true, RolloutEngine.Resolve)
}

func (s *rollouts) RolloutReport(ctx context.Context, req *controllerv1.RolloutReportRequest) (*controllerv1.RenderResponse, error) {
	if s.Reports == nil {
		return nil, errRolloutsDisabled
	}
	if err := checkRolloutID(req.GetId()); err != nil {
		return nil, s.rolloutError("RolloutReport", err)
	}
	if err := checkOptional("format", limits.Word, req.GetFormat()); err != nil {
		return nil, s.rolloutError("RolloutReport", err)
	}
	format := req.GetFormat()
	if format == "" {
		format = defaultReportFormat
	}
	rep, err := s.Reports.Issue(ctx, actor(ctx), req.GetId(), format)
	if err != nil {
		return nil, s.rolloutError("RolloutReport", err)
	}
	return &controllerv1.RenderResponse{Content: rep.Content, ContentType: rep.MIME, Digest: rep.Digest}, nil
}

func (s *rollouts) VerifyRolloutReport(ctx context.Context, req *controllerv1.VerifyReportRequest) (*controllerv1.IssuedReport, error) {
	if s.Reports == nil {
		return nil, errRolloutsDisabled
	}
	if req.GetDigest() == "" {
		return nil, s.rolloutError("VerifyRolloutReport", invalid("digest", "required"))
	}
	if err := checkText("digest", limits.Word, req.GetDigest()); err != nil {
		return nil, s.rolloutError("VerifyRolloutReport", err)
	}
	rec, err := s.Reports.Confirm(ctx, req.GetDigest())
	if err != nil {
		return nil, s.rolloutError("VerifyRolloutReport", err)
	}
	return rec, nil
}
