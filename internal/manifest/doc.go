// Package manifest reads a release manifest: the YAML file that names a
// release's components (artifacts) and the steps, verify checks and
// rollback steps that deploy it.
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
//
// Parse reports every problem at once, each naming the file, the line and
// the field ("release.yaml:12: steps[1].plugin: required"), so a release
// manager fixes a manifest in one pass. Unknown keys are errors: a typo
// never silently drops a step's setting.
//
// The top-level keys are a table (topLevel in manifest.go): the releases
// issue adds expect, known_errors, notes, sla and approvals as new entries
// and new fields of Manifest without touching the existing ones.
package manifest
