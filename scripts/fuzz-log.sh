#!/usr/bin/env bash
# Builds the decision-log fuzzers with clang (libFuzzer + ASan + UBSan) in build-fuzz/ and runs
# each for its share of the given time, seeded with real logs; likewise the xa-recover
# configuration parser's, xa-agent's configuration parser's and the 3PC wire's (agent messages,
# peer handshake) fuzzers.
#
#   scripts/fuzz-log.sh [total-seconds]     (default 60: an equal share per target)
#
# Exit status: 0 when no target found anything; 1 on a finding (the crashing input is kept in
# build-fuzz/fuzz-artifacts/, reproduce with `build-fuzz/recovery-log/fuzz/<target> <file>`);
# 2 when the build fails. Needs clang and libclang-rt-14-dev (Debian).
# Environment: XA_FUZZ_BUILD_DIR (default <repo>/build-fuzz), XA_FUZZ_JOBS (build jobs, 2).
set -euo pipefail

total=${1:-60}
if ! [[ "$total" =~ ^[0-9]+$ ]] || (( total < 3 )); then
  echo "usage: $0 [total-seconds >= 3]" >&2
  exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
build=${XA_FUZZ_BUILD_DIR:-$root/build-fuzz}
targets=(log_record_fuzzer log_replay_fuzzer log_dump_fuzzer)
# The xa-recover configuration parser (tools/xa_recover/fuzz), built into the same folder.
targets+=(xa_recover_config_fuzzer)
# The 3PC wire: agent messages and the peer handshake (src/three_phase/fuzz), same folder.
targets+=(agent_message_fuzzer handshake_fuzzer)
# xa-agent's configuration parser (daemons/agent/fuzz), same folder.
targets+=(agent_config_fuzzer)
per_target=$(( total / ${#targets[@]} ))
# -max_total_time=0 would mean no limit at all.
(( per_target >= 1 )) || per_target=1

# -O1 with line tables and assertions on: the build is most of this script's time, and -O2 with
# full debug information roughly doubles it while libFuzzer finds no more for the speed.
if ! cmake -S "$root" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
      -DXA_BUILD_FUZZERS=ON -DXA_SANITIZE=address \
      -DXA_BUILD_TESTS=OFF -DXA_BUILD_BENCH=OFF -DXA_BUILD_EXAMPLES=OFF \
      -DXA_WITH_MYSQL=OFF -DXA_WITH_ODBC=OFF -DXA_INSTALL=OFF >"$build.configure.log" 2>&1 ||
   ! cmake --build "$build" -j "${XA_FUZZ_JOBS:-2}" \
      --target "${targets[@]}" log_fuzz_seeds wire_fuzz_seeds >"$build.build.log" 2>&1; then
  echo "fuzz-log: build failed; see $build.configure.log and $build.build.log" >&2
  tail -20 "$build.build.log" 2>/dev/null >&2 || true
  exit 2
fi

fuzz_dir=$build/recovery-log/fuzz
seeds=$build/fuzz-seeds
rm -rf "$seeds"
"$fuzz_dir/log_fuzz_seeds" "$seeds/record" "$seeds/replay"
cp -r "$root/tools/xa_recover/fuzz/seeds" "$seeds/xa_recover_config"
cp -r "$root/daemons/agent/fuzz/seeds" "$seeds/agent_config"
"$fuzz_dir/wire_fuzz_seeds" "$seeds/agent_message" "$seeds/handshake"
mkdir -p "$build/fuzz-artifacts"

status=0
for target in "${targets[@]}"; do
  kind=${target#log_}
  kind=${kind%_fuzzer}
  corpus=$build/fuzz-corpus/$kind
  seed_kind=$kind
  # The dump renderer reads what the record decoder accepts: the record seeds.
  if [[ $kind == dump ]]; then seed_kind=record; fi
  mkdir -p "$corpus"
  echo "fuzz-log: running $target for ${per_target}s"
  if ! "$fuzz_dir/$target" -max_total_time="$per_target" -print_final_stats=1 \
        -artifact_prefix="$build/fuzz-artifacts/$target-" -max_len=65536 \
        "$corpus" "$seeds/$seed_kind" >"$build/$target.log" 2>&1; then
    echo "fuzz-log: $target FOUND A PROBLEM; see $build/$target.log" >&2
    grep -E "ERROR|SUMMARY|Test unit written" "$build/$target.log" >&2 || tail -30 "$build/$target.log" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|cov:" "$build/$target.log" | tail -2
  fi
done
if (( status == 0 )); then echo "fuzz-log: no finding in ${total}s"; fi
exit $status
