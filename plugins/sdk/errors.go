package sdk

import (
	"errors"
	"fmt"
	"strings"
)

// Errors a Client returns, checked with errors.Is. Besides these, a
// Client's errors wrap context.DeadlineExceeded or context.Canceled when
// the call ran out of time or was cancelled, on either side.
var (
	// ErrPanic means the plugin panicked during the call. The plugin
	// process recovered and keeps serving; the message has the panic value.
	ErrPanic = errors.New("plugin panicked")
	// ErrUnavailable means the connection to the plugin process failed,
	// most often because the process exited.
	ErrUnavailable = errors.New("plugin unavailable")
	// ErrNoResult means the plugin ended Apply's stream without a result.
	ErrNoResult = errors.New("plugin ended apply without a result")
	// ErrInvalidParams is wrapped by ParamsError: a call other than
	// Validate was given parameters that do not validate.
	ErrInvalidParams = errors.New("invalid parameters")
)

// ParamsError joins the problems Validate reports into one error wrapping
// ErrInvalidParams ("invalid parameters: path: is required; mode: …"),
// for the calls that cannot return field errors (Plan, Apply, Verify). It
// returns nil when there are none.
func ParamsError(errs []*FieldError) error {
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.GetMessage()
		if e.GetField() != "" {
			msgs[i] = e.GetField() + ": " + e.GetMessage()
		}
	}
	return fmt.Errorf("%w: %s", ErrInvalidParams, strings.Join(msgs, "; "))
}

// Errorf returns a FieldError for the parameter field (a dotted path such
// as "env.PATH"), its message formatted as with fmt.Sprintf. It is the
// helper for building Validate's answer:
//
//	if p.Path == "" {
//		errs = append(errs, sdk.Errorf("path", "is required"))
//	}
func Errorf(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// remoteError is an error the plugin process returned, rebuilt on the
// host side: its text is the plugin's message, and it wraps the sentinel
// (or context error) its status code stands for.
type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }
