# Reading ctest logs for test.sh's summary: sourced by scripts/test.sh, and by
# tests/scripts/ctest_summary_test.sh, which checks it on made-up logs.
#
# failed_tests_with_their_first_failure <ctest log>
# The tests a ctest log lists under "The following tests FAILED:", one a line, each with the
# first failure line of its output (a gtest assertion's "file:line: Failure" and the line after
# it, or a sanitizer's or a script's first error line), so the summary at the end of a long CI log
# names what failed and where. ctest prints a failed test's output after its result line. A
# script's error line has "FAIL:" at the start of a word: a log line about XAER_RMFAIL is not one
# (taking it once hid the assertion of a failed kill soak behind the first warning it logged).
failed_tests_with_their_first_failure() {
  local log="$1" test first
  awk '/^The following tests FAILED:/ { listing = 1; next }
       listing && /^[ \t]*[0-9]+ - / { sub(/^[ \t]*[0-9]+ - /, ""); print; next }
       listing { listing = 0 }' "$log" |
    while IFS= read -r test; do
      first="$(awk -v name="${test% (*}" '
          /Test +#[0-9]+: / { inside = (index($0, ": " name " ") > 0); next }
          /^ +Start +[0-9]+: |^[0-9]+% tests passed/ { inside = 0; next }
          inside && / Failure$/ { line = $0; getline; print line " | " $0; exit }
          inside && /ERROR: (Address|Thread|Leak)Sanitizer|runtime error:|(^|[ \t])FAIL:/ {
            print; exit }' "$log" | cut -c1-400)"
      echo "$test${first:+: $first}"
    done
}

