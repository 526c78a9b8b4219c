#!/usr/bin/env bash
# The 2PC-versus-3PC lock hold bench in one command: builds xa_lock_hold_bench (Release, no
# tests, crash points compiled in), starts its own local servers, runs every case with a progress
# line each (the bench starts the two xa-agent processes itself), prints the table, checks the
# crash invariants, and writes CSV, PNG plots (gnuplot) and a markdown summary.
#
# Usage: bash bench/run-lock-hold.sh [--quick] [--out DIR] [--build-dir DIR]
#                                    [--recovery-delay-s R] [--agent-timeout-ms T] [--seconds S]
#                                    [--slow-prepare-ms D] [--agent-restart-delay-ms A]
#                                    [--agents-after-votes] [--link-delay-ms L]
#                                    [--link-loss-percent P] [--crashed-database mariadb|postgresql]
#                                    [--database-down-ms W]
#   --quick               seconds per case (CI); the full mode runs 10 s per no-failure case and
#                         three coordinator crashes per protocol
#   --out DIR             results folder (default <build dir>/lock-hold-results)
#   --build-dir DIR       default build-lock-hold; an existing build dir keeps its build type
#   --recovery-delay-s R  when the killed 2PC coordinator's recovery runs (quick 3, full 10)
#   --agent-timeout-ms T  the agents' termination timeout (default 2000)
#   --seconds S           per no-failure case (quick 1, full 10)
#   --slow-prepare-ms D   the slow-participant case's delay of the PostgreSQL prepare (50)
#   --agent-restart-delay-ms A  the agent-crash case's restart of the killed agent (1000, < T)
#   --agents-after-votes  3PC asks the agents once the databases voted, not during their prepares
#                         (ThreePhaseOptions::ask_agents_during_prepare off)
#   --link-delay-ms L     the agent-link case's delay of each coordinator-agent message (5)
#   --link-loss-percent P the share of them held 200 ms more, as a lost packet is (1)
#   --crashed-database    the database-crash case's killed server (mariadb)
#   --database-down-ms W  how long it stays down before it is restarted (1000)
# The bench program itself (build-lock-hold/bench/lockhold/xa_lock_hold_bench) also takes
# --cases and --clients, to look closer at one case; the check here wants every case.
#
# Servers: scripts/servers.sh with XA_SERVERS_DIR=<build dir>/servers on ports 23306, 25432 and
# 25433 unless XA_SERVERS_MARIADB_PORT, XA_SERVERS_PG_PORT, XA_SERVERS_PG_DISABLED_PORT say
# otherwise. Servers this script started are stopped at the end; running ones are left alone.
# Plots need gnuplot: `bash scripts/install-deps.sh --bench` installs it (Debian's gnuplot-nox).
set -euo pipefail

readonly REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf 'run-lock-hold: %s\n' "$*"; }
die() { printf 'run-lock-hold: error: %s\n' "$*" >&2; exit 1; }

quick=0 out="" build_dir="$REPO_ROOT/build-lock-hold" recovery_delay_s="" agent_timeout_ms=2000
slow_prepare_ms=50 agent_restart_delay_ms=1000
seconds="" agents_after_votes=0 link_delay_ms=5 link_loss_percent=1 crashed_database=mariadb
database_down_ms=1000
while (($#)); do
  case "$1" in
    --quick) quick=1; shift ;;
    --out) out="$2"; shift 2 ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --recovery-delay-s) recovery_delay_s="$2"; shift 2 ;;
    --agent-timeout-ms) agent_timeout_ms="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --slow-prepare-ms) slow_prepare_ms="$2"; shift 2 ;;
    --agent-restart-delay-ms) agent_restart_delay_ms="$2"; shift 2 ;;
    --agents-after-votes) agents_after_votes=1; shift ;;
    --link-delay-ms) link_delay_ms="$2"; shift 2 ;;
    --link-loss-percent) link_loss_percent="$2"; shift 2 ;;
    --crashed-database) crashed_database="$2"; shift 2 ;;
    --database-down-ms) database_down_ms="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
if [[ -z "$recovery_delay_s" ]]; then
  recovery_delay_s=$((quick ? 3 : 10))
