// libFuzzer target: the xa-recover configuration parser on arbitrary text. Besides memory errors
// and undefined behaviour (ASan+UBSan), it checks what the parser promises for any input:
//   - an error is XA_CONFIG and its message carries no control character nor any byte outside
//     printable ASCII (text from the file is escaped);
//   - a configuration it accepts has a log_dir without trailing slash and not ending in "." or
//     "..", every number within its range, and a driver for every resource manager; its 3PC
//     agents (if any) have a key file, an address and resource managers that are [rm] sections,
//     each in exactly one agent; its marker (if any) is an [rm] section with a table name
//     MarkerTableNameError accepts, and without one the marker settings are the defaults.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

#include "src/testing/fuzz_checks.h"
#include "tools/xa_recover/config.h"
#include "xa/marker.h"

namespace {

using xa::fuzz::Check;
using xa::fuzz::Printable;

bool InRange(const xa::recover_tool::IntegerSetting& setting, int64_t value) {
  return value >= setting.min && value <= setting.max;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace xa::recover_tool;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = ParseConfig(text, "fuzz.conf");
  if (!config.ok()) {
    Check(config.status().code() == xa::Code::kConfig);
    Check(Printable(config.status().message()));
  } else {
    const std::string& dir = config->log_dir;
    Check(!dir.empty());
    Check(dir == "/" || dir.back() != '/');
    Check(dir != "." && dir != ".." && !dir.ends_with("/.") && !dir.ends_with("/.."));
    Check(InRange(kOrphanMinAgeMs, config->orphan_min_age.count()));
    Check(!config->rms.empty());
    for (const RmConfig& rm : config->rms) {
      Check(rm.driver == "mysql" || rm.driver == "odbc");
      Check(!rm.port || InRange(kPort, *rm.port));
      Check(!rm.connect_timeout || InRange(kConnectTimeoutS, rm.connect_timeout->count()));
    }
    Check(config->agents.empty() == config->agents_key_file.empty());
    Check(InRange(kAgentTimeoutMs, config->agent_timeout.count()));
    std::set<std::string> listed;
    for (const AgentEntry& agent : config->agents) {
      Check(!agent.name.empty() && !agent.address.empty() && !agent.rms.empty());
      for (const std::string& name : agent.rms) {
        Check(listed.insert(name).second);
        bool configured = false;
        for (const RmConfig& rm : config->rms) configured = configured || rm.name == name;
        Check(configured);
      }
    }
    if (config->marker_rm.empty()) {
      Check(config->marker_table == xa::MarkerCommitOptions{}.table);
      Check(config->marker_settle_wait == xa::MarkerCommitOptions{}.settle_wait);
    } else {
      bool configured = false;
      for (const RmConfig& rm : config->rms) {
        configured = configured || rm.name == config->marker_rm;
      }
      Check(configured);
      Check(xa::MarkerTableNameError(config->marker_table).empty());
      Check(InRange(kMarkerSettleWaitMs, config->marker_settle_wait.count()));
    }
  }
  // The number rule alone, on the first line: a value it accepts is in range and spelled back
  // exactly (one spelling a number).
  const std::string first_line = text.substr(0, text.find('\n'));
  auto number = ParseInteger(kSecondPassMs, first_line);
  if (number.ok()) {
    Check(InRange(kSecondPassMs, *number));
    Check(std::to_string(*number) == first_line || first_line == "-0" ||
          (first_line.size() > 1 && first_line[0] == '0') ||
          (first_line.size() > 2 && first_line.starts_with("-0")));
  } else {
    Check(Printable(number.status().message()));
  }
  return 0;
}
