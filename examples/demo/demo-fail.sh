#!/usr/bin/env bash
# `make demo-fail`: a release that makes a change it did not declare is
# stopped at its canary and rolled back.
#
#   1. as in `make demo`: a controller, three agents, alice, bob and carol;
#      greeter@1.0.0 signed off and rolled out to all three nodes;
#   2. greeter@1.0.1 is signed off the same way. Its steps all succeed and
#      bob's sandbox test passes, but one step also enables a debug
#      service that the release's expect section does not declare;
#   3. alice rolls it out canary first with --on-failure rollback: the
#      canary's post-audit shows the undeclared service, the canary fails,
#      the rollout halts before any other node starts, and the canary is
#      rolled back to 1.0.0;
#   4. the report shows the unexpected change and the rollback's proof:
#      the audit after the rollback equals the audit before the rollout.
#
# It exits 0 when all of that happened (halted, rolled back, proven), and
# non-zero otherwise. Every process it starts is stopped when it ends; the
# data directory is kept.
set -euo pipefail
# shellcheck source=examples/demo/lib.sh
source "$(dirname "$0")/lib.sh"

demo_start
release_signed_off 1.0.0

step "greeter@1.0.0 on every node (all at once), audited into the CMS"
as dave cairnctl audit run --selector env=demo --track /etc/greeter/greeter.conf --wait >/dev/null
for n in 1 2 3; do
	as dave cairnctl cms baseline accept "web$n" --reason "initial build" >/dev/null
done
as dave cairnctl rollout start greeter@1.0.0 --selector env=demo --strategy all-at-once --watch >"$D/rollout-1.0.0.txt" ||
	{ cat "$D/rollout-1.0.0.txt"; fail "the rollout of greeter@1.0.0 did not complete"; }
tail -n 3 "$D/rollout-1.0.0.txt"

release_signed_off 1.0.1

step "Rollout of greeter@1.0.1, canary first, rolled back on failure"
set +e
as dave cairnctl rollout start greeter@1.0.1 --selector env=demo --waves 1,100% --on-failure rollback --watch |
	tee "$D/rollout.txt"
code=${PIPESTATUS[0]}
set -e
id=$(sed -n 's/^rollout \([^ ]*\) started.*/\1/p' "$D/rollout.txt" | head -1)
[ -n "$id" ] || fail "no rollout ID in the output of rollout start"
[ "$code" -ne 0 ] || fail "the rollout of greeter@1.0.1 completed: the undeclared change went unnoticed"
say "(rollout start --watch exited $code: the rollout did not complete, as it should not)"

step "The rollout report: the unexpected change, the halt, the rollback's proof"
as erin cairnctl rollout report "$id" | tee "$D/report.txt"
as erin cairnctl rollout report "$id" -o html --out "$D/report.html"
say "HTML report: $D/report.html"

step "The canary's audits: before the rollout vs after its deployment, and vs after its rollback"
canary_audits "$id"
[ -n "$rolled" ] || fail "the canary $canary has no audit after a rollback"
say "$canary was the canary"
as erin cairnctl audit diff "$pre" "$post"
as erin cairnctl audit diff "$pre" "$rolled" | tee "$D/rollback-diff.txt"

step "Checks: what the controller recorded, and what is on the nodes"
status=$(CAIRN_TOKEN=${token[erin]} cairnctl rollout status "$id" -o json)
check "the rollout is rolled back" grep -q '^  "state": "ROLLOUT_STATE_ROLLED_BACK"' <<<"$status"
check "the canary ($canary) is rolled back" test "$(canary_field state <<<"$status")" = NODE_STATE_ROLLED_BACK
check "only the canary was ever sent a command: no second-wave node started" \
	test "$(grep -c '"pre_audit_command"' <<<"$status")" -eq 1
check "the report names the undeclared change" grep -q 'UNEXPECTED.*greeter-debug.service' "$D/report.txt"
check "the report proves the rollback: after-state equals pre-audit" \
	grep -q 'PROVEN, after-state equals pre-audit' "$D/report.txt"
check "the canary's audits before the rollout and after the rollback do not differ" \
	grep -q '^no changes' "$D/rollback-diff.txt"
for n in 1 2 3; do
	check "web$n runs greeter 1.0.0" \
		test "$(dpkg-query --admindir="$D/web$n/var/lib/dpkg" -W -f '${Version}' greeter)" = 1.0.0
	check "web$n has no greeter-debug.service" \
		test ! -e "$D/web$n/lib/systemd/system/greeter-debug.service" -a \
		! -L "$D/web$n/etc/systemd/system/multi-user.target.wants/greeter-debug.service"
done
checked "the rollout did not halt and roll back as designed"
say "greeter@1.0.1 was stopped at its canary and rolled back, as designed"