fi
build_dir="$(mkdir -p "$build_dir" && cd "$build_dir" && pwd)"
out="${out:-$build_dir/lock-hold-results}"
command -v gnuplot >/dev/null ||
  die "gnuplot is not installed: run 'bash scripts/install-deps.sh --bench' (as root)"

# 1. Build: Release, no tests; the coordinator-crash case needs the crash points.
started=$SECONDS
if [[ -f "$build_dir/CMakeCache.txt" ]]; then
  cmake -S "$REPO_ROOT" -B "$build_dir" -DXA_BUILD_BENCH=ON -DXA_BUILD_EXAMPLES=ON \
    -DXA_ENABLE_TEST_HOOKS=ON >"$build_dir/lock-hold-configure.log" ||
    die "cmake failed: $build_dir/lock-hold-configure.log"
else
  cmake -S "$REPO_ROOT" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DXA_BUILD_TESTS=OFF -DXA_BUILD_BENCH=ON -DXA_BUILD_EXAMPLES=ON -DXA_ENABLE_TEST_HOOKS=ON \
    >"$build_dir/lock-hold-configure.log" || die "cmake failed: $build_dir/lock-hold-configure.log"
fi
say "building xa_lock_hold_bench and xa-agent in $build_dir"
cmake --build "$build_dir" -j "$(nproc)" --target xa_lock_hold_bench >"$build_dir/lock-hold-build.log" ||
  die "the build failed: $build_dir/lock-hold-build.log"
say "built in $((SECONDS - started)) s"

# 2. The servers (our own set).
export XA_SERVERS_DIR="$build_dir/servers"
if [[ ! -f "$XA_SERVERS_DIR/ports" ]]; then
  export XA_SERVERS_MARIADB_PORT="${XA_SERVERS_MARIADB_PORT:-23306}"
  export XA_SERVERS_PG_PORT="${XA_SERVERS_PG_PORT:-25432}"
  export XA_SERVERS_PG_DISABLED_PORT="${XA_SERVERS_PG_DISABLED_PORT:-25433}"
fi
stop_servers=0
if ! bash "$REPO_ROOT/scripts/servers.sh" status >/dev/null 2>&1; then
  stop_servers=1
fi
bash "$REPO_ROOT/scripts/servers.sh" start >"$build_dir/lock-hold-servers.log" 2>&1 ||
  die "scripts/servers.sh start failed: $build_dir/lock-hold-servers.log"
if ((stop_servers)); then
  trap 'bash "$REPO_ROOT/scripts/servers.sh" stop >>"$build_dir/lock-hold-servers.log" 2>&1 || true' EXIT
fi
# shellcheck source=/dev/null
. "$XA_SERVERS_DIR/env.sh"

# 3. The cases.
mkdir -p "$out"
args=(--out "$out" --recovery-delay-s "$recovery_delay_s" --agent-timeout-ms "$agent_timeout_ms"
  --slow-prepare-ms "$slow_prepare_ms" --agent-restart-delay-ms "$agent_restart_delay_ms"
  --link-delay-ms "$link_delay_ms" --link-loss-percent "$link_loss_percent"
  --crashed-database "$crashed_database" --database-down-ms "$database_down_ms")
((quick)) && args+=(--quick)
((agents_after_votes)) && args+=(--agents-after-votes)
[[ -n "$seconds" ]] && args+=(--seconds "$seconds")
say "mode $( ((quick)) && echo quick || echo full); results in $out"
bench_rc=0
"$build_dir/bench/lockhold/xa_lock_hold_bench" "${args[@]}" || bench_rc=$?

# 4. The invariant, checked from the CSV (a missing case fails too).
check_rc=0
bash "$REPO_ROOT/bench/lockhold/check_lock_hold.sh" --recovery-delay-s "$recovery_delay_s" \
  --agent-timeout-ms "$agent_timeout_ms" --slow-prepare-ms "$slow_prepare_ms" \
  --link-delay-ms "$link_delay_ms" "$out" || check_rc=$?

