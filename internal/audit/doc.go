// Package audit seals, verifies, reads and writes audit documents.
//
// An audit document is the canonical JSON encoding of an
// inventoryv1.Audit (see internal/canonical). Sealing computes a sha256
// per section, a content hash over the sections (equal for two audits of
// the same host state, whenever taken) and a document hash over the whole
// file, so any edit is detected when the file is read back. The agent
// writes audits with this package and the controller reads them with it.
package audit
