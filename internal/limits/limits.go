// Package limits is the one table of the limits Cairn puts on what people
// and programs send it: how long a name or a note may be and which
// characters it may hold, how many entries a list may have, how long a
// duration may be. The release manifest parser (internal/manifest), the
// controller's API (controller/api, controller/dml, controller/rollout)
// and cairnctl all check against these values, so a manifest that
// `cairnctl release validate` accepts is not refused by the controller for
// a name, and a value the controller stores always fits its store (bbolt
// keys are at most 32 KiB).
//
// Every limit is declared in this file, with its default and why. A Text
// limit checks a string (Check); counts and durations are constants that
// their users compare with and name in their messages. Limits an
// operator can change (the controller's upload-session caps) have their
// defaults here and their setting in the controller's config.
package limits

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Character sets of Text limits.
const (
	// charsIdentifier is the manifest's names: release, component, step,
	// plugin, known-error ID.
	charsIdentifier = "letters, digits, '.', '_' and '-', starting with a letter or digit"
	// charsLowerName is users and services: also file and DNS friendly.
	charsLowerName = "lowercase letters, digits, '.', '_' and '-', starting with a letter or digit"
	charsLabelKey  = "letters, digits, '.', '_', '/' and '-', starting with a letter or digit"
	charsVersion   = "letters, digits, '.', '+', '~', ':' and '-'"
	charsPackage   = "letters, digits, '.', '_', '+', ':' and '-', starting with a letter or digit"
	charsUnit      = "letters, digits, '.', '_', '@', ':', '\\' and '-', starting with a letter or digit"
)

var (
	reIdentifier = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	reLowerName  = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	reLabelKey   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)
	reVersion    = regexp.MustCompile(`^[A-Za-z0-9.+~:-]+$`)
	rePackage    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+:-]*$`)
	reUnit       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@:\\-]*$`)
)

// The table. Text limits: names that become store keys, labels or file
// names, and free text that is stored and shown.
var (
	// ReleaseName is a release's name (manifest name:, ReleaseRef.name);
	// with the version it is the release's store key.
	ReleaseName = Text{What: "release name", Max: 63, Chars: charsIdentifier, re: reIdentifier}
	// ReleaseVersion is a release's version (semantic version; the
	// manifest also checks its form). 128 bytes hold any real pre-release
	// and build suffix.
	ReleaseVersion = Text{What: "release version", Max: 128, Chars: charsVersion, re: reVersion}
	// ComponentName names a release component (components[].name,
	// needs_artifacts, expect.files[].artifact, component_digests keys).
	ComponentName = Text{What: "component name", Max: 63, Chars: charsIdentifier, re: reIdentifier}
	// StepName names a step, verify check or rollback step; rollouts
	// confirm manual steps by it.
	StepName = Text{What: "step name", Max: 63, Chars: charsIdentifier, re: reIdentifier}
	// PluginName names a step's plugin.
	PluginName = Text{What: "plugin name", Max: 63, Chars: charsIdentifier, re: reIdentifier}
	// KnownErrorID is a known error's id.
	KnownErrorID = Text{What: "known-error ID", Max: 63, Chars: charsIdentifier, re: reIdentifier}
	// UserName is a user's name (the users table's key, "user:NAME" in
	// the audit log).
	UserName = Text{What: "user name", Max: 63, Chars: charsLowerName, re: reLowerName}
	// ServiceName is a Service CI's name (the services table's key, the
	// manifest's service:).
	ServiceName = Text{What: "service name", Max: 63, Chars: charsLowerName, re: reLowerName}
	// LabelKey is a node label's or selector's key ("env", "cairn.io/role").
	LabelKey = Text{What: "label key", Max: 63, Chars: charsLabelKey, re: reLabelKey}
	// LabelValue is a label's value: no ',' or '=' (cairnctl's k=v,k=v
	// form) and one line. 253 bytes hold a DNS name.
	LabelValue = Text{What: "label value", Max: 253, Forbidden: ",="}
	// NodeRef names a node in a request: its ID or hostname (a DNS name is
	// at most 253 bytes).
	NodeRef = Text{What: "node ID or hostname", Max: 253, Forbidden: " "}
	// ObjectID is the ID of a stored object a request names: a command,
	// an audit, a rollout, an upload session, an artifact digest (prefix).
	ObjectID = Text{What: "ID", Max: 128, Chars: charsIdentifier, re: reIdentifier}
	// ArtifactName is a DML artifact's name (a file name).
	ArtifactName = Text{What: "artifact name", Max: 255}
	// PackageName is a package in expect or a known error's signature.
	PackageName = Text{What: "package name", Max: 255, Chars: charsPackage, re: rePackage}
	// PackageVersion is a package version constraint (">= 2.4.0-1").
	PackageVersion = Text{What: "package version", Max: 255}
	// UnitName is a systemd unit in expect.services.
	UnitName = Text{What: "service unit name", Max: 255, Chars: charsUnit, re: reUnit}
	// Path is a file path: expect.files, components[].path, audit track
	// paths (PATH_MAX).
	Path = Text{What: "path", Max: 4096}
	// Pattern is an expect.allow glob.
	Pattern = Text{What: "pattern", Max: 1024}
	// Word is a short single-line token a request carries: a collector
	// name, a rollout strategy or policy value, a wave size, a hardware
	// fact's value, a render format.
	Word = Text{What: "value", Max: 255}
	// Filename is the name a client gives a file it sends (a manifest's
	// file name, for messages).
	Filename = Text{What: "file name", Max: 1024}
	// Summary is a one-line summary (a known error's summary).
	Summary = Text{What: "summary", Max: 1024}
	// Note is free text a person writes: a test or decision note, a
	// reason, a rollout action's note, a description. Several lines.
	Note = Text{What: "note", Max: 4 << 10, Lines: true}
	// LongText is a known error's symptom or workaround.
	LongText = Text{What: "text", Max: 16 << 10, Lines: true}
	// ReleaseNotes is a manifest's notes: (Markdown).
	ReleaseNotes = Text{What: "release notes", Max: 256 << 10, Lines: true}
)

