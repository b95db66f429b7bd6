// Package api implements the controller's operator services
// (proto/controller/v1): enrollment tokens, nodes, audits, the CMS,
// services, users and tokens, the audit log, artifacts, releases and known
// errors, and rollouts (the Rollouts service is a thin mapping onto
// controller/rollout's engine, which keeps their state and audit-log
// entries). It is the RPC boundary: requests are validated here, state
// lives in controller/store, full audits in controller/blob, and errors
// become gRPC status codes only here. Every state change commits in the
// same store transaction as its audit-log entry. Authentication and
// authorization happen before a handler runs, in controller/auth's
// interceptors; handlers read the caller from auth.FromContext.
package api
