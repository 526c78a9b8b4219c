#!/usr/bin/env bash
# Checks xa-agent's systemd unit (xa-agent@.service) with systemd-analyze: an instance of it,
# started from XA_AGENT (the xa-agent built beside this test, or the installed one), must pass
# `systemd-analyze verify` without a single message (a misspelt or misplaced setting is only a
# warning there, so any output fails), and its hardening must keep systemd's exposure level at
# 3.0 or below (`systemd-analyze security --offline`, the level printed).
#
# Usage: check_unit.sh UNIT_FILE XA_AGENT [--with-man-pages]
#   --with-man-pages  also check the unit's Documentation= pages (once they are installed)
set -euo pipefail
unit="$1" agent="$(realpath "$2")" man=no
[[ "${3:-}" == --with-man-pages ]] && man=yes
command -v systemd-analyze >/dev/null ||
  { echo "check_unit.sh: systemd-analyze not found: run scripts/install-deps.sh"; exit 1; }
[[ -x "$agent" ]] || { echo "check_unit.sh: no executable xa-agent at $agent"; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
instance="$work/xa-agent@example.service"
sed "s|^ExecStart=/usr/bin/xa-agent |ExecStart=$agent |" "$unit" >"$instance"
grep -q "^ExecStart=$agent " "$instance" ||
  { echo "check_unit.sh: $unit has no 'ExecStart=/usr/bin/xa-agent ' line"; exit 1; }

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