// Sizes and counts.
const (
	// ManifestBytes is the largest release manifest read (a file for
	// release validate, a CreateRelease request).
	ManifestBytes = 1 << 20
	// Labels is the most labels one node, selector or enroll token has.
	Labels = 64
	// ListEntries is the most entries of a list a request carries:
	// evidence digests, collectors, track paths, component digests.
	ListEntries = 256
	// Waves is the most waves a rollout may have.
	Waves = 100
	// Approvals is the most distinct approvers a manifest may require
	// (approvals.required).
	Approvals = 16
	// IssuerChain is the most users an API token's issuer chain may name:
	// who created it, who created the token they used, and so on.
	IssuerChain = 8
	// EnrollUses is the most agents one enrollment token may enroll.
	EnrollUses = 10000
	// TrackedPaths is the most paths and patterns a node's tracked set
	// (its baseline's tracked, controller/cms) may hold: accepting a
	// baseline that would track more is refused. With a command's own
	// paths (at most ListEntries) and Path's length it keeps an audit
	// command well inside one 4 MiB message.
	TrackedPaths = 512
)

// Durations.
const (
	// APITokenTTL is the longest lifetime of an API token with an expiry
	// (400 days: a yearly rotation with a margin). A TTL of 0 means the
	// token does not expire.
	APITokenTTL = 400 * 24 * time.Hour
	// EnrollTTL is the longest lifetime of an enrollment token, and
	// DefaultEnrollTTL its lifetime when none is given.
	EnrollTTL        = 24 * time.Hour
	DefaultEnrollTTL = 10 * time.Minute
	// StepTimeout is the longest timeout of one step.
	StepTimeout = 7 * 24 * time.Hour
	// SLADuration is the longest SLA duration a manifest may state.
	SLADuration = 365 * 24 * time.Hour
	// Bake is the longest bake time between rollout waves.
	Bake = 7 * 24 * time.Hour
	// UnreachableWait is the longest a rollout waits for an unreachable
	// node (unreachable: wait:DURATION).
	UnreachableWait = 7 * 24 * time.Hour
)

// Upload sessions of the DML (unfinished artifact pushes). These are
// defaults: the controller's config (upload_sessions_per_user,
// upload_sessions, upload_bytes_per_user, upload_bytes,
// upload_idle_timeout) changes them. Bytes count what pushes declare, so
// the byte caps are multiples of the largest artifact (max_artifact_bytes,
// 1 GiB by default): 4 GiB per user and 16 GiB in all by default.
const (
	// DefaultUploadSessionsPerUser is how many unfinished pushes one user
	// may hold.
	DefaultUploadSessionsPerUser = 4
	// DefaultUploadSessions is how many unfinished pushes all users
	// together may hold.
	DefaultUploadSessions = 32
	// UploadBytesPerUserArtifacts is the default of upload_bytes_per_user,
	// in max_artifact_bytes: what one user's unfinished pushes may
	// declare together.
	UploadBytesPerUserArtifacts = 4
	// UploadBytesArtifacts is the default of upload_bytes, in
	// max_artifact_bytes: what all unfinished pushes may declare together.
	UploadBytesArtifacts = 16
	// DefaultUploadIdle is how long an upload session lives after its
	// last write (it was 24 hours).
	DefaultUploadIdle = time.Hour
)

// Text is a limit on a string: its length in bytes and the characters it
// may hold.
type Text struct {
	// What names the value in messages ("release name").
	What string
	// Max is the longest value, in bytes.
	Max int
	// Chars describes the allowed characters for messages; empty means
	// printable text.
	Chars string
	// Forbidden are characters printable text may not hold.
	Forbidden string
	// Lines allows line breaks and tabs in printable text.
	Lines bool

	re *regexp.Regexp
}

// Check returns nil when v fits, else an error saying what is wrong with
// it and what the limit is, quoting at most the start of a long value.
// It does not name the field; the caller does.
func (t Text) Check(v string) error {
	if len(v) > t.Max {
		return fmt.Errorf("%s is %d bytes long; the limit is %d bytes", Quote(v), len(v), t.Max)
	}
	if t.re != nil {
		if !t.re.MatchString(v) {
			return fmt.Errorf("%s: use %s", Quote(v), t.Chars)
		}
		return nil
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s is not UTF-8 text", Quote(v))
	}
	bad := strings.IndexFunc(v, func(r rune) bool {
		if t.Lines && (r == '\n' || r == '\r' || r == '\t') {
			return false
		}
		return !unicode.IsPrint(r) && r != ' ' || strings.ContainsRune(t.Forbidden, r)
	})
	if bad >= 0 {
		r, _ := utf8.DecodeRuneInString(v[bad:])
		if strings.ContainsRune(t.Forbidden, r) {
			return fmt.Errorf("%s holds %q (byte %d), which is not allowed here", Quote(v), r, bad)
		}
		return fmt.Errorf("%s holds a control character (%U at byte %d)", Quote(v), r, bad)
	}
	return nil
}

// quoteMax is how much of a value messages quote.
const quoteMax = 40

// Quote returns v quoted for a message, cut after quoteMax bytes (at a
// character boundary) with "..." so a huge value never floods a log or a
// terminal.
func Quote(v string) string {
	if len(v) <= quoteMax {
		return fmt.Sprintf("%q", v)
	}
	cut := quoteMax
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return fmt.Sprintf("%q...", v[:cut])
}
