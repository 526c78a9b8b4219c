#!/usr/bin/env bash
# Checks a generated man page (roff, from docs/man/<page>.md) against what it documents, for the
# ManPages.* tests of docs/man/CMakeLists.txt. Each check fails (exit 1) listing every item that
# is missing or extra, and also fails when it finds nothing to check, so that it can never pass
# by checking nothing.
#
#   check_man_page.sh options      PAGE TOOL   OPTIONS and COMMANDS entries = TOOL's --help
#   check_man_page.sh exit-codes   PAGE TOOL   EXIT STATUS entries = the exit codes of --help
#   check_man_page.sh environment  PAGE TOOL   every XA_* variable of --help has an ENVIRONMENT entry
#   check_man_page.sh config-keys  PAGE SOURCE:ARRAY:SECTION...
#                                              SECTION's entries = the keys in ARRAY of SOURCE
#   check_man_page.sh renders      PAGE        man and groff render it without a warning, under
#                                              the title and section of its file name
#                                              (MAN_PROGRAM, GROFF_PROGRAM: default man, groff)
#
# An entry is a definition-list item, which pandoc writes as `.TP` and the term on the next line;
# a section is a `.SH` heading. The help text is `TOOL --help` and, for each command its
# "commands:" block lists, `TOOL COMMAND --help`.
set -euo pipefail
export LC_ALL=C  # one collation for sort and comm

die() { printf 'check_man_page: %s\n' "$*" >&2; exit 2; }
fail() { printf 'check_man_page: FAIL: %s\n' "$*" >&2; exit 1; }

# The roff page as plain lines: font changes dropped, escaped hyphens and quotes as typed. An en
# dash (\[en], what pandoc's smart typography makes of `--`) is left alone on purpose: an option
# that renders as "–config" is not "--config".
plain_roff() {
  sed -e 's/\\f\[[A-Z]*\]//g' -e 's/\\f[BIRPV]//g' -e 's/\\f(..//g' -e 's/\\-/-/g' \
    -e 's/\\&//g' -e "s/\\\\\\[aq\\]/'/g" -e 's/\\\[dq\]/"/g' "$1"
}

# The terms of the entries in section $2 of page $1, one a line.
entry_terms() {
  plain_roff "$1" | awk -v want="$2" '
    /^\.SH/ { sub(/^\.SH[ \t]*/, ""); gsub(/"/, ""); section = $0; term_next = 0; next }
    /^\.TP/ { term_next = 1; next }
    term_next { term_next = 0; if (section == want) print }'
}

# The first word of each entry of section $2 of page $1.
entry_names() { entry_terms "$1" "$2" | awk '{ print $1 }' | sed 's/,$//' | sort -u; }

# Every help text of tool $1: its --help, then each command's.
help_texts() {
  local tool="$1" main command
  main="$("$tool" --help)" || fail "'$tool --help' failed"
  printf '%s\n' "$main"
  while read -r command; do
    [[ -n "$command" ]] || continue
    "$tool" "$command" --help || fail "'$tool $command --help' failed"
  done < <(commands_of "$main")
}

# The command words of a help text: the lines of its "commands:" block (up to the first blank
# line) that start with a word right after the two-space indent.
commands_of() {
  printf '%s\n' "$1" | awk '
    /^commands:/ { inside = 1; next }
    inside && /^[ \t]*$/ { inside = 0 }
    inside && /^  [a-z][a-z0-9-]*/ { sub(/^  /, ""); sub(/[ \t].*/, ""); print }' | sort -u
}

# Compares two sorted lists: reports what is in $2 (what the source has) but not in $4 (what the
# page has), and, unless $6 is "subset", what is in $4 but not in $2. Returns 1 when it reported
# a difference, so that a check can report every difference before it fails.
compare() {
  local source_name="$1" source_items="$2" page_name="$3" page_items="$4" page="$5" mode="${6:-exact}"
  [[ -n "$source_items" ]] || fail "found no $source_name to check: has the format of its source changed?"
  local missing extra problems=""
  missing="$(comm -23 <(printf '%s\n' "$source_items") <(printf '%s\n' "$page_items"))"
  if [[ -n "$missing" ]]; then
    problems+="$(printf '%s\n' "$missing" | sed "s/^/  missing from $page_name: /")"$'\n'
  fi
  if [[ "$mode" != subset ]]; then
    extra="$(comm -13 <(printf '%s\n' "$source_items") <(printf '%s\n' "$page_items"))"
    if [[ -n "$extra" ]]; then
      problems+="$(printf '%s\n' "$extra" | sed "s/^/  in $page_name but not among the $source_name: /")"$'\n'
    fi
  fi
  if [[ -n "$problems" ]]; then
    printf 'check_man_page: FAIL: %s does not document %s the %s:\n%s' "$(basename "$page")" \
      "$([[ "$mode" == subset ]] && echo every one of || echo exactly)" "$source_name" \
      "$problems" >&2
    return 1
  fi
  printf 'check_man_page: %s: %s documented (%s)\n' "$(basename "$page")" "$source_name" \
    "$(printf '%s\n' "$source_items" | paste -sd' ')"
}

check_options() {
  local page="$1" tool="$2" help commands status=0
  help="$(help_texts "$tool")"
  compare "options of $(basename "$tool") --help" \
    "$(printf '%s\n' "$help" | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)" \
    "OPTIONS" "$(entry_terms "$page" OPTIONS | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)" \
    "$page" || status=1
  commands="$(commands_of "$("$tool" --help)")"
  if [[ -n "$commands" ]]; then
    compare "commands of $(basename "$tool") --help" "$commands" \
      "COMMANDS" "$(entry_names "$page" COMMANDS)" "$page" || status=1
  elif [[ -n "$(entry_names "$page" COMMANDS)" ]]; then
    fail "$(basename "$page") has COMMANDS entries, but $(basename "$tool") --help lists no command"
  fi
  return "$status"
}

# The exit codes of a help text: the numbers that start an item of its "exit codes:" block.
check_exit_codes() {
  local page="$1" tool="$2" codes
  codes="$("$tool" --help | awk '
      /^exit codes:/ { inside = 1 }
      inside && /^[ \t]*$/ { inside = 0 }
      inside { print }' | grep -oE '(^|[[:space:],:])[0-9]+[[:space:]]+[a-z(]' |
    grep -oE '[0-9]+' | sort -u)" || true
  compare "exit codes of $(basename "$tool") --help" "$codes" \
    "EXIT STATUS" "$(entry_names "$page" 'EXIT STATUS' | grep -E '^[0-9]+$' || true)" "$page"
}

# The page may document more variables than the help names (password_env's, unixODBC's).
check_environment() {
  local page="$1" tool="$2"
  compare "environment variables of $(basename "$tool") --help" \
    "$(help_texts "$tool" | grep -oE '\bXA_[A-Z0-9_]+\b' | sort -u)" \
    "ENVIRONMENT" "$(entry_terms "$page" ENVIRONMENT | grep -oE '\bXA_[A-Z0-9_]+\b' | sort -u)" \
    "$page" subset
}

# The keys of one constexpr array of a parser, e.g.
#   constexpr std::string_view kAgentKeys[] = {"address", "rms"};
# (the list a parser refuses unknown keys with), the quoted strings from its '{' to its '};'.
array_keys() {
  local source="$1" array="$2"
  awk -v array="$array" '
    index($0, array "[] = {") { inside = 1 }
    inside { print }
    inside && /};/ { exit }' "$source" | grep -oE '"[^"]*"' | tr -d '"' | sort -u
}

