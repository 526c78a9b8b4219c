#!/usr/bin/env bash
# Runs one spin check of the three-phase commit model and fails unless its outcome is the
# expected one: `holds` (a complete search with 0 errors) or `violated` (spin reports the given
# property broken, so the check is known to catch that broken rule).
#
# Usage: run_spin.sh --spin <spin> --cc <cc> --model <three_phase.pml> --work <dir>
#                    --check safety|progress --expect holds|violated [--define <NAME>]
#   safety    assertions (agreement, validity); a violation must be the agreement assertion
#   progress  the `progress` LTL formula (acceptance cycles); a violation must be a cycle
set -euo pipefail

SPIN="" CC_BIN="" MODEL="" WORK="" CHECK="" EXPECT="" DEFINE=""
while (($#)); do
  case "$1" in
    --spin) SPIN="$2"; shift 2 ;;
    --cc) CC_BIN="$2"; shift 2 ;;
    --model) MODEL="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --check) CHECK="$2"; shift 2 ;;
    --expect) EXPECT="$2"; shift 2 ;;
    --define) DEFINE="$2"; shift 2 ;;
    *) echo "run_spin.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ -n "$SPIN" && -n "$CC_BIN" && -n "$MODEL" && -n "$WORK" ]] ||
  { echo "run_spin.sh: --spin, --cc, --model and --work are required" >&2; exit 2; }
[[ "$CHECK" == safety || "$CHECK" == progress ]] ||
  { echo "run_spin.sh: --check must be safety or progress" >&2; exit 2; }
[[ "$EXPECT" == holds || "$EXPECT" == violated ]] ||
  { echo "run_spin.sh: --expect must be holds or violated" >&2; exit 2; }

# A missing checker is a failure, never a skip: the model would silently go unchecked.
if ! command -v "$SPIN" >/dev/null 2>&1; then
  echo "FAIL: spin not found ('$SPIN'): install the Debian package 'spin' (scripts/install-deps.sh does)" >&2
  exit 1
fi
if ! command -v "$CC_BIN" >/dev/null 2>&1; then
  echo "FAIL: C compiler '$CC_BIN' not found: spin's verifier (pan.c) needs one" >&2
  exit 1
fi

rm -rf "$WORK"
mkdir -p "$WORK"
cp "$MODEL" "$WORK/three_phase.pml"
cd "$WORK"

spin_defines=()
[[ -n "$DEFINE" ]] && spin_defines=("-D$DEFINE")

# -DCOLLAPSE compresses state vectors; MEMLIM stops the search at 4 GiB instead of swapping.
# A broken variant's search stops at its first error: there compiling pan.c is the cost, so it
# is not optimised; the full searches of the rules that must hold are.
opt=-O1
[[ "$EXPECT" == violated ]] && opt=-O0
cc_flags=("$opt" -w -DCOLLAPSE -DMEMLIM=4096)
pan_flags=(-m10000)
if [[ "$CHECK" == safety ]]; then
  cc_flags+=(-DNOCLAIM -DSAFETY)
else
  pan_flags+=(-a)
fi

echo "== spin ${spin_defines[*]} -a three_phase.pml ($CHECK, expect $EXPECT)"
"$SPIN" "${spin_defines[@]}" -a three_phase.pml >spin.out 2>&1 || { cat spin.out; exit 1; }
"$CC_BIN" "${cc_flags[@]}" -o pan pan.c || { echo "FAIL: compiling pan.c" >&2; exit 1; }
start=$SECONDS
set +e
./pan "${pan_flags[@]}" >pan.out 2>&1
pan_status=$?
set -e
cat pan.out
echo "== pan exit status $pan_status, $((SECONDS - start)) s"

errors="$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' pan.out | tail -n 1)"
[[ -n "$errors" ]] || { echo "FAIL: pan printed no error count" >&2; exit 1; }
# The search must have checked the property the test is about.
if [[ "$CHECK" == safety ]]; then
  grep -qE 'assertion violations[[:space:]]+\+' pan.out ||
    { echo "FAIL: pan did not check assertions" >&2; exit 1; }
else
  grep -qE 'never claim[[:space:]]+\+ \(progress\)' pan.out ||
    { echo "FAIL: pan did not check the progress formula" >&2; exit 1; }
fi
# A search cut short proves nothing either way.
if grep -qE "max search depth too small|out of memory|pan: reached -DMEMLIM bound" pan.out; then
  echo "FAIL: the search was cut short (depth or memory bound)" >&2
  exit 1
fi

if [[ "$EXPECT" == holds ]]; then
  if [[ "$errors" != 0 ]]; then
    echo "FAIL: spin found $errors error(s) in the model that must hold; the counterexample:" >&2
    "$SPIN" "${spin_defines[@]}" -t -p -g three_phase.pml | tail -n 200 >&2 || true
    exit 1
  fi
  echo "PASS: $CHECK holds (0 errors, complete search)"
  exit 0
fi

if [[ "$errors" == 0 ]]; then
  echo "FAIL: spin found no violation in the broken variant ${DEFINE:-<none>}: the check misses it" >&2
  exit 1
fi
if [[ "$CHECK" == safety ]]; then
  grep -q 'assertion violated  !((ever_commit&&ever_abort))' pan.out ||
    { echo "FAIL: the violation is not the agreement assertion" >&2; exit 1; }
else
  grep -q 'acceptance cycle' pan.out ||
    { echo "FAIL: the violation is not a progress (acceptance) cycle" >&2; exit 1; }
fi
# The counterexample, one line per step that changes a state, for the log.
echo "== counterexample (agent/coordinator steps that change state):"
"$SPIN" "${spin_defines[@]}" -t -p three_phase.pml 2>/dev/null |
  grep -E '^ *[0-9]+:[[:space:]]+proc' |
  grep -E 'ast\[[a-z]+\] = |cphase = |adown\[i\] = |cst = |msg\[cidx\] = |cpre = |ccommit = |rph = [123]|\] = rid\]' |
  sed -E 's/proc  1 \(Coordinator:1\)/coordinator/; s/proc  2 \(Agent:1\)/agent 0/;
          s/proc  3 \(Agent:1\)/agent 1/; s/proc  4 \(Agent:1\)/agent 2/' || true
echo "PASS: spin reports the broken rule ${DEFINE} ($errors error(s))"
