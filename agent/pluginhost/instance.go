package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/plugins/sdk"
)

// Instance is one running plugin process.
type Instance struct {
	// Plugin calls the plugin. Every call runs under the caller's context:
	// when it ends first the process group is killed and the call fails
	// with the context's error, wrapped with the plugin's name.
	Plugin sdk.Plugin

	name   string
	host   *Host
	client *plugin.Client
	cmd    *exec.Cmd
	pidv   int
	// start is the process's start time (procStat.start), 0 if unknown.
	start  uint64
	stderr *tail
	log    *slog.Logger
	// released is closed when the process is gone: it frees the OS
	// thread that started it (startLocked).
	released    chan struct{}
	releaseOnce sync.Once
	// recorded is the process's record in Config.ProcDir, if any.
	recorded string

	mu   sync.Mutex
	dead error // why calls fail from now on; nil while usable

	closeOnce sync.Once
}

// Name is the plugin's name.
func (i *Instance) Name() string { return i.name }

// Pid is the plugin process's id, which is also its process group's id.
func (i *Instance) Pid() int { return i.pidv }

// Close kills the plugin's process group and waits for go-plugin to reap
// the process. It is safe to call more than once.
func (i *Instance) Close() {
	i.closeOnce.Do(func() {
		i.setDead(ErrClosed)
		i.kill()
		i.host.forget(i)
	})
}

// kill sends SIGKILL to the group and lets go-plugin clean up; once
// go-plugin has reaped the process, its record goes and the thread that
// started it is released.
func (i *Instance) kill() {
	if err := killGroup(i.pidv, i.start); err != nil {
		i.log.Warn("kill plugin", "err", err)
	}
	i.client.Kill()
	i.host.unrecord(i)
	i.releaseOnce.Do(func() { close(i.released) })
}

func (i *Instance) setDead(err error) {
	i.mu.Lock()
	if i.dead == nil {
		i.dead = err
	}
	i.mu.Unlock()
}

func (i *Instance) deadErr() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.dead
}

