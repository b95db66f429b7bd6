package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
)

// budget counts one pass over an archive against the step's limits.
type budget struct {
	lim         limits
	archiveSize int64 // bytes of the archive file
	bytes       int64 // content read so far
	entries     int64 // members read so far
}

func newBudget(l limits) *budget { return &budget{lim: l} }

// entry counts one more member.
func (b *budget) entry() error {
	if b.entries++; b.entries > b.lim.entries {
		return fmt.Errorf("%w: the archive has more than %d members (max_entries); raise the step's max_entries parameter to extract it", ErrLimit, b.lim.entries)
	}
	return nil
}

// allowed is how many content bytes the limits allow in all.
func (b *budget) allowed() int64 {
	byRatio := b.lim.ratio * float64(b.archiveSize)
	if byRatio < ratioFloor {
		byRatio = ratioFloor
	}
	if byRatio < float64(b.lim.bytes) {
		return int64(byRatio)
	}
	return b.lim.bytes
}

// left is how many more content bytes the limits allow.
func (b *budget) left() int64 { return b.allowed() - b.bytes }

// add counts n more bytes of the member named name.
func (b *budget) add(name string, n int64) error {
	b.bytes += n
	if b.bytes <= b.allowed() {
		return nil
	}
	if b.bytes > b.lim.bytes {
		return fmt.Errorf("%w: member %q takes the extracted size past %d bytes (max_bytes); raise the step's max_bytes parameter to extract it", ErrLimit, shorten(name), b.lim.bytes)
	}
	return fmt.Errorf("%w: member %q takes the extracted size past %v times the archive's %d bytes (max_ratio %v); raise the step's max_ratio parameter to extract it", ErrLimit, shorten(name), b.lim.ratio, b.archiveSize, b.lim.ratio)
}

// freeSpaceMargin is the room left free on a filesystem after the
// extraction and its backups: other programs need it too.
const freeSpaceMargin = 64 << 20

// freeSpace reports the bytes available to unprivileged writers on the
// filesystem of dir; tests replace it.
var freeSpace = statfsFree

// checkSpace refuses an extraction that would leave less than
// freeSpaceMargin free on the destination's filesystem (write bytes) or
// on the backups' (backup bytes, when they are elsewhere).
func checkSpace(root *os.Root, rootDir, destRel string, write int64, backupDir string, backup int64) error {
	dir := destRel
	for {
		fi, err := root.Stat(dir)
		if err == nil && fi.IsDir() {
			break
		}
		if dir == "." || (err != nil && !errors.Is(err, fs.ErrNotExist)) {
			return nil // the extraction will say what is wrong
		}
		dir = path.Dir(dir)
	}
	destFS := strings.TrimSuffix(rootDir, "/") + "/" + dir
	free, dev, ok := freeSpace(destFS)
	if !ok {
		return nil
	}
	need := write
	if backupDir != "" && backup > 0 {
		bdir := backupDir
		for {
			if _, err := os.Stat(bdir); err == nil || bdir == "/" || bdir == "." {
				break
			}
			bdir = path.Dir(bdir)
		}
		if bfree, bdev, ok := freeSpace(bdir); ok && bdev != dev {
			if bfree < backup+freeSpaceMargin {
				return fmt.Errorf("%w: keeping the %d bytes of replaced files for rollback needs %d bytes free in %s (with a margin of %d); %d are", ErrNoSpace, backup, backup+freeSpaceMargin, bdir, freeSpaceMargin, bfree)
			}
		} else {
			need += backup
		}
	}
	if free < need+freeSpaceMargin {
		return fmt.Errorf("%w: writing %d bytes needs %d bytes free on the destination's filesystem (with a margin of %d); %d are", ErrNoSpace, need, need+freeSpaceMargin, freeSpaceMargin, free)
	}
	return nil
}
