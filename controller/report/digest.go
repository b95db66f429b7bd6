package report

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
)

// A report's digest is "sha256:" and the lowercase hex SHA-256 of the
// report file's bytes with every occurrence of the digest itself taken
// out. Every other byte of the file is covered, in every format: an edit
// anywhere changes what the file hashes to. The digest stands where each
// format says:
//
//	text, Markdown  a line "Report digest: sha256:…" below the title
//	HTML            <meta name="cairn-report-digest" content="sha256:…">,
//	                and again in the page's header
//	JSON            the top-level "digest"
//
// The controller records every digest it issues (IssuedReport): a file
// whose content was edited no longer hashes to its digest, and one whose
// digest was recomputed after the edit carries a digest the controller
// never issued.

// digestPrefix starts every digest.
const digestPrefix = "sha256:"

// digestRE is a digest.
var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// Where each format carries its digest.
var (
	digestLineRE = regexp.MustCompile(`(?m)^Report digest: (sha256:[0-9a-f]{64})$`)
	digestMetaRE = regexp.MustCompile(`<meta name="cairn-report-digest" content="(sha256:[0-9a-f]{64})">`)
)

// placeholder returns a value that stands where the digest goes while a
// report is rendered: digest-shaped and random, so no stored data can
// hold it.
func placeholder() string {
	b := make([]byte, sha256.Size)
	rand.Read(b) // never fails (crypto/rand)
	return digestPrefix + hex.EncodeToString(b)
}

// seal puts the digest of content where content holds ph, and returns
// the sealed content and its digest.
func seal(content []byte, ph string) ([]byte, string, error) {
	if !bytes.Contains(content, []byte(ph)) {
		return nil, "", fmt.Errorf("the rendered report has no place for its digest")
	}
	d := digestOf(content, ph)
	return bytes.ReplaceAll(content, []byte(ph), []byte(d)), d, nil
}

// digestOf is the digest of file, which carries d: the hash of file with
// every d taken out.
func digestOf(file []byte, d string) string {
	sum := sha256.Sum256(bytes.ReplaceAll(file, []byte(d), nil))
	return digestPrefix + hex.EncodeToString(sum[:])
}

// File is what a report file says about itself.
type File struct {
	// Format is the file's format, told from its first bytes.
	Format string
	// Digest is the digest the file carries; Content what its content
	// hashes to. They differ when the file was edited.
	Digest, Content string
}

// Edited reports whether the file's content no longer hashes to the
// digest it carries.
func (f *File) Edited() bool { return f.Digest != f.Content }

// Inspect tells a report file's format, finds the digest it carries and
// hashes its content. A file that is not a report in one of the formats,
// or does not carry exactly one digest where its format says, is
// ErrMalformed, saying why.
func Inspect(file []byte) (*File, error) {
	format := sniff(file)
	var found []string
	switch format {
	case "":
		return nil, fmt.Errorf("%w: not a rollout report in any of the formats %v (%s)", ErrMalformed, Formats, firstWords(file))
	case FormatJSON:
		var top struct {
			Digest *string `json:"digest"`
		}
		if err := json.Unmarshal(file, &top); err != nil {
			return nil, fmt.Errorf("%w: json report: %v", ErrMalformed, err)
		}
		if top.Digest != nil {
			found = append(found, *top.Digest)
		}
	case FormatHTML:
		for _, m := range digestMetaRE.FindAllSubmatch(file, -1) {
			found = append(found, string(m[1]))
		}
	default:
		for _, m := range digestLineRE.FindAllSubmatch(file, -1) {
			found = append(found, string(m[1]))
		}
	}
	switch {
	case len(found) == 0:
		return nil, fmt.Errorf("%w: the %s report carries no digest (%s)", ErrMalformed, format, digestPlace[format])
	case len(found) > 1:
		return nil, fmt.Errorf("%w: the %s report carries %d digests, want one (%s)", ErrMalformed, format, len(found), digestPlace[format])
	case !digestRE.MatchString(found[0]):
		return nil, fmt.Errorf("%w: the %s report's digest %q is not sha256: and 64 hex digits", ErrMalformed, format, found[0])
	}
	return &File{Format: format, Digest: found[0], Content: digestOf(file, found[0])}, nil
}

// digestPlace says where each format carries its digest, for errors.
var digestPlace = map[string]string{
	FormatText:     `a line "Report digest: sha256:…"`,
	FormatMarkdown: `a line "Report digest: sha256:…"`,
	FormatHTML:     `<meta name="cairn-report-digest" content="sha256:…">`,
	FormatJSON:     `the top-level "digest"`,
}

// sniff tells a report's format from its first bytes: "" when it is none
// of them.
func sniff(file []byte) string {
	switch {
	case bytes.HasPrefix(file, []byte("{")):
		return FormatJSON
	case bytes.HasPrefix(file, []byte("<!DOCTYPE html>")):
		return FormatHTML
	case bytes.HasPrefix(file, []byte("# "+titlePrefix)):
		return FormatMarkdown
	case bytes.HasPrefix(file, []byte(titlePrefix)):
		return FormatText
	}
	return ""
}

// firstWords shows how a file starts, for an error.
func firstWords(file []byte) string {
	const n = 40
	if len(file) == 0 {
		return "the file is empty"
	}
	head := file[:min(n, len(file))]
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i]
	}
	return fmt.Sprintf("it starts %q", head)
}
