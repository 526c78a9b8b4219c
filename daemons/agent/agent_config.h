// The configuration file of `xa-agent`, the 3PC participant agent (docs/three-phase-commit.md).
//
// Grammar (the shared reader's, src/base/config_file.h: one setting a line; '#' starts a
// comment; blank lines ignored; values run to the end of the line with surrounding blanks
// trimmed; no quoting):
//
//   agent = agent-a                    # required: this agent's name in the directory below
//   log_dir = /var/lib/xa-agent/a      # required: the agent's own state log
//   node_id = 7                        # required: written in its log header (0 to 4294967295)
//   key_file = /etc/xa/agents.key      # required: the key shared by every agent and coordinator
//                                      # (mode 0600 or 0400; the rules of src/net/peer_auth.h)
//   termination_timeout_ms = 5000      # optional, default 5000, 50 to 3600000
//   peer_timeout_ms = 1000             # optional, default 1000, 10 to 600000: connect + reply
//                                      # wait for one peer message; less than
//                                      # termination_timeout_ms
//   orphan_scan_interval_ms = 30000    # optional, default 30000, 100 to 86400000
//   coordinator_node_ids = 7, 8        # optional, default node_id: the node ids of the
//                                      # coordinators (transaction managers) this deployment
//                                      # runs; the orphan scan rolls back only their 3PC
//                                      # branches (another node's belong to another deployment)
//   metrics_address = 127.0.0.1:19101  # optional: where the metrics are served (port 0: any)
//
//   [agent agent-a]                    # the directory: every agent of the deployment, the same
//   address = 127.0.0.1:17001          # file everywhere; <IPv4>:<port> or [<IPv6>]:<port>
//   rms = accounts, ledger             # the resource managers this agent stands for
//   [agent agent-b]
//   address = [::1]:17002
//   rms = stock
//
//   [rm accounts]                      # the resource managers of THIS agent only, one section
//   driver = mysql                     # each, in xa-recover's grammar (src/base/config_file.h)
//   host = 127.0.0.1
//   user = xa_agent
//   password_file = /etc/xa/accounts.pw
//   [rm ledger]
//   driver = odbc
//   dsn = ledger_pg
//   password_env = LEDGER_DB_PASSWORD
//
// Checks, beyond the shared reader's (unknown keys, duplicates, plain UTF-8 text, numbers in
// range, the file's owner and mode, passwords never inline):
//   - `agent` names an [agent] section of the directory;
//   - every [agent] section has an address (a real port: not 0) and a non-empty rms list; no two
//     agents share an address;
//   - every resource manager name belongs to exactly one agent: a name listed twice (by one
//     agent or by two) is refused naming both places;
//   - the [rm] sections are exactly this agent's rms: one for each, none for another agent's;
//   - peer_timeout_ms < termination_timeout_ms: a termination round must outlast the wait for
//     one peer's reply (both lines are named when refused);
//   - agent names are one word of at most kMaxAgentNameSize bytes (the handshake carries them),
//     resource manager names one word of at most kMaxRmNameSize bytes (the agent messages carry
//     them); a configuration is plain text, so every name is printable;
//   - the key file is read (LoadSharedKey) when the configuration is: a key that cannot be used
//     is refused at key_file's line.
// Every error is XA_CONFIG and names the file, the line and what to change; text from the file
// is escaped in every message.

#ifndef XA_DAEMONS_AGENT_AGENT_CONFIG_H_
#define XA_DAEMONS_AGENT_AGENT_CONFIG_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "src/base/config_file.h"
#include "src/net/peer_auth.h"
#include "src/three_phase/agent_messages.h"
#include "xa/status.h"

namespace xa::agent {

using internal::IntegerSetting;
using internal::RmConfig;

inline constexpr IntegerSetting kTerminationTimeoutMs{"termination_timeout_ms", 50, 3'600'000};
inline constexpr IntegerSetting kPeerTimeoutMs{"peer_timeout_ms", 10, 600'000};
inline constexpr IntegerSetting kOrphanScanIntervalMs{"orphan_scan_interval_ms", 100, 86'400'000};
inline constexpr std::chrono::milliseconds kDefaultTerminationTimeout{5'000};
inline constexpr std::chrono::milliseconds kDefaultPeerTimeout{1'000};
inline constexpr std::chrono::milliseconds kDefaultOrphanScanInterval{30'000};

// The names travel on the wire: bounded by what the handshake and the agent messages carry.
inline constexpr size_t kMaxAgentNameSize = net::kMaxPeerNameSize;
inline constexpr size_t kMaxRmNameSize = three_phase::kMaxAgentRmNameSize;

struct AgentConfig {
  std::string path;
  std::string agent;  // this agent's name
  std::string log_dir;
  uint32_t node_id = 0;
  std::string key_file;  // a key file LoadSharedKey accepted when the configuration was read
  std::chrono::milliseconds termination_timeout = kDefaultTerminationTimeout;
  std::chrono::milliseconds peer_timeout = kDefaultPeerTimeout;
  std::chrono::milliseconds orphan_scan_interval = kDefaultOrphanScanInterval;
  std::set<uint32_t> coordinator_node_ids;  // never empty once parsed (default: {node_id})
  std::optional<std::string> metrics_address;
  // The directory, the same in every agent: resource manager -> agent -> address (as written).
  std::map<std::string, std::string> agent_of_rm;
  std::map<std::string, std::string> address_of_agent;
  // This agent's resource managers, in file order.
  std::vector<RmConfig> rms;
};

// Parses `text` (from `path`, used in messages): see the rules above. Resolves the passwords and
// reads the key file.
Result<AgentConfig> ParseAgentConfig(const std::string& text, const std::string& path);
// Reads the file by the shared reader's rules (a regular file, never blocking on a FIFO, owned
// by the running user or root, not writable by group or others) and parses it.
Result<AgentConfig> LoadAgentConfig(const std::string& path);

}  // namespace xa::agent

#endif  // XA_DAEMONS_AGENT_AGENT_CONFIG_H_
