#!/usr/bin/env bash
# Installs the Debian 12 packages that xa's build, tests and demo need. Does nothing (and runs no
# apt at all) when every package is already installed; otherwise needs root and the Debian
# archive: `apt-get update`, then `apt-get install --no-install-recommends` of what is missing.
#
# Usage: scripts/install-deps.sh [--check] [--bench]
#   --check   only report what is missing; exit 1 when something is.
#   --bench   also what bench/run-lock-hold.sh needs beyond the build (gnuplot for its plots).
set -euo pipefail

readonly PACKAGES=(
  # Build
  build-essential g++ cmake ninja-build pkg-config git
  # clang + its runtime for the libFuzzer targets; GCC's sanitizer runtimes for ASan/UBSan/TSan
  clang libclang-rt-14-dev libasan8 libubsan1 libtsan2
  # Libraries
  libboost-log-dev libmysqlcppconn-dev unixodbc unixodbc-dev odbc-mariadb odbc-postgresql
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  # libcrypto (OpenSSL): HMAC-SHA256 and random nonces of the peer handshake
  libssl-dev
  # cpp-httplib: the HTTP server and client (src/http); nlohmann-json: the JSON the TCC shop's
  # participant services read (examples/tcc_shop)
  libcpp-httplib-dev nlohmann-json3-dev
  # Local test servers (scripts/servers.sh); PostgreSQL 15 exactly: its binaries' path is fixed
  mariadb-server mariadb-client postgresql-15 postgresql-client-15
  # RabbitMQ and its C client: the reliable message service's broker (daemons/msgd,
  # drivers/rabbitmq)
  rabbitmq-server librabbitmq-dev
  # Redis and its C client hiredis: xa-msgd's Redis message store (daemons/msgd) and its tests.
  # scripts/servers.sh runs its own redis-server on 127.0.0.1:16379; the system one the package
  # may start on 6379 (where systemd runs) is neither needed nor touched.
  redis-server libhiredis-dev
  # Headless Chromium and its WebDriver: the management page's browser test (tests/msgd)
  chromium chromium-driver
  # Tools the scripts use: ps/pgrep, setsid/flock/runuser, timeout/sha256sum; ss (a test reads a
  # listening socket's backlog with it)
  procps util-linux coreutils iproute2
  # The model checker of the three-phase commit model (tests/model)
  spin
  # Packaging and reference docs (scripts/package-test.sh, docs/man, docs/api): man pages from
  # markdown, the API reference, `man` itself, and systemd-analyze for the daemons' units
  pandoc doxygen man-db systemd
  # The API reference's comment filter (docs/api/comment_filter.py)
  python3
)
# Only for the benches' plots (bench/run-lock-hold.sh), not for the build or the tests.
readonly BENCH_PACKAGES=(gnuplot-nox)

installed() {
  local status
  status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" || return 1
  [[ "$status" == ii* ]]
}

main() {
  local check_only=0
  local -a wanted=("${PACKAGES[@]}")
  local option
  for option in "$@"; do
    case "$option" in
      --check) check_only=1 ;;
      --bench) wanted+=("${BENCH_PACKAGES[@]}") ;;
      -h | --help) sed -n '2,8{s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
      *) echo "install-deps.sh: unknown option '$option'" >&2; exit 2 ;;
    esac
  done

  local -a missing=()
  local package
  for package in "${wanted[@]}"; do
    installed "$package" || missing+=("$package")
  done
  if ((${#missing[@]} == 0)); then
    echo "install-deps.sh: all ${#wanted[@]} packages are installed"
    return 0
  fi
  echo "install-deps.sh: missing: ${missing[*]}"
  if ((check_only)); then
    return 1
  fi
  if [[ "$(id -u)" != 0 ]]; then
    echo "install-deps.sh: run as root to install them (apt-get)" >&2
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Wait for a concurrent apt/dpkg (e.g. unattended-upgrades) instead of failing at once.
  local -a apt_options=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
  apt-get "${apt_options[@]}" update
  apt-get "${apt_options[@]}" install -y --no-install-recommends "${missing[@]}" </dev/null

  local -a still_missing=()
  for package in "${missing[@]}"; do
    installed "$package" || still_missing+=("$package")
  done
  if ((${#still_missing[@]} > 0)); then
    echo "install-deps.sh: still missing after apt-get: ${still_missing[*]}" >&2
    return 1
  fi
  echo "install-deps.sh: installed ${#missing[@]} packages"
}

main "$@"
