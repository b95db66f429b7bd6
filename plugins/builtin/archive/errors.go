package archive

import "errors"

// Errors a step can fail with; check with errors.Is.
var (
	// ErrUnsafeEntry: the archive holds an entry that could write outside
	// the destination (absolute name, "..", a symlink that does not lead
	// inside the destination in the tree after extraction, or that would
	// make a symlink already on disk lead outside, a hard link to
	// something that is not one of the archive's own files, a write
	// through a symlink), an entry kind that is never extracted (device,
	// FIFO), or a name or link target that is not UTF-8. Nothing is
	// extracted from such an archive.
	ErrUnsafeEntry = errors.New("unsafe archive entry")
	// ErrFormat: the artifact is not a tar, tar.gz or zip archive, is not
	// the format the parameters name, or is damaged or truncated (a tar
	// must end with its end-of-archive marker).
	ErrFormat = errors.New("unknown archive format")
	// ErrChangedArtifact: the artifact read differently on the second pass
	// than on the first.
	ErrChangedArtifact = errors.New("artifact changed while extracting")
	// ErrLimit: the archive holds more members or bytes than the step's
	// max_entries or max_bytes allow, or expands more than max_ratio
	// times its size. It is found while checking, before anything is
	// written.
	ErrLimit = errors.New("archive limit exceeded")
	// ErrNoSpace: the destination's filesystem (or the backups') would
	// have less than 64 MiB free after the extraction.
	ErrNoSpace = errors.New("not enough free space")
)
