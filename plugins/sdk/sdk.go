// Package sdk is the public API for writing a Cairn step plugin in Go.
//
// A plugin is a Go type implementing Plugin. sdk.Serve(p) in the plugin
// binary's main turns it into a plugin process that cairn-agent starts
// through hashicorp/go-plugin over gRPC (mutual TLS, one handshake). The
// agent's built-in plugins (plugins/builtin) are written against this same
// API and run through the same process boundary.
//
// Every call receives a StepContext: the root directory to work under,
// the parameters as structured data (decode them with DecodeParams; never
// paste them into a shell), the local paths of verified artifacts, an
// idempotency key, the dry-run flag and a deadline.
//
// On the host side, the same package is the client half: Handshake,
// PluginKey and PluginSet configure go-plugin's client, and dispensing
// PluginKey yields a *Client, itself a Plugin, whose errors carry the
// plugin's own messages (see errors.go for what they wrap). A panic in a
// plugin method is recovered in the plugin process and fails only that
// call.
//
// plugins/sdk/sdktest is the conformance harness to run in a plugin's own
// tests.
package sdk

import (
	"context"

	pluginv1 "github.com/cairn-ops/cairn/proto/plugin/v1"
)

// The protocol's messages, under the names plugin authors use.
type (
	StepContext     = pluginv1.StepContext
	Description     = pluginv1.Description
	ParamSpec       = pluginv1.ParamSpec
	FieldError      = pluginv1.FieldError
	Change          = pluginv1.Change
	Plan            = pluginv1.PlanResponse
	Result          = pluginv1.ApplyResult
	Verification    = pluginv1.VerifyResponse
	RollbackResult  = pluginv1.RollbackResponse
	RollbackRequest = pluginv1.RollbackRequest
	Confirmation    = pluginv1.Confirmation
)

// Kinds of declared changes.
const (
	ChangePackage = "package"
	ChangeFile    = "file"
	ChangeService = "service"
)

// Plugin is a deployment step implementation.
type Plugin interface {
	// Describe returns the plugin's name, version, parameters and whether
	// Apply is idempotent.
	Describe(ctx context.Context) (*Description, error)
	// Validate checks the parameters and returns one FieldError per
	// problem; an error return means the check itself failed.
	Validate(ctx context.Context, sc *StepContext) ([]*FieldError, error)
	// Plan says what Apply would change, without changing anything, and
	// declares the changes for the audit comparison.
	Plan(ctx context.Context, sc *StepContext) (*Plan, error)
	// Apply makes the change, reporting log lines and progress to r, and
	// returns whether anything changed, outputs, and a rollback record.
	Apply(ctx context.Context, sc *StepContext, r Reporter) (*Result, error)
	// Verify runs an acceptance check and returns pass or fail with
	// evidence. An error return means the check could not run.
	Verify(ctx context.Context, sc *StepContext) (*Verification, error)
	// Rollback undoes Apply, given the record Apply returned.
	Rollback(ctx context.Context, sc *StepContext, record []byte) (*RollbackResult, error)
}

// Reporter receives Apply's log lines and progress; the agent relays them
// to its log and to the controller.
type Reporter interface {
	Log(level, message string)
	Progress(fraction float64, message string)
}

// Log levels for Reporter.Log.
const (
	LevelInfo  = "info"
	LevelWarn  = "warn"
	LevelError = "error"
)
