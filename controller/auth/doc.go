// Package auth authenticates and authorizes every RPC the controller
// serves. Operators present a bearer token (stored hashed, bound to a user
// and roles); agents present their client certificate, which names the
// node. One table declares the role each method needs, and one pair of
// interceptors (unary and stream) enforces it; only the methods in the
// explicit allowlist (enrollment, health) are open.
package auth
