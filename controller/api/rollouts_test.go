package api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cairn-ops/cairn/controller/api"
	"github.com/cairn-ops/cairn/controller/auth"
	"github.com/cairn-ops/cairn/controller/auth/authtest"
	"github.com/cairn-ops/cairn/controller/report"
	"github.com/cairn-ops/cairn/controller/rollout"
	"github.com/cairn-ops/cairn/controller/rollout/state"
	"github.com/cairn-ops/cairn/controller/store"
	controllerv1 "github.com/cairn-ops/cairn/proto/controller/v1"
)

// fakeEngine is a hand-written RolloutEngine: it records each call, fails
// every call with err when set, and serves Get from a script of records.
type fakeEngine struct {
	mu  sync.Mutex
	err error
	// calls are "Method arg arg ..." in order.
	calls []string
	// script is what successive Gets return; the last one repeats. After
	// each Get that leaves more of the script, the engine signals the
	// subscriber itself, so a watch runs through the script on its own.
	script []*controllerv1.RolloutRecord
	gets   int
	// getErr fails Get after the first one when set.
	getErr error
	// closeSub closes the subscription channel instead of signalling.
	closeSub     bool
	sub          chan struct{}
	unsubscribed chan struct{}
	unsubOnce    sync.Once
}

var _ api.RolloutEngine = (*fakeEngine)(nil)

func newFakeEngine() *fakeEngine {
	return &fakeEngine{sub: make(chan struct{}, 1), unsubscribed: make(chan struct{})}
}

func (f *fakeEngine) call(format string, args ...any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
	return f.err
}

func (f *fakeEngine) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func rec(id string) *controllerv1.RolloutRecord {
	return &controllerv1.RolloutRecord{Id: id, State: state.RolloutRunning, Revision: 1}
}

func (f *fakeEngine) Plan(_ context.Context, actor string, spec *controllerv1.RolloutSpec) (*controllerv1.RolloutPlan, error) {
	if err := f.call("Plan %s %s", actor, spec.GetService()); err != nil {
		return nil, err
	}
	return &controllerv1.RolloutPlan{Spec: spec, Summary: "2 nodes"}, nil
}

func (f *fakeEngine) Start(_ context.Context, actor string, spec *controllerv1.RolloutSpec) (*controllerv1.RolloutRecord, error) {
	if err := f.call("Start %s %s", actor, spec.GetService()); err != nil {
		return nil, err
	}
	r := rec("r-1")
	r.CreatedBy = actor
	return r, nil
}

func (f *fakeEngine) Get(_ context.Context, id string) (*controllerv1.RolloutRecord, error) {
	if err := f.call("Get %s", id); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.script) == 0 {
		return rec(id), nil
	}
	f.gets++
	if f.getErr != nil && f.gets > 1 {
		return nil, f.getErr
	}
	i := min(f.gets, len(f.script)) - 1
	if f.closeSub && f.gets == 1 {
		close(f.sub)
	} else if f.gets < len(f.script) || f.getErr != nil {
		select {
		case f.sub <- struct{}{}:
		default:
		}
	}
	return proto.Clone(f.script[i]).(*controllerv1.RolloutRecord), nil
}

func (f *fakeEngine) List(_ context.Context, release string) ([]*controllerv1.RolloutRecord, error) {
	if err := f.call("List %s", release); err != nil {
		return nil, err
	}
	return []*controllerv1.RolloutRecord{rec("r-2"), rec("r-1")}, nil
}

func (f *fakeEngine) action(name, actor, id, note string) (*controllerv1.RolloutRecord, error) {
	if err := f.call("%s %s %s %s", name, actor, id, note); err != nil {
		return nil, err
	}
	return rec(id), nil
}

func (f *fakeEngine) Pause(_ context.Context, actor, id, note string) (*controllerv1.RolloutRecord, error) {
	return f.action("Pause", actor, id, note)
}

func (f *fakeEngine) Resume(_ context.Context, actor, id, note string) (*controllerv1.RolloutRecord, error) {
	return f.action("Resume", actor, id, note)
}

