// Package diff compares two audits of the same host section by section and
// reports what changed, in text, JSON, Markdown or HTML. [Compare] is the
// one answer to "what changed between two audits" that drift, rollouts,
// rollback proofs and `audit diff` share; whether a change is what a
// release declared is internal/compare's question.
//
// # Matching
//
// The comparison is generic over the inventory schema: it walks the
// messages with protoreflect, so a field added to the schema is diffed
// without code changes here. Within a section:
//
//   - A repeated message field whose element has a string `key` field is a
//     list of items matched by key: keys only before are "removed", keys
//     only after are "added", and keys on both sides whose fields differ
//     are "changed". Lists are sorted by key in the schema, so matching is a
//     linear merge; an unsorted list is sorted (a copy) first.
//   - Inside an item, fields are compared one by one and reported as
//     [FieldChange] values with a path: nested keyed lists recurse as
//     `partitions[sda1].size_bytes`, singular messages as `a.b`, and
//     repeated scalars and maps are compared as a whole or per map key.
//   - Fields that sit directly on the section message (hardware.dmi's
//     bios_version, os.hostname) are reported as one item-less change of
//     the section.
//
// An item's kind is its message name in snake_case (Disk is "disk",
// PCIDevice is "pci_device").
//
// # Comparability
//
// Volatile sections are never compared. A section whose collector ran in
// neither audit (both taken with `--collectors packages`, say) is skipped:
// it is listed in the report but is not part of the comparison. A section
// whose collector did not succeed in one audit or the other is reported as
// not comparable, with the reason, and never as items added or removed. A section whose hash
// (Audit.hashes.sections) is the same in both audits is not walked.
//
// # Tracked files
//
// The files section holds the paths an audit was asked to track (its
// patterns). Two audits tracking different patterns are compared where
// both looked. A path only one of them tracked is not compared: it is
// listed in the files section's PathsNotCompared (with the side that
// tracked it and how many recorded entries were left out), named in the
// summary ("1 tracked path not compared: /etc/x") and counted apart from
// changes — never added, removed or "no changes". A drift report whose
// baseline did not track a path the latest audit tracks therefore says
// so, instead of reading as unchanged.
//
// # Meaning
//
// A few kinds get verbs that say more than "changed": packages are
// upgraded or downgraded (dpkg packages ordered by [pkgversion.Compare],
// others by plain string comparison), services are enabled, disabled,
// started, stopped and so on, and a removed and an added item in the same
// place (a disk with the same device name, a memory module in the same
// slot, a NIC with the same interface name) pair up as one "replaced"
// change.
//
// # Exit status
//
// A not-comparable section and a path not compared are not changes.
// Callers that map a report to an exit status (0 no changes, 1 changes)
// use [Report.HasChanges] and surface what was not compared separately
// ([Report.Complete], [Report.NotComparable], [Report.PathsNotCompared]).
package diff
