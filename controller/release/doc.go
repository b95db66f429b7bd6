// Package release is the release lifecycle on the controller: a release
// is created as a DRAFT from a parsed manifest whose components are in
// the DML, SEALED with a digest over its canonical manifest and
// component digests signed by the controller's release key, TESTED by a
// tester other than its author, and APPROVED (or REJECTED) by approvers
// other than its author and testers, each decision bound to the digest.
//
//	DRAFT ──seal──▶ SEALED ──test pass──▶ TESTED ──approvals──▶ APPROVED
//	                  │  ▲ test fail          │
//	                  └──┴──────reject────────┴──▶ REJECTED
//
// The functions are pure logic over a store.Tx: the caller runs them in
// one store Update, and every transition appends its audit-log entry
// (release.create, release.seal, release.test, release.approve,
// release.reject) in the same transaction. Render turns a record into
// release notes or a dossier.
package release