func (f *fakeEngine) Abort(_ context.Context, actor, id, note string) (*controllerv1.RolloutRecord, error) {
	return f.action("Abort", actor, id, note)
}

func (f *fakeEngine) Rollback(_ context.Context, actor, id, note string) (*controllerv1.RolloutRecord, error) {
	return f.action("Rollback", actor, id, note)
}

func (f *fakeEngine) Confirm(_ context.Context, actor, id, node, step, note string) (*controllerv1.RolloutRecord, error) {
	if err := f.call("Confirm %s %s %s %s %s", actor, id, node, step, note); err != nil {
		return nil, err
	}
	return rec(id), nil
}

func (f *fakeEngine) Retry(_ context.Context, actor, id, node, note string) (*controllerv1.RolloutRecord, error) {
	if err := f.call("Retry %s %s %s %s", actor, id, node, note); err != nil {
		return nil, err
	}
	return rec(id), nil
}

func (f *fakeEngine) Resolve(_ context.Context, actor, id, node, note string) (*controllerv1.RolloutRecord, error) {
	if err := f.call("Resolve %s %s %s %s", actor, id, node, note); err != nil {
		return nil, err
	}
	return rec(id), nil
}

// fakeReports is report.Service's fake. It shares the engine fake's
// calls and error, so every Rollouts method answers from one fake.
type fakeReports struct{ *fakeEngine }

var _ api.Reports = fakeReports{}

func (f fakeReports) Issue(_ context.Context, actor, id, format string) (*report.Issued, error) {
	if err := f.call("Issue %s %s %s", actor, id, format); err != nil {
		return nil, err
	}
	return &report.Issued{Content: []byte("report of " + id), MIME: "text/plain; charset=utf-8", Digest: testDigest}, nil
}

func (f fakeReports) Confirm(_ context.Context, digest string) (*controllerv1.IssuedReport, error) {
	if err := f.call("Confirm %s", digest); err != nil {
		return nil, err
	}
	return &controllerv1.IssuedReport{Digest: digest, RolloutId: "r-1", Format: "html"}, nil
}

// testDigest is a report digest.
const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func (f *fakeEngine) Subscribe(id string) (<-chan struct{}, func()) {
	_ = f.call("Subscribe %s", id) // a subscription cannot fail
	return f.sub, func() { f.unsubOnce.Do(func() { close(f.unsubscribed) }) }
}

// rolloutEnv serves the operator API with eng (nil: no engine) behind the
// real auth interceptors; log collects the API's log.
type rolloutEnv struct {
	client controllerv1.RolloutsClient
	ctx    map[string]context.Context
	log    *bytes.Buffer
}

func newRolloutEnv(t *testing.T, eng *fakeEngine) *rolloutEnv {
	t.Helper()
	st := store.NewMemory()
	e := &rolloutEnv{ctx: map[string]context.Context{}, log: &bytes.Buffer{}}
	logger := slog.New(slog.NewTextHandler(e.log, nil))
	srv := authtest.Start(t, st, func(s *grpc.Server) {
		d := api.Deps{Store: st, Logger: logger}
		if eng != nil { // a typed nil in the interface is not "no engine"
			d.Rollouts = eng
			d.Reports = fakeReports{eng}
		}
		api.Register(s, d)
	})
	e.client = controllerv1.NewRolloutsClient(srv.Dial(t, nil))
	for _, role := range []string{auth.RoleOperator, auth.RoleAuditor} {
		e.ctx[role] = authtest.WithToken(context.Background(), authtest.AddUser(t, st, role+"1", role))
	}
	return e
}

// rolloutCall is one call of every Rollouts method, with a valid request.
type rolloutCall struct {
	name string
	call func(ctx context.Context, c controllerv1.RolloutsClient) error
}

