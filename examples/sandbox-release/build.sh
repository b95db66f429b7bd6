#!/bin/sh
# Rebuilds the example's artifacts from pkg/ and site/, byte for byte the
# same on every run, and prints their sha256 for release.yaml:
#
#   webshop-assets_1.0.0_all.deb  dpkg-deb --root-owner-group --build pkg/webshop-assets
#   site.tar.gz                   the files of site/, sorted, owned by root, mtime 0
#
# Needs dpkg-deb, tar and gzip (Debian: dpkg, tar, gzip).
set -eu
cd "$(dirname "$0")"
export SOURCE_DATE_EPOCH=0
find pkg site -exec touch -h -d @0 {} +
chmod 0755 pkg/webshop-assets/DEBIAN
dpkg-deb --root-owner-group -Zgzip --build pkg/webshop-assets webshop-assets_1.0.0_all.deb >/dev/null
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C site -cf - index.html style.css | gzip -n -9 > site.tar.gz
sha256sum webshop-assets_1.0.0_all.deb site.tar.gz
