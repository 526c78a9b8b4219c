// xa-log: inspects a decision log, read-only. The commands, options and exit codes are
// documented in recovery-log/log_tool.h and printed by `xa-log --help`.

#include <iostream>

#include "recovery-log/log_tool.h"
#include "xa/logging.h"

int main(int argc, char** argv) {
  xa::LogToStderr();  // the library's warnings never mix into a report on stdout
  return xa::internal::RunXaLogTool(argc, argv, std::cout, std::cerr);
}
