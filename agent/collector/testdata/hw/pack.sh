#!/usr/bin/env bash
# pack.sh packs the unpacked hardware fixture trees host-a/ and host-b/
# (those that are present) into host-a.tar.gz and host-b.tar.gz, then
# removes the trees (-k keeps them). See README.md for why the fixtures are
# tarballs and how to change them.
#
# The archives are reproducible: entries sorted by name, owner and group 0
# without names, every mtime 2026-01-01 UTC, modes as on disk less group
# and other write (so the packer's umask does not matter), and no name or
# time in the gzip header. Packing the same trees twice gives the same
# bytes, so an unchanged tree shows no diff.
set -euo pipefail
cd "$(dirname "$0")"
export LC_ALL=C

keep=false
if [ "${1:-}" = -k ]; then keep=true; shift; fi
if [ $# -ne 0 ]; then echo "usage: $0 [-k]" >&2; exit 2; fi

packed=0
for h in host-a host-b; do
  [ -d "$h" ] || continue
  tar --sort=name --format=gnu --owner=0 --group=0 --numeric-owner \
    --mode=go-w --mtime='2026-01-01 00:00Z' -C "$h" -cf - . |
    gzip -n -9 >"$h.tar.gz.tmp"
  mv "$h.tar.gz.tmp" "$h.tar.gz"
  $keep || rm -rf "$h"
  echo "packed $h.tar.gz"
  packed=$((packed + 1))
done
if [ "$packed" -eq 0 ]; then
  echo "$0: no host-a/ or host-b/ to pack; unpack first (see README.md)" >&2
  exit 1
fi
