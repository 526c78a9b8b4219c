# Each folder includes only the layers below it. Run as
#   cmake -DROOT=<source root> -P layering_check.cmake
# and fails (with every offending line listed) when a file includes a project header from a layer
# it must not reach. The rules, lowest layer first:
#   include/xa      the public API: only itself
#   src/testing     crash and sync points, fuzz checks: only itself
#   src/base        logging, escaping, wake event, CRC32C, coding: the public API
#   recovery-log    the decision log: base, testing hooks
#   src/net         the network seam: base, testing hooks
#   src/completion  phase-2 rules and the conclude step: base
#   src/three_phase 3PC participant rules and agent messages: net, completion, base, testing hooks
#   src/recovery    recovery modules: three_phase, net, completion, base, testing hooks
#   src/tm          the transaction manager: three_phase, net, completion, recovery, base,
#                   testing hooks
#   src/sql_dialect the SQL dialects: base
#   src/http        the daemons' HTTP server: net (addresses), base
#   drivers/<name>  a driver: the dialects, base, and its own folder; never the core's internals
#                   and never another driver (drivers/http, TCC participants over HTTP: the
#                   HTTP stack and base; drivers/rabbitmq, the message service's broker: base)
#   tools/common    what the tools and daemons share (opening an RM from its configuration):
#                   base; the drivers through their public headers (xa/mysql, xa/odbc)
#   daemons         the daemons (xa-agent): the core's folders, tools/common; the drivers
#                   through their public headers
# Everything may include the public API (xa/...), and a folder its own files.

cmake_policy(VERSION 3.25)

# "<folder>|<allowed prefix>,<allowed prefix>...": commas, since a CMake list is split at ';'.
set(rules
  "include/xa|"
  "src/testing|"
  "src/base|"
  "recovery-log|src/base/,src/testing/"
  "src/net|src/base/,src/testing/"
  "src/completion|src/base/"
  "src/three_phase|src/net/,src/completion/,src/base/,src/testing/"
  "src/recovery|src/three_phase/,src/net/,src/completion/,src/base/,src/testing/"
  "src/tm|src/three_phase/,src/net/,src/completion/,src/recovery/,src/base/,src/testing/"
  "src/sql_dialect|src/base/"
  "src/http|src/net/,src/base/"
  "drivers/mysql|src/sql_dialect/,src/base/"
  "drivers/odbc|src/sql_dialect/,src/base/"
  "drivers/http|src/http/,src/base/"
  "drivers/rabbitmq|src/base/"
  "tools/common|src/base/"
  "daemons|src/,recovery-log/,tools/common/")

# Project-relative include paths name a project folder; anything else (xa/..., system headers)
# is not a project layer.
set(project_prefixes "src/" "recovery-log/" "drivers/" "tools/" "daemons/" "tests/" "examples/"
  "bench/")

# Sets `out` to TRUE when `text` starts with one of `prefixes` (a list).
function(starts_with_any text prefixes out)
  foreach(prefix IN LISTS prefixes)
    string(FIND "${text}" "${prefix}" at)
    if(at EQUAL 0)
      set(${out} TRUE PARENT_SCOPE)
      return()
    endif()
  endforeach()
  set(${out} FALSE PARENT_SCOPE)
endfunction()

set(violations "")
foreach(rule IN LISTS rules)
  string(FIND "${rule}" "|" bar)
  string(SUBSTRING "${rule}" 0 ${bar} folder)
  math(EXPR after "${bar} + 1")
  string(SUBSTRING "${rule}" ${after} -1 extra)
  string(REPLACE "," ";" extra "${extra}")
  set(allowed "${folder}/" ${extra})
  file(GLOB_RECURSE files "${ROOT}/${folder}/*.h" "${ROOT}/${folder}/*.cc")
  foreach(file IN LISTS files)
    file(STRINGS "${file}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
    foreach(line IN LISTS lines)
      string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*\"([^\"]*)\".*" "\\1" header "${line}")
      starts_with_any("${header}" "${project_prefixes}" is_project)
      if(NOT is_project)
        continue()
      endif()
      starts_with_any("${header}" "${allowed}" ok)
      if(NOT ok)
        string(REPLACE ";" ", " allowed_text "${allowed}")
        file(RELATIVE_PATH relative "${ROOT}" "${file}")
        string(APPEND violations "  ${relative}: includes \"${header}\" (${folder} may include only ${allowed_text})\n")
      endif()
    endforeach()
  endforeach()
endforeach()

if(NOT violations STREQUAL "")
  message(FATAL_ERROR "layering: these includes reach a layer they must not:\n${violations}"
    "Move the shared code down to a layer both may use (src/base for utilities), or go through "
    "the public API.")
endif()
message(STATUS "layering: every folder includes only the layers below it")
