#!/usr/bin/env bash
# `make demo`: Cairn's core loop, end to end, on this machine.
#
#   1. a controller and three agents (web1-3), each agent with its own
#      root: a minimal Debian and a hardware fixture;
#   2. alice (release-manager) builds a real .deb of the greeter
#      (examples/rollout) and creates and seals release greeter@1.0.0;
#      bob (tester) records a pass; carol (approver) approves it;
#   3. the nodes' audits become their CMS baselines;
#   4. alice plans and runs a rollout, canary first (web1), then the rest:
#      every node audited before and after, the change compared with what
#      the release declared;
#   5. the rollout report, the canary's before/after audit diff, the CMS
#      after the rollout, and the HTML report for auditors, verified with
#      the controller (and an edited copy caught).
#
# It exits non-zero when any of that does not happen as it should. Every
# process it starts is stopped when it ends; the data directory is kept.
set -euo pipefail
# shellcheck source=examples/demo/lib.sh
source "$(dirname "$0")/lib.sh"

demo_start
release_signed_off 1.0.0

step "The CMS: each node's audit becomes its authorized baseline"
say "(the audits track the greeter's config file, as the rollout's audits will)"
as dave cairnctl audit run --selector env=demo --track /etc/greeter/greeter.conf --wait
for n in 1 2 3; do
	as dave cairnctl cms baseline accept "web$n" --reason "initial build"
done

step "Plan: the waves, each node's dry run, drift and matching known errors"
as dave cairnctl rollout plan greeter@1.0.0 --selector env=demo --waves 1,100%

step "Rollout: the canary first, then the rest"
as dave cairnctl rollout start greeter@1.0.0 --selector env=demo --waves 1,100% --watch | tee "$D/rollout.txt" ||
	fail "the rollout did not complete"
id=$(sed -n 's/^rollout \([^ ]*\) started.*/\1/p' "$D/rollout.txt" | head -1)
[ -n "$id" ] || fail "no rollout ID in the output of rollout start"

step "The rollout report"
as erin cairnctl rollout report "$id" | tee "$D/report.txt"

step "The canary's audits, before and after its deployment"
canary_audits "$id"
say "$canary was the canary"
as erin cairnctl audit diff "$pre" "$post"

step "The CMS after the rollout: the post-audits are the new baselines, so no drift"
as dave cairnctl audit run --selector env=demo --track /etc/greeter/greeter.conf --wait >/dev/null
as erin cairnctl cms drift | tee "$D/drift.txt"
as erin cairnctl cms history "$canary"

step "The HTML report, checked against the controller, and the audit log that recorded every decision"
as erin cairnctl rollout report "$id" -o html --out "$D/report.html"
as erin cairnctl report verify "$D/report.html"
as erin cairnctl auditlog verify
say "an edited copy of the report is caught:"
sed 's/3 passed/4 passed/' "$D/report.html" >"$D/report-edited.html"
as erin cairnctl report verify "$D/report-edited.html" && fail "an edited report verified"

step "Checks: what the controller recorded, and what is on the nodes"
# watch_line PATTERN: the number of the first line of the watch output
# matching PATTERN (0 when none does).
watch_line() { grep -n -m1 "$1" "$D/rollout.txt" | cut -d: -f1 || echo 0; }
check "the canary's wave was done before the next wave started" \
	test "$(watch_line 'wave 1 done')" -gt 0 -a "$(watch_line 'wave 1 done')" -lt "$(watch_line 'wave 2 started')"
check "the rollout completed" grep -q '^  State  *COMPLETED' "$D/report.txt"
check "the report: 3 of 3 nodes passed" grep -q '3 nodes: 3 passed, 0 failed' "$D/report.txt"
check "the report: no node had drifted from its baseline before it was deployed" \
	test "$(grep -c 'Drift before deploying: none' "$D/report.txt")" -eq 3
check "the report: every expected change was observed, nothing unexpected" \
	test "$(grep -c 'Before/after: 3 expected, 0 missing, 0 unexpected' "$D/report.txt")" -eq 3
check "the report: the known error matches the nodes with 48 GiB (web1, web3)" \
	grep -q 'Matched nodes: web1, web3' "$D/report.txt"
check "the report: SLA met" test "$(grep -c 'MET; target' "$D/report.txt")" -eq 3
check "no drift after the rollout" grep -q '0 drifted' "$D/drift.txt"
check "the HTML report shows the classified diff" grep -q 'EXPECTED' "$D/report.html"
for n in 1 2 3; do
	check "web$n runs greeter 1.0.0" \
		test "$(dpkg-query --admindir="$D/web$n/var/lib/dpkg" -W -f '${Version}' greeter)" = 1.0.0
	check "web$n has greeter.service enabled" \
		test "$(systemctl --root="$D/web$n" is-enabled greeter.service 2>/dev/null)" = enabled
	check "web$n greets the world" \
		test "$(CAIRN_ROOT="$D/web$n" sh "$D/web$n/usr/bin/greeter" --check)" = "hello, world"
done
checked "the rollout did not do what it should"
say "the HTML report for auditors: $D/report.html (one self-contained file, readable offline, printable)"
