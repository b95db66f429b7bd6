package ctl

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-ops/cairn/internal/handshake"
	"github.com/cairn-ops/cairn/internal/refusal"
)

// Exit codes. These are cairnctl's interface to scripts; change none.
const (
	ExitOK = 0
	// ExitFailed: the operation failed (the controller refused it or is
	// unreachable, an audit failed, the audit log is broken, ...).
	ExitFailed = 1
	// ExitUsage: a usage or input error (unknown flag, bad k=v, malformed
	// file, missing CA); running it again unchanged will not help.
	ExitUsage = 2
	// ExitDenied: unauthenticated (no or bad token) or forbidden (the
	// token's role lacks permission).
	ExitDenied = 3
)

// exitError carries an exit code chosen by a command up to Execute.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErrorf returns a usage error (exit 2).
func usageErrorf(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// usageError marks err as a usage or input error (exit 2).
func usageError(err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: ExitUsage, err: err}
}

// failedf returns an operation failure (exit 1).
func failedf(format string, args ...any) error {
	return &exitError{code: ExitFailed, err: fmt.Errorf(format, args...)}
}

// rpcError is a failed call to the controller: what cairnctl was doing
// and the status the call ended with.
type rpcError struct {
	op string
	st *status.Status
}

func (e *rpcError) Error() string              { return e.op + ": " + e.st.Message() }
func (e *rpcError) GRPCStatus() *status.Status { return e.st }

// rpcErr wraps an error returned by a gRPC call made to do op ("list
// nodes"). It returns nil for nil.
func rpcErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return &rpcError{op: op, st: status.Convert(err)}
}

// exitStatus is the one place that turns an error into an exit code and
// the one line printed on stderr (without the "cairnctl: " prefix).
// ran says whether a command's RunE started: errors before it (unknown
// command or flag, bad arguments, a bad config file) are usage errors.
// addr is the controller's address, for the "cannot reach" message;
// tlsErr is the error of the last TLS handshake with it (nil when it
// succeeded or none ran).
func exitStatus(err error, ran bool, addr string, tlsErr error) (int, string) {
	if err == nil {
		return ExitOK, ""
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code, err.Error()
	}
	var grpcErr interface{ GRPCStatus() *status.Status }
	if errors.As(err, &grpcErr) {
		return rpcStatus(err, grpcErr.GRPCStatus(), addr, tlsErr)
	}
	if !ran {
		return ExitUsage, oneLine(err.Error())
	}
	if errors.Is(err, context.Canceled) {
		return ExitFailed, "interrupted"
	}
	return ExitFailed, err.Error()
}

// rpcStatus maps a gRPC status to an exit code and a line that says what
// to do. A refusal of the caller's token says why by its reason
// (internal/refusal): only a missing or unknown token is a matter of
// --token; a revoked or expired token or a disabled user says who to ask.
func rpcStatus(err error, st *status.Status, addr string, tlsErr error) (int, string) {
	op, msg := "", st.Message()
	var re *rpcError
	if errors.As(err, &re) {
		op = re.op + ": "
	}
	switch st.Code() {
	case codes.Unauthenticated:
		switch refusal.Of(err) {
		case refusal.TokenRevoked, refusal.TokenExpired, refusal.UserDisabled, refusal.UserUnknown:
			return ExitDenied, op + msg
		}
		return ExitDenied, op + msg + ": check --token / CAIRN_TOKEN"
	case codes.PermissionDenied:
		return ExitDenied, op + msg + " (refused; see 'cairnctl whoami' for your user and roles)"
	case codes.InvalidArgument:
		return ExitUsage, op + msg
	case codes.Unavailable:
		if bad := handshake.Untrusted(tlsErr); bad != nil {
			return ExitFailed, fmt.Sprintf("TLS handshake with controller at %s failed: is --ca / CAIRN_CA the controller's ca.pem, and does its certificate name this address? (%v)", addr, bad)
		}
		if tlsErr != nil {
			return ExitFailed, fmt.Sprintf("TLS handshake with controller at %s failed: is it a cairn-controller? (%v)", addr, tlsErr)
		}
		if !isTransportProblem(msg) {
			// The controller answered: a part of it is not available.
			return ExitFailed, op + msg
		}
		return ExitFailed, fmt.Sprintf("cannot reach controller at %s: is cairn-controller serve running? (%s)", addr, msg)
	case codes.DeadlineExceeded:
		return ExitFailed, op + "the controller did not answer in time: raise --timeout or check the controller (" + msg + ")"
	case codes.NotFound:
		return ExitFailed, op + msg
	case codes.Canceled:
		return ExitFailed, "interrupted"
	default:
		return ExitFailed, op + msg
	}
}

// isTransportProblem tells an Unavailable that grpc-go's transport
// produced (no connection) from one the controller sent.
func isTransportProblem(msg string) bool {
	for _, s := range []string{"connection error", "connection refused", "connection reset", "connection closed",
		"transport", "dial", "no such host", "server preface", "EOF", "name resolver"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// oneLine folds cobra's multi-line messages ("unknown command ... \n\nDid
// you mean this?\n\tnode\n") into one line.
func oneLine(msg string) string {
	head, suggestions, found := strings.Cut(msg, "\n\nDid you mean this?\n")
	if found {
		msg = head + ": did you mean " + strings.Join(strings.Fields(suggestions), " or ") + "?"
	}
	return strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", " ")), " ")
}