func rolloutCalls() []rolloutCall {
	unary := func(name string, f func(ctx context.Context, c controllerv1.RolloutsClient) error) rolloutCall {
		return rolloutCall{name: name, call: f}
	}
	spec := &controllerv1.RolloutSpec{Release: &controllerv1.ReleaseRef{Name: "webshop", Version: "1.0.0"}, Service: "shop"}
	act := &controllerv1.RolloutAction{Id: "r-1", Note: "n"}
	return []rolloutCall{
		unary("PlanRollout", func(ctx context.Context, c controllerv1.RolloutsClient) error {
			_, err := c.PlanRollout(ctx, spec)
			return err
		}),
		unary("StartRollout", func(ctx context.Context, c controllerv1.RolloutsClient) error {
			_, err := c.StartRollout(ctx, spec)
			return err
		}),
		unary("GetRollout", func(ctx context.Context, c controllerv1.RolloutsClient) error {
			_, err := c.GetRollout(ctx, &controllerv1.RolloutRef{Id: "r-1"})
			return err
		}),
		unary("ListRollouts", func(ctx context.Context, c controllerv1.RolloutsClient) error {
			_, err := c.ListRollouts(ctx, &controllerv1.ListRolloutsRequest{})
			return err
		}),
		unary("WatchRollout", func(ctx context.Context, c controllerv1.RolloutsClient) error {
			s, err := c.WatchRollout(ctx, &controllerv1.RolloutRef{Id: "r-1"})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		}),
		unary("PauseRollout", func(ctx context.Context, c controllerv1.RolloutsClient) error {
			_, err := c.PauseRollout(ctx, act)
			return err
		}),
		unary("ResumeRollout", func(ctx context.Context, c controllerv1.RolloutsClient) error {
			_, err := c.ResumeRollout(ctx, act)
			return err
		}),
		unary("AbortRollout", func(ctx context.Context, c controllerv1.RolloutsClient) error {
			_, err := c.AbortRollout(ctx, act)
			return err
		}),
		unary("RollbackRollout", func(ctx context.Context, c controllerv1.RolloutsClient) error {
			_, err := c.RollbackRollout(ctx, act)
			return err
		}),
		unary("RetryRolloutNode", func(ctx context.Context, c controllerv1.RolloutsClient) error {
			_, err := c.RetryRolloutNode(ctx, &controllerv1.RolloutNodeAction{Id: "r-1", Node: "web1"})
			return err
		}),
		unary("ResolveRolloutNode", func(ctx context.Context, c controllerv1.RolloutsClient) error {
			_, err := c.ResolveRolloutNode(ctx, &controllerv1.RolloutNodeAction{Id: "r-1", Node: "web1", Note: "fixed"})
			return err
		}),
		unary("ConfirmStep", func(ctx context.Context, c controllerv1.RolloutsClient) error {
			_, err := c.ConfirmStep(ctx, &controllerv1.ConfirmStepRequest{Id: "r-1", Node: "web1", Step: "s", Note: "n"})
			return err
		}),
		unary("RolloutReport", func(ctx context.Context, c controllerv1.RolloutsClient) error {
			_, err := c.RolloutReport(ctx, &controllerv1.RolloutReportRequest{Id: "r-1"})
			return err
		}),
		unary("VerifyRolloutReport", func(ctx context.Context, c controllerv1.RolloutsClient) error {
			_, err := c.VerifyRolloutReport(ctx, &controllerv1.VerifyReportRequest{Digest: testDigest})
			return err
		}),
	}
}

func TestRolloutsWithoutEngineAreUnavailable(t *testing.T) {
	e := newRolloutEnv(t, nil)
	for _, c := range rolloutCalls() {
		t.Run(c.name, func(t *testing.T) {
			checkCode(t, c.call(e.ctx[auth.RoleOperator], e.client), codes.Unavailable, "rollouts are not enabled")
		})
	}
}

