// Package cms is the controller's configuration management system logic:
// which nodes a label selector (or a Service CI) names, baselines and
// what they track, and drift — the difference between each node's
// authorized baseline (an accepted audit) and its latest audit, computed
// with internal/diff. Baselines themselves are records in
// controller/store; the full audit documents are read from the blob
// directory and verified on every read.
//
// # Tracked paths
//
// Files are audited only where an audit is told to look (its track
// list). Each baseline records the node's tracked set: the previous
// baseline's, plus what the accepted audit tracked, less what the
// release that advanced it stops tracking (expect.untrack); see
// NextTracked. Paths are never dropped otherwise, so a file an earlier
// release installed stays tracked after later releases. Every audit the
// controller issues collects the node's tracked set besides what it adds
// (AuditTrack), so the latest audit covers what the baseline covers, and
// the set lives in the store: it survives a controller restart and an
// auditor reads it in the baseline history. A path only one side of a
// comparison tracked is reported as not compared (internal/diff), never
// as unchanged. PutBaseline is the one way a baseline is stored.
//
// The functions here are plain functions over the store and the blobs so
// that the operator API (controller/api) and the rollout engine stay thin
// users of them.
package cms
