#!/usr/bin/env bash
# Checks the output of xa_lock_hold_bench: every expected case is in summary.csv with samples,
# and the crash invariants hold for every sample in samples.csv, measured from the databases'
# side: 3PC released each row within the agents' timeout + 1 s of the kill (of the coordinator,
# or of an agent that is restarted), 2PC held
# each row at least until recovery ran R seconds after the kill, and the servers' lock views
# showed every probe waiting. After a database was killed and restarted, each row was released
# no sooner than its database was back and within the case's bound (summary.csv) of that, and the
# surviving database's lock view showed its probe waiting. A missing case fails, and so does a
# no-failure or agent-link case whose commit latency columns are not positive and ordered, or a
# 3PC one whose agents' CPU reads zero, or a slow-participant case whose rows were held, or whose
# commits took, less than the injected delay, or a 3PC agent-link case whose rows were held, or
# whose commits took, less than one round trip over the delayed link.
#
# Usage: check_lock_hold.sh [--run BENCH] [--recovery-delay-s R] [--agent-timeout-ms T]
#                           [--slow-prepare-ms D] [--link-delay-ms L] OUT_DIR
#   --run BENCH   first run `BENCH --quick --out OUT_DIR` with R, T, D and L (its exit code
#                 counts too)
#   R, T, D, L    what the run used (default 3, 2000, 50 and 5: the quick mode's)
set -euo pipefail

bench="" recovery_delay_s=3 agent_timeout_ms=2000 slow_prepare_ms=50 link_delay_ms=5 out=""
while (($#)); do
  case "$1" in
    --run) bench="$2"; shift 2 ;;
    --recovery-delay-s) recovery_delay_s="$2"; shift 2 ;;
    --agent-timeout-ms) agent_timeout_ms="$2"; shift 2 ;;
    --slow-prepare-ms) slow_prepare_ms="$2"; shift 2 ;;
    --link-delay-ms) link_delay_ms="$2"; shift 2 ;;
    -h | --help) sed -n '2,19{s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) out="$1"; shift ;;
  esac
done
[[ -n "$out" ]] || { echo "check_lock_hold.sh: OUT_DIR missing" >&2; exit 2; }

failures=0
fail() { echo "check_lock_hold.sh: FAIL: $*"; failures=$((failures + 1)); }

if [[ -n "$bench" ]]; then
  rm -f "$out/summary.csv" "$out/samples.csv"
  started=$SECONDS
  if ! "$bench" --quick --out "$out" --recovery-delay-s "$recovery_delay_s" \
      --agent-timeout-ms "$agent_timeout_ms" --slow-prepare-ms "$slow_prepare_ms" \
      --link-delay-ms "$link_delay_ms"; then
    fail "$bench exited non-zero"
  fi
  echo "check_lock_hold.sh: the quick run took $((SECONDS - started)) s"
fi

summary="$out/summary.csv" samples="$out/samples.csv"
for file in "$summary" "$samples"; do
  [[ -s "$file" ]] || { fail "$file is missing or empty"; exit 1; }
done

# Every expected case: a summary row with at least one sample.
expected=()
for protocol in 2pc 3pc; do
  for clients in 1 4 16; do expected+=("no-failure,$protocol,$clients"); done
  expected+=("slow-participant,$protocol,1" "coordinator-crash,$protocol,1")
  expected+=("agent-link,$protocol,1" "database-crash,$protocol,1")
done
expected+=("agent-crash,3pc,1")
for key in "${expected[@]}"; do
  count="$(awk -F, -v key="$key" 'NR > 1 && $1 "," $2 "," $3 == key { print $4 }' "$summary")"
  if [[ -z "$count" ]]; then
    fail "case $key is missing from $summary"
  elif ((count < 1)); then
    fail "case $key has no sample"
  fi
done

# Every no-failure, slow-participant and agent-link case timed its commits (columns commit_p50_ms
# and commit_p99_ms), and the 3PC
# ones saw the agents work (agents_cpu_ms_per_commit): a zero there means the measurement broke.
header="$(head -n 1 "$summary")"
for column in commit_p50_ms commit_p99_ms bench_cpu_ms_per_commit agents_cpu_ms_per_commit; do
  [[ ",$header," == *",$column,"* ]] || fail "$summary has no column $column"
