#!/usr/bin/env bash
# Runs the notifier bench once, briefly, and checks that its summary holds a throughput row for
# every store and endpoint count, a fairness row for every store with and without endpoints
# timing out, and the ratios.
#   check_notify_bench.sh <xa_notify_bench>
set -euo pipefail
bench=$1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
XA_NOTIFY_BENCH_NOTIFICATIONS=${XA_NOTIFY_BENCH_NOTIFICATIONS:-300} "$bench" > "$out" 2>&1 ||
  { cat "$out"; echo "FAIL: the bench exited with $?"; exit 1; }
cat "$out"
fail() { echo "FAIL: $*"; exit 1; }
number='[0-9]+(\.[0-9]+)?'
for store in mariadb postgres; do
  for endpoints in 1 16 256; do
    grep -qE "^${store} +${endpoints} +[1-9][0-9]* +(${number} +){3}${number}$" "$out" ||
      fail "no throughput row for ${store} at ${endpoints} endpoints"
  done
  for timing_out in 0 100; do
    grep -qE "^${store} +${timing_out} +[1-9][0-9]* +(${number} +){2}${number}$" "$out" ||
      fail "no fairness row for ${store} with ${timing_out} endpoints timing out"
  done
  grep -qE "^${store} +256/1 endpoints  throughput x${number}   CPU x${number}$" "$out" ||
    fail "no endpoint ratio for ${store}"
  grep -qE "^${store} +100 timing out / none  healthy p50 x${number}   p99 x${number}$" "$out" ||
    fail "no fairness ratio for ${store}"
done
echo "notifier bench: every figure present"
