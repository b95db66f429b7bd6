// Package inroot opens paths inside a root directory the way a process
// chrooted there would see them: every symlink, absolute ones included,
// resolves inside the root, and ".." stops at the root. It uses Linux's
// openat2 with RESOLVE_IN_ROOT, so the kernel does the resolution in one
// step and nothing outside the root can be reached, even through a link
// swapped in meanwhile.
//
// os.Root is stricter: it refuses absolute symlinks altogether, which a
// real Debian root has (/var/run -> /run). Code that must behave on a
// real host as it does on a test root uses this package.
package inroot
