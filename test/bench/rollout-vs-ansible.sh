#!/usr/bin/env bash
# Times the same two-step deployment — place a config file, then run a
# command — to HOSTS (default 50) hosts with Cairn and with Ansible, side by
# side on this machine, and prints each side's median and the ratio.
#
#   test/bench/rollout-vs-ansible.sh              # 3 runs each, alternating
#   RUNS=5 HOSTS=20 test/bench/rollout-vs-ansible.sh
#   KEEP=1 test/bench/rollout-vs-ansible.sh       # keep the work directory
#
# Cairn: one cairn-controller and HOSTS `cairn-agent run` processes, each
# with its own root (the debian-a software fixture with the host-a
# hardware fixture, as in the demo). Each run deploys a new version of
# test/bench/rollout/release.yaml.in (a file step and an exec step, the
# command's result declared in expect), created by a release manager,
# sealed, tested by a tester and approved by an approver, then started by
# an operator with
#   cairnctl rollout start … --strategy all-at-once --max-parallel HOSTS --watch
# The time is that command's: from the start until it has seen the rollout
# complete (the controller's own created → finished time is printed too).
# It includes what every Cairn rollout does: a pre-audit of each node, the
# drift pre-check against its CMS baseline, the steps, a post-audit, the
# three-way compare against the declared changes and the baseline update.
#
# Ansible: an inventory of HOSTS hosts on the local connection, each with
# its own root directory, and test/bench/rollout/playbook.yml (copy, then
# command; no fact gathering), run with -f HOSTS. The time is the
# ansible-playbook process.
#
# Setup (controller, enrollment, users, the release's create/seal/test/
# approve, Ansible's inventory) is not timed. Every run writes a new
# version to every host on both sides, and the script checks afterwards
# that every host holds the expected files.
#
# Needs ansible-playbook (Debian's ansible-core; installed with apt-get
# when missing, which needs root), jq, and a few hundred MB of disk.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
RUNS=${RUNS:-3}
HOSTS=${HOSTS:-50}
bench=$repo/test/bench/rollout
sw=$repo/agent/collector/testdata/sw/debian-a
hw=$repo/agent/collector/testdata/hw/host-a.tar.gz

if ! command -v ansible-playbook >/dev/null; then
  echo "installing ansible-core from Debian" >&2
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ansible-core >/dev/null
fi
if [ ! -x /usr/bin/time ]; then
  echo "installing GNU time from Debian" >&2
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends time >/dev/null
fi
command -v jq >/dev/null || { echo "rollout-vs-ansible: needs jq" >&2; exit 2; }

