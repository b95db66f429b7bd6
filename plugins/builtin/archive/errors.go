package archive

import "errors"

// Errors a step can fail with; check with errors.Is.
var (
	// ErrUnsafeEntry: the archive holds an entry that could write outside
	// the destination (absolute name, "..", escaping or chained symlink,
	// hard link to something that is not one of the archive's own files,
	// a write through a symlink) or an entry kind that is never extracted
	// (device, FIFO). Nothing is extracted from such an archive.
	ErrUnsafeEntry = errors.New("unsafe archive entry")
	// ErrFormat: the artifact is not a tar, tar.gz or zip archive, or is
	// not the format the parameters name.
	ErrFormat = errors.New("unknown archive format")
	// ErrChangedArtifact: the artifact read differently on the second pass
	// than on the first.
	ErrChangedArtifact = errors.New("artifact changed while extracting")
)