# 5. Plots.
if [[ -s "$out/summary.csv" ]]; then
  for protocol in 2pc 3pc; do
    awk -F, -v p="$protocol" 'NR > 1 && $1 == "no-failure" && $2 == p { print $3, $5, $6, $8 }' \
      "$out/summary.csv" >"$out/no-failure-$protocol.dat"
  done
  awk -F, 'NR > 1 && $1 == "coordinator-crash" {
      printf "%s-%s %.3f\n", toupper($2), $4, $6 / 1000 }' "$out/samples.csv" \
    >"$out/coordinator-crash.dat"
  crash_boxes="$(wc -l <"$out/coordinator-crash.dat")"
  # Every case at 1 client: the hold p50 and max, on a log scale (milliseconds to seconds).
  awk -F, 'NR > 1 && $3 == 1 { printf "%s-%s %.3f %.3f\n", $1, toupper($2), $5, $7 }' \
    "$out/summary.csv" >"$out/hold-by-case.dat"
  case_bars="$(wc -l <"$out/hold-by-case.dat")"
  gnuplot <<EOF || say "gnuplot failed; the CSV and the summary are complete"
set terminal pngcairo size 900,520 noenhanced
set datafile separator whitespace
set grid ytics
set key top left

set output "$out/hold-no-failure.png"
set title "Lock hold time without failures (from the databases' side)"
set xlabel "clients"
set ylabel "hold time (ms)"
set logscale x 2
set xrange [0.8:20]
set xtics (1, 4, 16)
set yrange [0:*]
plot "$out/no-failure-2pc.dat" using 1:2 with linespoints lw 2 title "2PC p50", \
     "$out/no-failure-2pc.dat" using 1:3 with linespoints lw 2 dt 2 title "2PC p99", \
     "$out/no-failure-3pc.dat" using 1:2 with linespoints lw 2 title "3PC p50", \
     "$out/no-failure-3pc.dat" using 1:3 with linespoints lw 2 dt 2 title "3PC p99"

set output "$out/throughput-no-failure.png"
set title "Committed transfers per second"
set ylabel "commits/s"
plot "$out/no-failure-2pc.dat" using 1:4 with linespoints lw 2 title "2PC", \
     "$out/no-failure-3pc.dat" using 1:4 with linespoints lw 2 title "3PC"

set output "$out/hold-coordinator-crash.png"
unset logscale x
set autoscale x
set xrange [-0.6:$crash_boxes - 0.4]
set key top left opaque
set offsets 0, 0, graph 0.25, 0
unset xtics
set xtics rotate by -30 nomirror
set title "Coordinator killed mid-commit: rows released after the kill"
set xlabel ""
set ylabel "seconds after the kill"
set style fill solid 0.6
set boxwidth 0.6
set yrange [0:*]
plot "$out/coordinator-crash.dat" using 0:2:xtic(1) with boxes notitle, \
     $recovery_delay_s with lines lw 2 dt 2 title "2PC recovery starts (R = $recovery_delay_s s)", \
     ($agent_timeout_ms / 1000.0 + 1) with lines lw 2 dt 3 title "3PC bound: agents' timeout + 1 s"

set output "$out/hold-by-case.png"
set terminal pngcairo size 1100,560 noenhanced
set xrange [-0.6:$case_bars - 0.4]
set offsets 0, 0, 0, 0
set logscale y 10
set yrange [0.5:*]
set key top left opaque
set title "Lock hold time at 1 client, every case (p50 bars, max points; log scale)"
set ylabel "hold time (ms)"
set boxwidth 0.6
plot "$out/hold-by-case.dat" using 0:2:xtic(1) with boxes title "p50", \
     "$out/hold-by-case.dat" using 0:3 with points pt 7 ps 1.2 title "max"
EOF
  {
    echo
    echo "![lock hold without failures](hold-no-failure.png)"
    echo "![throughput without failures](throughput-no-failure.png)"
    echo "![coordinator killed mid-commit](hold-coordinator-crash.png)"
    echo "![every case at 1 client](hold-by-case.png)"
  } >>"$out/summary.md"
fi

say "took $((SECONDS - started)) s in all; results: $out (summary.md, summary.csv, samples.csv, *.png)"
if ((bench_rc != 0 || check_rc != 0)); then
  die "the bench (exit $bench_rc) or the check (exit $check_rc) failed"
fi
