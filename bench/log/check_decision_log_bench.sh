#!/usr/bin/env bash
# Runs the decision-log bench once and checks that its summary holds every figure: the raw
# fdatasync, a row per mode and appender count, the targets' lines of both group-commit modes
# and the replay of 1,000,000 records. A mode that errors out or is missing fails.
#   check_decision_log_bench.sh <decision_log_bench> <scratch dir on a real disk>
set -euo pipefail
bench=$1
dir=$2
rm -rf "$dir" && mkdir -p "$dir"
out="$dir/output.txt"
XA_BENCH_DIR="$dir" "$bench" > "$out" 2>&1 || { cat "$out"; echo "FAIL: the bench exited with $?"; exit 1; }
cat "$out"
fail() { echo "FAIL: $*"; exit 1; }
if grep -q "ERROR OCCURRED" "$out"; then fail "a benchmark reported an error (above)"; fi
grep -qE "^one write\(\)\+fdatasync\(\): p50 [0-9.]+ us" "$out" || fail "no raw fdatasync line"
for row in "one fdatasync per record +1 " "one fdatasync per record +64 " "group commit +1 " \
           "group commit +8 " "group commit +64 " "group commit \+ gather +8 " \
           "group commit \+ gather +64 "; do
  grep -qE "^${row} +[0-9]+ " "$out" || fail "no row '${row//\\/}' in the summary"
done
for mode in "group commit @64:" "group commit + gather @64:"; do
  grep -qF "$mode" "$out" || fail "no target lines for '$mode'"
done
[[ $(grep -c "records per fdatasync: [0-9.]* of 64" "$out") == 2 ]] || fail "records per fdatasync missing"
grep -qE "^replay of 1000000 records \([0-9.]+ MB, cold page cache\): [1-9][0-9]* ms" "$out" ||
  fail "no replay figure (or a replay of 0 ms: it did not run)"
rm -rf "$dir"
echo "decision-log bench: every figure present"