func TestRolloutErrorMapping(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code codes.Code
		// msg is in the status message; hidden is not.
		msg, hidden string
		logged      bool
	}{
		{name: "invalid", err: fmt.Errorf("%w: waves: %q is not a size", rollout.ErrInvalid, "x"), code: codes.InvalidArgument, msg: `waves: "x" is not a size`},
		{name: "not approved", err: fmt.Errorf("%w: webshop@1.0.0 is tested", rollout.ErrNotApproved), code: codes.FailedPrecondition, msg: "webshop@1.0.0 is tested"},
		{name: "state", err: fmt.Errorf("pause r-1: %w: it is completed", rollout.ErrState), code: codes.FailedPrecondition, msg: "it is completed"},
		{name: "no nodes", err: fmt.Errorf("%w: service shop is empty", rollout.ErrNoNodes), code: codes.FailedPrecondition, msg: "service shop is empty"},
		{name: "not found", err: fmt.Errorf("rollout r-9: %w", store.ErrNotFound), code: codes.NotFound, msg: "rollout r-9"},
		{name: "report format", err: fmt.Errorf("%w \"pdf\"", report.ErrFormat), code: codes.InvalidArgument, msg: `unknown report format "pdf"`},
		{name: "malformed digest", err: fmt.Errorf("%w: digest \"x\"", report.ErrMalformed), code: codes.InvalidArgument, msg: `digest "x"`},
		{name: "deadline", err: fmt.Errorf("plan: %w", context.DeadlineExceeded), code: codes.DeadlineExceeded},
		{name: "internal", err: errors.New("bbolt: page 42 corrupt at /var/lib/secret"), code: codes.Internal, msg: "internal error", hidden: "/var/lib/secret", logged: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eng := newFakeEngine()
			eng.err = tt.err
			e := newRolloutEnv(t, eng)
			for _, c := range rolloutCalls() {
				err := c.call(e.ctx[auth.RoleOperator], e.client)
				checkCode(t, err, tt.code, tt.msg)
				if tt.hidden != "" && strings.Contains(status.Convert(err).Message(), tt.hidden) {
					t.Errorf("%s: message %q reveals %q", c.name, status.Convert(err).Message(), tt.hidden)
				}
			}
			if got := strings.Contains(e.log.String(), "rpc failed"); got != tt.logged {
				t.Errorf("logged = %v, want %v:\n%s", got, tt.logged, e.log)
			}
			if tt.logged && !strings.Contains(e.log.String(), tt.hidden) {
				t.Errorf("log lacks the error:\n%s", e.log)
			}
		})
	}
}

