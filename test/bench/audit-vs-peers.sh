#!/usr/bin/env bash
# Times a full `cairn-agent audit -o json` against the peer inventory tools
# facter (and ohai when Debian can install it), side by side in one run:
# the tools alternate, RUNS times each, on this machine, and the script
# prints each tool's median wall time and peak RSS and the ratio to Cairn.
#
#   test/bench/audit-vs-peers.sh            # 7 runs each
#   RUNS=15 test/bench/audit-vs-peers.sh
#
# Needs root for apt-get when facter, ohai or GNU time are missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-7}

need=()
command -v facter >/dev/null || need+=(facter)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} from Debian" >&2
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
if ! command -v ohai >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ohai >/dev/null 2>&1 \
    || echo "ohai could not be installed from Debian; comparing with facter only" >&2
fi

make -s build
agent=$PWD/bin/cairn-agent
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

declare -A cmds=(
  [cairn]="$agent audit -o json"
  [facter]="facter --json"
)
order=(cairn facter)
if command -v ohai >/dev/null; then
  cmds[ohai]="ohai"
  order+=(ohai)
fi

# Warm-up run of each (page cache, facter's and ohai's Ruby load paths).
for t in "${order[@]}"; do ${cmds[$t]} >/dev/null 2>&1 || true; done

# Wall time from bash's microsecond clock around each run; peak RSS from
# GNU time (its last line: a failing command adds a line before it).
for ((i = 1; i <= RUNS; i++)); do
  for t in "${order[@]}"; do
    start=$EPOCHREALTIME
    /usr/bin/time -f "%M" -o "$work/time" ${cmds[$t]} >"$work/out.$t" 2>"$work/err.$t" || true
    end=$EPOCHREALTIME
    echo "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", (b - a) * 1000 }') $(tail -n 1 "$work/time")" >>"$work/$t.runs"
  done
done

median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

printf '%-8s %12s %14s %10s   (%d runs each, alternating, %s cores)\n' tool "median ms" "peak RSS MB" "vs cairn" "$RUNS" "$(nproc)"
base=$(cut -d' ' -f1 "$work/cairn.runs" | median)
for t in "${order[@]}"; do
  med=$(cut -d' ' -f1 "$work/$t.runs" | median)
  rss=$(cut -d' ' -f2 "$work/$t.runs" | sort -n | tail -1)
  ratio=$(awk -v a="$med" -v b="$base" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "n/a" }')
  printf '%-8s %12s %14.1f %10s\n' "$t" "$med" "$(awk -v k="$rss" 'BEGIN{print k/1024}')" "$ratio"
done
printf 'output bytes:'
for t in "${order[@]}"; do printf ' %s=%s' "$t" "$(wc -c <"$work/out.$t")"; done
echo
for t in "${order[@]}"; do
  n=$(grep -c . "$work/err.$t" || true)
  [ "$n" -eq 0 ] || echo "note: $t wrote $n lines to stderr on its last run, e.g.: $(head -c 160 "$work/err.$t" | head -1)"
done
