// Package readlimit reads the files and streams Cairn is given — by an
// operator (manifests, CA certificates, config files, evidence), by a peer
// (an HTTP response, an audit document) or by a host under audit (dpkg's
// status file, /proc and /sys under the root) — with a size limit, and
// refuses input past it with an error that names the input and the limit:
//
//	release manifest /dev/zero: larger than 1 MiB (limit)
//
// Every such read in the repository goes through this package or is listed,
// with its limit and why, in the table of sites_test.go, which fails for a
// read it does not know.
//
// File and RootFile read regular files only: they never block on a named
// pipe and never open a device (opening some, such as a watchdog, has side
// effects), so a FIFO or a symlink to /dev/zero placed in an audited tree
// is refused at once. Stream is for the command-line inputs people give as
// /dev/stdin or a process substitution (<(...)): it also reads pipes,
// FIFOs and terminals, and refuses only directories; the limit still
// holds. Open and OpenRoot open a regular file for a caller that streams
// it (into a hash, say) and bounds its own reading; NewReader bounds a
// stream that is decoded as it is read; Lines scans lines, each at most a
// given length, where bufio.Scanner's own limit (64 KiB) would fail with a
// bare "token too long".
package readlimit
