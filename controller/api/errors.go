package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/controller/report"
	"github.com/cairn-ops/cairn/controller/rollout"
	"github.com/cairn-ops/cairn/controller/store"
)

// Errors of the operator API; rpcError maps them to gRPC codes.
var (
	// ErrInvalid means a request field is wrong; the message names it.
	ErrInvalid = errors.New("invalid argument")
	// ErrExists means the object to create already exists.
	ErrExists = errors.New("already exists")
	// ErrPrecondition means the request cannot be carried out in the
	// current state (an ambiguous hostname, a revoked node, no audit yet).
	ErrPrecondition = errors.New("failed precondition")
)

// invalid returns an ErrInvalid naming field.
func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, field, fmt.Sprintf(format, args...))
}

// rpcError maps an error to a gRPC status at the RPC boundary: the api's
// and the rollout engine's sentinel errors to their codes. Internal
// errors are logged and answered with a generic message: the caller can
// do nothing about them, and their text may name the controller's
// internals (paths, keys).
func (b *base) rpcError(method string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var code codes.Code
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	case errors.Is(err, ErrInvalid), errors.Is(err, rollout.ErrInvalid), errors.Is(err, report.ErrFormat), errors.Is(err, report.ErrMalformed):
		code = codes.InvalidArgument
	case errors.Is(err, store.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, ErrExists):
		code = codes.AlreadyExists
	case errors.Is(err, ErrPrecondition), errors.Is(err, rollout.ErrNotApproved), errors.Is(err, rollout.ErrState), errors.Is(err, rollout.ErrNoNodes):
		code = codes.FailedPrecondition
	case errors.Is(err, store.ErrConflict):
		code = codes.Aborted
	default:
		b.Logger.Error("rpc failed", slog.String("method", method), slog.Any("err", err))
		return status.Error(codes.Internal, method+": internal error; the controller's log has the details")
	}
	return status.Error(code, err.Error())
}