check_config_keys() {
  local page="$1" spec source array section
  shift
  (($# > 0)) || die "config-keys needs at least one SOURCE:ARRAY:SECTION"
  local status=0
  for spec in "$@"; do
    IFS=: read -r source array section <<<"$spec"
    [[ -r "$source" ]] || die "cannot read $source"
    compare "keys of $array in $(basename "$source")" "$(array_keys "$source" "$array")" \
      "$section" "$(entry_names "$page" "$section")" "$page" || status=1
  done
  return "$status"
}

check_renders() {
  local page="$1" name section title th warnings
  name="$(basename "$page")"
  section="${name##*.}"
  title="$(printf '%s' "${name%.*}" | tr '[:lower:]' '[:upper:]')"
  # .TH "XA-RECOVER" "1" "" "xa 0.1.0" "xa manual": from the markdown's title block.
  th="$(grep -m1 '^\.TH ' "$page")" || fail "$name: no .TH line"
  [[ "$(printf '%s' "$th" | awk -F'"' '{ print $2 "(" $4 ")" }')" == "$title($section)" ]] ||
    fail "$name: its .TH line is not for $title($section): $th"
  # What man-db's own pipeline says (preprocessors, encoding), then groff with every warning.
  warnings="$(MANWIDTH=80 MANPAGER=cat PAGER=cat "${MAN_PROGRAM:-man}" --warnings -E UTF-8 -l "$page" \
    2>&1 >/dev/null)" ||
    fail "$name: man failed: $warnings"
  [[ -z "$warnings" ]] || fail "$name: man --warnings reports:"$'\n'"$warnings"
  warnings="$("${GROFF_PROGRAM:-groff}" -man -t -ww -z "$page" 2>&1)" || fail "$name: groff failed: $warnings"
  [[ -z "$warnings" ]] || fail "$name: groff -ww reports:"$'\n'"$warnings"
  printf 'check_man_page: %s renders as %s(%s) without warnings\n' "$name" "$title" "$section"
}

(($# >= 2)) || die "usage: check_man_page.sh options|exit-codes|environment|config-keys|renders PAGE ..."
check="$1" page="$2"
shift 2
[[ -r "$page" ]] || fail "no page at $page: build the target xa_man_pages first"
# Each check returns 1 after reporting every difference it found.
case "$check" in
  options) (($# == 1)) || die "options PAGE TOOL"; check_options "$page" "$1" ;;
  exit-codes) (($# == 1)) || die "exit-codes PAGE TOOL"; check_exit_codes "$page" "$1" ;;
  environment) (($# == 1)) || die "environment PAGE TOOL"; check_environment "$page" "$1" ;;
  config-keys) check_config_keys "$page" "$@" ;;
  renders) (($# == 0)) || die "renders PAGE"; check_renders "$page" ;;
  *) die "unknown check '$check'" ;;
esac