// exitStatus waits briefly for go-plugin to reap the process and returns
// how it ended ("exit status 3", "signal: killed").
func (i *Instance) exitStatus(wait time.Duration) string {
	end := time.Now().Add(wait)
	for !i.client.Exited() {
		if time.Now().After(end) {
			return "exited"
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Exited is set under go-plugin's lock after cmd.Wait, so ProcessState
	// is safe to read now.
	if ps := i.cmd.ProcessState; ps != nil {
		return ps.String()
	}
	return "exited"
}

// crashed decides whether a failed call failed because the process died.
// If so it kills what is left of the group, marks the instance dead and
// returns the crash error.
func (i *Instance) crashed(method string, callErr error) error {
	// A dead process shows as a transport error; wait a little for the
	// kernel to catch up before deciding. Other errors get a quick look.
	wait := 100 * time.Millisecond
	if errors.Is(callErr, sdk.ErrUnavailable) || status.Code(callErr) == codes.Unavailable {
		wait = 2 * time.Second
	}
	end := time.Now().Add(wait)
	for !i.client.Exited() && !processGone(i.pidv) {
		if time.Now().After(end) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = killGroup(i.pidv, i.start) // whatever it spawned goes with it
	how := i.exitStatus(2 * time.Second)
	err := fmt.Errorf("%w (%s)", ErrPluginCrashed, how)
	if out := i.stderr.String(); out != "" {
		err = fmt.Errorf("%w; last stderr: %s", err, out)
	}
	i.setDead(err)
	i.log.Error("plugin crashed", "method", method, "status", how)
	return fmt.Errorf("plugin %s: %s: %w", i.name, method, err)
}

// abort kills the group because a call outlived its context.
func (i *Instance) abort(method string, ctxErr error) error {
	var err error
	if errors.Is(ctxErr, context.DeadlineExceeded) {
		err = fmt.Errorf("plugin %s: %s did not finish before its deadline; killed its process group: %w", i.name, method, ctxErr)
	} else {
		err = fmt.Errorf("plugin %s: %s cancelled; killed its process group: %w", i.name, method, ctxErr)
	}
	i.setDead(fmt.Errorf("%w: killed after %s outlived its context", ErrClosed, method))
	if kerr := killGroup(i.pidv, i.start); kerr != nil {
		i.log.Warn("kill plugin", "err", kerr)
	}
	i.log.Warn("plugin killed", "method", method, "reason", ctxErr.Error())
	return err
}

// call runs f under ctx with the guarantees Instance.Plugin documents.
func call[T any](ctx context.Context, i *Instance, method string, f func(context.Context) (T, error)) (T, error) {
	var zero T
	if err := i.deadErr(); err != nil {
		return zero, fmt.Errorf("plugin %s: %s: %w", i.name, method, err)
	}
	if err := ctx.Err(); err != nil {
		return zero, fmt.Errorf("plugin %s: %s not called: %w", i.name, method, err)
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f(ctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		if r.err == nil {
			return r.v, nil
		}
		// gRPC hands our deadline to the plugin, whose side may give up a
		// moment before ours: let ours catch up before deciding.
		if dl, ok := ctx.Deadline(); ok && ctx.Err() == nil && errors.Is(r.err, context.DeadlineExceeded) {
			if wait := time.Until(dl); wait < time.Second {
				t := time.NewTimer(wait + 50*time.Millisecond)
				select {
				case <-ctx.Done():
				case <-t.C:
				}
				t.Stop()
			}
		}
		if ctx.Err() != nil {
			return zero, i.abort(method, ctx.Err())
		}
		if err := i.crashed(method, r.err); err != nil {
			return zero, err
		}
		return zero, fmt.Errorf("plugin %s: %s: %w", i.name, method, r.err)
	case <-ctx.Done():
		err := i.abort(method, ctx.Err())
		// The connection breaks with the process; let the call return so
		// nothing touches the caller's values afterwards.
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			i.log.Warn("plugin call did not return after kill", "method", method)
		}
		return zero, err
	}
}

// guarded is the sdk.Plugin an Instance hands out.
type guarded struct {
	inst *Instance
	p    sdk.Plugin
}

var _ sdk.Plugin = (*guarded)(nil)

func (g *guarded) Describe(ctx context.Context) (*sdk.Description, error) {
	return call(ctx, g.inst, "Describe", g.p.Describe)
}

func (g *guarded) Validate(ctx context.Context, sc *sdk.StepContext) ([]*sdk.FieldError, error) {
	return call(ctx, g.inst, "Validate", func(ctx context.Context) ([]*sdk.FieldError, error) {
		return g.p.Validate(ctx, sc)
	})
}

func (g *guarded) Plan(ctx context.Context, sc *sdk.StepContext) (*sdk.Plan, error) {
	return call(ctx, g.inst, "Plan", func(ctx context.Context) (*sdk.Plan, error) {
		return g.p.Plan(ctx, sc)
	})
}

func (g *guarded) Apply(ctx context.Context, sc *sdk.StepContext, r sdk.Reporter) (*sdk.Result, error) {
	return call(ctx, g.inst, "Apply", func(ctx context.Context) (*sdk.Result, error) {
		return g.p.Apply(ctx, sc, r)
	})
}

func (g *guarded) Verify(ctx context.Context, sc *sdk.StepContext) (*sdk.Verification, error) {
	return call(ctx, g.inst, "Verify", func(ctx context.Context) (*sdk.Verification, error) {
		return g.p.Verify(ctx, sc)
	})
}

func (g *guarded) Rollback(ctx context.Context, sc *sdk.StepContext, record []byte) (*sdk.RollbackResult, error) {
	return call(ctx, g.inst, "Rollback", func(ctx context.Context) (*sdk.RollbackResult, error) {
		return g.p.Rollback(ctx, sc, record)
	})
}
