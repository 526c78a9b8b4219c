# Runs Doxygen over xa's public headers and fails, printing every warning, when it warned.
# Used by the xa_api_docs target and by the ApiReference test (docs/api/CMakeLists.txt):
#   cmake -DDOXYGEN=<doxygen> -DDOXYFILE=<configured Doxyfile> -DWARN_LOG=<its WARN_LOGFILE>
#         -P run_doxygen.cmake
# Doxygen writes its warnings to WARN_LOG (not to the terminal) and, with
# WARN_AS_ERROR = FAIL_ON_WARNINGS, exits non-zero after a complete run when there was one.
file(REMOVE ${WARN_LOG})
execute_process(COMMAND ${DOXYGEN} ${DOXYFILE} RESULT_VARIABLE result)
set(warnings "")
if(EXISTS ${WARN_LOG})
  file(READ ${WARN_LOG} warnings)
  string(STRIP "${warnings}" warnings)
endif()
if(NOT warnings STREQUAL "")
  message(NOTICE "${warnings}")
endif()
if(NOT result EQUAL 0 OR NOT warnings STREQUAL "")
  message(FATAL_ERROR "Doxygen failed on the public headers (exit status ${result}; its "
    "warnings, above, are in ${WARN_LOG}). Every public class, function, member, enum and "
    "typedef needs a `//` comment directly above it, or a trailing one on its line: see "
    "docs/api/comment_filter.py.")
endif()
