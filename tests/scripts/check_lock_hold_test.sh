#!/usr/bin/env bash
# Checks bench/lockhold/check_lock_hold.sh on made-up bench output: a complete, healthy output
# passes, and each broken rule fails the check with its own message (a missing case, a 3PC
# agent-link case faster than one round trip over the delayed link, a slow-participant case held
# less than its delay, a row released before its restarted database was back or too long after,
# a surviving database whose lock view did not show its probe waiting). Exits 0 when every expectation holds.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
check="$repo/bench/lockhold/check_lock_hold.sh"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# A healthy quick run's output (R = 3 s, T = 2 s, D = 50 ms, L = 5 ms).
write_healthy() {
  local dir="$1" protocol clients cpu
  mkdir -p "$dir"
  {
    echo "case,protocol,clients,samples,p50_ms,p99_ms,max_ms,commits_per_s,released_after_crash_ms,bound,bound_ms,server_saw_wait,verdict,not_committed,commit_p50_ms,commit_p99_ms,bench_cpu_ms_per_commit,agents_cpu_ms_per_commit"
    for protocol in 2pc 3pc; do
      cpu=0.000
      [[ "$protocol" == 3pc ]] && cpu=0.700
      for clients in 1 4 16; do
        echo "no-failure,$protocol,$clients,100,1.5,2.0,3.0,500,,,,,ok,0,1.4,2.0,0.6,$cpu"
      done
      echo "slow-participant,$protocol,1,30,53.0,55.0,56.0,18,,,,,ok,0,53.0,55.0,1.2,$cpu"
      if [[ "$protocol" == 2pc ]]; then
        echo "agent-link,2pc,1,100,1.5,2.5,3.7,500,,,,,ok,0,1.48,2.3,0.63,0.000"
      else  # rounds over the 5 ms link: a round trip is at least 8 ms
        echo "agent-link,3pc,1,40,24.1,226,226,22,,,,,ok,0,24.2,225,2.9,1.7"
      fi
      echo "database-crash,$protocol,1,2,2600,2600,2600,,600,max,6000,1,ok,,,,,"
    done
    echo "coordinator-crash,2pc,1,2,3336,3336,3336,,3330,min,3000,1,ok,,,,,"
    echo "coordinator-crash,3pc,1,2,2061,2061,2061,,2050,max,3000,1,ok,,,,,"
    echo "agent-crash,3pc,1,2,2066,2066,2066,,2060,max,3000,1,ok,,,,,"
  } >"$dir/summary.csv"
  {
    echo "case,protocol,clients,database,hold_ms,after_crash_ms,server_saw_wait,available_after_crash_ms"
    for database in MariaDB PostgreSQL; do
      echo "coordinator-crash,2pc,1,$database,3336.0,3330.0,1,0.000"
      echo "coordinator-crash,3pc,1,$database,2061.0,2050.0,1,0.000"
      echo "agent-crash,3pc,1,$database,2066.0,2060.0,1,0.000"
    done
    for protocol in 2pc 3pc; do
      echo "database-crash,$protocol,1,PostgreSQL,27.1,1.9,1,0.000"
      echo "database-crash,$protocol,1,MariaDB,2599.5,2574.2,0,1833.468"
    done
  } >"$dir/samples.csv"
}

failures=0
expect() {  # expect <pass|fail> <what> <message the check must print, for fail> <dir>
  local want="$1" what="$2" message="$3" dir="$4" output rc=0
  output="$(bash "$check" "$dir" 2>&1)" || rc=$?
  if [[ "$want" == pass && $rc -ne 0 ]]; then
    echo "FAIL: $what: the check failed on healthy output:"
    echo "$output"
    failures=$((failures + 1))
  elif [[ "$want" == fail && $rc -eq 0 ]]; then
    echo "FAIL: $what: the check passed"
    failures=$((failures + 1))
  elif [[ "$want" == fail && "$output" != *"$message"* ]]; then
    echo "FAIL: $what: the check failed without saying '$message':"
    echo "$output"
    failures=$((failures + 1))
  else
    echo "ok: $what"
  fi
}

write_healthy "$work/healthy"
expect pass "healthy output" "" "$work/healthy"

write_healthy "$work/no-link"
sed -i '/^agent-link,3pc/d' "$work/no-link/summary.csv"
expect fail "agent-link 3pc missing" "case agent-link,3pc,1 is missing" "$work/no-link"

write_healthy "$work/fast-link"
sed -i 's/^agent-link,3pc,1,40,24.1,/agent-link,3pc,1,40,2.0,/' "$work/fast-link/summary.csv"
expect fail "3PC over the delayed link faster than a round trip" \
  "less than one round trip" "$work/fast-link"

write_healthy "$work/fast-vote"
sed -i 's/^slow-participant,2pc,1,30,53.0,/slow-participant,2pc,1,30,20.0,/' "$work/fast-vote/summary.csv"
expect fail "a slow participant's rows held less than its delay" "less than the prepare delay" \
  "$work/fast-vote"

write_healthy "$work/early"
sed -i 's/^database-crash,3pc,1,MariaDB,2599.5,2574.2,0,1833.468$/database-crash,3pc,1,MariaDB,1500,1200.0,0,1833.468/' \
  "$work/early/samples.csv"
expect fail "a row released before its database was back" "not within" "$work/early"

write_healthy "$work/late"
sed -i 's/^database-crash,2pc,1,MariaDB,2599.5,2574.2,0,1833.468$/database-crash,2pc,1,MariaDB,9000,8000.0,0,1833.468/' \
  "$work/late/samples.csv"
expect fail "a row released long after its database was back" "not within 6000 ms" "$work/late"

write_healthy "$work/unseen"
sed -i 's/^database-crash,2pc,1,PostgreSQL,27.1,1.9,1,0.000$/database-crash,2pc,1,PostgreSQL,27.1,1.9,0,0.000/' \
  "$work/unseen/samples.csv"
expect fail "the surviving database's probe not seen waiting" "did not show the probe waiting" \
  "$work/unseen"

if ((failures > 0)); then
  echo "$failures expectation(s) failed"
  exit 1
fi
echo "every expectation held"
