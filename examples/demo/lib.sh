# shellcheck shell=bash
# What demo.sh and demo-fail.sh share: sourced by them, not run.
#
# demo_start makes a data directory, starts a controller and three agents
# (each in its own process group, all stopped by an EXIT trap), and creates
# the people of the story: alice (release-manager), bob (tester), carol
# (approver), dave (operator) and erin (auditor). release_signed_off
# builds, creates, seals, tests and approves a release of the greeter
# (examples/rollout) the way alice, bob and carol would.
#
# Everything is kept in the data directory for inspection: the controller's
# data and log, each agent's root, data and log, the packages built, the
# reports. Set DEMO_DIR to choose it (it must not exist or be empty).

cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit
export PATH=$PWD/bin:$PATH

if [ -t 1 ]; then bold=$'\033[1m' dim=$'\033[2m' plain=$'\033[0m'; else bold='' dim='' plain=''; fi

# step prints a section header; say a line of narration.
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
say() { printf '%s%s%s\n' "$dim" "$*" "$plain"; }

# shown CMD...: CMD as one would type it: arguments with spaces quoted,
# the data directory written as $D.
shown() {
	local a out=''
	for a in "$@"; do
		case $a in
		*[[:space:]\'\"\$\`\\\;\&\|\<\>\(\)\*\?]* | '') a="'${a//\'/\'\\\'\'}'" ;;
		"$D"*) a="\$D${a#"$D"}" ;;
		esac
		out+=" $a"
	done
	printf '%s' "${out# }"
}

# as USER CMD...: run CMD with USER's API token, showing it as typed.
declare -A token=()
as() {
	local who=$1
	shift
	printf '%s%s$ %s%s\n' "$bold" "$who" "$(shown "$@")" "$plain"
	CAIRN_TOKEN=${token[$who]} "$@"
}

# fail prints a message (and where to look) and exits non-zero.
fail() {
	printf '\n%sdemo failed: %s%s\n' "$bold" "$*" "$plain" >&2
	[ -z "${D:-}" ] || printf 'logs and data: %s\n' "$D" >&2
	exit 1
}

# check WHAT CMD...: run CMD, print "ok" or "FAIL" and WHAT; a failure
# sets failed=1 (see checked).
failed=0
check() {
	local what=$1
	shift
	if "$@"; then echo "ok    $what"; else echo "FAIL  $what"; failed=1; fi
}

# checked WHAT: fail unless every check passed.
checked() {
	[ "$failed" = 0 ] || fail "$1"
}

# wait_until SECONDS WHAT CMD...: run CMD until it succeeds; fail after
# SECONDS, saying WHAT was awaited.
wait_until() {
	local limit=$1 what=$2 deadline=$((SECONDS + $1))
	shift 2
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$deadline" ] || fail "$what: not done within ${limit}s"
		sleep 0.2
	done
}

# Processes this script started, each the leader of its own process
# group (setsid), so that stopping one stops its plugin processes too.
pids=()
spawn() {
	local log=$1
	shift
	setsid "$@" 2>"$log" &
	pids+=("$!")
}
alive() {
	kill -0 "$1" 2>/dev/null
}
stop_all() {
	local i pid deadline=$((SECONDS + 10))
	# Agents first (newest first), then the controller: SIGTERM to each
	# group, a grace period, then SIGKILL for whatever is left.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM -- "-${pids[i]}" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
		kill -KILL -- "-$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	pids=()
}
on_exit() {
	local code=$?
	stop_all
	printf '\n%s(everything this demo started is stopped; its data is kept in %s)%s\n' "$dim" "$D" "$plain"
	exit "$code"
}

# demo_start: data dir, controller, three agents, users.
demo_start() {
	for tool in cairn-controller cairn-agent cairnctl; do
		[ -x "bin/$tool" ] || fail "bin/$tool is missing: run make build (or make demo)"
	done
	command -v dpkg-deb >/dev/null || fail "dpkg-deb is missing: apt-get install dpkg"
	command -v systemctl >/dev/null || fail "systemctl is missing: apt-get install systemd (only its offline 'systemctl --root' is used)"

	D=${DEMO_DIR:-$(mktemp -d -t cairn-demo.XXXXXX)}
	mkdir -p "$D"
	[ -z "$(ls -A "$D")" ] || { echo "DEMO_DIR $D is not empty" >&2; exit 2; }
	D=$(cd "$D" && pwd)
	trap on_exit EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	say "D=$D (the demo's data directory, kept when it ends)"

	step "A controller"
	cairn-controller init --data-dir "$D/ctl" >"$D/init.txt"
	token[admin]=$(grep -o 'cairn_u_[a-z0-9]*' "$D/init.txt" | head -1)
	[ -n "${token[admin]}" ] || fail "cairn-controller init printed no admin token (see $D/init.txt)"
	export CAIRN_CA=$D/ctl/ca.pem
	# Port 0: the controller picks a free port and logs it.
	spawn "$D/controller.log" cairn-controller serve --data-dir "$D/ctl" --listen 127.0.0.1:0
	wait_until 20 "the controller logging its address" grep -q 'cairn-controller serving' "$D/controller.log"
	CAIRN_CONTROLLER=$(sed -n 's/.*cairn-controller serving.* listen=\([^ ]*\).*/\1/p' "$D/controller.log" | head -1)
	export CAIRN_CONTROLLER
	CAIRN_TOKEN=${token[admin]} wait_until 20 "the controller answering" cairnctl whoami
	say "$(shown cairn-controller serve --data-dir "$D/ctl" --listen "$CAIRN_CONTROLLER")  (log: \$D/controller.log)"

	step "Three agents, each with its own root: a minimal Debian and a hardware fixture"
	local enroll n hw
	enroll=$(CAIRN_TOKEN=${token[admin]} cairnctl enroll-token create --uses 3 --labels env=demo,role=web -o json |
		grep -o 'cairn_e_[a-z0-9]*' | head -1)
	[ -n "$enroll" ] || fail "no enrollment token"
	for n in 1 2 3; do
		# web2 has one DIMM more and another disk model than web1 and web3.
		hw=host-a
		[ "$n" = 2 ] && hw=host-b
		make_root "$D/web$n" "web$n" "$hw"
		# The join token goes in the environment, not on the command line.
		spawn "$D/agent$n.log" env CAIRN_ENROLL_TOKEN="$enroll" cairn-agent run \
			--controller "$CAIRN_CONTROLLER" --ca "$CAIRN_CA" --data-dir "$D/agent$n" --root "$D/web$n"
		say "web$n ($hw): $(shown cairn-agent run --root "$D/web$n" --data-dir "$D/agent$n")  (log: \$D/agent$n.log)"
	done
	CAIRN_TOKEN=${token[admin]} wait_until 30 "three agents connected" connected 3
	CAIRN_TOKEN=${token[admin]} cairnctl node list

	step "The people: three who sign a release off (never the same person), an operator, an auditor"
	local who role
	for who in alice:release-manager bob:tester carol:approver dave:operator erin:auditor; do
		role=${who#*:} who=${who%%:*}
		as admin cairnctl user create "$who" --role "$role"
		token[$who]=$(CAIRN_TOKEN=${token[admin]} cairnctl token create --user "$who" 2>/dev/null)
		[ -n "${token[$who]}" ] || fail "no token for $who"
	done
}

# make_root DIR HOSTNAME HW: a server's root tree. The software is the
# collector fixture debian-a with a clean dpkg database (the fixture's own
# has broken packages on purpose, which dpkg would repair during an
# install: an unexpected change); the hardware is a fixture tarball.
make_root() {
	local root=$1 name=$2 hw=$3
	mkdir -p "$root"
	cp -a agent/collector/testdata/sw/debian-a/. "$root/"
	rm -rf "$root/sys"
	tar -xpzf "agent/collector/testdata/hw/$hw.tar.gz" -C "$root/"
	cp examples/demo/dpkg-status "$root/var/lib/dpkg/status"
	mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
	sed -n 's/^Package: //p' "$root/var/lib/dpkg/status" | while read -r pkg; do
		: >"$root/var/lib/dpkg/info/$pkg.list"
		: >"$root/var/lib/dpkg/info/$pkg.md5sums"
	done
	echo "$name" >"$root/etc/hostname"
	echo "$name" >"$root/proc/sys/kernel/hostname"
}

# connected N: N nodes are connected.
connected() {
	[ "$(cairnctl node list -o json | grep -c '"STATE_CONNECTED"')" -ge "$1" ]
}

# release_signed_off VERSION: alice builds and creates greeter@VERSION,
# seals it; bob tests it in a sandbox root and records a pass; carol
# approves it.
release_signed_off() {
	local v=$1 rel=greeter@$1 art=$D/release
	mkdir -p "$art"
	cp "examples/rollout/release-$v.yaml" "$art/"
	step "Release $rel: build, create, seal"
	as alice examples/rollout/build.sh "$art"
	as alice cairnctl release create -f "$art/release-$v.yaml"
	as alice cairnctl release seal "$rel"

	step "Release $rel: bob tests it in a sandbox root, carol approves it"
	local sandbox=$D/test-$v
	make_root "$sandbox/root" test host-a
	as bob cairn-agent apply -f "$art/release-$v.yaml" --root "$sandbox/root" --data-dir "$sandbox/data" \
		>"$sandbox/evidence.txt" 2>&1 || { cat "$sandbox/evidence.txt"; fail "bob's test of $rel failed"; }
	cat "$sandbox/evidence.txt"
	as bob cairnctl release test record "$rel" --result pass --evidence "$sandbox/evidence.txt" \
		--note "installed, configured, enabled and verified in a sandbox root"
	as carol cairnctl release approve "$rel" --note "CAB: change CHG-$v approved"
}

# canary_audits ID: sets canary to the first wave's node, and pre, post
# and rolled to the IDs of its audits before and after its deployment and
# after its rollback (empty when it was not rolled back).
# shellcheck disable=SC2034 # canary, pre, post and rolled are its results
canary_audits() {
	local status
	status=$(CAIRN_TOKEN=${token[erin]} cairnctl rollout status "$1" -o json)
	# A node's fields come in proto order: hostname, wave, state, ...,
	# pre_audit_id, ..., post_audit_id, ..., rollback_audit_id.
	canary=$(canary_field hostname <<<"$status")
	pre=$(canary_field pre_audit_id <<<"$status")
	post=$(canary_field post_audit_id <<<"$status")
	rolled=$(canary_field rollback_audit_id <<<"$status")
	if [ -z "$pre" ] || [ -z "$post" ]; then
		fail "rollout $1 has no canary audits (cairnctl rollout status $1 -o json)"
	fi
}

# canary_field NAME: the string field NAME of the first wave's node in a
# rollout's JSON on standard input.
canary_field() {
	awk -F'"' -v name="$1" '
		/"hostname"/ { node = 1; h = $4 }
		node && /"wave": 1,/ { canary = 1; if (name == "hostname") { print h; exit } }
		canary && $2 == name { print $4; exit }
		canary && /^    }/ { exit }'
}
