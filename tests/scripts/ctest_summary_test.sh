#!/usr/bin/env bash
# Checks scripts/ctest_summary.sh on a made-up ctest log: each failed test is named with its
# first failure line, the gtest assertion rather than a warning logged before it whose text holds
# "RMFAIL:", and a check script's "FAIL:" line. Exits 0 when every expectation holds.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/ctest_summary.sh
. "$repo/scripts/ctest_summary.sh"

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cat >"$log" <<'LOG'
Test project /build
      Start  1: Suite.Passes
 1/3 Test  #1: Suite.Passes ........................   Passed    0.01 sec
      Start  2: Soak.Fails
 2/3 Test  #2: Soak.Fails ..........................***Failed   60.00 sec
[2026-12-02 07:33:44.096135] [0x7f] [warning] [mysql:rm] xid=1:ab:01 XAER_RMFAIL: resource manager 'rm': statement failed
tests/agent/agent_kill_soak_test.cc:225: Failure
Value of: prepared.empty()
      Start  3: Bench.Checks
 3/3 Test  #3: Bench.Checks ........................***Failed    1.00 sec
check_lock_hold.sh: FAIL: case agent-crash,3pc,1 is missing from summary.csv
33% tests passed, 2 tests failed out of 3

The following tests FAILED:
	  2 - Soak.Fails (Failed)
	  3 - Bench.Checks (Failed)
LOG

expected="Soak.Fails (Failed): tests/agent/agent_kill_soak_test.cc:225: Failure | Value of: prepared.empty()
Bench.Checks (Failed): check_lock_hold.sh: FAIL: case agent-crash,3pc,1 is missing from summary.csv"
actual="$(failed_tests_with_their_first_failure "$log")"
if [[ "$actual" != "$expected" ]]; then
  printf 'ctest_summary_test: FAIL: expected\n%s\nbut got\n%s\n' "$expected" "$actual"
  exit 1
fi
echo "ctest_summary_test: ok"
