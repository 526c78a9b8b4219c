// xa-log: inspects a decision log, read-only. The commands, options and exit codes are
// documented in recovery-log/log_tool.h and printed by `xa-log --help`.

#include <iostream>

#include "recovery-log/log_tool.h"

int main(int argc, char** argv) {
  return xa::internal::RunXaLogTool(argc, argv, std::cout, std::cerr);
}
