#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine as root: installs what is missing, builds the demo
# program in build/, starts the local MariaDB and PostgreSQL servers (scripts/servers.sh) and runs
# the demo against them. Exits with the demo's status. The servers stay up afterwards; stop them
# with `bash scripts/servers.sh stop`.
#
# Environment (optional):
#   XA_SERVERS_DIR   where the servers keep their data (default build/servers)
#   XA_TEST_JOBS     build parallelism (default 2)
# Arguments after `--` go to the demo program.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
readonly REPO_ROOT="$(pwd)"
readonly JOBS="${XA_TEST_JOBS:-2}"

# The demo programs, best first: the transaction manager demo once it exists, else the drivers'.
readonly DEMO_TARGETS=(xa-demo xa-driver-demo)

say() { printf '\n==== demo.sh: %s\n' "$*"; }

say "installing missing Debian packages"
bash scripts/install-deps.sh

mkdir -p build
say "configuring build/"
# Same options as scripts/test.sh, so both share build/.
cmake -S "$REPO_ROOT" -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXA_WERROR=ON \
  -DXA_ENABLE_TEST_HOOKS=ON >build/demo-configure.log 2>&1 || {
  cat build/demo-configure.log >&2
  echo "demo.sh: cmake configure failed" >&2
  exit 1
}

target=""
# The list is read whole first: `ninja ... | grep -q` under pipefail fails when grep stops reading
# at its match and ninja, still writing a long list, dies of SIGPIPE.
all_targets=$(ninja -C build -t targets all 2>/dev/null)
for candidate in "${DEMO_TARGETS[@]}"; do
  if grep -q "^${candidate}: phony" <<<"$all_targets"; then
    target="$candidate"
    break
  fi
done
if [[ -z "$target" ]]; then
  echo "demo.sh: no demo program (${DEMO_TARGETS[*]}) is defined in this tree" >&2
  exit 1
fi

say "building $target"
cmake --build build -j "$JOBS" --target "$target"
program="$(find build -type f -name "$target" -perm -u+x | head -n 1)"
[[ -n "$program" ]] || { echo "demo.sh: built $target but cannot find the program" >&2; exit 1; }

say "starting the local servers"
bash scripts/servers.sh start
# shellcheck source=/dev/null
. "${XA_SERVERS_DIR:-$REPO_ROOT/build/servers}/env.sh"

if [[ "${1:-}" == "--" ]]; then
  shift
fi
say "running $program"
"$program" "$@"
