#!/usr/bin/env bash
# Runs the TCC bench once, briefly, and checks that its summary holds a row for every mode and
# client count with transfers done and none failed, and the ratios to 2PC.
#   check_tcc_bench.sh <xa_tcc_bench>
set -euo pipefail
bench=$1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
XA_TCC_BENCH_SECONDS=${XA_TCC_BENCH_SECONDS:-1} "$bench" > "$out" 2>&1 ||
  { cat "$out"; echo "FAIL: the bench exited with $?"; exit 1; }
grep -v '^\[20' "$out"
fail() { echo "FAIL: $*"; exit 1; }
for mode in 2pc tcc http; do
  for clients in 1 4 16; do
    grep -qE "^${mode} +${clients} +[1-9][0-9]* +[0-9.]+ +[0-9.]+ +[0-9]+ +0$" "$out" ||
      fail "no row for ${mode} at ${clients} clients with transfers done and none failed"
  done
done
for mode in tcc http; do
  [[ $(grep -cE "^${mode} +[0-9]+  throughput x[0-9.]+   p50 x[0-9.]+   app CPU x[0-9.]+$" "$out") == 3 ]] ||
    fail "no ratios to 2pc for ${mode}"
done
echo "TCC bench: every figure present"
