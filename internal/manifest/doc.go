// Package manifest reads a release manifest: the YAML file that names a
// release's components (artifacts), the steps, verify checks and rollback
// steps that deploy it, and what makes it a release package: the changes
// it declares (expect), its known errors, notes, SLA and sign-off.
//
//	apiVersion: cairn/v1
//	kind: Release
//	name: webshop
//	version: 1.4.0
//	description: the web shop's static site and config
//	components:
//	  - {name: site, kind: application, path: site.tar.gz, sha256: 9f86d0…}
//	steps:
//	  - name: unpack
//	    plugin: archive
//	    params: {artifact: site, dest: /srv/webshop}
//	    timeout: 2m
//	verify:
//	  - {name: homepage, plugin: httpcheck, params: {url: "http://localhost/"}}
//	rollback:
//	  - {name: restore, plugin: exec, params: {argv: [/usr/local/bin/restore]}}
//	service: shop                      # the Service CI it changes
//	expect:                            # declared changes, for the audits
//	  packages: [{name: webshop-assets, version: ">= 1.4.0"}, {name: old-shop, state: absent}]
//	  files: [{path: /srv/webshop/index.html, artifact: site}]
//	  services: [{name: nginx.service, state: active}]
//	  hardware: [{fact: memory.total_bytes, op: ">=", value: 16GiB}]
//	  allow: ["packages/dpkg/libwebshop*"]
//	  untrack: [/etc/webshop/legacy.conf]     # tracked paths it stops tracking
//	known_errors:
//	  - {id: KE-1, summary: slow first request, workaround: none needed, status: workaround}
//	notes: "# Web shop 1.4.0 ..."        # Markdown
//	sla: {max_node_duration: 10m, max_rollout_duration: 2h, min_success_rate: 95%}
//	approvals: {required: 2}           # distinct approvers; default 1
//
// A component is a local file (path, with an optional sha256) or an
// artifact already in the DML (digest), never both.

// Parse reports every problem at once, each naming the file, the line and
// the field ("release.yaml:12: steps[1].plugin: required"), so a release
// manager fixes a manifest in one pass. Unknown keys are errors: a typo
// never silently drops a step's setting.
//
// The top-level keys are a table (topLevel in manifest.go); each section
// is its own table of keys (release.go), so a new key is a new entry.
//
// MergeDeclared adds the changes the steps' plugins declare in Plan (a
// dpkg install declares its package) to expect; the manifest wins where
// it states an item itself. Canonical is the manifest as deterministic
// JSON, which the release digest is computed over.
package manifest
