#!/usr/bin/env bash
# `make demo`: what Cairn does today, on this machine.
#   1. audits this host and prints the summary;
#   2. audits two fixture hosts that differ by a hardware change (a memory
#      module added, a disk replaced) and shows the typed diff;
#   3. runs README.md's "A controller and two agents" sequence verbatim:
#      a controller, two enrolled agents, remote audits, baselines, drift.
set -euo pipefail
cd "$(dirname "$0")/../.."
agent=${AGENT:-bin/cairn-agent}
out=${DEMO_OUT:-$(mktemp -d)}
hw=agent/collector/testdata/hw
sw=agent/collector/testdata/sw/debian-a

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold= plain=; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }

step "1. audit of this host (one line per section)"
$agent audit --summary

step "2. two fixture servers, before and after a hardware change"
for h in host-a host-b; do
  rm -rf "$out/$h" && mkdir -p "$out/$h"
  cp -a "$sw/." "$out/$h/"          # software: the same Debian install
  rm -rf "$out/$h/sys"              # the hardware fixture brings its own /sys
  tar -xpzf "$hw/$h.tar.gz" -C "$out/$h/"  # hardware: differs
  $agent audit --root "$out/$h" -o json >"$out/$h.json"
  echo "audited $out/$h -> $out/$h.json"
done

step "3. cairn-agent diff host-a.json host-b.json"
set +e
$agent diff "$out/host-a.json" "$out/host-b.json"
code=$?
set -e
echo "(exit status $code: 0 no changes, 1 changes, 2 error)"
echo "(the audits and fixture roots are kept in $out)"
[ "$code" -eq 1 ]

step "4. README: a controller and two agents (enroll, audit, baseline, drift)"
awk '/^## A controller and two agents/{f=1} f&&/^```sh/{b=1;next} b&&/^```/{exit} b' README.md >"$out/readme.sh"
# Its own process group, so a failure cannot leave the controller or agents running.
PATH="$PWD/bin:$PATH" setsid bash -e "$out/readme.sh" &
pid=$!
trap 'kill -- -$pid 2>/dev/null || true' EXIT
wait $pid
