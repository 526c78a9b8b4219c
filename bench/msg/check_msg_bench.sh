#!/usr/bin/env bash
# Runs the message bench once, briefly, and checks that its summary holds a row for every mode
# and producer count with messages delivered and none failed, and the ratios to raw RabbitMQ.
#   check_msg_bench.sh <xa_msg_bench>
set -euo pipefail
bench=$1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
XA_MSG_BENCH_SECONDS=${XA_MSG_BENCH_SECONDS:-1} "$bench" > "$out" 2>&1 ||
  { cat "$out"; echo "FAIL: the bench exited with $?"; exit 1; }
cat "$out"
fail() { echo "FAIL: $*"; exit 1; }
number='[0-9]+(\.[0-9]+)?'
for mode in raw msgd-mariadb msgd-postgres msgd-redis; do
  for producers in 1 4 16; do
    grep -qE "^${mode} +${producers} +[1-9][0-9]* +[1-9][0-9]* +(${number} +){7}0$" "$out" ||
      fail "no row for ${mode} at ${producers} producers with messages delivered and none failed"
  done
done
for mode in msgd-mariadb msgd-postgres msgd-redis; do
  [[ $(grep -cE "^${mode} +[0-9]+  throughput x${number}   p50 x${number}   CPU x${number}$" "$out") == 3 ]] ||
    fail "no ratios to raw for ${mode}"
done
echo "message bench: every figure present"
