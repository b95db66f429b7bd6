package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginv1 "github.com/cairn-ops/cairn/proto/plugin/v1"
)

// Client is a Plugin that calls a plugin process over gRPC; go-plugin's
// Dispense(PluginKey) returns one. Its errors carry the plugin's own
// message; see errors.go for what they wrap.
type Client struct {
	rpc pluginv1.StepPluginClient
}

var _ Plugin = (*Client)(nil)

// NewClient returns a Client calling the StepPlugin service on conn.
func NewClient(conn grpc.ClientConnInterface) *Client {
	return &Client{rpc: pluginv1.NewStepPluginClient(conn)}
}

// Describe implements Plugin.
func (c *Client) Describe(ctx context.Context) (*Description, error) {
	d, err := c.rpc.Describe(ctx, &pluginv1.DescribeRequest{})
	return d, fromStatus(err)
}

// Validate implements Plugin.
func (c *Client) Validate(ctx context.Context, sc *StepContext) ([]*FieldError, error) {
	resp, err := c.rpc.Validate(ctx, sc)
	if err != nil {
		return nil, fromStatus(err)
	}
	return resp.GetErrors(), nil
}

// Plan implements Plugin.
func (c *Client) Plan(ctx context.Context, sc *StepContext) (*Plan, error) {
	p, err := c.rpc.Plan(ctx, sc)
	return p, fromStatus(err)
}

// Apply implements Plugin: it relays the plugin's log lines and progress
// to r (which may be nil) as they arrive and returns the final result.
func (c *Client) Apply(ctx context.Context, sc *StepContext, r Reporter) (*Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rpc.Apply(ctx, sc)
	if err != nil {
		return nil, fromStatus(err)
	}
	var res *Result
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fromStatus(err)
		}
		switch e := ev.GetEvent().(type) {
		case *pluginv1.ApplyEvent_Log:
			if r != nil {
				r.Log(e.Log.GetLevel(), e.Log.GetMessage())
			}
		case *pluginv1.ApplyEvent_Progress:
			if r != nil {
				r.Progress(e.Progress.GetFraction(), e.Progress.GetMessage())
			}
		case *pluginv1.ApplyEvent_Result:
			res = e.Result
		}
	}
	if res == nil {
		return nil, ErrNoResult
	}
	return res, nil
}

// Verify implements Plugin.
func (c *Client) Verify(ctx context.Context, sc *StepContext) (*Verification, error) {
	v, err := c.rpc.Verify(ctx, sc)
	return v, fromStatus(err)
}

// Rollback implements Plugin.
func (c *Client) Rollback(ctx context.Context, sc *StepContext, record []byte) (*RollbackResult, error) {
	r, err := c.rpc.Rollback(ctx, &pluginv1.RollbackRequest{Context: sc, RollbackRecord: record})
	return r, fromStatus(err)
}

// fromStatus turns a status error from the plugin back into an error with
// the plugin's message, wrapping what its code stands for.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	msg := st.Message()
	switch st.Code() {
	case codes.DeadlineExceeded:
		return &remoteError{msg: msg, kind: context.DeadlineExceeded}
	case codes.Canceled:
		return &remoteError{msg: msg, kind: context.Canceled}
	case codes.Internal:
		if strings.HasPrefix(msg, ErrPanic.Error()) {
			return &remoteError{msg: msg, kind: ErrPanic}
		}
	case codes.Unavailable:
		return &remoteError{msg: fmt.Sprintf("%s: %s", ErrUnavailable, msg), kind: ErrUnavailable}
	}
	return &remoteError{msg: msg}
}
