#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run): from a fresh Debian 12 machine, as root.
#
#   1. scripts/install-deps.sh (no apt at all when everything is installed)
#   2. build/        RelWithDebInfo, -DXA_WERROR=ON -DXA_ENABLE_TEST_HOOKS=ON, tests + benches
#   3. scripts/servers.sh start (MariaDB 13306, PostgreSQL 15432 and 15433, RabbitMQ 15673,
#      Redis 16379, all on 127.0.0.1)
#   4. ctest in build/ (every test, the database tests against the real servers, and the quick
#      run of the lock-hold bench)
#   5. cmake --install build --prefix build/install, then examples/find_package_consumer
#      configured, built and run against it (find_package and the pkg-config line)
#   5b. scripts/package-test.sh: build-packages/ (Release, shared libraries), the Debian
#      packages from CPack, installed with apt-get into a throwaway overlay root, both consumers
#      built and run there against /usr, `man xa-recover`, the installed systemd unit verified,
#      then purged with nothing left
#   6. build-asan/   Debug, ASan+UBSan (-DXA_SANITIZE=address, no benches): the same ctest but
#                    the kill soak (label soak) and the model checks (label model); the unit
#                    tests (no server, no threads of their own) two at a time
#   7. build-tsan/   Debug, TSan (-DXA_SANITIZE=thread): ctest -L concurrent
#   8. scripts/fuzz-log.sh: the decision log's libFuzzer targets, XA_FUZZ_SECONDS in all (60)
#
# Steps 5 to 8 but the sanitized tests run ahead, one after another, at the lowest CPU priority
# (nice 19, idle I/O class) while the tests of steps 4 and 6 run: the consumers' and packages'
# builds and checks, the ASan, TSan and fuzzer builds, and the fuzzing (bounded by its time,
# whatever CPU share it gets). Those tests spend most of their time waiting on the servers, on
# timeouts and on killed processes, and a nice-19 process takes only the CPU they leave idle.
# Each step is then awaited where it was (the summary lists the steps' own times).
#
# The last line is `tests: N passed, N failed`, summed over every ctest run. Exits non-zero when a
# step fails, a test fails, or a ctest run (other than the TSan one, while no test is labelled
# `concurrent`) ran no test at all. A test that did not run (GTEST_SKIP, a DISABLED_ test) counts
# as failed, and so does any GTEST_SKIP or DISABLED_ test in tests/ (checked before the build):
# a skip passes silently. The servers stay up afterwards (scripts/servers.sh stop).
#
# Environment (all optional; CI sets none of them):
#   XA_TEST_QUICK=1        skip steps 6 to 8 (sanitizer builds, fuzzing) for a quick local run
#   XA_FUZZ_SECONDS=<s>    total fuzzing time of step 8 (default 60)
#   XA_SOAK_KILLS, XA_SOAK_SECONDS, XA_SOAK_MIN_KILLS  size of the kill soak (120, 300, 100)
#   XA_TCC_SOAK_KILLS, XA_TCC_SOAK_SECONDS, XA_TCC_SOAK_MIN_KILLS  size of the TCC kill soak
#                                                     (100, 150, 100)
#   XA_TEST_TIMEOUT=<s>    per-test timeout for ctest (default 300; sanitizer runs get twice it)
#   XA_TEST_JOBS=<n>       build parallelism (default 2)
#   XA_TEST_CTEST_ARGS     extra ctest arguments for every run, e.g. "-R Mysql"
#   XA_TEST_STOP_SERVERS=1 stop the servers at the end
#   XA_SERVERS_DIR         where the servers keep their data (default build/servers)
set -euo pipefail
exec </dev/null

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/ctest_summary.sh
. scripts/ctest_summary.sh
readonly REPO_ROOT="$(pwd)"
readonly JOBS="${XA_TEST_JOBS:-2}"
readonly TIMEOUT="${XA_TEST_TIMEOUT:-300}"
read -r -a EXTRA_CTEST_ARGS <<<"${XA_TEST_CTEST_ARGS:-}"

