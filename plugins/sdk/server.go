package sdk

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginv1 "github.com/cairn-ops/cairn/proto/plugin/v1"
)

// server adapts a Plugin to the gRPC service. Every call runs with the
// step's deadline (if any) on top of the RPC's own, recovers a panic into
// an Internal status, and turns the plugin's errors into statuses the
// Client turns back into errors with the same message.
type server struct {
	pluginv1.UnimplementedStepPluginServer
	impl   Plugin
	logger hclog.Logger
}

func (s *server) Describe(ctx context.Context, _ *pluginv1.DescribeRequest) (d *pluginv1.Description, err error) {
	defer s.recover("describe", &err)
	d, err = s.impl.Describe(ctx)
	return d, toStatus(err)
}

func (s *server) Validate(ctx context.Context, sc *pluginv1.StepContext) (resp *pluginv1.ValidateResponse, err error) {
	defer s.recover("validate", &err)
	ctx, cancel, err := withStep(ctx, sc)
	if err != nil {
		return nil, err
	}
	defer cancel()
	errs, err := s.impl.Validate(ctx, sc)
	if err != nil {
		return nil, toStatus(err)
	}
	return &pluginv1.ValidateResponse{Errors: errs}, nil
}

func (s *server) Plan(ctx context.Context, sc *pluginv1.StepContext) (p *pluginv1.PlanResponse, err error) {
	defer s.recover("plan", &err)
	ctx, cancel, err := withStep(ctx, sc)
	if err != nil {
		return nil, err
	}
	defer cancel()
	p, err = s.impl.Plan(ctx, sc)
	return p, toStatus(err)
}

func (s *server) Apply(sc *pluginv1.StepContext, stream grpc.ServerStreamingServer[pluginv1.ApplyEvent]) (err error) {
	defer s.recover("apply", &err)
	ctx, cancel, err := withStep(stream.Context(), sc)
	if err != nil {
		return err
	}
	defer cancel()
	rep := &streamReporter{stream: stream}
	defer rep.finish(nil) // also after a panic
	res, err := s.impl.Apply(ctx, sc, rep)
	if err != nil {
		return toStatus(err)
	}
	if res == nil {
		res = &pluginv1.ApplyResult{}
	}
	return rep.finish(&pluginv1.ApplyEvent{Event: &pluginv1.ApplyEvent_Result{Result: res}})
}

func (s *server) Verify(ctx context.Context, sc *pluginv1.StepContext) (v *pluginv1.VerifyResponse, err error) {
	defer s.recover("verify", &err)
	ctx, cancel, err := withStep(ctx, sc)
	if err != nil {
		return nil, err
	}
	defer cancel()
	v, err = s.impl.Verify(ctx, sc)
	return v, toStatus(err)
}

func (s *server) Rollback(ctx context.Context, req *pluginv1.RollbackRequest) (r *pluginv1.RollbackResponse, err error) {
	defer s.recover("rollback", &err)
	ctx, cancel, err := withStep(ctx, req.GetContext())
	if err != nil {
		return nil, err
	}
	defer cancel()
	r, err = s.impl.Rollback(ctx, req.GetContext(), req.GetRollbackRecord())
	return r, toStatus(err)
}

// recover turns a panic in the plugin's method into an Internal status,
// logging the stack to the plugin's stderr (which the host relays).
func (s *server) recover(method string, err *error) {
	v := recover()
	if v == nil {
		return
	}
	s.logger.Error("plugin panicked", "method", method, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	*err = status.Errorf(codes.Internal, "%s: %s: %v", ErrPanic, method, v)
}

// withStep returns ctx bounded by the step's deadline. A deadline already
// passed refuses the call before the plugin sees it.
func withStep(ctx context.Context, sc *pluginv1.StepContext) (context.Context, context.CancelFunc, error) {
	cancel := context.CancelFunc(func() {})
	if d, ok := Deadline(sc); ok {
		ctx, cancel = context.WithDeadline(ctx, d)
	}
	if err := ctx.Err(); err != nil {
		cancel()
		return nil, nil, toStatus(fmt.Errorf("step %q: %w", sc.GetStep(), err))
	}
	return ctx, cancel, nil
}

// toStatus maps a plugin's error to a gRPC status: context errors to
// DeadlineExceeded and Canceled, everything else to Aborted, always with
// the error's message.
func toStatus(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Aborted, err.Error())
}

// streamReporter sends Apply's log lines and progress on the stream. It is
// safe for concurrent use; events reported after Apply returned are
// dropped. A failed send is dropped too: it means the host has gone, and
// Apply's context ends with it.
type streamReporter struct {
	mu     sync.Mutex
	stream grpc.ServerStreamingServer[pluginv1.ApplyEvent]
	done   bool
}

var _ Reporter = (*streamReporter)(nil)

func (r *streamReporter) Log(level, message string) {
	r.send(&pluginv1.ApplyEvent{Event: &pluginv1.ApplyEvent_Log{Log: &pluginv1.LogLine{Level: level, Message: message}}})
}

func (r *streamReporter) Progress(fraction float64, message string) {
	r.send(&pluginv1.ApplyEvent{Event: &pluginv1.ApplyEvent_Progress{Progress: &pluginv1.Progress{Fraction: fraction, Message: message}}})
}

// finish sends the last event, if any, and drops every later one.
func (r *streamReporter) finish(last *pluginv1.ApplyEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return nil
	}
	r.done = true
	if last == nil {
		return nil
	}
	return r.stream.Send(last)
}

func (r *streamReporter) send(ev *pluginv1.ApplyEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return
	}
	_ = r.stream.Send(ev)
}
