// Package integration holds Cairn's multi-process tests: they build the
// real binaries with `go build`, run them as separate processes against
// fixture roots, and assert on their output, files and exit codes. It
// also checks repository-wide rules, such as one package doc comment per
// package.
package integration