TOTAL_PASSED=0
TOTAL_FAILED=0
FAILURES=()
TIMINGS=()

say() { printf '\n==== test.sh: %s\n' "$*"; }
fail() {
  printf 'test.sh: FAILED: %s\n' "$*" >&2
  FAILURES+=("$*")
}

# Runs "$@" as a named, timed phase. Returns the command's status.
phase() {
  local name="$1" start rc=0
  shift
  say "$name"
  start=$SECONDS
  "$@" || rc=$?
  TIMINGS+=("$(printf '%-42s %5ds  %s' "$name" $((SECONDS - start)) "$([[ $rc == 0 ]] && echo ok || echo "FAILED ($rc)")")")
  return "$rc"
}

finish() {
  stop_ahead_builds
  say "summary"
  local line
  for line in "${TIMINGS[@]}"; do
    echo "  $line"
  done
  for line in "${FAILURES[@]}"; do
    echo "  FAILED: $line"
  done
  if [[ "${XA_TEST_STOP_SERVERS:-0}" == 1 ]]; then
    bash scripts/servers.sh stop || true
  fi
  # Must stay the very last line of output: CI and humans read it.
  echo "tests: $TOTAL_PASSED passed, $TOTAL_FAILED failed"
  if ((${#FAILURES[@]} > 0 || TOTAL_FAILED > 0)); then
    exit 1
  fi
  exit 0
}

# configure_and_build <dir> [cmake -D options...] [-- cmake --build options...]
configure_and_build() {
  local dir="$1"
  shift
  local -a configure=() build=()
  while (($# > 0)) && [[ "$1" != "--" ]]; do
    configure+=("$1")
    shift
  done
  if (($# > 0)); then
    shift
    build=("$@")
  fi
  cmake -S "$REPO_ROOT" -B "$dir" -G Ninja -DXA_WERROR=ON -DXA_ENABLE_TEST_HOOKS=ON \
    ${configure[@]+"${configure[@]}"} &&
    cmake --build "$dir" -j "$JOBS" ${build[@]+"${build[@]}"}
}

# The names of the test programs (= their CMake targets) that hold tests labelled `concurrent`
# in build/, one a line.
concurrent_test_programs() {
  ctest --test-dir build -N -L concurrent --show-only=json-v1 2>/dev/null |
    awk '/"command" :/ { getline; getline; sub(/^[ \t]*"/, ""); sub(/",?[ \t]*$/, ""); print }' |
    while IFS= read -r program; do basename "$program"; done | sort -u
}

# Fails on every GTEST_SKIP and every DISABLED_ test in tests/, naming file and line: a test that
# does not apply somewhere is not instantiated there, and one that is broken is fixed. Cheap, so
# it runs before the build; run_ctest also fails each test that did not run.
no_skipped_tests_in_sources() {
  local found rc=0
  found="$(grep -rnE --include='*.cc' --include='*.h' 'GTEST_SKIP|\bDISABLED_' tests)" || rc=$?
  if ((rc > 1)); then
    echo "test.sh: cannot search tests/ for skipped tests (grep exit $rc)"
    return 1
  fi
  ((rc == 1)) && return 0  # nothing found
  while IFS= read -r line; do
    echo "test.sh: a test that can be skipped passes silently; make it run, or do not instantiate it where it does not apply: $line"
  done <<<"$found"
  return 1
}

# The tests a ctest log lists under "The following tests did not run:" (GTEST_SKIP: ctest's
# SKIP_REGULAR_EXPRESSION, set by gtest_discover_tests; DISABLED_ tests), one a line:
# "<name> (Skipped)" or "<name> (Disabled)".
tests_that_did_not_run() {
  awk '/^The following tests did not run:/ { listing = 1; next }
       listing && /^[ \t]*[0-9]+ - / { sub(/^[ \t]*[0-9]+ - /, ""); print; next }
       listing { listing = 0 }' "$1"
}

# count_tests <build dir> [ctest selection args...]: how many tests the selection holds.
count_tests() {
  local dir="$1"
  shift
  ctest --test-dir "$dir" -N "$@" | sed -nE 's/^Total Tests: ([0-9]+)$/\1/p'
}

# run_ctest <label for the summary> <build dir> <allow zero tests: 0|1> [ctest args...]
# Runs ctest into its own log (ctest-<label>.log in the build dir) and accounts for it.
run_ctest() {
  local name="$1" dir="$2" allow_empty="$3" log rc=0
  shift 3
  log="$dir/ctest-${name// /-}.log"
  ctest --test-dir "$dir" --output-on-failure --no-tests=ignore "$@" ${EXTRA_CTEST_ARGS[@]+"${EXTRA_CTEST_ARGS[@]}"} 2>&1 |
    tee "$log" || rc=$?
  account_ctest_log "$name" "$log" "$rc" "$allow_empty"
}

# run_ctest_in_two_lanes <label> <build dir> <timeout s> <serial labels> [excluded labels]
# The tests labelled with one of <serial labels> (a ctest label regex: the servers' tests, the
# crash and concurrent tests, whose timing the other tests must not disturb) run one at a time;
# beside them, on the second core, the others run one at a time too. Those must all be labelled
# `unit` or `model` (tests that touch no server and start no process or thread pool of their
# own), so an unlabelled test fails here instead of running beside the servers' tests.
run_ctest_in_two_lanes() {
  local name="$1" dir="$2" timeout="$3" serial="$4" excluded="${5:-}" rc=0
  local not_serial="$serial${excluded:+|$excluded}"
  local -a serial_selection=(-L "$serial")
  [[ -n "$excluded" ]] && serial_selection+=(-LE "$excluded")
  local beside_count labelled_count
  beside_count="$(count_tests "$dir" -LE "$not_serial")"
  labelled_count="$(count_tests "$dir" -L 'unit|model' -LE "$not_serial")"
  if ((beside_count != labelled_count)); then
    fail "$name: $((beside_count - labelled_count)) tests have none of the labels $serial, unit, model: label every test (tests/CMakeLists.txt)"
  fi
  local beside_log="$dir/ctest-${name// /-}-beside.log" serial_log="$dir/ctest-${name// /-}.log"
  ctest --test-dir "$dir" --output-on-failure --no-tests=ignore --timeout "$timeout" -j 1 \
    -LE "$not_serial" ${EXTRA_CTEST_ARGS[@]+"${EXTRA_CTEST_ARGS[@]}"} >"$beside_log" 2>&1 &
  local beside_pid=$! beside_rc=0
  ctest --test-dir "$dir" --output-on-failure --no-tests=ignore --timeout "$timeout" -j 1 \
    "${serial_selection[@]}" ${EXTRA_CTEST_ARGS[@]+"${EXTRA_CTEST_ARGS[@]}"} 2>&1 |
    tee "$serial_log" || rc=$?
  wait "$beside_pid" || beside_rc=$?
  say "$name: the tests that ran beside ($beside_log)"
  cat "$beside_log"
  account_ctest_log "$name, one at a time" "$serial_log" "$rc" 0 || rc=1
  account_ctest_log "$name, beside them" "$beside_log" "$beside_rc" 0 || rc=1
  return "$rc"
}

# report_screenshot <file>: where a browser test saved its screenshot (the test itself fails
# when it cannot take one), so that the run's output names it.
report_screenshot() {
  if [[ -s "$1" ]]; then
    say "browser test screenshot: $REPO_ROOT/$1 ($(stat -c %s "$1") bytes)"
  else
    say "browser test screenshot: none at $REPO_ROOT/$1 (see the browser test's output)"
  fi
}

# account_ctest_log <label> <ctest log> <ctest exit code> <allow zero tests: 0|1>
# Adds the run's counts to the totals; a run with no test is a failure unless allowed, and a test
# that did not run (skipped or disabled) is counted as failed.
account_ctest_log() {
  local name="$1" log="$2" rc="$3" allow_empty="$4"
  local summary failed total
  summary="$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)"
  if [[ -z "$summary" ]]; then
    if grep -q 'No tests were found' "$log" && ((allow_empty)); then
      echo "test.sh: $name: no tests matched; nothing to run"
      return 0
    fi
    fail "$name: ctest ran no test (exit $rc)"
    return 1
  fi
  failed="$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$summary")"
  total="$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$summary")"
  # ctest counts a skipped test as passed (and leaves a disabled one out of the total).
  local -a not_run=()
  mapfile -t not_run < <(tests_that_did_not_run "$log")
  local skipped=0 test
  for test in ${not_run[@]+"${not_run[@]}"}; do
    [[ "$test" == *"(Skipped)" ]] && skipped=$((skipped + 1))
    fail "$name: test did not run, counted as failed (a skip passes silently; make it run, or do not instantiate it where it does not apply): $test"
  done
  TOTAL_PASSED=$((TOTAL_PASSED + total - failed - skipped))
  TOTAL_FAILED=$((TOTAL_FAILED + failed + ${#not_run[@]}))
  if ((total == 0)); then
    fail "$name: ctest ran no test"
    return 1
  fi
  if ((failed > 0 || rc != 0 || ${#not_run[@]} > 0)); then
    fail "$name: $failed of $total tests failed, ${#not_run[@]} did not run"
    local failed_test
    while IFS= read -r failed_test; do
      fail "$name: $failed_test"
    done < <(failed_tests_with_their_first_failure "$log")
    return 1
  fi
  echo "test.sh: $name: all $total tests passed"
}

consumer_check() {
  local prefix="$REPO_ROOT/build/install" dir="$REPO_ROOT/build/consumer" require=()
  rm -rf "$prefix" "$dir"
  cmake --install build --prefix "$prefix" >build/install.log || {
    cat build/install.log
    return 1
  }
  # A driver whose sources are in the tree must be in the installed package too.
  [[ -f drivers/mysql/CMakeLists.txt ]] && require+=(mysql)
  [[ -f drivers/odbc/CMakeLists.txt ]] && require+=(odbc)
  local IFS=';'
  cmake -S examples/find_package_consumer -B "$dir" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
    -DXA_CONSUMER_REQUIRE="${require[*]}" &&
    cmake --build "$dir" -j "$JOBS" &&
    "$dir/xa_consumer" || return 1
  # The same program built the Makefile way: one compiler line from the installed pkg-config
  # files (xa.pc, and one per driver), which must all be there.
  IFS=$' \t\n'
  local modules=(xa) defines=() module pc_dir flags
  for module in "${require[@]}"; do
    modules+=("xa-$module")
    defines+=("-DXA_CONSUMER_HAS_${module^^}=1")
  done
  pc_dir="$(dirname "$(find "$prefix" -path '*/pkgconfig/xa.pc' | head -n 1)")"
  flags="$(PKG_CONFIG_PATH="$pc_dir" pkg-config --cflags --libs "${modules[@]}")" || return 1
  # shellcheck disable=SC2086  # the flags are words
  g++ -std=c++20 "${defines[@]}" examples/find_package_consumer/main.cc $flags \
    -o "$dir/xa_pkg_config_consumer" &&
    "$dir/xa_pkg_config_consumer"
}

# The builds that run ahead at low priority: ahead_builds runs them in the background, each
# writing build/ahead-<name>.log and, when it ends, a line "<exit code> <seconds>" to
# build/ahead-<name>.done; await_ahead waits for one of them.
readonly AHEAD_DIR=build
AHEAD_PID=

# ahead_builds <TSan target...>: the install and consumers check, the Debian packages' build and
# test, then (unless XA_TEST_QUICK=1) the ASan+UBSan build, the TSan build of the given targets
# (none: no TSan build), and the fuzzers' build and run (bounded by XA_FUZZ_SECONDS, whatever CPU
# share it gets).
ahead_builds() {
  renice -n 19 -p "$BASHPID" >/dev/null
  # The idle I/O class too, where the disk's scheduler has one, so that the tests' fdatasyncs
  # do not queue behind the compilers' writes.
  ionice -c 3 -p "$BASHPID" 2>/dev/null || true
  ahead_step consumers consumer_check
  ahead_step packages bash scripts/package-test.sh "$REPO_ROOT/build-packages"
  [[ "${XA_TEST_QUICK:-0}" == 1 ]] && return 0
  ahead_step asan configure_and_build build-asan \
    -DCMAKE_BUILD_TYPE=Debug -DXA_SANITIZE=address -DXA_BUILD_BENCH=OFF
  if (($# > 0)); then
    ahead_step tsan configure_and_build build-tsan \
      -DCMAKE_BUILD_TYPE=Debug -DXA_SANITIZE=thread -DXA_BUILD_BENCH=OFF -- --target "$@"
  fi
  # The decision log's record decoder and replay, the configurations' parsers and the 3PC wire
  # under libFuzzer (clang, ASan+UBSan).
  ahead_step fuzz bash scripts/fuzz-log.sh "${XA_FUZZ_SECONDS:-60}"
}

# ahead_step <name> <command...>: runs one build of ahead_builds.
ahead_step() {
  local name="$1" start=$SECONDS rc=0
  shift
  "$@" >"$AHEAD_DIR/ahead-$name.log" 2>&1 || rc=$?
  echo "$rc $((SECONDS - start))" >"$AHEAD_DIR/ahead-$name.done"
}

start_ahead_builds() {
  rm -f "$AHEAD_DIR"/ahead-*.done "$AHEAD_DIR"/ahead-*.log
  # Its own process group (job control on for this one job), so that finish can stop it all.
  set -m
  ahead_builds "$@" &
  AHEAD_PID=$!
  set +m
}

# await_ahead <name> <label> [show]: waits for that step, lists it in the summary, and returns
# its exit code. Its log is printed when it failed (the last 60 lines), or whole with `show`.
await_ahead() {
  local name="$1" label="$2" show="${3:-}" done_file="$AHEAD_DIR/ahead-$1.done" start=$SECONDS
  say "waiting for the step ahead: $label"
  until [[ -s "$done_file" ]]; do
    if ! kill -0 "$AHEAD_PID" 2>/dev/null && [[ ! -s "$done_file" ]]; then
      echo "test.sh: the steps ahead ended without $name"
      return 1
    fi
    sleep 2
  done
  local rc seconds
  read -r rc seconds <"$done_file"
  TIMINGS+=("$(printf '%-42s %5ds  %s' "$label (ahead, nice 19)" "$seconds" "$([[ $rc == 0 ]] && echo ok || echo "FAILED ($rc)")")")
  TIMINGS+=("$(printf '%-42s %5ds' "  waited for it" $((SECONDS - start)))")
  if [[ -n "$show" ]]; then
    cat "$AHEAD_DIR/ahead-$name.log"
  elif ((rc != 0)); then
    tail -n 60 "$AHEAD_DIR/ahead-$name.log"
  fi
  ((rc == 0)) || return "$rc"
  echo "test.sh: $label: done (log: $AHEAD_DIR/ahead-$name.log)"
}

stop_ahead_builds() {
  if [[ -n "$AHEAD_PID" ]] && kill -0 "$AHEAD_PID" 2>/dev/null; then
    kill -- "-$AHEAD_PID" 2>/dev/null || true
    wait "$AHEAD_PID" 2>/dev/null || true
  fi
}

start_servers() {
  bash scripts/servers.sh start || return 1
  local env_file="${XA_SERVERS_DIR:-$REPO_ROOT/build/servers}/env.sh"
  # shellcheck source=/dev/null
  . "$env_file"
}

main() {
  local start_all=$SECONDS
  phase "install dependencies" bash scripts/install-deps.sh || { fail "install-deps.sh"; finish; }
  phase "no skipped test in tests/" no_skipped_tests_in_sources ||
    fail "tests/ holds a GTEST_SKIP or a DISABLED_ test (listed above)"
  # The lock-hold bench's quick run is a test here (every case present, 3PC releasing the rows
  # without the coordinator): bench/lockhold/CMakeLists.txt.
  phase "build (build/)" configure_and_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DXA_TEST_LOCK_HOLD_BENCH=ON ||
    { fail "build of build/"; finish; }
  phase "start servers" start_servers || { fail "scripts/servers.sh start"; finish; }
  # TSan builds only the programs that hold `concurrent` tests: the other programs' tests stay
  # out of its run anyway (ctest lists an unbuilt program as one unlabelled *_NOT_BUILT test).
  local -a concurrent=()
  mapfile -t concurrent < <(concurrent_test_programs)
  # For the sanitized programs: the ASan+UBSan tests and the fuzzers (which run ahead).
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  export LSAN_OPTIONS="suppressions=$REPO_ROOT/scripts/sanitizers/lsan.supp:print_suppressions=0"
  start_ahead_builds ${concurrent[@]+"${concurrent[@]}"}
  phase "tests (build/), two lanes" run_ctest_in_two_lanes "tests" build "$TIMEOUT" \
    'db|crash|concurrent|soak|bench' || true
  report_screenshot build/tests/msgd/msgd-management-page.png
  await_ahead consumers "install + find_package/pkg-config users" show ||
    fail "find_package or pkg-config consumer"
  await_ahead packages "Debian packages: build, install in a throwaway root, use, purge" show ||
    fail "the Debian packages"

  if [[ "${XA_TEST_QUICK:-0}" == 1 ]]; then
    say "XA_TEST_QUICK=1: skipping the ASan+UBSan and TSan builds"
    TIMINGS+=("sanitizer builds                           skipped (XA_TEST_QUICK=1)")
  else
    if await_ahead asan "build ASan+UBSan (build-asan/)"; then
      # The kill soak (label soak) runs in build/ only: under ASan it would take most of the
      # CI budget, and the crash matrix already runs its processes under ASan. The model checks
      # (label model: spin, and the participant simulation's hunt for each broken rule) sanitize
      # nothing the other tests do not: spin runs no code of ours, and the hunt's only code beyond
      # the simulation's own test is the deliberately broken rules.
      phase "tests ASan+UBSan (build-asan/), two lanes" run_ctest_in_two_lanes "asan tests" \
        build-asan $((TIMEOUT * 2)) 'db|crash|concurrent' 'soak|model' || true
    else
      fail "build of build-asan/"
    fi

    if ((${#concurrent[@]} == 0)); then
      say "TSan: NO test is labelled 'concurrent' yet, so there is nothing to run under TSan; skipping build-tsan/"
      TIMINGS+=("TSan                                       skipped: no test labelled 'concurrent'")
    else
      export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$REPO_ROOT/scripts/sanitizers/tsan.supp"
      if await_ahead tsan "build TSan (build-tsan/)"; then
        phase "tests TSan, -L concurrent (build-tsan/)" run_ctest "tsan tests" build-tsan 1 \
          -L concurrent --timeout $((TIMEOUT * 2)) -j 1 || true
      else
        fail "build of build-tsan/"
      fi
    fi
    await_ahead fuzz "fuzz the decision log and parsers (${XA_FUZZ_SECONDS:-60} s)" show ||
      fail "fuzzing the decision log"
  fi
  TIMINGS+=("$(printf '%-42s %5ds' total $((SECONDS - start_all)))")
  finish
}

main "$@"
