// libFuzzer target: xa-agent's configuration parser on arbitrary text. Besides memory errors and
// undefined behaviour (ASan+UBSan), it checks what the parser promises for any input:
//   - an error is XA_CONFIG and its message carries no control character nor any byte outside
//     printable ASCII (text from the file is escaped);
//   - a configuration it accepts names an agent of its directory; every resource manager belongs
//     to one agent, and the [rm] sections are exactly this agent's; the timeouts are in range and
//     peer_timeout < termination_timeout; names fit their bounds; a driver for every RM.
// The seeds name the key file /tmp/xa-agent-config-fuzz.key, written (mode 0600) at start, so
// that inputs can get past key_file to the checks after it.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "daemons/agent/agent_config.h"
#include "src/testing/fuzz_checks.h"

namespace {

using xa::fuzz::Check;
using xa::fuzz::Printable;

bool InRange(const xa::agent::IntegerSetting& setting, int64_t value) {
  return value >= setting.min && value <= setting.max;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* path = "/tmp/xa-agent-config-fuzz.key";
  ::unlink(path);
  const int fd = ::open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return 0;  // inputs then stop at key_file; the other checks still run
  const std::string key(32, 'k');
  const ssize_t written = ::write(fd, key.data(), key.size());
  ::close(fd);
  (void)written;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace xa::agent;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = ParseAgentConfig(text, "fuzz.conf");
  if (!config.ok()) {
    Check(config.status().code() == xa::Code::kConfig);
    Check(Printable(config.status().message()));
    return 0;
  }
  Check(!config->log_dir.empty() && !config->key_file.empty());
  Check(InRange(kTerminationTimeoutMs, config->termination_timeout.count()));
  Check(InRange(kPeerTimeoutMs, config->peer_timeout.count()));
  Check(InRange(kOrphanScanIntervalMs, config->orphan_scan_interval.count()));
  Check(config->peer_timeout < config->termination_timeout);
  Check(config->address_of_agent.count(config->agent) == 1);
  for (const auto& [agent, address] : config->address_of_agent) {
    Check(!agent.empty() && agent.size() <= kMaxAgentNameSize && !address.empty());
  }
  std::set<std::string> mine;
  for (const auto& [rm, agent] : config->agent_of_rm) {
    Check(!rm.empty() && rm.size() <= kMaxRmNameSize);
    Check(config->address_of_agent.count(agent) == 1);
    if (agent == config->agent) mine.insert(rm);
  }
  std::set<std::string> sections;
  for (const RmConfig& rm : config->rms) {
    Check(rm.driver == "mysql" || rm.driver == "odbc");
    Check(sections.insert(rm.name).second);
  }
  Check(sections == mine);
  return 0;
}
