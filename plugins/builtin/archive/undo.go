package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/cairn-ops/cairn/internal/atomicfile"
)

// record is Apply's rollback record, saved as the step's write-ahead undo
// record (sdk.SaveUndo) before anything changes: every path Apply will
// create, every path it will replace with what was there, and the
// directories it makes to create dest.
type record struct {
	Dest string `json:"dest"`
	// MadeDest are directories made to create dest, relative to the root,
	// outermost first.
	MadeDest []string `json:"made_dest,omitempty"`
	// Created are paths relative to dest, parents before children.
	Created []string `json:"created,omitempty"`
	// Replaced are paths relative to dest whose previous content is kept.
	Replaced []replaced `json:"replaced,omitempty"`
	// BackupDir holds the previous contents of replaced files.
	BackupDir string `json:"backup_dir,omitempty"`
	// Temp names this step's temporary files (see tempName); empty in
	// records of older versions.
	Temp string `json:"temp,omitempty"`
}

type replaced struct {
	Path string      `json:"path"`
	Mode fs.FileMode `json:"mode"`
	// Link is the previous symlink target, for a replaced symlink;
	// LinkRaw holds it instead when it is not UTF-8 (JSON strings are).
	Link    string `json:"link,omitempty"`
	LinkRaw []byte `json:"link_raw,omitempty"`
	// Backup is the file in BackupDir with the previous content, and
	// SHA256 that content's digest: a Rollback run again after one that
	// finished (and removed the backups) but was not journaled finds the
	// file restored already by it.
	Backup string `json:"backup,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
}

func (r *record) empty() bool {
	return len(r.MadeDest) == 0 && len(r.Created) == 0 && len(r.Replaced) == 0
}

// tempTag derives the step's temporary-name tag from what stays the same
// across its attempts, so that a re-run or a rollback finds the
// temporary files of an attempt that was killed.
func tempTag(key, step, dest string) string {
	sum := sha256.Sum256([]byte("archive\x00" + key + "\x00" + step + "\x00" + dest))
	return hex.EncodeToString(sum[:6])
}

// tempName is the temporary file beside p that extracting or restoring p
// writes before renaming it into place.
func tempName(tag, p string) string {
	sum := sha256.Sum256([]byte(p))
	name := ".cairn-archive-" + tag + "-" + hex.EncodeToString(sum[:8]) + ".tmp"
	if tag == "" { // a record of an older version
		name = fmt.Sprintf(".cairn-archive-%d-restore.tmp", os.Getpid())
	}
	return path.Join(path.Dir(p), name)
}

// backupName is the file in the backup directory keeping p's previous
// content: the same for every attempt of the step.
func backupName(p string) string {
	sum := sha256.Sum256([]byte(p))
	return "backup-" + hex.EncodeToString(sum[:16])
}

// planRecord returns the undo record of extracting l with acts, merged
// into prev, the record of an earlier attempt of the step that was cut
// off (nil when there is none). The earlier attempt's word on a path
// wins: a path it created stays created though it exists now, and a path
// it replaced keeps its first backup. backups lists the replaced files
// whose content must be copied before the record is saved.
func planRecord(prev *record, l *layout, acts []action, madeDest []string, dest, backupDir, tag string) (rec *record, backups []replaced, err error) {
	rec = &record{Dest: dest, BackupDir: backupDir, Temp: tag}
	if prev != nil {
		rec.MadeDest = append(rec.MadeDest, prev.MadeDest...)
		rec.Created = append(rec.Created, prev.Created...)
		rec.Replaced = append(rec.Replaced, prev.Replaced...)
		if prev.BackupDir != "" {
			rec.BackupDir = prev.BackupDir
		}
		if prev.Temp != "" {
			rec.Temp = prev.Temp
		}
	}
	known := map[string]bool{}
	for _, p := range rec.MadeDest {
		known["/"+p] = true
	}
	for _, p := range madeDest {
		if !known["/"+p] {
			rec.MadeDest = append(rec.MadeDest, p)
		}
	}
	for _, p := range rec.Created {
		known[p] = true
	}
	for _, r := range rec.Replaced {
		known[r.Path] = true
	}
	for i, e := range l.entries {
		if acts[i] == unchanged {
			continue
		}
		// The parents to make: up to the nearest one known or on disk
		// (whose own parents are then known or on disk too).
		var made []string
		for dir := parent(e.path); dir != "" && !known[dir] && l.lstat(dir) == nil; dir = parent(dir) {
			made = append(made, dir)
		}
		for j := len(made) - 1; j >= 0; j-- {
			rec.Created = append(rec.Created, made[j])
			known[made[j]] = true
		}
		if known[e.path] {
			continue
		}
		known[e.path] = true
		if acts[i] == create {
			rec.Created = append(rec.Created, e.path)
			continue
		}
		fi := l.lstat(e.path)
		r := replaced{Path: e.path, Mode: fi.Mode()}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			t, err := l.dest.Readlink(e.path)
			if err != nil {
				return nil, nil, fmt.Errorf("read symlink %q: %w", e.path, err)
			}
			r.Link = t
			if !utf8.ValidString(t) {
				r.Link, r.LinkRaw = "", []byte(t)
			}
		case fi.Mode().IsRegular():
			if rec.BackupDir == "" {
				return nil, nil, fmt.Errorf("replace %q: no state_dir or cache_dir in the step context to keep its previous content for rollback", e.path)
			}
			r.Backup = backupName(e.path)
			backups = append(backups, r)
		default:
			return nil, nil, unsafe(e.name, "would replace a %s on disk", fi.Mode().Type())
		}
		rec.Replaced = append(rec.Replaced, r)
	}
	return rec, backups, nil
}

// saveBackups copies the previous content of the files about to be
// replaced into the backup directory, durably, and notes each one's
// digest in rec.
func saveBackups(dest *os.Root, rec *record, backups []replaced) error {
	if len(backups) == 0 {
		return nil
	}
	if err := os.MkdirAll(rec.BackupDir, 0o700); err != nil {
		return fmt.Errorf("make backup directory: %w", err)
	}
	sums := map[string]string{}
	for _, r := range backups {
		sum, err := saveBackup(dest, r.Path, filepath.Join(rec.BackupDir, r.Backup))
		if err != nil {
			return fmt.Errorf("back up %q: %w", r.Path, err)
		}
		sums[r.Path] = sum
	}
	for i, r := range rec.Replaced {
		if sum, ok := sums[r.Path]; ok {
			rec.Replaced[i].SHA256 = sum
		}
	}
	return atomicfile.SyncDir(rec.BackupDir)
}

func saveBackup(dest *os.Root, p, to string) (string, error) {
	src, err := dest.Open(p)
	if err != nil {
		return "", err
	}
	defer src.Close()
	tmp := to + ".tmp"
	dst, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(dst, h), src)
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, to)
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// removeBackups deletes the backups rec names, and their directory when
// that is left empty.
func removeBackups(rec *record) {
	if rec.BackupDir == "" {
		return
	}
	for _, r := range rec.Replaced {
		if r.Backup != "" {
			os.Remove(filepath.Join(rec.BackupDir, filepath.Base(r.Backup)))
			os.Remove(filepath.Join(rec.BackupDir, filepath.Base(r.Backup)) + ".tmp")
		}
	}
	os.Remove(rec.BackupDir) // only when empty
}

// removeTemps removes the temporary files an attempt of the step may have
// left beside the paths rec names: an attempt killed between writing one
// and renaming it.
func removeTemps(dest *os.Root, rec *record) {
	if rec.Temp == "" {
		return
	}
	rm := func(p string) {
		if err := dest.Remove(tempName(rec.Temp, p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			// A directory gone or replaced since: nothing of ours there.
			return
		}
	}
	for _, p := range rec.Created {
		rm(p)
	}
	for _, r := range rec.Replaced {
		rm(r.Path)
	}
}

// undo reverts what rec says was done, or was about to be: restores
// replaced paths, removes created ones (directories only when empty),
// newest first, and the temporary files of the step's attempts. Every
// step is idempotent, so undo can run again after it was cut off.
func undo(root *os.Root, rec *record) error {
	if rec.empty() {
		return nil
	}
	destRel := strings.TrimPrefix(rec.Dest, "/")
	if destRel == "" {
		destRel = "."
	}
	var errs []error
	dest, err := root.OpenRoot(destRel)
	switch {
	case err == nil:
		defer dest.Close()
		removeTemps(dest, rec)
		for i := len(rec.Replaced) - 1; i >= 0; i-- {
			if err := restore(dest, rec, rec.Replaced[i]); err != nil {
				errs = append(errs, err)
			}
		}
		for i := len(rec.Created) - 1; i >= 0; i-- {
			if err := removeIfThere(dest, rec.Created[i]); err != nil {
				errs = append(errs, err)
			}
		}
	case !errors.Is(err, fs.ErrNotExist):
		errs = append(errs, fmt.Errorf("open destination %s: %w", rec.Dest, err))
	}
	for i := len(rec.MadeDest) - 1; i >= 0; i-- {
		if err := removeIfThere(root, rec.MadeDest[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeIfThere removes p; a directory that is not empty (someone put
// files there since) and a path already gone are left alone.
func removeIfThere(r *os.Root, p string) error {
	err := r.Remove(p)
	if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
		return nil
	}
	return fmt.Errorf("remove %q: %w", p, err)
}

// restore puts back what r recorded at its path.
func restore(dest *os.Root, rec *record, r replaced) error {
	tmp := tempName(rec.Temp, r.Path)
	dest.Remove(tmp)
	var err error
	switch {
	case r.Mode&fs.ModeSymlink != 0:
		target := r.Link
		if r.LinkRaw != nil {
			target = string(r.LinkRaw)
		}
		err = dest.Symlink(target, tmp)
	default:
		backup := filepath.Join(rec.BackupDir, filepath.Base(r.Backup))
		if restoredAlready(dest, backup, r) {
			return nil
		}
		err = copyBackup(dest, tmp, backup, r.Mode)
	}
	if err == nil {
		err = dest.Rename(tmp, r.Path)
	}
	if err != nil {
		dest.Remove(tmp)
		return fmt.Errorf("restore %q: %w", r.Path, err)
	}
	return nil
}

// restoredAlready reports whether r's backup is gone and its path holds
// the content and mode the backup had: a Rollback restored it, removed
// the backups and was cut off before the journal knew.
func restoredAlready(dest *os.Root, backup string, r replaced) bool {
	if _, err := os.Lstat(backup); !errors.Is(err, fs.ErrNotExist) || r.SHA256 == "" {
		return false
	}
	fi, err := dest.Lstat(r.Path)
	const bits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky
	if err != nil || !fi.Mode().IsRegular() || fi.Mode()&bits != r.Mode&bits {
		return false
	}
	sum, err := fileSHA(dest, r.Path)
	return err == nil && sum == r.SHA256
}

func copyBackup(dest *os.Root, name, backup string, mode fs.FileMode) error {
	src, err := os.Open(backup)
	if err != nil {
		return err
	}
	defer src.Close()
	f, err := dest.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, src)
	if err == nil {
		err = f.Chmod(mode & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
