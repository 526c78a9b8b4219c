#!/usr/bin/env bash
# Checks a daemon's systemd unit (xa-agent@.service, xa-msgd@.service) with systemd-analyze: an
# instance of it, started from DAEMON (the binary built beside this test, or the installed one;
# the unit's ExecStart names /usr/bin/<the unit's name before '@'>), must pass
# `systemd-analyze verify` without a single message (a misspelt or misplaced setting is only a
# warning there, so any output fails), and its hardening must keep systemd's exposure level at
# 3.0 or below (`systemd-analyze security --offline`, the level printed).
#
# Usage: check_unit.sh UNIT_FILE DAEMON [--with-man-pages]
#   --with-man-pages  also check the unit's Documentation= pages (once they are installed)
set -euo pipefail
unit="$1" daemon="$(realpath "$2")" man=no
name="$(basename "$unit")"
name="${name%%@*}"
name="${name%.service}"
[[ "${3:-}" == --with-man-pages ]] && man=yes
command -v systemd-analyze >/dev/null ||
  { echo "check_unit.sh: systemd-analyze not found: run scripts/install-deps.sh"; exit 1; }
[[ -x "$daemon" ]] || { echo "check_unit.sh: no executable $name at $daemon"; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
instance="$work/$name@example.service"
sed "s|^ExecStart=/usr/bin/$name |ExecStart=$daemon |" "$unit" >"$instance"
grep -q "^ExecStart=$daemon " "$instance" ||
  { echo "check_unit.sh: $unit has no 'ExecStart=/usr/bin/$name ' line"; exit 1; }

output="$(systemd-analyze verify --man="$man" "$instance" 2>&1)" || {
  echo "check_unit.sh: systemd-analyze verify failed:"; echo "$output"; exit 1; }
if [[ -n "$output" ]]; then
  echo "check_unit.sh: systemd-analyze verify has something to say about $unit:"
  echo "$output"
  exit 1
fi
level="$(systemd-analyze security --offline=true --no-pager "$instance" 2>&1 |
  sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')"
[[ -n "$level" ]] || { echo "check_unit.sh: systemd-analyze security printed no exposure level"; exit 1; }
if ! systemd-analyze security --offline=true --threshold=30 --no-pager "$instance" >/dev/null 2>&1; then
  echo "check_unit.sh: exposure level $level is above 3.0: the unit lost some of its hardening"
  exit 1
fi
echo "check_unit.sh: $unit verifies cleanly; exposure level $level (at most 3.0)"
