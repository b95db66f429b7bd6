#!/bin/sh
# Builds the greeter's .deb packages from greeter/, byte for byte the same
# on every run, and prints their sha256:
#
#   OUTDIR/greeter_1.0.0_all.deb   the release make demo rolls out
#   OUTDIR/greeter_1.0.1_all.deb   the release make demo-fail rolls out
#
# Usage: build.sh OUTDIR   (created if missing; the packages are not kept
# in the source tree)
#
# Each is greeter/ with DEBIAN/control's Version set, plus the files of
# overlay-VERSION/ when there is one (1.0.1 also ships a debug unit).
# Modes are set explicitly and mtimes to 0, so neither the checkout's
# umask nor the time of the build changes the bytes. Needs dpkg-deb
# (Debian: dpkg).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
out=$(mkdir -p "$1" && cd "$1" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
export SOURCE_DATE_EPOCH=0
for version in 1.0.0 1.0.1; do
	tree=$stage/greeter_$version
	cp -R "$here/greeter" "$tree"
	if [ -d "$here/overlay-$version" ]; then
		cp -R "$here/overlay-$version/." "$tree/"
	fi
	sed -i "s/^Version: .*/Version: $version/" "$tree/DEBIAN/control"
	find "$tree" -type d -exec chmod 0755 {} +
	find "$tree" -type f -exec chmod 0644 {} +
	chmod 0755 "$tree/usr/bin/greeter"
	find "$tree" -exec touch -h -d @0 {} +
	dpkg-deb --root-owner-group -Zgzip --build "$tree" "$out/greeter_${version}_all.deb" >/dev/null
done
cd "$out" && sha256sum greeter_1.0.0_all.deb greeter_1.0.1_all.deb
