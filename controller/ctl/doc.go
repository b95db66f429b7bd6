// Package ctl is cairnctl, the operator's command line for
// cairn-controller: enrollment tokens, nodes, remote audits, the CMS
// (baselines, drift, services, export and import), users and tokens, and
// the audit log. One file per command group holds its help text, flags and
// examples.
//
// cairnctl talks gRPC over TLS to the controller's operator API
// (proto/controller/v1), verifying the controller's certificate against
// its CA (--ca) and presenting a bearer token (--token) on every call.
// Settings come from defaults, then ~/.config/cairn/config.yaml, then
// CAIRN_* environment variables, then flags.
//
// Output goes to the writers given to Execute so tests can assert it.
// Listings print as a table, JSON or YAML (-o). Exit codes are decided in
// one place (exit.go): 0 ok, 1 the operation failed, 2 usage or input
// error, 3 unauthenticated or forbidden.
package ctl