// TestRolloutRequests checks what each method passes to the engine (the
// caller as actor, the request's fields) and what it answers.
func TestRolloutRequests(t *testing.T) {
	eng := newFakeEngine()
	e := newRolloutEnv(t, eng)
	op := e.ctx[auth.RoleOperator]
	spec := &controllerv1.RolloutSpec{Release: &controllerv1.ReleaseRef{Name: "webshop", Version: "1.0.0"}, Service: "shop"}
	tests := []struct {
		name  string
		call  func() (proto.Message, error)
		want  proto.Message
		calls []string
	}{
		{
			name:  "plan",
			call:  func() (proto.Message, error) { return e.client.PlanRollout(op, spec) },
			want:  &controllerv1.RolloutPlan{Spec: spec, Summary: "2 nodes"},
			calls: []string{"Plan user:operator1 shop"},
		},
		{
			name:  "start",
			call:  func() (proto.Message, error) { return e.client.StartRollout(op, spec) },
			want:  &controllerv1.RolloutRecord{Id: "r-1", State: state.RolloutRunning, Revision: 1, CreatedBy: "user:operator1"},
			calls: []string{"Start user:operator1 shop"},
		},
		{
			name: "list",
			call: func() (proto.Message, error) {
				return e.client.ListRollouts(e.ctx[auth.RoleAuditor], &controllerv1.ListRolloutsRequest{Release: "webshop@1.0.0"})
			},
			want:  &controllerv1.ListRolloutsResponse{Rollouts: []*controllerv1.RolloutRecord{rec("r-2"), rec("r-1")}},
			calls: []string{"List webshop@1.0.0"},
		},
		{
			name: "pause",
			call: func() (proto.Message, error) {
				return e.client.PauseRollout(op, &controllerv1.RolloutAction{Id: "r-1", Note: "lunch"})
			},
			want: rec("r-1"), calls: []string{"Pause user:operator1 r-1 lunch"},
		},
		{
			name: "resume",
			call: func() (proto.Message, error) {
				return e.client.ResumeRollout(op, &controllerv1.RolloutAction{Id: "r-1", Note: "go"})
			},
			want: rec("r-1"), calls: []string{"Resume user:operator1 r-1 go"},
		},
		{
			name: "abort",
			call: func() (proto.Message, error) {
				return e.client.AbortRollout(op, &controllerv1.RolloutAction{Id: "r-1"})
			},
			want: rec("r-1"), calls: []string{"Abort user:operator1 r-1 "},
		},
		{
			name: "rollback",
			call: func() (proto.Message, error) {
				return e.client.RollbackRollout(op, &controllerv1.RolloutAction{Id: "r-1", Note: "bad"})
			},
			want: rec("r-1"), calls: []string{"Rollback user:operator1 r-1 bad"},
		},
		{
			name: "retry",
			call: func() (proto.Message, error) {
				return e.client.RetryRolloutNode(op, &controllerv1.RolloutNodeAction{Id: "r-1", Node: "web2"})
			},
			want: rec("r-1"), calls: []string{"Retry user:operator1 r-1 web2 "},
		},
		{
			name: "resolve",
			call: func() (proto.Message, error) {
				return e.client.ResolveRolloutNode(op, &controllerv1.RolloutNodeAction{Id: "r-1", Node: "web2", Note: "fixed by hand"})
			},
			want: rec("r-1"), calls: []string{"Resolve user:operator1 r-1 web2 fixed by hand"},
		},
		{
			name: "confirm",
			call: func() (proto.Message, error) {
				return e.client.ConfirmStep(op, &controllerv1.ConfirmStepRequest{Id: "r-1", Node: "web1", Step: "swap-lb", Note: "done"})
			},
			want: rec("r-1"), calls: []string{"Confirm user:operator1 r-1 web1 swap-lb done"},
		},
		{
			name: "report defaults to text",
			call: func() (proto.Message, error) {
				return e.client.RolloutReport(e.ctx[auth.RoleAuditor], &controllerv1.RolloutReportRequest{Id: "r-1"})
			},
			want:  &controllerv1.RenderResponse{Content: []byte("report of r-1"), ContentType: "text/plain; charset=utf-8", Digest: testDigest},
			calls: []string{"Issue user:auditor1 r-1 text"},
		},
		{
			name: "report html",
			call: func() (proto.Message, error) {
				return e.client.RolloutReport(e.ctx[auth.RoleAuditor], &controllerv1.RolloutReportRequest{Id: "r-1", Format: "html"})
			},
			want:  &controllerv1.RenderResponse{Content: []byte("report of r-1"), ContentType: "text/plain; charset=utf-8", Digest: testDigest},
			calls: []string{"Issue user:auditor1 r-1 html"},
		},
		{
			name: "verify report",
			call: func() (proto.Message, error) {
				return e.client.VerifyRolloutReport(e.ctx[auth.RoleAuditor], &controllerv1.VerifyReportRequest{Digest: testDigest})
			},
			want:  &controllerv1.IssuedReport{Digest: testDigest, RolloutId: "r-1", Format: "html"},
			calls: []string{"Confirm " + testDigest},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.call()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.calls, eng.takeCalls()); diff != "" {
				t.Errorf("engine calls (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRolloutRequiredFields: a request without its ID (or a confirmation
// without node, step or note) is refused before the engine sees it.
func TestRolloutRequiredFields(t *testing.T) {
	eng := newFakeEngine()
	e := newRolloutEnv(t, eng)
	op := e.ctx[auth.RoleOperator]
	tests := []struct {
		name string
		call func() error
		msg  string
	}{
		{name: "get", msg: "id: required", call: func() error {
			_, err := e.client.GetRollout(op, &controllerv1.RolloutRef{})
			return err
		}},
		{name: "pause", msg: "id: required", call: func() error {
			_, err := e.client.PauseRollout(op, &controllerv1.RolloutAction{Note: "x"})
			return err
		}},
		{name: "report", msg: "id: required", call: func() error {
			_, err := e.client.RolloutReport(op, &controllerv1.RolloutReportRequest{Format: "html"})
			return err
		}},
		{name: "verify report", msg: "digest: required", call: func() error {
			_, err := e.client.VerifyRolloutReport(op, &controllerv1.VerifyReportRequest{})
			return err
		}},
		{name: "watch", msg: "id: required", call: func() error {
			s, err := e.client.WatchRollout(op, &controllerv1.RolloutRef{})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		}},
		{name: "confirm without note", msg: "note: required", call: func() error {
			_, err := e.client.ConfirmStep(op, &controllerv1.ConfirmStepRequest{Id: "r-1", Node: "web1", Step: "s"})
			return err
		}},
		{name: "confirm without step", msg: "step: required", call: func() error {
			_, err := e.client.ConfirmStep(op, &controllerv1.ConfirmStepRequest{Id: "r-1", Node: "web1", Note: "n"})
			return err
		}},
		{name: "resolve without note", msg: "note: required", call: func() error {
			_, err := e.client.ResolveRolloutNode(op, &controllerv1.RolloutNodeAction{Id: "r-1", Node: "web1"})
			return err
		}},
		{name: "retry without node", msg: "node: required", call: func() error {
			_, err := e.client.RetryRolloutNode(op, &controllerv1.RolloutNodeAction{Id: "r-1"})
			return err
		}},
		{name: "confirm without node", msg: "node: required", call: func() error {
			_, err := e.client.ConfirmStep(op, &controllerv1.ConfirmStepRequest{Id: "r-1", Step: "s", Note: "n"})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkCode(t, tt.call(), codes.InvalidArgument, tt.msg)
			if calls := eng.takeCalls(); len(calls) != 0 {
				t.Errorf("the engine was called: %v", calls)
			}
		})
	}
}

// watched is one record as a watcher saw it.
type watched struct {
	Revision uint64
	State    string
	Nodes    string
}

func nodesOf(r *controllerv1.RolloutRecord) string {
	var s []string
	for _, n := range r.GetNodes() {
		s = append(s, n.GetHostname()+"="+state.Name(n.GetState()))
	}
	return strings.Join(s, ",")
}

func withNodes(r *controllerv1.RolloutRecord, states ...string) *controllerv1.RolloutRecord {
	for i, s := range states {
		st, _ := state.ParseNode(s)
		r.Nodes = append(r.Nodes, &controllerv1.RolloutNode{NodeId: fmt.Sprintf("n%d", i+1), Hostname: fmt.Sprintf("web%d", i+1), State: st})
	}
	return r
}

func at(rev uint64, name string, nodes ...string) *controllerv1.RolloutRecord {
	st, _ := state.ParseRollout(name)
	return withNodes(&controllerv1.RolloutRecord{Id: "r-1", Revision: rev, State: st}, nodes...)
}

// watchAll watches r-1 until the stream ends and returns what it saw and
// how it ended.
func watchAll(t *testing.T, e *rolloutEnv) ([]watched, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx[auth.RoleAuditor], 10*time.Second) // only against hanging
	defer cancel()
	s, err := e.client.WatchRollout(ctx, &controllerv1.RolloutRef{Id: "r-1"})
	if err != nil {
		t.Fatal(err)
	}
	var got []watched
	for {
		r, err := s.Recv()
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		got = append(got, watched{r.GetRevision(), state.Name(r.GetState()), nodesOf(r)})
	}
}

func TestWatchRollout(t *testing.T) {
	tests := []struct {
		name   string
		script []*controllerv1.RolloutRecord
		getErr error
		close  bool
		want   []watched
		code   codes.Code
		gets   int
	}{
		{
			name: "ends after a final state; halted is not final; unchanged records are not sent",
			script: []*controllerv1.RolloutRecord{
				at(1, "running", "pending", "pending"),
				at(1, "running", "pending", "pending"), // a signal that changed nothing
				at(2, "running", "deploying", "pending"),
				at(2, "running", "passed", "pending"), // a node changed, the rollout did not
				at(3, "halted", "passed", "failed"),
				at(4, "rolling_back", "rolling_back", "failed"),
				at(5, "rolled_back", "rolled_back", "failed"),
				at(6, "completed"), // never read: the watch ended
			},
			want: []watched{
				{1, "running", "web1=pending,web2=pending"},
				{2, "running", "web1=deploying,web2=pending"},
				{2, "running", "web1=passed,web2=pending"},
				{3, "halted", "web1=passed,web2=failed"},
				{4, "rolling_back", "web1=rolling_back,web2=failed"},
				{5, "rolled_back", "web1=rolled_back,web2=failed"},
			},
			gets: 7,
		},
		{
			name:   "already final: one record",
			script: []*controllerv1.RolloutRecord{at(9, "completed", "passed"), at(10, "completed", "passed")},
			want:   []watched{{9, "completed", "web1=passed"}},
			gets:   1,
		},
		{name: "aborted is final", script: []*controllerv1.RolloutRecord{at(1, "running"), at(2, "aborted")},
			want: []watched{{1, "running", ""}, {2, "aborted", ""}}, gets: 2},
		{name: "rollback_failed is final", script: []*controllerv1.RolloutRecord{at(1, "rolling_back"), at(2, "rollback_failed")},
			want: []watched{{1, "rolling_back", ""}, {2, "rollback_failed", ""}}, gets: 2},
		{
			name:   "the rollout disappears",
			script: []*controllerv1.RolloutRecord{at(1, "running")},
			getErr: fmt.Errorf("rollout r-1: %w", store.ErrNotFound),
			want:   []watched{{1, "running", ""}},
			code:   codes.NotFound,
			gets:   2,
		},
		{
			name:   "the engine ends the subscription",
			script: []*controllerv1.RolloutRecord{at(1, "running")},
			close:  true,
			want:   []watched{{1, "running", ""}},
			code:   codes.Unavailable,
			gets:   1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eng := newFakeEngine()
			eng.script, eng.getErr, eng.closeSub = tt.script, tt.getErr, tt.close
			e := newRolloutEnv(t, eng)
			got, err := watchAll(t, e)
			if status.Code(err) != tt.code {
				t.Errorf("watch ended with %v, want %v", err, tt.code)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("watched (-want +got):\n%s", diff)
			}
			eng.mu.Lock()
			gets := eng.gets
			eng.mu.Unlock()
			if gets != tt.gets {
				t.Errorf("%d Gets, want %d", gets, tt.gets)
			}
			select {
			case <-eng.unsubscribed:
			case <-time.After(10 * time.Second):
				t.Error("the watch did not end its subscription")
			}
		})
	}
}

// TestWatchRolloutCallerLeaves: a watch of a rollout that never changes
// ends, and unsubscribes, when the caller cancels.
func TestWatchRolloutCallerLeaves(t *testing.T) {
	eng := newFakeEngine()
	eng.script = []*controllerv1.RolloutRecord{at(1, "paused")}
	e := newRolloutEnv(t, eng)
	ctx, cancel := context.WithCancel(e.ctx[auth.RoleAuditor])
	defer cancel()
	s, err := e.client.WatchRollout(ctx, &controllerv1.RolloutRef{Id: "r-1"})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s.Recv(); err != nil || r.GetState() != state.RolloutPaused {
		t.Fatalf("first record %v, %v; want the paused rollout", r, err)
	}
	cancel()
	select {
	case <-eng.unsubscribed:
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not end when its caller left")
	}
	if _, err := s.Recv(); status.Code(err) != codes.Canceled {
		t.Errorf("Recv after cancel: %v, want Canceled", err)
	}
}