make -s build
export PATH=$repo/bin:$PATH
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-rollout-bench.XXXXXX")
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "${KEEP:-}" = 1 ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
log() { printf '%s\n' "$*" >&2; }
die() { log "rollout-vs-ansible: $*"; exit 1; }
now() { echo "$EPOCHREALTIME"; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }
# cpu_ticks PID...: user+system CPU of the processes and their reaped
# children (the agents' plugin processes), in clock ticks.
cpu_ticks() {
  local pid sum=0 f
  for pid in "$@"; do
    # The fields after the command name; 12-15 of them (14-17 of the
    # line) are utime stime cutime cstime.
    read -ra f < <(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
    [ ${#f[@]} -ge 15 ] || continue
    sum=$((sum + f[11] + f[12] + f[13] + f[14]))
  done
  echo "$sum"
}
hz=$(getconf CLK_TCK)

# ---------- Cairn: controller, users, agents (not timed) ----------

log "setup: controller, users, $HOSTS agents in $work"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export CAIRN_CONTROLLER=127.0.0.1:$port CAIRN_CA=$work/ctl/ca.pem
cairn-controller init --data-dir "$work/ctl" >"$work/init.txt"
admin=$(grep -o 'cairn_u_[A-Za-z0-9_-]*' "$work/init.txt" | head -1)
[ -n "$admin" ] || die "cairn-controller init printed no admin token"
cairn-controller serve --data-dir "$work/ctl" --listen "$CAIRN_CONTROLLER" 2>"$work/controller.log" &
ctl_pid=$!
pids+=("$ctl_pid")
until CAIRN_TOKEN=$admin cairnctl whoami >/dev/null 2>&1; do
  kill -0 "$ctl_pid" 2>/dev/null || { cat "$work/controller.log" >&2; die "the controller exited"; }
  sleep 0.1
done

# The three sign-off roles are different people (the controller enforces
# it); an operator starts the rollouts.
declare -A tok
for u in rm:release-manager qa:tester boss:approver ops:operator; do
  CAIRN_TOKEN=$admin cairnctl user create "${u%%:*}" --role "${u#*:}" >/dev/null
  tok[${u%%:*}]=$(CAIRN_TOKEN=$admin cairnctl token create --user "${u%%:*}" 2>/dev/null)
done
as() { local who=$1; shift; CAIRN_TOKEN=${tok[$who]} cairnctl "$@"; }

join=$(CAIRN_TOKEN=$admin cairnctl enroll-token create --ttl 1h --uses "$HOSTS" --labels bench=rollout -o json | jq -r .token)
for ((i = 1; i <= HOSTS; i++)); do
  h=$(printf 'node%03d' "$i")
  root=$work/cairn/$h/root
  mkdir -p "$root"
  cp -a "$sw/." "$root/"
  rm -rf "$root/sys"
  tar -xpzf "$hw" -C "$root/"
  echo "$h" >"$root/etc/hostname"
  mkdir -p "$root/etc/bench"
  cairn-agent run --controller "$CAIRN_CONTROLLER" --token "$join" --ca "$CAIRN_CA" \
    --data-dir "$work/cairn/$h/data" --root "$root" --log-level warn 2>"$work/cairn/$h/agent.log" &
  pids+=("$!")
done
connected() {
  as ops node list --selector bench=rollout -o json |
    jq '[.nodes[]? | select(.state == "STATE_CONNECTED")] | length'
}
deadline=$((SECONDS + 120))
until [ "$(connected)" -eq "$HOSTS" ]; do
  [ $SECONDS -lt $deadline ] || die "only $(connected) of $HOSTS agents connected after 2 minutes; logs in $work/cairn/*/agent.log"
  sleep 0.5
done
log "setup: $HOSTS agents connected"

# Every node's authorized baseline: its first audit, accepted by an
# operator, as a CMS holds before any rollout. The files the release
# touches are tracked, as the rollouts' audits track them.
as ops audit run --selector bench=rollout --track /etc/bench/app.conf --track /etc/bench/app.conf.active \
  --wait --wait-timeout 2m >"$work/baseline-audit.txt"
for ((i = 1; i <= HOSTS; i++)); do
  as ops cms baseline accept "$(printf 'node%03d' "$i")" --reason "rollout benchmark: initial build" >/dev/null
done

# release VERSION: writes the manifest of VERSION and prints its path.
release() {
  local v=$1 sha
  sha=$(printf '# bench-app %s, placed by the rollout benchmark\nlisten = 8080\nrelease = %s\n' "$v" "$v" | sha256sum | cut -d' ' -f1)
  sed -e "s/@VERSION@/$v/g" -e "s/@ACTIVE_SHA256@/$sha/g" "$bench/release.yaml.in" >"$work/release-$v.yaml"
  echo "$work/release-$v.yaml"
}

# signoff VERSION: create, seal, test and approve the release (not timed).
signoff() {
  local v=$1 ref=bench-app@$1
  as rm release create -f "$(release "$v")" >/dev/null
  as rm release seal "$ref" >/dev/null
  as qa release test record "$ref" --result pass --note "rollout benchmark" >/dev/null
  as boss release approve "$ref" --note "rollout benchmark" >/dev/null
}

# cairn_run VERSION: rolls VERSION out to every node with `rollout start
# --watch`, which returns when the rollout has ended. It sets c_ms (the
# wall time in ms), c_ctl (the controller's own created → finished time
# in ms), c_cpu (CPU seconds of the controller and the agents with their
# plugins) and c_ctlcpu (of the controller alone).
cairn_run() {
  local v=$1 t0 t1 rec state passed c f cpu0 cpu1 ctl0 ctl1
  cpu0=$(cpu_ticks "${pids[@]}")
  ctl0=$(cpu_ticks "$ctl_pid")
  t0=$(now)
  as ops rollout start "bench-app@$v" --selector bench=rollout --strategy all-at-once \
    --max-parallel "$HOSTS" --watch -o json >"$work/rollout-$v.json" 2>"$work/rollout-$v.watch" || true
  t1=$(now)
  cpu1=$(cpu_ticks "${pids[@]}")
  ctl1=$(cpu_ticks "$ctl_pid")
  rec=$(cat "$work/rollout-$v.json")
  state=$(jq -r '.state // empty' <<<"$rec" 2>/dev/null || true)
  [ "$state" = completed ] ||
    die "rollout of bench-app@$v ended ${state:-without a record}: $(jq -r '.reason // empty' <<<"$rec" 2>/dev/null)$(tail -3 "$work/rollout-$v.watch"); see $work/rollout-$v.json"
  passed=$(jq -r '.counts.passed // 0' <<<"$rec")
  [ "$passed" -eq "$HOSTS" ] || die "rollout of bench-app@$v completed with $passed of $HOSTS nodes passed; see $work/rollout-$v.json"
  c=$(date -d "$(jq -r .created_at <<<"$rec")" +%s.%N)
  f=$(date -d "$(jq -r .finished_at <<<"$rec")" +%s.%N)
  c_ms=$(ms "$t0" "$t1")
  c_ctl=$(ms "$c" "$f")
  c_cpu=$(awk -v t=$((cpu1 - cpu0)) -v hz="$hz" 'BEGIN { printf "%.1f", t / hz }')
  c_ctlcpu=$(awk -v t=$((ctl1 - ctl0)) -v hz="$hz" 'BEGIN { printf "%.1f", t / hz }')
}

# ---------- Ansible: inventory (not timed) ----------

mkdir -p "$work/ansible"
{
  echo "[bench]"
  for ((i = 1; i <= HOSTS; i++)); do
    h=$(printf 'node%03d' "$i")
    mkdir -p "$work/ansible/$h/etc/bench"
    echo "$h ansible_connection=local ansible_python_interpreter=/usr/bin/python3 root=$work/ansible/$h"
  done
} >"$work/ansible/inventory"
export ANSIBLE_LOCAL_TEMP=$work/ansible/tmp ANSIBLE_REMOTE_TEMP=$work/ansible/rtmp \
  ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_NOCOLOR=1

# ansible_run VERSION: runs the playbook for VERSION. It sets a_ms (the
# wall time in ms) and a_cpu (CPU seconds of ansible-playbook and its
# forks).
ansible_run() {
  local v=$1 t0 t1
  t0=$(now)
  /usr/bin/time -f '%U %S' -o "$work/ansible/time-$v" \
    ansible-playbook -i "$work/ansible/inventory" -f "$HOSTS" -e "version=$v" "$bench/playbook.yml" \
    >"$work/ansible/run-$v.log" 2>&1 || die "ansible-playbook failed; see $work/ansible/run-$v.log"
  t1=$(now)
  a_ms=$(ms "$t0" "$t1")
  a_cpu=$(tail -n 1 "$work/ansible/time-$v" | awk '{ printf "%.1f", $1 + $2 }')
}

# check SIDE VERSION: every host of SIDE holds VERSION's two files.
check() {
  local side=$1 v=$2 want got i h
  want=$(printf '# bench-app %s, placed by the rollout benchmark\nlisten = 8080\nrelease = %s\n' "$v" "$v" | sha256sum | cut -d' ' -f1)
  for ((i = 1; i <= HOSTS; i++)); do
    h=$(printf 'node%03d' "$i")
    local dir=$work/$side/$h
    [ "$side" = cairn ] && dir=$dir/root
    for f in app.conf app.conf.active; do
      got=$(sha256sum "$dir/etc/bench/$f" 2>/dev/null | cut -d' ' -f1 || true)
      [ "$got" = "$want" ] || die "$side run of $v: $h's /etc/bench/$f is not the release's (sha256 ${got:-missing})"
    done
  done
}

# ---------- the runs, alternating ----------

# Warm-up, not counted: each side once (page cache, Python's bytecode,
# the controller's first rollout).
v=0.0.1
signoff "$v"
log "warm-up: cairn"
cairn_run "$v"
check cairn "$v"
log "warm-up: ansible"
ansible_run "$v"
check ansible "$v"

for ((r = 1; r <= RUNS; r++)); do
  v=1.0.$r
  signoff "$v"
  cairn_run "$v"
  check cairn "$v"
  ansible_run "$v"
  check ansible "$v"
  echo "$c_ms $c_cpu" >>"$work/cairn.runs"
  echo "$a_ms $a_cpu" >>"$work/ansible.runs"
  log "run $r/$RUNS: cairn ${c_ms} ms, ${c_cpu} CPU s of which the controller ${c_ctlcpu} (its rollout: created → finished ${c_ctl} ms); ansible ${a_ms} ms, ${a_cpu} CPU s"
done

# ---------- report ----------

median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
c_med=$(cut -d' ' -f1 "$work/cairn.runs" | median)
a_med=$(cut -d' ' -f1 "$work/ansible.runs" | median)
last=$work/rollout-1.0.$RUNS.json

echo
printf '%s hosts, %d runs each, alternating, on %s cores (%s)\n' "$HOSTS" "$RUNS" "$(nproc)" "$(ansible-playbook --version | head -1)"
printf '%-8s %10s %14s   %s\n' tool "median ms" "median CPU s" "runs (ms)"
for t in cairn ansible; do
  printf '%-8s %10s %14s   %s\n' "$t" "$(cut -d' ' -f1 "$work/$t.runs" | median)" \
    "$(cut -d' ' -f2 "$work/$t.runs" | median)" "$(cut -d' ' -f1 "$work/$t.runs" | paste -sd' ')"
done
awk -v c="$c_med" -v a="$a_med" 'BEGIN {
  if (c <= 0 || a <= 0) { print "ratio: n/a"; exit }
  if (a >= c) printf "cairn is %.1fx faster than ansible\n", a / c
  else printf "cairn is %.1fx slower than ansible\n", c / a
}'
echo
echo "What each side did per host and run:"
echo "  cairn:   rollout start → pre-audit (all collectors, the release's files tracked) → drift pre-check"
echo "           against the CMS baseline → file step → exec step → post-audit → three-way compare with"
echo "           the declared changes → baseline advanced; every transition persisted by the controller"
echo "           (all-at-once, max-parallel $HOSTS; timed until the rollout is completed)."
echo "           Last run: $(jq -r '"\(.counts.passed // 0) passed, \(.counts.failed // 0) failed, \(.counts.unreachable // 0) unreachable;" +
  " \([.nodes[] | select(.has_baseline)] | length) nodes checked against a baseline, \([.nodes[] | select((.drift_changes // 0) > 0)] | length) drifted;" +
  " node time median \([.nodes[].duration_seconds] | sort | .[length / 2 | floor] * 1000 | floor) ms"' "$last")."
echo "           Comparison of $(jq -r '.nodes[0].hostname' "$last"): $(jq -r '.nodes[0].comparison_json // empty' "$last" | base64 -d 2>/dev/null | jq -r .summary 2>/dev/null || echo '?')."
echo "  ansible: copy → command, no fact gathering, no audit or comparison (forks $HOSTS, local connection)."
echo "  Both: a new version per run, checked afterwards on every host; setup (enrollment, sign-off,"
echo "  inventory) not timed."