done
while IFS=, read -r key p50 p99 agents_cpu; do
  awk -v a="$p50" -v b="$p99" 'BEGIN { exit !(a > 0 && b >= a) }' ||
    fail "case $key: commit p50 $p50 ms and p99 $p99 ms are not positive and ordered"
  if [[ "$key" == */3pc/* ]]; then
    awk -v c="$agents_cpu" 'BEGIN { exit !(c > 0) }' ||
      fail "case $key: the agents' CPU per commit reads $agents_cpu ms"
  fi
done < <(awk -F, 'NR == 1 { for (i = 1; i <= NF; ++i) column[$i] = i; next }
                  $1 == "no-failure" || $1 == "slow-participant" || $1 == "agent-link" {
                    print $1 "/" $2 "/" $3 "," $column["commit_p50_ms"] "," \
                    $column["commit_p99_ms"] "," $column["agents_cpu_ms_per_commit"] }' "$summary")

# require_hold_and_commit_at_least <case> <protocols: 2pc|3pc|any> <minimum ms> <what it is>:
# every such row's hold p50 and commit p50 are at least the minimum, or what was injected was not.
require_hold_and_commit_at_least() {
  local case_name="$1" protocols="$2" minimum="$3" what="$4" key hold_p50 commit_p50
  while IFS=, read -r key hold_p50 commit_p50; do
    awk -v h="$hold_p50" -v c="$commit_p50" -v m="$minimum" 'BEGIN { exit !(h >= m && c >= m) }' ||
      fail "case $key: hold p50 $hold_p50 ms, commit p50 $commit_p50 ms, less than $what" \
        "($minimum ms)"
  done < <(awk -F, -v c="$case_name" -v p="$protocols" \
             'NR == 1 { for (i = 1; i <= NF; ++i) column[$i] = i; next }
              $1 == c && (p == "any" || $2 == p) {
                print $1 "/" $2 "/" $3 "," $column["p50_ms"] "," $column["commit_p50_ms"] }' \
             "$summary")
}
# A participant slow to vote keeps both rows locked through its prepare, under either protocol.
require_hold_and_commit_at_least slow-participant any "$slow_prepare_ms" "the prepare delay"
# 3PC's rounds with the agents cross the delayed link while the rows are locked: at least one
# round trip (two crossings of at least 0.8 L each).
require_hold_and_commit_at_least agent-link 3pc \
  "$(awk -v l="$link_delay_ms" 'BEGIN { printf "%.1f", 2 * 0.8 * l }')" \
  "one round trip over the delayed link to the agents"

# After a database crash, per sample: released no sooner than its database was back, and within
# the case's bound (bound_ms in summary.csv: the coordinator's longest completion backoff + 1 s)
# of that; the database that stayed up showed its probe waiting.
for protocol in 2pc 3pc; do
  bound="$(awk -F, -v p="$protocol" 'NR == 1 { for (i = 1; i <= NF; ++i) column[$i] = i; next }
                  $1 == "database-crash" && $2 == p { print $column["bound_ms"] }' "$summary")"
  rows="$(awk -F, -v p="$protocol" 'NR > 1 && $1 == "database-crash" && $2 == p' "$samples")"
  if [[ -z "$bound" || -z "$rows" ]]; then
    fail "no database-crash bound or sample for $protocol"
    continue
  fi
  while IFS=, read -r _ _ _ database hold after saw available; do
    awk -v a="$after" -v b="$available" -v l="$bound" 'BEGIN { exit !(a >= b && a - b <= l) }' ||
      fail "database-crash/$protocol $database: released $after ms after the kill, its" \
        "database back at $available ms: not within ${bound} ms after it was back"
    if [[ "$available" == 0.000 && "$saw" != 1 ]]; then
      fail "database-crash/$protocol $database: the lock view of the database that stayed up" \
        "did not show the probe waiting"
    fi
  done <<<"$rows"
done

# The crash invariants, per sample (per database and repetition): the coordinator killed (both
# protocols) and, for 3PC, an agent killed and restarted.
recovery_delay_ms="$(awk -v s="$recovery_delay_s" 'BEGIN { printf "%d", s * 1000 }')"
limit_3pc_ms=$((agent_timeout_ms + 1000))
for crash in coordinator-crash/2pc coordinator-crash/3pc agent-crash/3pc; do
  case_name="${crash%/*}" protocol="${crash#*/}"
  rows="$(awk -F, -v c="$case_name" -v p="$protocol" 'NR > 1 && $1 == c && $2 == p' "$samples")"
  [[ -n "$rows" ]] || { fail "no $case_name sample for $protocol"; continue; }
  while IFS=, read -r _ _ _ database hold after saw _; do
    if [[ "$saw" != 1 ]]; then
      fail "$crash $database: the server's lock view did not show the probe waiting"
    fi
    if [[ "$protocol" == 3pc ]]; then
      awk -v a="$after" -v l="$limit_3pc_ms" 'BEGIN { exit !(a >= 0 && a <= l) }' ||
        fail "$crash $database: released $after ms after the kill, more than the agents' timeout + 1 s ($limit_3pc_ms ms)"
    else
      awk -v a="$after" -v l="$recovery_delay_ms" 'BEGIN { exit !(a >= l) }' ||
        fail "$crash $database: released $after ms after the kill, before recovery ran at $recovery_delay_ms ms"
    fi
  done <<<"$rows"
done

if ((failures > 0)); then
  echo "check_lock_hold.sh: $failures check(s) failed"
  exit 1
fi
echo "check_lock_hold.sh: every case present; 3PC released within ${limit_3pc_ms} ms of the kill, 2PC held >= ${recovery_delay_ms} ms; after a database crash every row released within its bound of the database's return"
