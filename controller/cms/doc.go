// Package cms is the controller's configuration management system logic:
// which nodes a label selector (or a Service CI) names, and drift — the
// difference between each node's authorized baseline (an accepted audit)
// and its latest audit, computed with internal/diff. Baselines themselves
// are records in controller/store; the full audit documents are read from
// the blob directory and verified on every read.
//
// The functions here are plain functions over the store and the blobs so
// that the operator API (controller/api) stays a thin translation layer.
package cms
